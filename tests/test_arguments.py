"""Flag checks: the original commands parse; bad values are one-line user errors."""
import pytest

from common.arguments import parse_args
from common.errors import UserError

PAPER_EVAL = ['-k', 'cpn_ft_h36m_dbb', '-c', 'checkpoint/model_h36m', '-gpu', '0,1', '--nolog',
              '--evaluate', 'best_epoch_20_10.bin', '-num_proposals', '20', '-sampling_timesteps', '10', '-b', '4']


def test_original_commands_parse():
    args = parse_args('h36m', PAPER_EVAL)
    assert (args.num_proposals, args.sampling_timesteps, args.batch_size, args.gpu) == (20, 10, 4, '0,1')
    assert args.evaluate == 'best_epoch_20_10.bin' and args.nolog
    train = parse_args('h36m', ['-k', 'cpn_ft_h36m_dbb', '-c', 'checkpoint/model_h36m', '-gpu', '0,1', '--nolog'])
    assert (train.epochs, train.learning_rate, train.lr_decay, train.number_of_frames, train.cs, train.dep) == \
        (100, 6e-5, 0.993, 243, 512, 8)
    assert train.subjects_train == 'S1,S5,S6,S7,S8' and train.subjects_test == 'S9,S11'
    assert parse_args('h36m', ['-k', 'gt']).epochs == 120
    args_3dhp = parse_args('mpi_inf_3dhp', ['-c', 'checkpoint/model_3dhp', '-gpu', '0,1', '--nolog'])
    assert args_3dhp.test_sequences == 'TS1,TS2,TS3,TS4,TS5,TS6'


@pytest.mark.parametrize('flags, message', [
    (['-num_proposals', '0'], '-num_proposals 0: expected at least 1'),
    (['-sampling_timesteps', '20', '-timestep', '10'], '-sampling_timesteps 20 exceeds -timestep 10'),
    (['-f', '0'], '-f 0: expected a positive integer'),
    (['-cs', '100'], 'multiple of the 8 attention heads'),
    (['--action-dropout', '1.5'], 'expected a probability'),
    (['--evaluate', 'a.bin', '-r', 'b.bin'], 'cannot be used together'),
])
def test_bad_values(flags, message):
    with pytest.raises(UserError, match=message):
        parse_args('h36m', flags)


def test_frozen_prompts_flag_reaches_the_model():
    from common.experiment import model_config_from_args
    from common.model import build_model
    from common.skeleton import H36M_17
    perm = H36M_17.mirror_permutation()
    for flags, frozen in (([], False), (['--frozen-prompts'], True)):
        args = parse_args('h36m', ['-f', '9', '-cs', '32', '-dep', '1', '--text-tower', 'tiny', *flags])
        model = build_model(model_config_from_args(args, 'h36m'), perm, perm)
        assert model.prompt_encoder.frozen_prompts is frozen

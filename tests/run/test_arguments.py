"""Flag checks: the original commands parse; bad values are one-line user errors."""
import pytest

from common.core.errors import UserError, exit_on_user_error
from common.run.arguments import NUMERIC_RANGES, build_parser, parse_args

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


@pytest.mark.parametrize('flags, learn, per_clip, gradient_scale', [
    ([], False, False, 'original'),                                   # the original's behaviour
    (['--frozen-prompts'], False, False, 'original'),                 # the old spelling of the default
    (['--learn-prompts'], True, False, 'original'),
    (['--per-clip-prompts'], False, True, 'original'),
    (['--improvements'], True, True, 'plain'),
    (['--improvements', '--learn-prompts', '--gradient-scale', 'plain'], True, True, 'plain'),
])
def test_prompt_flags_reach_the_model(flags, learn, per_clip, gradient_scale):
    from common.run.experiment import model_config_from_args
    from common.model.build import build_model
    from common.data.skeleton import H36M_17
    perm = H36M_17.mirror_permutation()
    args = parse_args('h36m', ['-f', '9', '-cs', '32', '-dep', '1', '--text-tower', 'tiny', *flags])
    model = build_model(model_config_from_args(args, 'h36m'), perm, perm)
    assert (model.prompt_encoder.learn_prompts, model.per_clip_prompts, args.gradient_scale) == \
        (learn, per_clip, gradient_scale)


@pytest.mark.parametrize('flags, message', [
    (['--improvements', '--frozen-prompts'], '--frozen-prompts contradicts --improvements'),
    (['--improvements', '--gradient-scale', 'original'], '--gradient-scale original contradicts --improvements'),
])
def test_improvements_refuse_a_contradicting_flag(flags, message):
    with pytest.raises(UserError, match=message):
        parse_args('h36m', flags)
    with pytest.raises(SystemExit):                    # argparse: not allowed with argument --learn-prompts
        parse_args('h36m', ['--learn-prompts', '--frozen-prompts'])


@pytest.mark.parametrize('flags, clips, description', [
    ([], 4, "4 clips a step (the original's default: -b 1024 frames / -s 243)"),
    (['-f', '27', '-b', '64'], 64, '64 clips a step (-b 64)'),
    (['-f', '27', '-s', '27'], 37, '37 clips a step (-b 1024 frames / -s 27, as the original)'),
    (['-f', '27', '-s', '243'], 4, '4 clips a step (-b 1024 frames / -s 243, as the original)'),
    (['-s', '243', '-b', '2048'], 8, '8 clips a step (-b 2048 frames / -s 243, as the original)'),
    (['-f', '9', '-s', '9', '-b', '40'], 4, '4 clips a step (-b 40 frames / -s 9, as the original)'),
])
def test_training_batch_reads_b_in_frames_when_s_is_given(flags, clips, description):
    batch = parse_args('h36m', flags).training_batch
    assert (batch.clips, batch.description) == (clips, description)


@pytest.mark.parametrize('flags, message', [
    (['-b', '1024'], r"-b 1024: without -s, -b counts clips, and 1024 clips a step is the original's frames; "
                     r"type -s 243 -b 1024 for the original's 4 clips a step, or -b N for N clips"),
    (['-b', '243', '-f', '27'], r'-b 243: without -s.*type -s 243 -b 243 for the original\'s 1 clip a step'),
    (['-s', '243', '-b', '100'], r'-s 243 -b 100: with -s, -b counts frames .* pass -b 243 or more'),
    (['-s', '0'], '-s 0: expected a positive integer'),
])
def test_training_batch_in_frames_without_s_is_refused(flags, message):
    with pytest.raises(UserError, match=message):
        parse_args('h36m', flags)


@pytest.mark.parametrize('flags', [['--subset', '0.5'], ['--downsample', '2']])
def test_main_3dhp_refuses_subset_and_downsample_the_original_ignores(flags):
    assert (parse_args('h36m', flags).subset, parse_args('h36m', flags).downsample) == \
        ((0.5, 1) if flags[0] == '--subset' else (1.0, 2))
    with pytest.raises(UserError, match=f"{flags[0]} {flags[1]}: main.py \\(Human3.6M\\) only; the original's "
                                        'main_3dhp.py parses it and ignores it'):
        parse_args('mpi_inf_3dhp', flags)


def test_largest_batch_in_clips_without_s():
    assert parse_args('h36m', ['-f', '9', '-b', '242']).training_batch.clips == 242      # the original: 0 clips, fails


def test_evaluation_keeps_b_as_windows_per_sampling_batch():
    args = parse_args('h36m', ['--evaluate', 'best_epoch.bin', '-b', '1024', '-s', '243'])
    assert args.batch_size == 1024 and args.training_batch is None
    custom = parse_args('h36m', ['-d', 'custom', '-k', 'v', '--evaluate', 'best_epoch.bin', '-b', '1024'])
    assert custom.batch_size == 1024 and custom.training_batch is None
    with pytest.raises(UserError, match='--val-batch-size 0: expected a positive number of clips'):
        parse_args('h36m', ['--val-batch-size', '0'])


def test_threads_default_shares_the_cores_among_local_processes():
    from common.run.arguments import default_threads
    cores = default_threads({})
    assert cores >= 1
    assert default_threads({'OMP_NUM_THREADS': '3'}) == 3
    assert default_threads({'LOCAL_WORLD_SIZE': str(cores), 'OMP_NUM_THREADS': '1'}) == 1
    assert default_threads({'LOCAL_WORLD_SIZE': str(4 * cores)}) == 1
    assert parse_args('h36m', ['--threads', '2']).threads == 2
    with pytest.raises(UserError, match='--threads 0: expected a positive number of threads'):
        parse_args('h36m', ['--threads', '0'])


def test_help_lists_only_the_datasets_own_flags_with_defaults():
    from common.run.arguments import build_parser
    h36m, hp = build_parser('h36m').format_help(), build_parser('mpi_inf_3dhp').format_help()
    for flag in ('--action-dropout', '--keypoints', 'with -k gt', '--eval-action'):
        assert flag in h36m and flag not in hp, flag
    assert '(default: S1,S5,S6,S7,S8)' in h36m and '(default: S9,S11)' in h36m
    assert '(default: TS1,TS2,TS3,TS4,TS5,TS6)' in ' '.join(hp.split())
    assert parse_args('mpi_inf_3dhp', []).action_dropout == 0.0


def test_bare_visualisation_file_names_go_into_the_checkpoint_folder():
    flags = ['-c', 'checkpoint/model_h36m', '--evaluate', 'best_epoch.bin', '--render']
    args = parse_args('h36m', [*flags, '--viz-output', 'dance.gif', '--viz-export', 'dance_3d.npy'])
    assert (args.viz_output, args.viz_export) == ('checkpoint/model_h36m/dance.gif', 'checkpoint/model_h36m/dance_3d.npy')
    assert parse_args('h36m', [*flags, '--viz-output', './dance.gif']).viz_output == './dance.gif'
    assert parse_args('h36m', [*flags, '--viz-output', 'out/dance.gif']).viz_output == 'out/dance.gif'


@pytest.mark.parametrize('flags, message', [
    (['-lr', 'nan'], '-lr nan: expected a positive finite learning rate'),
    (['-lr', '-1'], '-lr -1: expected a positive'),
    (['-lr', 'inf'], '-lr inf: expected a positive'),
    (['--weight-decay', '-1'], '--weight-decay -1: expected a finite weight decay >= 0'),
    (['--val-batch-size', '0'], '--val-batch-size 0: expected a positive number of clips'),
    (['--drop-path', '1.5'], r'--drop-path 1.5: expected a rate in \[0, 1\)'),
    (['-scale', '0'], '-scale 0: expected a positive finite scale'),
    (['-scale', 'nan'], '-scale nan'),
    (['-lrd', '0'], r'-lrd 0: expected a multiplier in \(0, 1\]'),
    (['-lrd', '1.5'], '-lrd 1.5'),
    (['--focal-length', 'inf'], '--focal-length inf: expected a positive number of pixels'),
    (['--viz-size', 'inf'], '--viz-size inf'),
    (['--viz-limit', '0'], '--viz-limit 0: expected a positive number of frames, or -1'),
    (['--seed', '-1'], '--seed -1: expected an integer from 0 to 4294967295'),
    (['-e', '-1'], '-e -1: expected a number of epochs >= 0'),
    (['-b', '0'], '-b 0: expected a positive number of clips'),
    (['-s', '0'], '-s 0'), (['-dep', '0'], '-dep 0'), (['-timestep', '0'], '-timestep 0'), (['-cf', '0'], '-cf 0'),
    (['-cs', '0'], '-cs 0: expected a positive multiple of the 8 attention heads'),
    (['-sampling_timesteps', '0'], '-sampling_timesteps 0: expected at least 1 DDIM step'),
    (['--action-dropout', 'nan'], '--action-dropout nan'),
    (['--subset', 'nan'], '--subset nan: expected a fraction'), (['--subset', '-0.1'], '--subset -0.1'),
    (['--downsample', '-2'], '--downsample -2: expected a factor of at least 1'),
])
def test_every_bad_number_is_a_one_line_error(flags, message):
    with pytest.raises(UserError, match=message):
        parse_args('h36m', flags)


@pytest.mark.parametrize('dataset', ['h36m', 'mpi_inf_3dhp'])
def test_every_numeric_flag_is_range_checked(dataset):
    numeric = {a.dest for a in build_parser(dataset)._actions if a.type in (int, float)}
    assert numeric and numeric <= set(NUMERIC_RANGES), numeric - set(NUMERIC_RANGES)
    defaults = parse_args(dataset, [])                  # every default passes its own check
    assert all(getattr(defaults, dest) is None or NUMERIC_RANGES[dest][0](getattr(defaults, dest))
               for dest in numeric)


def test_given_flags_tell_explicit_values_from_defaults():
    args = parse_args('h36m', ['-f', '243', '--number-of-frames', '243', '-cs', '512', '--frozen-prompts'])
    assert args.given == {'number_of_frames', 'cs', 'learn_prompts'}
    assert parse_args('h36m', ['--improvements']).given == {'improvements', 'learn_prompts', 'per_clip_prompts',
                                                            'gradient_scale'}
    assert parse_args('h36m', []).given == set()


def test_overwrite_is_for_new_runs_only():
    with pytest.raises(UserError, match='--overwrite starts a new training run'):
        parse_args('h36m', ['--overwrite', '-r', 'last_epoch.bin'])


@pytest.mark.parametrize('flags', [[], ['--evaluate', 'best_epoch.bin'],
                                   ['--evaluate', 'best_epoch.bin', '--render', '--viz-output', 'a.gif']])
def test_focal_length_is_refused_on_human36m(flags):
    """Human3.6M sequences carry their calibrated cameras: --focal-length would be ignored."""
    with pytest.raises(UserError) as error:
        parse_args('h36m', [*flags, '--focal-length', '1000'])
    assert str(error.value) == ('--focal-length 1000: only for -d custom (Human3.6M sequences come with their '
                                'calibrated cameras); drop it')
    assert parse_args('h36m', ['-d', 'custom', '--evaluate', 'x.bin', '--focal-length', '1000']).focal_length == 1000


def test_viz_action_is_refused_with_custom_videos():
    """-d custom videos have no actions: --viz-action was ignored silently; the user likely meant
    --prompt-action, which the line names with the word quoted for the shell."""
    with pytest.raises(UserError) as error:
        parse_args('h36m', ['-d', 'custom', '-k', 'mine', '--evaluate', 'a.bin', '--viz-export', 'a.npy',
                            '--viz-action', 'Walking Dog'])
    assert str(error.value) == ("--viz-action Walking Dog: -d custom videos have no actions to choose from "
                                "(--viz-subject picks the video); to put the word in the prompt, pass --prompt-action "
                                "'Walking Dog' instead")


class _Stream:
    def __init__(self, terminal: bool):
        self.terminal = terminal

    def isatty(self):
        return self.terminal


@pytest.mark.parametrize('flags, terminal, bars', [
    ([], True, True), ([], False, False),                      # by default: bars on a terminal only
    (['--progress'], False, True), (['--no-progress'], True, False)])
def test_progress_bars_only_on_a_terminal_unless_asked(monkeypatch, flags, terminal, bars):
    """A redirected log collected every redraw of the bars (121 KB for the demo's commands)."""
    monkeypatch.setattr('sys.stderr', _Stream(terminal))
    assert parse_args('h36m', flags).no_progress is not bars
    assert parse_args('mpi_inf_3dhp', flags).no_progress is not bars


def test_progress_and_no_progress_contradict(capsys):
    with pytest.raises(SystemExit):
        parse_args('h36m', ['--progress', '--no-progress'])
    assert 'argument --no-progress: not allowed with argument --progress' in capsys.readouterr().err


@pytest.mark.parametrize('flags', [['-lr', 'nan'], ['--no-such-flag']])
def test_under_torchrun_only_rank_0_says_a_bad_flag(monkeypatch, capsys, flags):
    """Every torchrun process parses the same flags: rank 0 says what is wrong, the others exit
    with the same code and print nothing."""
    said = {}
    monkeypatch.setenv('WORLD_SIZE', '4')
    for rank in ('0', '1', '3'):
        monkeypatch.setenv('RANK', rank)
        with pytest.raises(SystemExit) as exit_info:
            with exit_on_user_error():
                parse_args('h36m', flags)
        said[rank] = (exit_info.value.code, capsys.readouterr().err)
    assert said['0'][0] == said['1'][0] == said['3'][0] == 2
    assert said['0'][1].count('\n') >= 1 and flags[0] in said['0'][1] and said['1'][1] == said['3'][1] == ''

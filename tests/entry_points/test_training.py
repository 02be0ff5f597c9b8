"""main.py end to end on tiny synthetic data: training lowers the loss, resuming is exact,
--evaluate prints and writes every setting, TensorBoard logs are readable, bad input fails cleanly."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import main as h36m_main
from common.evaluation import metrics
from common.run.checkpoints import read_checkpoint
from common.run.run_folder import LOCK_FILE
from common.run.tb_logging import TAG_EPOCH_TIME, TAG_LR, TAG_TRAIN_LOSS, TAG_VAL_MPJPE
from support.models import assert_same_updates
from support.runs import DATA_FLAGS, REPO_ROOT, TINY_RUN_FLAGS

EVALUATED_STEM = 'best_epoch_H3_K2_action-gt_flip_seed1_protocol-original-b4_synthetic_det_S9_a-Walking+Eating'


def _run(tmp_dir, dataset, *flags, capsys=None):
    h36m_main.main(['--data-dir', str(dataset), '-c', str(tmp_dir), *DATA_FLAGS, *TINY_RUN_FLAGS, *flags])
    return capsys.readouterr().out if capsys is not None else None


def _weights(path):
    return torch.load(path, map_location='cpu', weights_only=True)['model']


@pytest.fixture(scope='module')
def two_epoch_run(tiny_dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp('two_epochs')
    _run(folder, tiny_dataset, '-e', '2', '--export-training-curves')
    return folder


def test_training_lowers_the_loss_and_writes_checkpoints(two_epoch_run):
    checkpoint = torch.load(two_epoch_run / 'last_epoch.bin', map_location='cpu', weights_only=True)
    losses = checkpoint['history']['train_loss_mm']
    assert checkpoint['epoch'] == 2 and len(losses) == 2
    assert losses[1] < losses[0]
    assert checkpoint['lr'] == pytest.approx(6e-5 * 0.993 ** 2)
    assert checkpoint['optimizer']['param_groups'][0]['lr'] == pytest.approx(6e-5 * 0.993 ** 2)
    best = torch.load(two_epoch_run / 'best_epoch.bin', map_location='cpu', weights_only=True)
    assert best['best_val'] == pytest.approx(min(checkpoint['history']['val_mpjpe_mm']))
    assert (two_epoch_run / 'training_curves.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_tensorboard_events_have_the_expected_tags(two_epoch_run):
    accumulator = EventAccumulator(str(two_epoch_run / 'tensorboard'))
    accumulator.Reload()
    tags = set(accumulator.Tags()['scalars'])
    assert {TAG_TRAIN_LOSS, TAG_VAL_MPJPE, TAG_LR, TAG_EPOCH_TIME} <= tags
    losses = accumulator.Scalars(TAG_TRAIN_LOSS)
    history = torch.load(two_epoch_run / 'last_epoch.bin', map_location='cpu', weights_only=True)['history']
    assert [e.step for e in losses] == [1, 2]
    np.testing.assert_allclose([e.value for e in losses], history['train_loss_mm'], rtol=1e-6)


def test_resume_continues_the_same_run_bitwise(two_epoch_run, tiny_dataset, tmp_path):
    _run(tmp_path, tiny_dataset, '-e', '1', '--nolog')
    _run(tmp_path, tiny_dataset, '-e', '2', '--nolog', '-r', 'last_epoch.bin')
    resumed, uninterrupted = _weights(tmp_path / 'last_epoch.bin'), _weights(two_epoch_run / 'last_epoch.bin')
    assert resumed.keys() == uninterrupted.keys()
    for key in resumed:
        assert torch.equal(resumed[key], uninterrupted[key]), key


def test_evaluate_prints_and_writes_every_setting(two_epoch_run, tiny_dataset, capsys):
    capsys.readouterr()
    out = _run(two_epoch_run, tiny_dataset, '--evaluate', 'best_epoch.bin', '-num_proposals', '3',
               '-sampling_timesteps', '2', '--p2', '-b', '4', capsys=capsys)
    for label in ('P-Best*', 'J-Best*', 'P-Agg', 'J-Agg', 'Protocol #1', 'Protocol #2', 'Walking', 'Eating',
                  'Ground truth used', '--eval-action gt'):
        assert label in out
    document = json.loads((two_epoch_run / f'{EVALUATED_STEM}.json').read_text())
    assert set(document['average']) == {f'{s}/{m}' for s in metrics.SETTINGS for m in ('P1', 'P2', 'MPJVE')}
    assert all(len(values) == 2 for values in document['average'].values())
    average = document['average']
    assert average['J-Best/P1'][-1] <= average['P-Best/P1'][-1] + 1e-6    # J-Best is the per-joint oracle
    rows = (two_epoch_run / f'{EVALUATED_STEM}.csv').read_text().splitlines()
    assert rows[0].startswith('action,setting,protocol,step,error_mm')
    # (2 actions + Average) x (4 settings x 2 steps + the mean training pose, one value) x (P1, P2, MPJVE)
    assert len(rows) == 1 + 3 * (4 * 2 + 1) * 3


def _table(folder, prefix) -> dict:
    """{'average' / group: {setting/protocol: [mm per step]}} of the one result JSON named
    ``prefix*`` in ``folder`` (the rest of the name lists the evaluation's settings)."""
    (path,) = folder.glob(f'{prefix}*.json')
    document = json.loads(path.read_text())
    counts = ('frames', 'frame_pairs')
    return {'average': document['average'], **{g: {k: v for k, v in values.items() if k not in counts}
                                               for g, values in document['groups'].items()}}


def _max_table_difference(a: dict, b: dict) -> float:
    """Largest |difference| in mm between two ``_table``s of the same groups and settings."""
    assert a.keys() == b.keys() and all(a[g].keys() == b[g].keys() for g in a)
    return max(abs(x - y) for g in a for key in a[g] for x, y in zip(a[g][key], b[g][key]))


def _only(table: dict, p_best: bool) -> dict:
    """The P-Best entries of a ``_table`` (p_best=True), or all the others."""
    return {g: {k: v for k, v in values.items() if k.startswith('P-Best/') == p_best} for g, values in table.items()}


def test_evaluation_does_not_depend_on_the_sampling_batch(two_epoch_run, tiny_dataset, tmp_path):
    """Every window's noise is keyed by (seed, subject, action, camera, window). Under --protocol
    per-frame, sampling the 5 windows of each test sequence 1, 2 (2 + 2 + 1) or 7 (all 5) at a time
    gives one table, to float rounding, and evaluating Walking alone gives the Walking row of both
    actions' table. Under --protocol original, -b also groups P-Best (one hypothesis per batch of
    -b windows): P-Best moves with it, the other settings do not."""
    tables = {}
    for name, flags in (('b1', ['-b', '1']), ('b2', ['-b', '2']), ('b7', ['-b', '7']),
                         ('walking', ['-a', 'Walking', '-b', '1'])):
        for protocol in ('per-frame', 'original'):
            folder = tmp_path / f'{name}-{protocol}'
            _run(folder, tiny_dataset, '--evaluate', str(two_epoch_run / 'best_epoch.bin'), '-num_proposals', '3',
                 '-sampling_timesteps', '2', '--p2', '--protocol', protocol, *flags)
            tables[name, protocol] = _table(folder, 'best_epoch_H3_K2_')
    assert sorted(tables['b1', 'per-frame']) == ['Eating', 'Walking', 'average']
    assert len(tables['b1', 'per-frame']['average']) == 12                 # 4 settings x (P1, P2, MPJVE)
    for name in ('b2', 'b7'):
        difference = _max_table_difference(tables[name, 'per-frame'], tables['b1', 'per-frame'])
        print(f'per-frame, -b {name[1:]} vs -b 1: max |diff| {difference:.2e} mm')
        assert difference <= 2e-3, name
        original, reference = tables[name, 'original'], tables['b1', 'original']
        assert _max_table_difference(_only(original, p_best=False), _only(reference, p_best=False)) <= 2e-3
        assert _max_table_difference(_only(original, p_best=True), _only(reference, p_best=True)) > 2e-3
    for protocol in ('per-frame', 'original'):                     # Walking's sequences come after Eating's
        walking = {'Walking': tables['walking', protocol]['Walking']}
        assert _max_table_difference(walking, {'Walking': tables['b1', protocol]['Walking']}) <= 2e-3


@pytest.mark.parametrize('flags, line', [
    (['-s', '9'], '40 clips x 2 with their mirrored copies, of 9 frames; 113 clips a step (-b 1024 frames / -s 9, as the original), 1 step per '
                  'epoch\nWarning: 113 clips a step (-b 1024 frames / -s 9, as the original) is more than the 80'),
    (['-s', '9', '-b', '40'], '4 clips a step (-b 40 frames / -s 9, as the original), 20 steps per epoch'),
    (['-s', '243'], '4 clips a step (-b 1024 frames / -s 243, as the original), 20 steps per epoch'),
    (['-b', '100'], '100 clips a step (-b 100), 1 step per epoch\nWarning: 100 clips a step (-b 100) is more than '
                    'the 80 clips an epoch holds: each epoch is one step of all of them'),
])
def test_training_log_says_how_many_clips_a_step_takes(flags, line, tiny_dataset, tmp_path, capsys):
    """S1 Walking and Eating hold 80 clips of 9 frames (flips included); -s reads -b in frames."""
    args = [a for a in TINY_RUN_FLAGS]
    del args[args.index('-b'):args.index('-b') + 2]
    h36m_main.main(['--data-dir', str(tiny_dataset), '-c', str(tmp_path), *DATA_FLAGS, *args, '-e', '0', '--nolog',
                    '--no-eval', *flags])
    out = capsys.readouterr().out
    assert line in out, out
    if 'Warning' not in line:
        assert 'Warning' not in out


def test_subset_and_downsample_train_and_evaluate_on_the_originals_frames(tiny_dataset, tmp_path, capsys):
    """S1 Walking and Eating: 8 sequences of 40 frames; --subset 0.5 --downsample 2 keeps
    round(20 * 0.5) = 10 of each (common.data.subset; tests/data/test_subset.py checks which), and the 5 x 9
    frame clips of each half into ceil(10 / 9) = 2 x 2 (flip) clips. The test sequences keep 20
    of 40 frames, and the result file names say so."""
    _run(tmp_path, tiny_dataset, '-e', '0', '--nolog', '--no-eval', '--subset', '0.5', '--downsample', '2')
    out = capsys.readouterr().out
    assert 'Training on 80 frames of 8 sequences: 16 clips x 2 with their mirrored copies, of 9 frames' in out, out
    assert '--subset 0.5 --downsample 2: training on 80 of 320 frames, as the original' in out
    assert '--downsample 2: the test sequences keep one frame in 2, as the original' in out
    assert read_checkpoint(tmp_path / 'last_epoch.bin')['training_data'] == {
        '-k': 'synthetic_det', '-str': 'S1', '-a': 'Walking,Eating', '--subset': '0.5', '--downsample': '2'}
    (table,) = tmp_path.glob('best_epoch_*_downsample2.json')
    # 4 cameras x 20 frames per action: 80 counted once, 108 in the original's 9-frame windows (0, 9, 11);
    # the full 40-frame sequences would give 160 (180).
    assert all(values['frames'] <= 108 for values in json.loads(table.read_text())['groups'].values())
    _run(tmp_path / 'evaluate', tiny_dataset, '--evaluate', str(tmp_path / 'best_epoch.bin'), '--subset', '0.5',
         '-lr', '0.1', '-e', '50', '--no-eval')
    out = capsys.readouterr().out
    # Every training flag written is named once, in the order of TRAINING_ONLY_FLAGS, with its value.
    assert '-e 50 --subset 0.5 -lr 0.1 --no-eval --val-batch-size 8: not used here (training flags' in out, out
    assert 'the test sequences keep one frame' not in out        # --downsample is 1: nothing to say


@pytest.mark.parametrize('flags, message', [
    (['--subset', '0'], '--subset 0: expected a fraction in (0, 1]'),
    (['--subset', '1.5'], '--subset 1.5: expected a fraction in (0, 1]'),
    (['--downsample', '0'], '--downsample 0: expected a factor of at least 1'),
    (['--subset', '0.01'], '--subset 0.01 --downsample 1: keeps no frame of any training sequence'),
    (['--evaluate', 'nope.bin'], '--evaluate nope.bin: no such checkpoint'),
    (['-k', 'unknown_detector'], 'data_2d_h36m_unknown_detector.npz'),
    (['-num_proposals', '0'], '-num_proposals 0: expected at least 1'),
    (['-sampling_timesteps', '20', '-timestep', '10'], '-sampling_timesteps 20 exceeds -timestep 10'),
    (['-f', '500'], '-f 500: longer than every sequence'),
    (['-gpu', '0'], '-gpu 0: CUDA is not available'),
    (['-a', ''], "-a '': expected a comma-separated list of actions (prefixes), or '*' for all"),
    (['-a', 'Dancing'], "-a: no sequence of the chosen subjects (-str) has an action starting with 'Dancing'"),
    (['-str', 'S1,S99'], '-str: unknown subject S99; available: S1,'),
    (['-ste', 'S77'], '-ste: unknown subject S77; available: S1,'),
    (['--val-subjects', 'S66'], '--val-subjects: unknown subject S66'),
    (['-ste', ','], "-ste ',': expected a comma-separated list of subjects"),
    (['-lr', 'nan'], '-lr nan: expected a positive finite learning rate'),
    (['-scale', '0'], '-scale 0: expected a positive finite scale'),
])
def test_bad_input_is_one_line_and_exit_2(flags, message, tiny_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _run(tmp_path, tiny_dataset, '-e', '1', '--nolog', *flags)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and message in err and err.count('\n') == 1, err


def test_incompatible_checkpoint_is_refused(two_epoch_run, tiny_dataset, tmp_path, capsys):
    foreign = tmp_path / 'foreign.bin'
    torch.save({'weights': torch.zeros(3)}, foreign)
    with pytest.raises(SystemExit):
        _run(tmp_path, tiny_dataset, '--evaluate', str(foreign))
    err = capsys.readouterr().err
    assert str(foreign) in err and 'expected a reference FinePOSE checkpoint' in err


def _torchrun(command: list, env: dict) -> subprocess.CompletedProcess:
    """Run ``command`` under torchrun with 2 CPU processes (gloo over the loopback device, a free
    port) and assert it succeeded, showing the workers' own error lines when it did not. A run whose
    worker was killed by a signal (a SIGABRT in one CI run, not reproduced here) is retried once,
    from an empty -c folder, and the first attempt's stderr printed."""
    env = {**env, 'GLOO_SOCKET_IFNAME': 'lo'}
    argv = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2', *command]
    for attempt in range(2):
        result = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
        if result.returncode == 0 or 'Signal' not in result.stderr:
            break
        print(f'torchrun attempt {attempt + 1}: a worker died by a signal; its stderr:\n'
              f'{result.stderr[:3000]}')
        shutil.rmtree(command[command.index('-c') + 1], ignore_errors=True)
    assert result.returncode == 0, result.stderr[:3000] + '\n...\n' + result.stderr[-3000:]
    return result


def test_distributed_training_and_evaluation_equal_single_process(tiny_dataset, tmp_path):
    """torchrun with 2 CPU processes (gloo) and one process give the same weights after two steps
    with stochastic depth on (the default --drop-path 0.1), and the same evaluation table with 7
    and 1 clips per sampling batch: every random draw is keyed per clip.
    Micro-batches differ too: the single process runs each step's 40 clips (6,120 tokens) as 2
    micro-batches, each rank its 20 clips in one (gradients all-reduced after the last one)."""
    # S1 Walking and Eating: 2 x 4 cameras x 5 clips of 9 frames x 2 (flip) = 80 clips, 2 global batches.
    # The final evaluation: S9, 8 sequences of 5 windows, H=2, K=2.
    flags = ['--data-dir', str(tiny_dataset), *DATA_FLAGS, *TINY_RUN_FLAGS, '-e', '1', '--nolog', '--no-eval',
             '-b', '40', '-num_proposals', '2', '-sampling_timesteps', '2']
    _run(tmp_path / 'initial', tiny_dataset, '-e', '0', '--nolog', '--no-eval')
    env = {'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin', 'PYTHONPATH': str(REPO_ROOT)}
    single = subprocess.run([sys.executable, 'main.py', *flags, '--val-batch-size', '1', '-c', str(tmp_path / 'one')],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert single.returncode == 0, single.stderr[-2000:]
    distributed = _torchrun(['main.py', *flags, '--val-batch-size', '7', '-c', str(tmp_path / 'two')], env)
    assert 'rank 0 of 2' in distributed.stdout
    assert (tmp_path / 'two' / LOCK_FILE).is_file()     # rank 0 locked -c; rank 1 did not try, or it would have stopped
    assert ('Training on 320 frames of 8 sequences: 40 clips x 2 with their mirrored copies, of 9 frames; 40 clips a '
            'step (-b 40), 2 steps per epoch') in single.stdout
    initial = {k: v for k, v in _weights(tmp_path / 'initial' / 'last_epoch.bin').items() if v.is_floating_point()}
    one, two = _weights(tmp_path / 'one' / 'last_epoch.bin'), _weights(tmp_path / 'two' / 'last_epoch.bin')
    assert one.keys() == two.keys() == _weights(tmp_path / 'initial' / 'last_epoch.bin').keys()
    assert_same_updates(initial, one, two)
    difference = _max_table_difference(_table(tmp_path / 'two', 'best_epoch_H2_K2_'),
                                       _table(tmp_path / 'one', 'best_epoch_H2_K2_'))
    print(f'2 processes, -b 7 vs 1 process, -b 1: max |diff| {difference:.2e} mm')
    assert difference <= 0.01


def test_under_torchrun_a_bad_flag_is_said_once(tmp_path):
    """Each torchrun process parses the same flags; the line came once per process. Rank 0 says it,
    the other processes exit with the same code in silence, before any process group starts."""
    env = {'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin', 'PYTHONPATH': str(REPO_ROOT), 'GLOO_SOCKET_IFNAME': 'lo'}
    ended = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
                            'main.py', '-gpu', '', '-c', str(tmp_path), '-lr', 'nan'],
                           cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert ended.returncode != 0
    said = [line for line in (ended.stdout + ended.stderr).splitlines() if '-lr nan' in line]
    assert len(said) == 1 and said[0].endswith('error: -lr nan: expected a positive finite learning rate'), \
        ended.stderr[-3000:]

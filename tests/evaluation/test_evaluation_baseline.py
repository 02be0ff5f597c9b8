"""The 'mean training pose' line of every evaluation table (``common/evaluation/baseline.py``),
against an independent numpy computation on tiny synthetic sets: the mean of the training clips
(centred chunks, edge padding, mirror images), then its MPJPE, P-MPJPE and MPJVE counted by
hand under both counting rules (Human3.6M: every window frame or every frame once, averaged over
actions; MPI-INF-3DHP: the original's batches of 2 windows over valid frames, pooled)."""
import csv
import json

import numpy as np
import pytest
import torch

import main as h36m_main
import main_3dhp
from common.data.h36m import load_h36m
from common.data.mpi_inf_3dhp import TEST_FILE, TEST_SEQUENCES, TRAIN_FILE, load_3dhp_test, load_3dhp_train
from common.evaluation.baseline import MEAN_POSE_LABEL
from common.evaluation.metrics import VELOCITY
from common.model.official_checkpoint import official_state_dict
from support.runs import TINY_RUN_FLAGS
from support.models import build_tiny_model

CLIP_FRAMES = 9                                     # TINY_RUN_FLAGS' -f
H36M_LEFT, H36M_RIGHT = [4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]
MPI_LEFT, MPI_RIGHT = [5, 6, 7, 11, 12, 13], [2, 3, 4, 8, 9, 10]
H36M_SELECTION = ['-k', 'gt', '-str', 'S1,S5', '-ste', 'S9', '-a', 'Walking,Eating']
SAMPLING = ['-num_proposals', '1', '-sampling_timesteps', '1']
TOLERANCE_MM = 1e-3


def _mirror(pose, left, right):
    """Negate x and swap the listed left and right joints."""
    out = pose.copy()
    out[..., left + right, :] = pose[..., right + left, :]
    out[..., 0] *= -1
    return out


def numpy_mean_pose(sequences, left, right, f=CLIP_FRAMES):
    """Every frame of every centred, edge-padded F-frame chunk, and its mirror image."""
    frames = []
    for s in sequences:
        n = len(s.positions_3d)
        chunks = -(-n // f)
        first = -((chunks * f - n) // 2)
        frames.append(s.positions_3d[np.clip(np.arange(first, first + chunks * f), 0, n - 1)])
    poses = np.concatenate(frames).astype(np.float64)
    return (poses.mean(axis=0) + _mirror(poses, left, right).mean(axis=0)) / 2


def numpy_aligned_error(pred, target):
    """Per frame: mean joint distance after the similarity transform (rotation, scale, shift) of
    ``pred`` (J, 3) that best fits ``target`` (N, J, 3) (Umeyama's solution)."""
    errors = []
    for y in target.astype(np.float64):
        xc, yc = pred - pred.mean(axis=0), y - y.mean(axis=0)
        u, s, vt = np.linalg.svd(xc.T @ yc)
        d = np.diag([1.0, 1.0, np.sign(np.linalg.det(vt.T @ u.T))])
        rotation = vt.T @ d @ u.T
        scale = np.trace(np.diag(s) @ d) / np.sum(xc ** 2)
        aligned = scale * xc @ rotation.T + y.mean(axis=0)
        errors.append(np.linalg.norm(aligned - y, axis=-1).mean())
    return np.array(errors)


def numpy_frame_errors(pose, target, protocol):
    """(N,) mean joint error of the constant ``pose`` against every frame of ``target``, metres."""
    if protocol == 1:
        return np.linalg.norm(target.astype(np.float64) - pose, axis=-1).mean(axis=-1)
    return numpy_aligned_error(pose, target)


def window_frames(n, f=CLIP_FRAMES):
    """(W, F) frame shown by each evaluation window frame: windows at 0, F, 2F, ..., the last
    ending at frame n (padding shows the last frame)."""
    starts = list(range(0, n, f))
    starts[-1] = max(n - f, 0)
    return np.minimum(np.array(starts)[:, None] + np.arange(f), n - 1)


def numpy_velocity(target, valid=None):
    """(sum over counted pairs of the ground truth's mean joint speed, counted pairs), metres."""
    speed = np.linalg.norm(np.diff(target.astype(np.float64), axis=0), axis=-1).mean(axis=-1)
    counted = np.ones(len(speed), bool) if valid is None else valid[1:] & valid[:-1]
    return speed[counted].sum(), counted.sum()


def expected_h36m(sequences, pose, rule, protocol):
    """The baseline's average over actions in mm: per action the mean over counted frames (rule
    'original': every window frame; 'per-frame': every frame once) or pairs (VELOCITY)."""
    per_action = {}
    for s in sequences:
        total, counted = per_action.get(s.action_label, (0.0, 0))
        if protocol == VELOCITY:
            value, number = numpy_velocity(s.positions_3d)
        else:
            errors = numpy_frame_errors(pose, s.positions_3d, protocol)
            shown = window_frames(len(errors)).ravel() if rule == 'original' else np.arange(len(errors))
            value, number = errors[shown].sum(), len(shown)
        per_action[s.action_label] = (total + value, counted + number)
    return 1000 * np.mean([total / counted for total, counted in per_action.values()])


def expected_3dhp_original(sequences, pose, protocol, batch_windows=2):
    """The original's main_3dhp.py count: per batch of 2 windows its mean over valid window frames,
    weighted by its window frames (a batch without a valid frame not at all), every sequence pooled."""
    total = weights = 0.0
    for s in sequences:
        errors = numpy_frame_errors(pose, s.positions_3d, protocol)
        shown = window_frames(len(errors))
        for begin in range(0, len(shown), batch_windows):
            batch = shown[begin:begin + batch_windows].ravel()
            valid = s.valid[batch]
            if valid.any():
                total += errors[batch][valid].mean() * len(batch)
                weights += len(batch)
    return 1000 * total / weights


def _h36m(folder, dataset, *flags):
    return h36m_main.main(['--data-dir', str(dataset), '-c', str(folder), *TINY_RUN_FLAGS, *H36M_SELECTION,
                           *SAMPLING, *flags])


@pytest.fixture(scope='module')
def h36m_run(tiny_dataset, tmp_path_factory):
    """An untrained model of ours (-e 0), which stores the training set's mean pose, and the table
    printed after its training; the data's training and test sequences."""
    folder = tmp_path_factory.mktemp('baseline_h36m')
    result = _h36m(folder, tiny_dataset, '-e', '0', '--nolog', '--p2')
    dataset = load_h36m(tiny_dataset, 'gt')
    train = dataset.select(['S1', 'S5'], ['Walking', 'Eating'])
    test = dataset.select(['S9'], ['Walking', 'Eating'])
    return folder, result, train, test


def test_the_checkpoint_carries_the_mean_of_the_training_clips(h36m_run):
    folder, _, train, _ = h36m_run
    stored = torch.load(folder / 'best_epoch.bin', weights_only=True)['mean_pose']
    expected = numpy_mean_pose(train, H36M_LEFT, H36M_RIGHT)
    np.testing.assert_allclose(stored['pose'].numpy(), expected, atol=1e-9)
    assert np.abs(expected[1] - expected[4]).max() > 1e-3            # not a degenerate pose: hips apart
    assert '-str S1,S5' in stored['source'] and '9-frame clips and their mirror images' in stored['source']


def test_after_training_the_line_matches_numpy_under_the_original_count(h36m_run, capsys):
    _, result, train, test = h36m_run
    pose = numpy_mean_pose(train, H36M_LEFT, H36M_RIGHT)
    for metric in (1, 2, VELOCITY):
        assert result.mean_pose_errors['average'][metric] == pytest.approx(
            expected_h36m(test, pose, 'original', metric), abs=TOLERANCE_MM), metric
    assert set(result.average) == {(s, m) for s in ('P-Best', 'J-Best', 'P-Agg', 'J-Agg') for m in (1, 2, VELOCITY)}


@pytest.mark.parametrize('flags', [['--protocol', 'per-frame'], ['--protocol', 'per-frame', '--smooth', '5'],
                                   ['--protocol', 'original', '-b', '2', '--smooth', '5']])
def test_evaluate_prints_and_writes_the_line_counted_as_the_settings(h36m_run, tiny_dataset, flags, capsys):
    folder, _, train, test = h36m_run
    capsys.readouterr()
    result = _h36m(folder, tiny_dataset, '--evaluate', 'best_epoch.bin', '--p2', *flags)
    out = capsys.readouterr().out
    rule = flags[1]
    pose = numpy_mean_pose(train, H36M_LEFT, H36M_RIGHT)
    expected = {metric: expected_h36m(test, pose, rule, metric) for metric in (1, 2, VELOCITY)}
    average = result.mean_pose_errors['average']
    for metric, value in expected.items():
        assert average[metric] == pytest.approx(value, abs=TOLERANCE_MM), (metric, rule)
    if rule == 'per-frame':                  # every frame once: the plain mean over frames
        frames = np.concatenate([s.positions_3d for s in test if s.action_label == 'Walking'])
        walking = 1000 * np.linalg.norm(frames - pose, axis=-1).mean()
        assert result.mean_pose_errors['groups']['Walking'][1] == pytest.approx(walking, abs=TOLERANCE_MM)
    # console: one labelled line per metric under its per-step rows, and where the pose comes from
    lines = [line for line in out.splitlines() if line.startswith(MEAN_POSE_LABEL)]
    assert lines == [f'{MEAN_POSE_LABEL} (baseline, no model): {average[m]:.2f}' for m in (1, 2, VELOCITY)]
    assert "Its pose: stored in best_epoch.bin: the mean pose of the training clips (-k gt -str S1,S5" in out
    # JSON and CSV
    (json_path,) = folder.glob(f'best_epoch_H1_K1_*protocol-{rule}*{"_smooth5" if "--smooth" in flags else "S9"}*'
                               '.json')
    document = json.loads(json_path.read_text())
    assert document['mean_training_pose']['average'] == pytest.approx(
        {'P1': expected[1], 'P2': expected[2], 'MPJVE': expected[VELOCITY]}, abs=TOLERANCE_MM)
    assert set(document['mean_training_pose']['groups']) == {'Walking', 'Eating'}
    with open(json_path.with_suffix('.csv')) as f:
        rows = [row for row in csv.DictReader(f) if row['setting'] == MEAN_POSE_LABEL]
    assert len(rows) == 3 * 3                                   # (2 actions + Average) x (P1, P2, MPJVE)
    assert all(row['step'] == '' and row['ground_truth_used'] == 'no' for row in rows)
    average_p1 = [row for row in rows if row['action'] == 'Average' and row['metric'] == 'MPJPE']
    assert float(average_p1[0]['error_mm']) == pytest.approx(expected[1], abs=TOLERANCE_MM)


def test_a_checkpoint_without_a_mean_pose_gets_it_from_str_or_says_why_not(h36m_run, tiny_dataset, tmp_path, capsys):
    folder, _, train, test = h36m_run
    checkpoint = torch.load(folder / 'best_epoch.bin', weights_only=True)
    del checkpoint['mean_pose']                                  # as written before checkpoints carried it
    torch.save(checkpoint, tmp_path / 'older.bin')
    capsys.readouterr()
    result = _h36m(tmp_path, tiny_dataset, '--evaluate', 'older.bin')
    out = capsys.readouterr().out
    assert 'Its pose: the mean pose of the training clips, computed now (older.bin was written before ' \
           'checkpoints carried it) (-k gt -str S1,S5' in out
    pose = numpy_mean_pose(train, H36M_LEFT, H36M_RIGHT)
    assert result.mean_pose_errors['average'][1] == pytest.approx(expected_h36m(test, pose, 'original', 1),
                                                                  abs=TOLERANCE_MM)
    result = _h36m(tmp_path, tiny_dataset, '--evaluate', 'older.bin', '-str', 'S2')
    out = capsys.readouterr().out
    assert result.mean_pose_errors is None
    assert ("No 'mean training pose' line: older.bin was written before checkpoints carried it, and its training "
            'data is not at hand (-str: unknown subject S2;') in out
    assert not [line for line in out.splitlines() if line.startswith(MEAN_POSE_LABEL)]
    (json_path,) = tmp_path.glob('older_*.json')
    assert json.loads(json_path.read_text())['mean_training_pose']['absent'].startswith('older.bin was written')


def test_official_checkpoint_takes_the_str_subjects(tiny_dataset, tmp_path, capsys):
    torch.save({'epoch': 80, 'model_pos': official_state_dict(build_tiny_model())}, tmp_path / 'best_epoch_20_10.bin')
    result = h36m_main.main(['--data-dir', str(tiny_dataset), '-c', str(tmp_path), *TINY_RUN_FLAGS, *SAMPLING,
                             '-k', 'gt', '-ste', 'S9', '-a', 'Walking', '--evaluate', 'best_epoch_20_10.bin'])
    out = capsys.readouterr().out
    assert 'computed now (official checkpoints carry none) (-k gt -str S1,S5,S6,S7,S8 -a Walking' in out
    dataset = load_h36m(tiny_dataset, 'gt')
    pose = numpy_mean_pose(dataset.select(['S1', 'S5', 'S6', 'S7', 'S8'], ['Walking']), H36M_LEFT, H36M_RIGHT)
    expected = expected_h36m(dataset.select(['S9'], ['Walking']), pose, 'original', 1)
    assert result.mean_pose_errors['average'][1] == pytest.approx(expected, abs=TOLERANCE_MM)


def test_3dhp_line_counts_valid_frames_in_the_originals_batches(tiny_dataset, tmp_path, capsys):
    result = main_3dhp.main(['--data-dir', str(tiny_dataset), '-c', str(tmp_path), *TINY_RUN_FLAGS, *SAMPLING,
                             '-e', '0', '--nolog', '--p2'])
    out = capsys.readouterr().out
    train = load_3dhp_train(tiny_dataset / TRAIN_FILE).sequences
    test = load_3dhp_test(tiny_dataset / TEST_FILE, list(TEST_SEQUENCES)).sequences
    assert any(not s.valid.all() for s in test)                 # invalid frames are there to be skipped
    pose = numpy_mean_pose(train, MPI_LEFT, MPI_RIGHT)
    for metric in (1, 2):
        assert result.mean_pose_errors['average'][metric] == pytest.approx(
            expected_3dhp_original(test, pose, metric), abs=TOLERANCE_MM)
    speeds, pairs = zip(*(numpy_velocity(s.positions_3d, s.valid) for s in test))
    assert result.mean_pose_errors['average'][VELOCITY] == pytest.approx(1000 * sum(speeds) / sum(pairs),
                                                                         abs=TOLERANCE_MM)
    assert f'{MEAN_POSE_LABEL} (baseline, no model): {result.mean_pose_errors["average"][1]:.2f}' in out


def test_3dhp_official_checkpoint_without_the_training_file_says_so(tiny_dataset, tmp_path, capsys):
    data = tmp_path / 'data'
    data.mkdir()
    (data / TEST_FILE).symlink_to(tiny_dataset / TEST_FILE)
    model = build_tiny_model(layout='mpi_inf_3dhp')
    torch.save({'epoch': 80, 'model_pos': official_state_dict(model)}, tmp_path / 'official.bin')
    result = main_3dhp.main(['--data-dir', str(data), '-c', str(tmp_path), *TINY_RUN_FLAGS, *SAMPLING,
                             '--test-sequences', 'TS1', '--evaluate', 'official.bin'])
    out = capsys.readouterr().out
    assert result.mean_pose_errors is None
    assert ("No 'mean training pose' line: official checkpoints carry none, and its training data is not at hand ("
            in out) and 'data_train_3dhp_ori.npz' in out


def test_3dhp_official_scorer_summary_has_the_baseline(tiny_dataset, tmp_path, capsys):
    """With --annotations the mean pose is also scored by the official scorer's definitions: PCK@150mm
    over the 14 grouped joints, AUC over the thresholds 0, 5, ..., 150 mm, MPJPE over all 17 joints,
    valid frames only."""
    from support.releases import write_official_annotations
    test_data = write_official_annotations(tiny_dataset / TEST_FILE, tmp_path / 'annotations')
    result = main_3dhp.main(['--data-dir', str(tiny_dataset), '-c', str(tmp_path), *TINY_RUN_FLAGS, *SAMPLING,
                             '-e', '0', '--nolog', '--annotations', str(tmp_path / 'annotations')])
    out = capsys.readouterr().out
    pose_mm = 1000 * numpy_mean_pose(load_3dhp_train(tiny_dataset / TRAIN_FILE).sequences,
                                     MPI_LEFT, MPI_RIGHT)
    np.testing.assert_allclose(1000 * result.mean_pose.pose, pose_mm, atol=1e-6)
    errors = []
    for views in test_data.values():
        gt = np.asarray(views['data_3d'], np.float64)
        gt = (gt - gt[:, 14:15])[np.asarray(views['valid']) > 0]
        errors.append(np.linalg.norm(gt - pose_mm, axis=-1))                   # (valid frames, 17) mm
    errors = np.concatenate(errors)
    grouped = errors[:, :14]                                                   # pelvis, spine, head: no group
    pck = 100 * np.mean(grouped < 150)
    auc = np.mean([100 * np.mean(grouped < threshold) for threshold in range(0, 151, 5)])
    assert (f'{MEAN_POSE_LABEL} (baseline, no model; official scorer definitions), all valid frames: '
            f'PCK@150mm {pck:.2f} %, AUC {auc:.2f} %, MPJPE {errors.mean():.2f} mm') in out

"""MPJVE (velocity error) in every evaluation table, and the opt-in --smooth filter.

Known values: a constant offset moves every joint's velocity by nothing (MPJVE 0, MPJPE the
offset); a drift of d per frame moves it by |d| (MPJVE |d|, MPJPE |d| x the mean frame index).
Savitzky-Golay's published 9-point quadratic smoothing weights (-21, 14, 39, 54, 59, 54, 39, 14,
-21) / 231 give the filter's known effect on white noise: the smoothed value's variance is
59/231 of the noise's (sum of the squared weights), a frame-to-frame difference's 2/21 of the
noise's (sum of the squared differences of consecutive weights), against 2 unsmoothed.
"""
import csv
import json

import numpy as np
import pytest
import torch

import main as h36m_main
import main_3dhp
from common.core.errors import UserError
from common.data.camera import intrinsic_vector
from common.data.mpi_inf_3dhp import TEST_FILE, load_3dhp_test
from common.data.sequences import Sequence
from common.evaluation import metrics
from common.evaluation.protocol import ORIGINAL, PER_FRAME_COUNTING, Counting, SamplingSettings, evaluate
from common.evaluation.smoothing import check_smoothable, fitting_window, smooth_track
from common.run.arguments import parse_args
from common.run.checkpoints import save_checkpoint
from common.run.devices import Runtime
from support.models import build_tiny_model, tiny_config
from support.runs import TINY_RUN_FLAGS

J = 17
SAVGOL_9_QUADRATIC = np.array([-21, 14, 39, 54, 59, 54, 39, 14, -21]) / 231      # the published table
SMOOTH_FLAGS = ['--smooth', '5']


def _poses(frames: int, seed: int = 0) -> torch.Tensor:
    pose = torch.from_numpy(np.random.default_rng(seed).standard_normal((frames, J, 3)) * 0.2)
    pose[:, 0] = 0
    return pose


def test_constant_offset_has_no_velocity_error_and_its_size_as_position_error():
    target = _poses(10)
    offset = torch.tensor([0.012, -0.016, 0.0], dtype=torch.float64)                                          # 20 mm
    total, pairs = metrics.velocity_error_sums(target + offset, target)
    assert pairs == 9 and float(total) == pytest.approx(0, abs=1e-12)
    assert float(metrics.mpjpe(target + offset, target)) == pytest.approx(0.020, abs=1e-12)


def test_linear_drift_has_its_per_frame_step_as_velocity_error():
    target = _poses(10)
    step = torch.tensor([0.0, 0.003, 0.004], dtype=torch.float64)                     # 5 mm per frame
    drifting = target + torch.arange(10.0, dtype=torch.float64)[:, None, None] * step
    total, pairs = metrics.velocity_error_sums(drifting[:, None].expand(-1, 2, -1, -1), target)   # K = 2 steps
    np.testing.assert_allclose(total.numpy() / pairs, [0.005, 0.005], rtol=1e-12)
    assert float(metrics.mpjpe(drifting, target)) == pytest.approx(0.005 * 4.5, rel=1e-12)       # mean of t = 4.5


def test_only_pairs_of_two_valid_frames_count():
    """Frame 3 is invalid and its pose is off by 1 m: the pairs (2, 3) and (3, 4) do not count."""
    target = _poses(8)
    step = torch.tensor([0.0, 0.0, 0.002], dtype=torch.float64)
    pred = target + torch.arange(8.0, dtype=torch.float64)[:, None, None] * step
    pred[3] += 1.0
    valid = np.ones(8, bool)
    valid[3] = False
    total, pairs = metrics.velocity_error_sums(pred, target, valid)
    assert pairs == 5 and float(total) / pairs == pytest.approx(0.002, rel=1e-12)


class _LiftingModel(torch.nn.Module):
    """Stands in for PoseDiffusion: every hypothesis of every step is the 2D input lifted to z = 0,
    so each frame's prediction depends on that frame's keypoints only."""

    def ddim_sample(self, keypoints_2d, action_tokens, num_hypotheses, num_steps, flip, generators):
        lifted = torch.cat([keypoints_2d, torch.zeros_like(keypoints_2d[..., :1])], dim=-1)
        return lifted[:, None, None].expand(-1, num_steps, num_hypotheses, -1, -1, -1)


def _sequence(camera: int, frames: int, error_per_frame) -> Sequence:
    """Keypoints whose lifted pose misses the ground truth by ``error_per_frame(t)`` (3,) on every
    joint but the root (which is 0 in both)."""
    keypoints = (np.random.default_rng(camera).standard_normal((frames, J, 2)) * 0.1).astype(np.float32)
    keypoints[:, 0] = 0
    lifted = np.concatenate([keypoints, np.zeros((frames, J, 1), np.float32)], axis=-1)
    truth = lifted - np.stack([error_per_frame(t) for t in range(frames)])[:, None].astype(np.float32)
    truth[:, 0] = 0
    return Sequence('S9', 'Walking', camera, keypoints_2d=keypoints, positions_3d=truth,
                    trajectory=np.tile(np.float32([0, 0, 5]), (frames, 1)),
                    intrinsics=intrinsic_vector([1000.0, 1000.0], [500.0, 500.0], 1000, 1000).astype(np.float32))


@pytest.mark.parametrize('counting', [Counting(ORIGINAL, 2), PER_FRAME_COUNTING], ids=['original', 'per-frame'])
def test_sequence_boundaries_and_padding_are_not_counted(counting):
    """One group of three sequences in 5-frame windows: 23 frames drifting 3 mm per frame, 12
    frames 40 mm off, 3 frames (one padded window) 20 mm off. Counted across the boundaries, the
    jumps between 40 and 20 mm would add velocity error; counted on padding, pairs. Root joints
    have no error: per-joint means are 16/17 of the joints' error."""
    drift, far, near = np.array([0.0, 0.003, 0.0]), np.array([0.04, 0.0, 0.0]), np.array([0.0, 0.0, 0.02])
    sequences = [_sequence(0, 23, lambda t: t * drift), _sequence(1, 12, lambda t: far),
                 _sequence(2, 3, lambda t: near)]
    result = evaluate(_LiftingModel(), sequences, ['Walking'] * 3, Runtime(torch.device('cpu'), []), 5, 0,
                      SamplingSettings(2, 2, flip=False, batch_size=3), show_progress=False, counting=counting)
    pairs = 22 + 11 + 2
    expected_mm = 3.0 * 16 / 17 * 22 / pairs
    assert result.pairs['Walking'] == pairs
    for setting in metrics.SETTINGS:
        np.testing.assert_allclose(result.average[(setting, metrics.VELOCITY)], [expected_mm] * 2, rtol=1e-5)
    # Positions are unchanged by the new metric: per frame, each sequence's own constant or drift.
    if counting.rule != ORIGINAL:
        expected_position = (3.0 * sum(range(23)) + 40.0 * 12 + 20.0 * 3) * 16 / 17 / (23 + 12 + 3)
        assert result.average[('J-Agg', 1)][-1] == pytest.approx(expected_position, rel=1e-5)


def _quadratic_fit_at(values, frame: int, window: int) -> float:
    """Savitzky-Golay by its definition, with numpy's polyfit: the least-squares quadratic through
    the ``window`` frames centred on ``frame`` (at the ends, the first or last ``window``), at ``frame``."""
    start = min(max(frame - window // 2, 0), len(values) - window)
    frames = np.arange(start, start + window)
    return float(np.polyval(np.polyfit(frames, values[frames], 2), frame))


@pytest.mark.parametrize('counting', [Counting(ORIGINAL, 2), PER_FRAME_COUNTING], ids=['original', 'per-frame'])
def test_smoothed_tables_count_the_filtered_track(counting):
    """23 frames moving steadily, the prediction alternating 6 mm to either side of the truth: with
    --smooth 5 the error at frame t is that alternation smoothed (``_quadratic_fit_at``); the
    original count weighs frames 18 and 19 twice (windows at 0, 5, 10, 15, 18), per-frame once."""
    frames, jitter = 23, np.array([0.0036, 0.0048, 0.0])                                 # 6 mm
    alternation = (-1.0) ** np.arange(frames)
    sequence = _sequence(0, frames, lambda t: alternation[t] * jitter)
    steady = sequence.keypoints_2d[:1] + np.float32([0.01, -0.02]) * np.arange(frames)[:, None, None]
    sequence.keypoints_2d[:] = steady + alternation[:, None, None] * jitter[:2]
    sequence.keypoints_2d[:, 0] = 0
    sequence.positions_3d[:, 1:, :2] = sequence.keypoints_2d[:, 1:] - alternation[:, None, None] * jitter[:2]
    smoothed = np.array([_quadratic_fit_at(alternation, t, 5) for t in range(frames)])
    weights = np.ones(frames) + (counting.rule == ORIGINAL) * np.isin(np.arange(frames), [18, 19])
    per_joint = 6.0 * 16 / 17
    expected_position = per_joint * (weights * np.abs(smoothed)).sum() / weights.sum()
    expected_velocity = per_joint * np.abs(np.diff(smoothed)).mean()
    result = evaluate(_LiftingModel(), [sequence], ['Walking'], Runtime(torch.device('cpu'), []), 5, 0,
                      SamplingSettings(2, 1, flip=False), show_progress=False, counting=counting, smooth_window=5)
    unsmoothed = evaluate(_LiftingModel(), [sequence], ['Walking'], Runtime(torch.device('cpu'), []), 5, 0,
                          SamplingSettings(2, 1, flip=False), show_progress=False, counting=counting)
    for setting in metrics.SETTINGS:
        assert result.average[(setting, 1)][0] == pytest.approx(expected_position, rel=1e-4)
        assert result.average[(setting, metrics.VELOCITY)][0] == pytest.approx(expected_velocity, rel=1e-4)
        assert unsmoothed.average[(setting, metrics.VELOCITY)][0] == pytest.approx(2 * per_joint, rel=1e-4)
    assert expected_velocity < 0.5 * 2 * per_joint


def test_smoothing_keeps_quadratic_motion_exactly():
    """Rest, constant velocity and constant acceleration pass unchanged, also at the ends and in
    sequences shorter than the window (which get the largest odd window that fits)."""
    for frames in (40, 8, 3):
        t = np.arange(frames, dtype=np.float64)[:, None, None]
        rng = np.random.default_rng(frames)
        a, b, c = (rng.standard_normal((1, J, 3)) for _ in range(3))
        motion = a + b * t + 0.05 * c * t ** 2
        np.testing.assert_allclose(smooth_track(motion, 9), motion, rtol=0, atol=1e-9)


def test_smoothing_is_the_published_9_point_quadratic_filter():
    impulse = np.zeros((21, 1, 1))
    impulse[10] = 1.0
    np.testing.assert_allclose(smooth_track(impulse, 9)[6:15, 0, 0], SAVGOL_9_QUADRATIC[::-1], atol=1e-12)


def test_smoothing_reduces_the_jitter_of_a_noisy_track_by_its_known_factor():
    """White noise (10 mm per coordinate) on a still pose: the velocity error falls to
    sqrt((2/21) / 2) = 0.218 of the unsmoothed one, the position error to sqrt(59/231) = 0.505
    (interior frames; the ends, 8 of 2000, smooth less)."""
    still = torch.zeros(2000, J, 3, dtype=torch.float64)
    noisy = still + torch.from_numpy(np.random.default_rng(1).standard_normal((2000, J, 3)) * 0.01)
    smoothed = torch.from_numpy(smooth_track(noisy, 9))
    velocity = [float(metrics.mean_velocity_error(p, still)) for p in (noisy, smoothed)]
    position = [float(metrics.mpjpe(p, still)) for p in (noisy, smoothed)]
    assert velocity[1] / velocity[0] == pytest.approx((1 / 21) ** 0.5, rel=0.05)
    assert position[1] / position[0] == pytest.approx((59 / 231) ** 0.5, rel=0.05)
    assert velocity[1] < 0.25 * velocity[0]


def test_windows_that_do_not_fit_are_said_and_one_frame_is_refused():
    assert [fitting_window(9, n) for n in (40, 9, 8, 7, 4, 3)] == [9, 9, 7, 7, 3, 3]
    assert check_smoothable(9, {'a': 40, 'b': 9}) is None
    note = check_smoothable(9, {'a': 40, 'b': 8, 'c': 4})
    assert note == ('--smooth 9: 2 of 3 sequences are shorter than 9 frames and are smoothed with the largest odd '
                    'window that fits: b (8 frames): 7, c (4 frames): 3')
    with pytest.raises(UserError, match=r'^--smooth 9: one.mp4 has 1 frame; smoothing \(polynomial order 2\) needs '
                                        r'at least 3; drop --smooth$'):
        check_smoothable(9, {'a': 40, 'one.mp4': 1})


@pytest.mark.parametrize('value', ['8', '1', '-3', '0'])
def test_smooth_window_is_range_checked(value):
    with pytest.raises(UserError, match=f'^--smooth {value}: expected an odd window of at least 3 frames'):
        parse_args('h36m', ['--smooth', value])
    assert parse_args('mpi_inf_3dhp', ['--smooth', '9']).smooth == 9
    assert parse_args('h36m', []).smooth is None                       # off by default


@pytest.fixture(scope='module')
def tiny_checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp('velocity')
    torch.manual_seed(0)
    save_checkpoint(folder / 'tiny.bin', model=build_tiny_model(), model_config=tiny_config(), epoch=0, lr=0.0)
    save_checkpoint(folder / 'tiny3dhp.bin', model=build_tiny_model(layout='mpi_inf_3dhp'),
                    model_config=tiny_config(layout='mpi_inf_3dhp'), epoch=0, lr=0.0)
    return folder


def _json_and_csv(folder, stem):
    document = json.loads((folder / f'{stem}.json').read_text())
    with open(folder / f'{stem}.csv') as f:
        rows = list(csv.DictReader(f))
    return document, rows


def test_human36m_tables_carry_mpjve_for_every_setting_and_step(tiny_dataset, tiny_checkpoints, tmp_path, capsys):
    flags = ['--data-dir', str(tiny_dataset), '-c', str(tmp_path), '-k', 'gt', '-ste', 'S9', '-a', 'Walking,Eating',
             *TINY_RUN_FLAGS, '--evaluate', str(tiny_checkpoints / 'tiny.bin'), '-num_proposals', '2',
             '-sampling_timesteps', '2', '--protocol', 'per-frame', '--p2']
    plain = h36m_main.main(flags)
    smoothed = h36m_main.main(flags + SMOOTH_FLAGS)
    out = capsys.readouterr().out
    stem = 'tiny_H2_K2_action-gt_flip_seed1_protocol-per-frame_gt_S9_a-Walking+Eating'
    assert 'MPJVE (velocity error, mm per frame), average over actions' in out
    assert 'Poses smoothed (--smooth 5): Savitzky-Golay filter' in out
    for name, result in ((stem, plain), (stem + '_smooth5', smoothed)):
        document, rows = _json_and_csv(tmp_path, name)
        for setting in metrics.SETTINGS:
            assert len(document['average'][f'{setting}/MPJVE']) == 2
            np.testing.assert_allclose(document['average'][f'{setting}/MPJVE'],
                                       result.average[(setting, metrics.VELOCITY)], atol=1e-4)
            velocity_rows = [r for r in rows if r['setting'] == setting and r['metric'] == 'MPJVE']
            assert len(velocity_rows) == 3 * 2                                # (2 actions + Average) x 2 steps
            assert all(r['protocol'] == '' for r in velocity_rows)
        assert document['groups']['Walking']['frame_pairs'] == 4 * 39          # 4 cameras, 40 frames each
    assert json.loads((tmp_path / f'{stem}_smooth5.json').read_text())['smooth_window'] == 5
    assert json.loads((tmp_path / f'{stem}.json').read_text())['smooth_window'] is None
    for setting in metrics.SETTINGS:          # an untrained model jitters: smoothing lowers every MPJVE
        assert smoothed.average[(setting, metrics.VELOCITY)][-1] < plain.average[(setting, metrics.VELOCITY)][-1]


def test_3dhp_counts_valid_pairs_and_names_smoothed_exports(tiny_dataset, tiny_checkpoints, tmp_path, capsys):
    flags = ['--data-dir', str(tiny_dataset), '-c', str(tmp_path), *TINY_RUN_FLAGS, '--test-sequences', 'TS1,TS5',
             '--evaluate', str(tiny_checkpoints / 'tiny3dhp.bin'), *SMOOTH_FLAGS]
    result = main_3dhp.main(flags)
    capsys.readouterr()
    for sequence in load_3dhp_test(tiny_dataset / TEST_FILE, ['TS1', 'TS5']).sequences:
        valid = sequence.valid if sequence.valid is not None else np.ones(sequence.num_frames, bool)
        assert result.pairs[sequence.subject] == int((valid[1:] & valid[:-1]).sum())
    stem = 'tiny3dhp_H1_K1_action-absent_flip_seed1_protocol-original-b2_TS1+TS5_smooth5'
    document, _ = _json_and_csv(tmp_path, stem)
    assert {f'{s}/MPJVE' for s in metrics.SETTINGS} <= set(document['average'])
    assert sorted(p.name for p in tmp_path.glob('*.mat')) == [f'inference_data_{s}_smooth5.mat'
                                                             for s in ('J_Agg', 'J_Best', 'P_Agg', 'P_Best')]


def _write_custom(folder, name: str, frames: dict):
    """data_2d_custom_``name``.npz of videos {video name: number of frames} with random keypoints."""
    rng = np.random.default_rng(0)
    np.savez_compressed(folder / f'data_2d_custom_{name}.npz',
                        positions_2d={v: [rng.uniform(100, 900, (n, J, 2)).astype(np.float32)]
                                      for v, n in frames.items()},
                        metadata={'layout_name': 'h36m', 'num_joints': J,
                                  'keypoints_symmetry': [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]],
                                  'video_metadata': {v: {'w': 1000, 'h': 1000} for v in frames}})


def test_custom_videos_are_smoothed_one_by_one_before_they_are_written(tiny_checkpoints, tmp_path, capsys):
    _write_custom(tmp_path, 'two', {'long.mp4': 12, 'short.mp4': 4})
    flags = ['-d', 'custom', '-k', 'two', '--data-dir', str(tmp_path), '-c', str(tmp_path),
             '--evaluate', str(tiny_checkpoints / 'tiny.bin'), *TINY_RUN_FLAGS, '-num_proposals', '2']
    h36m_main.main(flags)
    h36m_main.main(flags + SMOOTH_FLAGS)
    out = capsys.readouterr().out
    assert ('--smooth 5: 1 of 2 sequences are shorter than 5 frames and are smoothed with the largest odd window '
            'that fits: short.mp4 [keypoints 0] (4 frames): 3') in out   # a video has no camera
    with np.load(tmp_path / 'custom_two_3d.npz', allow_pickle=True) as plain, \
            np.load(tmp_path / 'custom_two_3d_smooth5.npz', allow_pickle=True) as smoothed:
        assert smoothed['metadata'].item()['smooth_window'] == 5 and plain['metadata'].item()['smooth_window'] is None
        for video in ('long.mp4', 'short.mp4'):
            raw = plain['positions_3d'].item()[video][0]
            np.testing.assert_allclose(smoothed['positions_3d'].item()[video][0], smooth_track(raw, 5), atol=1e-6)
        short = [f['positions_3d'].item()['short.mp4'][0] for f in (smoothed, plain)]
        np.testing.assert_allclose(*short, atol=1e-6)             # window 3: a quadratic passes through 3 frames
        long = [f['positions_3d'].item()['long.mp4'][0] for f in (smoothed, plain)]
        assert np.abs(np.diff(long[0], axis=0)).mean() < np.abs(np.diff(long[1], axis=0)).mean()


def test_smoothing_a_one_frame_video_is_refused_before_anything_is_written(tiny_checkpoints, tmp_path, capsys):
    _write_custom(tmp_path, 'one', {'one.mp4': 1})
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SystemExit) as stop:
        h36m_main.main(['-d', 'custom', '-k', 'one', '--data-dir', str(tmp_path), '-c', str(tmp_path),
                        '--evaluate', str(tiny_checkpoints / 'tiny.bin'), *TINY_RUN_FLAGS, *SMOOTH_FLAGS])
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        'error: --smooth 5: one.mp4 [keypoints 0] has 1 frame; smoothing (polynomial order 2) needs at least 3; '
        'drop --smooth']
    assert sorted(p.name for p in tmp_path.iterdir()) == before

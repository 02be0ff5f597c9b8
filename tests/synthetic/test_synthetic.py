"""Synthetic dataset: real file layouts, exact projections, plausible motion, detector-like noise."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from common.core.errors import UserError
from common.data import camera
from common.data.h36m_cameras import EXTRINSICS, INTRINSICS
from common.data.mpi_inf_3dhp import TEST_CAMERAS
from common.data.skeleton import H36M_17, H36M_32_PARENTS, H36M_KEPT_JOINTS, MPI_INF_3DHP_17
from common.synthetic import __main__ as synthetic_command
from common.synthetic import writer as synthetic
from common.synthetic.motion import ACTIONS
from support.runs import REPO_ROOT

SEED = 3
FRAMES = 60
TAKES = 2
DETECTOR = 'test_det'
H36M_SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8', 'S9', 'S11')
FPS = 50
# 32-joint indices used by the motion checks.
HIP, RIGHT_FOOT_JOINTS, LEFT_FOOT_JOINTS, HEAD_CENTRE, HEAD_TOP, LEFT_WRIST, RIGHT_WRIST = \
    0, (3, 4, 5), (8, 9, 10), 14, 15, 19, 27
MPI_PELVIS, MPI_R_HIP, MPI_L_HIP = 14, 8, 11


@pytest.fixture(scope='module')
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp('synthetic')
    data = synthetic.generate(out, seed=SEED, frames=FRAMES, takes=TAKES, detector_name=DETECTOR)
    return out, data


def _load(path):
    with np.load(path, allow_pickle=True) as f:
        return {key: f[key] for key in f.files}


@pytest.fixture(scope='module')
def files(generated):
    out, _ = generated
    return {name: _load(out / name) for name in
            ('data_3d_h36m.npz', 'data_2d_h36m_gt.npz', f'data_2d_h36m_{DETECTOR}.npz',
             'data_2d_h36m_cpn_ft_h36m_dbb.npz', 'data_train_3dhp_ori.npz', 'data_test_3dhp_ori.npz')}


@pytest.fixture(scope='module')
def world(files):
    return files['data_3d_h36m.npz']['positions_3d'].item()


def _gt(files):
    return files['data_2d_h36m_gt.npz']['positions_2d'].item()


def _detections(files):
    return files[f'data_2d_h36m_{DETECTOR}.npz']['positions_2d'].item()


def _takes(world):
    return [(s, a) for s in world for a in world[s]]


# ----------------------------------------------------------------------------- layouts

def test_h36m_files_have_the_real_layout(generated, files, world):
    out, _ = generated
    assert sorted(p.name for p in out.iterdir()) == sorted(files)       # no temporary leftovers
    assert list(files['data_3d_h36m.npz']) == ['positions_3d']
    assert files['data_3d_h36m.npz']['positions_3d'].shape == ()        # pickled dict
    assert tuple(world) == H36M_SUBJECTS
    expected_actions = sorted([a for a in ACTIONS] + [f'{a} 1' for a in ACTIONS])
    assert len(ACTIONS) >= 6 and {'Walking', 'Sitting', 'Greeting', 'Eating'} <= set(ACTIONS)
    for subject in H36M_SUBJECTS:
        assert sorted(world[subject]) == expected_actions
    for name in ('data_2d_h36m_gt.npz', f'data_2d_h36m_{DETECTOR}.npz'):
        assert sorted(files[name]) == ['metadata', 'positions_2d']
        assert files[name]['metadata'].item() == {
            'layout_name': 'h36m', 'num_joints': 17,
            'keypoints_symmetry': [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    gt, det = _gt(files), _detections(files)
    for s, a in _takes(world):
        positions = world[s][a]
        assert positions.dtype == np.float32 and positions.shape == (FRAMES, 32, 3)
        for views in (gt[s][a], det[s][a]):
            assert isinstance(views, list) and len(views) == 4
            for view in views:
                assert view.dtype == np.float32 and view.shape[1:] == (17, 2)
        assert [v.shape[0] for v in gt[s][a]] == [FRAMES] * 4


def test_3dhp_files_have_the_real_layout(files):
    train = files['data_train_3dhp_ori.npz']['data'].item()
    assert list(files['data_train_3dhp_ori.npz']) == ['data']
    assert list(train) == ['S1 Seq1', 'S1 Seq2', 'S2 Seq1', 'S2 Seq2']
    for sequence in train.values():
        assert isinstance(sequence, list) and len(sequence) == 1
        assert list(sequence[0]) == [0, 2, 4, 7]
        for view in sequence[0].values():
            assert sorted(view) == ['data_2d', 'data_3d']
            assert view['data_3d'].dtype == np.float32 and view['data_3d'].shape == (FRAMES, 17, 3)
            assert view['data_2d'].dtype == np.float32 and view['data_2d'].shape == (FRAMES, 17, 2)
    test = files['data_test_3dhp_ori.npz']['data'].item()
    assert list(test) == ['TS1', 'TS2', 'TS3', 'TS4', 'TS5', 'TS6']
    for sequence in test.values():
        assert sorted(sequence) == ['data_2d', 'data_3d', 'valid']
        assert sequence['data_3d'].dtype == np.float32 and sequence['data_3d'].shape == (FRAMES, 17, 3)
        assert sequence['data_2d'].dtype == np.float32 and sequence['data_2d'].shape == (FRAMES, 17, 2)
        assert sequence['valid'].dtype == np.float32 and sequence['valid'].shape == (FRAMES,)


# ----------------------------------------------------------------------------- determinism

def test_same_seed_gives_the_same_arrays_and_another_seed_different_ones(files, world):
    again = synthetic.build(seed=SEED, frames=FRAMES, takes=TAKES, detector_name=DETECTOR)
    gt, det = _gt(files), _detections(files)
    for s, a in _takes(world):
        np.testing.assert_array_equal(again.h36m[s][a].world_32, world[s][a])
        for c, view in enumerate(again.h36m[s][a].views):
            np.testing.assert_array_equal(view.keypoints_px, gt[s][a][c])
            np.testing.assert_array_equal(view.detections_px, det[s][a][c])
    test = files['data_test_3dhp_ori.npz']['data'].item()
    for sequence, arrays in again.mpi_test.items():
        for key, value in arrays.items():
            np.testing.assert_array_equal(value, test[sequence][key])
    other = synthetic.build(seed=SEED + 1, frames=FRAMES, takes=1, with_3dhp=False)
    assert not np.allclose(other.h36m['S1']['Walking'].world_32, world['S1']['Walking'], atol=0.05)


# ----------------------------------------------------------------------------- projection

def _inside(pixels, w, h):
    """(..., 2) pixels -> (...) bool, inside a w x h image."""
    return (pixels[..., 0] >= 0) & (pixels[..., 0] < w) & (pixels[..., 1] >= 0) & (pixels[..., 1] < h)


def test_gt_2d_is_the_exact_distorted_projection_and_inside_the_images(files, world):
    gt = _gt(files)
    inside = []
    for s, a in _takes(world):
        for c, (intr, ext) in enumerate(zip(INTRINSICS, EXTRINSICS[s])):
            w, h = intr['res_w'], intr['res_h']
            kept = camera.world_to_camera(world[s][a][:, list(H36M_KEPT_JOINTS)].astype(np.float64),
                                          np.array(ext['orientation']), np.array(ext['translation']) / 1000)
            intrinsics = camera.intrinsic_vector(intr['focal_length'], intr['center'], w, h,
                                                 intr['radial_distortion'], intr['tangential_distortion'])
            projected = camera.project_to_2d(torch.from_numpy(kept[None]),
                                             torch.from_numpy(intrinsics[None].astype(np.float64)))[0].numpy()
            pixels = camera.image_coordinates(projected, w, h)
            np.testing.assert_allclose(gt[s][a][c], pixels, atol=1e-3, rtol=0)
            inside.append(_inside(pixels, w, h))
    assert np.concatenate(inside).mean() >= 0.99


def test_in_memory_views_match_the_files_and_the_project_camera_maths(generated, files, world):
    _, data = generated
    gt = _gt(files)
    take = data.h36m['S9']['Greeting 1']
    np.testing.assert_array_equal(take.world_32, world['S9']['Greeting 1'])
    for c, view in enumerate(take.views):
        ext = EXTRINSICS['S9'][c]
        expected = camera.world_to_camera(world['S9']['Greeting 1'][:, list(H36M_KEPT_JOINTS)].astype(np.float64),
                                          np.array(ext['orientation']), np.array(ext['translation']) / 1000)
        assert np.all(view.positions_3d[:, 0] == 0)
        np.testing.assert_allclose(view.trajectory, expected[:, 0], atol=1e-5)
        np.testing.assert_allclose(view.positions_3d, expected - expected[:, :1], atol=1e-5)
        np.testing.assert_array_equal(view.keypoints_px, gt['S9']['Greeting 1'][c])
        w, h = INTRINSICS[c]['res_w'], INTRINSICS[c]['res_h']
        np.testing.assert_allclose(view.keypoints_norm, camera.normalize_screen_coordinates(
            view.keypoints_px.astype(np.float64), w, h), atol=1e-12)


# ----------------------------------------------------------------------------- motion

def _bone_lengths(positions):
    children = np.arange(1, 32)
    return np.linalg.norm(positions[:, children] - positions[:, [H36M_32_PARENTS[j] for j in children]], axis=-1)


def test_bone_lengths_are_constant_per_subject_and_differ_between_subjects(world):
    per_subject = {}
    for subject in H36M_SUBJECTS:
        lengths = np.concatenate([_bone_lengths(world[subject][a].astype(np.float64)) for a in world[subject]])
        assert np.ptp(lengths, axis=0).max() < 1e-5
        per_subject[subject] = lengths[0]
    for i, first in enumerate(H36M_SUBJECTS):
        for second in H36M_SUBJECTS[i + 1:]:
            assert np.abs(per_subject[first] - per_subject[second]).max() > 0.005, (first, second)
    heights = [world[s]['Walking'][:, HEAD_TOP, 2].max() for s in H36M_SUBJECTS]
    assert 1.4 < min(heights) and max(heights) < 2.0


def _horizontal_speed(positions):
    return np.linalg.norm(np.diff(positions[:, HIP, :2], axis=0), axis=-1).mean() * FPS


def test_motion_differs_by_action(world):
    for subject in H36M_SUBJECTS:
        takes = world[subject]
        walking = [takes[a] for a in ('Walking', 'Walking 1')]
        sitting = [takes[a] for a in ('Sitting', 'Sitting 1')]
        for w, s in zip(walking, sitting):
            assert _horizontal_speed(w) > 0.6
            assert _horizontal_speed(s) < 0.1
            assert s[:, HIP, 2].mean() < 0.6 < w[:, HIP, 2].mean() - 0.2
        greeting = takes['Greeting']            # every greeting take starts with a wave
        assert (greeting[:, [LEFT_WRIST, RIGHT_WRIST], 2].max(axis=1) > greeting[:, HEAD_TOP, 2]).any()
        assert (walking[0][:, [LEFT_WRIST, RIGHT_WRIST], 2].max(axis=1) < walking[0][:, HEAD_CENTRE, 2] - 0.3).all()
        # Phoning: a hand stays at the head.
        phoning = takes['Phoning']
        hand_to_head = np.linalg.norm(phoning[:, [LEFT_WRIST, RIGHT_WRIST]] - phoning[:, [HEAD_CENTRE]], axis=-1)
        assert hand_to_head.min(axis=1).max() < 0.25
    for s, a in _takes(world):
        feet = world[s][a][:, RIGHT_FOOT_JOINTS + LEFT_FOOT_JOINTS, 2]
        assert feet.min() >= -0.02, (s, a)
        assert np.abs(world[s][a][..., :2]).max() < 2.5, (s, a)     # inside the capture area


# ----------------------------------------------------------------------------- detector

def test_detections_are_noisy_with_outliers_and_sometimes_longer(files, world):
    gt, det = _gt(files), _detections(files)
    errors, spikes, swapped_arm_frames, longer = [], [], 0, 0
    for s, a in _takes(world):
        for exact, noisy in zip(gt[s][a], det[s][a]):
            assert noisy.shape[0] >= exact.shape[0]
            longer += noisy.shape[0] > exact.shape[0]
            error = noisy[:len(exact)] - exact
            errors.append(np.linalg.norm(error, axis=-1).ravel())
            # Outliers: a single frame far from the average of its neighbours (jitter is smooth).
            spikes.append(np.linalg.norm(error[1:-1] - (error[:-2] + error[2:]) / 2, axis=-1).ravel())
            # Left/right swaps: the detected left arm sits on the true right arm, arms well apart.
            left, right = list(H36M_17.joints_left[3:]), list(H36M_17.joints_right[3:])
            on_other_arm = np.linalg.norm(noisy[:len(exact), left] - exact[:, right], axis=-1).max(axis=1) < 15
            apart = np.linalg.norm(exact[:, left] - exact[:, right], axis=-1).min(axis=1) > 50
            swapped_arm_frames += np.count_nonzero(on_other_arm & apart)
    errors, spikes = np.concatenate(errors), np.concatenate(spikes)
    assert 1.0 < np.median(errors) < 10.0
    assert 0.002 < (spikes > 30.0).mean() < 0.015
    assert swapped_arm_frames > 0
    assert longer > 0


# ----------------------------------------------------------------------------- MPI-INF-3DHP

def _pinhole_residual(points_3d, pixels):
    """Largest residual of the best per-axis fit pixel = f * X / Z + c (pixels)."""
    worst = 0.0
    for axis in (0, 1):
        ratio = (points_3d[..., axis] / points_3d[..., 2]).ravel().astype(np.float64)
        design = np.stack([ratio, np.ones_like(ratio)], axis=1)
        target = pixels[..., axis].ravel().astype(np.float64)
        coefficients = np.linalg.lstsq(design, target, rcond=None)[0]
        worst = max(worst, np.abs(design @ coefficients - target).max())
    return worst


def test_3dhp_train_is_camera_frame_millimetres_with_pinhole_2d(files):
    train = files['data_train_3dhp_ori.npz']['data'].item()
    for sequence in train.values():
        for view in sequence[0].values():
            pelvis_depth = view['data_3d'][:, MPI_PELVIS, 2]
            assert 3000 < pelvis_depth.min() and pelvis_depth.max() < 6500
            assert _pinhole_residual(view['data_3d'], view['data_2d']) < 1e-2
            assert _inside(view['data_2d'], 2048, 2048).mean() >= 0.99
            # y points down: the head top is above (smaller image y) the ankles.
            assert (view['data_2d'][:, 0, 1] < view['data_2d'][:, [10, 13], 1].min(axis=1)).all()
            pelvis = view['data_3d'][:, MPI_PELVIS]
            np.testing.assert_allclose(pelvis, view['data_3d'][:, [MPI_R_HIP, MPI_L_HIP]].mean(axis=1), atol=40)
            bones = np.linalg.norm(view['data_3d'][:, [j for j, _ in MPI_INF_3DHP_17.bones()]]
                                   - view['data_3d'][:, [p for _, p in MPI_INF_3DHP_17.bones()]], axis=-1)
            assert np.ptp(bones, axis=0).max() < 0.5    # mm; pelvis-spine spans two bones of the 32-joint body


def test_3dhp_test_uses_the_published_cameras_and_marks_invalid_runs(files):
    test = files['data_test_3dhp_ori.npz']['data'].item()
    for name, sequence in test.items():
        sensor = TEST_CAMERAS[name]
        focal, center = camera.sensor_to_pixel_intrinsics(sensor.focal_mm, sensor.offset_mm, sensor.sensor_mm,
                                                          sensor.resolution)
        points = sequence['data_3d'].astype(np.float64)
        np.testing.assert_allclose(sequence['data_2d'], focal * points[..., :2] / points[..., 2:] + center, atol=1e-3)
        w, h = sensor.resolution
        pixels = sequence['data_2d']
        assert _inside(pixels, w, h).mean() >= 0.99
        pelvis_depth = points[:, MPI_PELVIS, 2]
        assert 2500 < pelvis_depth.min() and pelvis_depth.max() < 7000
        valid = sequence['valid']
        assert set(np.unique(valid)) == {0.0, 1.0}
        assert 0.08 <= 1 - valid.mean() <= 0.22
        starts_of_invalid_runs = np.count_nonzero(np.diff(np.concatenate([[1.0], valid])) < 0)
        assert 1 <= starts_of_invalid_runs <= 3


# ----------------------------------------------------------------------------- command line

def _run_cli(*args):
    return subprocess.run([sys.executable, '-m', 'common.synthetic', *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)


def test_command_line_writes_and_reports_every_file(tmp_path):
    out = tmp_path / 'made' / 'here'
    result = _run_cli('--out', str(out), '--frames', '20', '--takes', '1', '--no-3dhp', '--detector-name', 'mydet')
    assert result.returncode == 0, result.stderr
    names = ['data_3d_h36m.npz', 'data_2d_h36m_gt.npz', 'data_2d_h36m_mydet.npz', 'data_2d_h36m_cpn_ft_h36m_dbb.npz']
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == len(names) + 1
    for name, line in zip(names, lines):
        assert name in line and line.endswith(' MB')
    assert lines[-1].startswith('generated 4 files in ') and lines[-1].endswith(' s')
    # The README's -k cpn_ft_h36m_dbb reads the same synthetic detections.
    mine, readme = (_load(out / name)['positions_2d'].item() for name in names[2:])
    np.testing.assert_array_equal(readme['S9']['Walking'][3], mine['S9']['Walking'][3])
    world = _load(out / 'data_3d_h36m.npz')['positions_3d'].item()
    assert world['S11']['Walking'].shape == (20, 32, 3)
    umask = os.umask(0)
    os.umask(umask)
    assert {(p.stat().st_mode & 0o777) for p in out.iterdir()} == {0o666 & ~umask}


def test_bad_flag_exits_with_a_one_line_error(tmp_path):
    result = _run_cli('--out', str(tmp_path / 'out'), '--frames', '0')
    assert result.returncode == 2
    assert result.stderr == f'error: --frames: expected at least {synthetic.MIN_FRAMES} frames per take, got 0\n'
    assert not (tmp_path / 'out').exists()


@pytest.mark.parametrize('flags, message', [
    (['--seed', '-1'], '--seed: expected a non-negative integer, got -1'),
    (['--takes', '0'], '--takes: expected at least 1 take per action, got 0'),
    (['--detector-name', 'gt'], "--detector-name: expected letters, digits"),
    (['--detector-name', '../x'], "--detector-name: expected letters, digits"),
])
def test_bad_flags_raise_user_errors(tmp_path, flags, message):
    with pytest.raises(UserError, match=re.escape(message)):
        synthetic_command.main(['--out', str(tmp_path / 'out'), *flags])
    assert not (tmp_path / 'out').exists()


def test_out_must_be_a_folder(tmp_path):
    (tmp_path / 'file').write_text('')
    with pytest.raises(UserError, match='--out: .* is not a folder'):
        synthetic_command.main(['--out', str(tmp_path / 'file'), '--frames', '12', '--takes', '1', '--no-3dhp'])


def test_unknown_size_is_an_argparse_error(tmp_path):
    result = _run_cli('--out', str(tmp_path), '--size', 'huge')
    assert result.returncode == 2 and "invalid choice: 'huge'" in result.stderr


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    data = synthetic.build(seed=0, frames=12, takes=1, with_3dhp=False)

    def broken(file, **arrays):
        file.write(b'partial')
        raise OSError('disk full')

    monkeypatch.setattr(np, 'savez_compressed', broken)
    with pytest.raises(UserError, match=r'cannot write .*data_3d_h36m\.npz: disk full'):   # one line, names the file
        synthetic.write(data, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_project_loaders_read_back_exactly_what_was_generated(generated):
    """The loaders (their own conversion code) give back the generator's camera-frame,
    root-relative 3D, its trajectory and its normalised 2D, for both datasets."""
    from common.data.h36m import load_h36m
    from common.data.mpi_inf_3dhp import load_3dhp_test, load_3dhp_train
    out, data = generated
    loaded = load_h36m(out, 'gt')
    assert len(loaded.sequences) == 7 * len(ACTIONS) * TAKES * 4
    for seq in loaded.sequences:
        view = data.h36m[seq.subject][seq.action].views[seq.camera]
        np.testing.assert_allclose(seq.positions_3d, view.positions_3d, atol=1e-6)
        np.testing.assert_allclose(seq.trajectory, view.trajectory, atol=2e-6)
        np.testing.assert_allclose(seq.keypoints_2d, view.keypoints_norm, atol=1e-6)
    train = load_3dhp_train(out / 'data_train_3dhp_ori.npz')
    assert len(train.sequences) == sum(len(views) for views in data.mpi_train.values())
    tests = load_3dhp_test(out / 'data_test_3dhp_ori.npz')
    generated_views = [(seq, data.mpi_train[seq.subject][seq.camera]) for seq in train.sequences] + \
                      [(seq, data.mpi_test[seq.subject]) for seq in tests.sequences]
    for seq, views in generated_views:
        metres = views['data_3d'].astype(np.float64) / 1000.0
        np.testing.assert_allclose(seq.positions_3d, metres - metres[:, MPI_PELVIS:MPI_PELVIS + 1], atol=1e-6)
        np.testing.assert_allclose(seq.trajectory, metres[:, MPI_PELVIS], atol=1e-6)
        w, h = seq.resolution
        np.testing.assert_allclose(seq.keypoints_2d, views['data_2d'] / w * 2 - [1, h / w], atol=1e-6)
    np.testing.assert_array_equal(tests.sequences[0].valid, data.mpi_test['TS1']['valid'] != 0)


# ----------------------------------------------------------------------------- Human3.6M's size

def test_h36m_size_plan_has_the_real_takes_and_pose_counts():
    plan = synthetic.h36m_size_plan(0)
    assert list(plan) == list(H36M_SUBJECTS)
    real_actions = ('Directions', 'Discussion', 'Eating', 'Greeting', 'Phoning', 'Photo', 'Posing', 'Purchases',
                    'Sitting', 'SittingDown', 'Smoking', 'Waiting', 'WalkDog', 'Walking', 'WalkTogether')
    for subject, takes in plan.items():
        expected = {name for action in real_actions for name in (action, f'{action} 1')}
        if subject == 'S11':
            expected.remove('Directions')                 # the community's files drop it (corrupt video)
        assert set(takes) == expected
    poses = {split: 4 * sum(sum(plan[s].values()) for s in subjects)
             for split, subjects in (('training', ('S1', 'S5', 'S6', 'S7', 'S8')), ('test', ('S9', 'S11')))}
    assert poses == {'training': 1_559_752, 'test': 543_344}
    lengths = np.array([frames for takes in plan.values() for frames in takes.values()])
    assert lengths.min() >= 994 and lengths.max() <= 6349 and len(set(lengths.tolist())) > 150
    assert synthetic.h36m_size_plan(0) == plan and synthetic.h36m_size_plan(1) != plan


def test_lengths_are_fitted_to_the_total_within_the_bounds():
    raw = np.array([1.0, 1.0, 10.0, 100.0])
    lengths = synthetic._fit_lengths(raw, 100, 10, 50)
    assert lengths.sum() == 100 and lengths.min() >= 10 and lengths.max() <= 50
    assert lengths.tolist() == [17, 17, 16, 50]           # the long one capped, the rest shared out evenly


SMALL_PLAN = {'S1': {'Walking': 30, 'Photo 1': 25}, 'S9': {'WalkTogether': 20}, 'S11': {'Directions 1': 15}}


def test_h36m_size_writes_the_plan_take_by_take(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(synthetic, 'h36m_size_plan', lambda seed: SMALL_PLAN)
    synthetic_command.main(['--out', str(tmp_path), '--h36m-size', '--no-3dhp', '--no-progress'])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ('--h36m-size: 3 subjects, 4 takes (15 actions x 2, without S11 Directions as the community\'s '
                        'files), 15-30 frames a take, x 4 cameras: 220 training (S1,S5,S6,S7,S8) and 140 test (S9,S11) '
                        '2D poses, as the real dataset')
    world = _load(tmp_path / 'data_3d_h36m.npz')['positions_3d'].item()
    assert {s: {a: len(x) for a, x in takes.items()} for s, takes in world.items()} == SMALL_PLAN
    gt = _load(tmp_path / 'data_2d_h36m_gt.npz')['positions_2d'].item()
    assert [v.shape for v in gt['S1']['Photo 1']] == [(25, 17, 2)] * 4
    # The same detections under both names, copied byte for byte.
    assert (tmp_path / 'data_2d_h36m_synthetic_det.npz').read_bytes() == \
        (tmp_path / 'data_2d_h36m_cpn_ft_h36m_dbb.npz').read_bytes()
    # A take is the one the scripted generator makes: the stand-in action draws its own stream.
    take = synthetic.build_h36m_take(0, 'S1', synthetic.random_body(np.random.default_rng(
        [0, synthetic.STREAM_H36M_BODY, 0])), 'Photo', 1, synthetic.SIZES['demo'], 25)
    np.testing.assert_array_equal(world['S1']['Photo 1'], take.world_32)
    assert not np.array_equal(world['S1']['Photo 1'][:20], world['S1']['Walking'][:20])
    from common.data.h36m import load_h36m
    assert sum(s.num_frames for s in load_h36m(tmp_path).sequences) == 4 * (30 + 25 + 20 + 15)


def test_h36m_size_refuses_frames_and_takes(tmp_path):
    with pytest.raises(UserError, match=r'^--frames and --takes: --h36m-size sets the takes and their frames'):
        synthetic_command.main(['--out', str(tmp_path / 'out'), '--h36m-size', '--frames', '20', '--takes', '1'])
    assert not (tmp_path / 'out').exists()

"""``python -m common.h36m prepare`` on tiny files in the official formats (CDF release, h36m.zip):
the written arrays against the inputs, the projection against an independent one, the community's
renaming and dropped take, the take check, every one-line error, then one epoch of main.py."""
import contextlib
import io
import re
import shutil
import zipfile

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import main
from common import h36m as h36m_command
from common.data import h36m_release
from common.data.h36m_cameras import EXTRINSICS, INTRINSICS
from common.data.skeleton import H36M_KEPT_JOINTS
from support.releases import (h36m_content, official_take_name, write_cdf_take, write_h36m_archive,
                              write_h36m_source)
from support.runs import TINY_RUN_FLAGS, run_command

SUBJECTS = ('S1', 'S11')
FRAMES = 5
PIXEL_TOLERANCE = 0.01
METADATA = {'layout_name': 'h36m', 'num_joints': 17, 'keypoints_symmetry': [[4, 5, 6, 11, 12, 13],
                                                                            [1, 2, 3, 14, 15, 16]]}


def _prepare(capsys, *args):
    """``python -m common.h36m prepare ARGS --no-progress`` in-process: (exit code, stdout, stderr)."""
    return run_command(capsys, h36m_command.main, ['prepare', *args, '--no-progress'])


def _load(folder):
    with np.load(folder / 'data_3d_h36m.npz', allow_pickle=True) as f:
        positions_3d = f['positions_3d'].item()
    with np.load(folder / 'data_2d_h36m_gt.npz', allow_pickle=True) as f:
        positions_2d, metadata = f['positions_2d'].item(), f['metadata'].item()
    return positions_3d, positions_2d, metadata


def _project_independently(subject, world_mm):
    """(N, 32, 3) world mm -> 4 x (N, 17, 2) pixels: rotation by scipy, the distortion written out here."""
    views = []
    for intrinsics, extrinsics in zip(INTRINSICS, EXTRINSICS[subject]):
        w, x, y, z = extrinsics['orientation']
        points = world_mm[:, list(H36M_KEPT_JOINTS)].reshape(-1, 3) - np.asarray(extrinsics['translation'])
        camera = Rotation.from_quat([x, y, z, w]).inv().apply(points)
        a = np.clip(camera[:, :2] / camera[:, 2:], -1, 1)
        r2 = (a ** 2).sum(axis=1, keepdims=True)
        k1, k2, k3 = intrinsics['radial_distortion']
        p = np.asarray(intrinsics['tangential_distortion'])
        distorted = a * (1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3 + (a * p).sum(axis=1, keepdims=True)) + p * r2
        pixels = distorted * intrinsics['focal_length'] + intrinsics['center']
        views.append(pixels.reshape(len(world_mm), 17, 2))
    return views


@pytest.fixture(scope='module')
def release(tmp_path_factory):
    """The official release (CDF) of S1 and S11 and what it holds: {subject: {take: (N, 32, 3) mm}}."""
    root = tmp_path_factory.mktemp('h36m_release')
    content = h36m_content(SUBJECTS, frames=FRAMES, seed=1)
    write_h36m_source(root / 'Human3.6M', content)
    return root, content


@pytest.fixture(scope='module')
def prepared(release, tmp_path_factory):
    root, content = release
    out = tmp_path_factory.mktemp('prepared')
    # capsys is function-scoped: this module-scoped run captures its output by hand.
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        h36m_command.main(['prepare', '--from-source', str(root / 'Human3.6M'), '--out', str(out),
                           '--subjects', ','.join(SUBJECTS), '--no-progress'])
    return out, printed.getvalue()


def test_official_files_use_the_long_names_for_s1():
    assert official_take_name('S1', 'Photo 1') == 'TakingPhoto 1'
    assert official_take_name('S1', 'WalkDog') == 'WalkingDog'
    assert official_take_name('S5', 'Photo 2') == 'Photo 2'


def test_positions_3d_in_metres_with_the_communitys_names(release, prepared):
    root, content = release
    positions_3d, _, _ = _load(prepared[0])
    assert (root / 'Human3.6M' / 'S1' / 'MyPoseFeatures' / 'D3_Positions' / 'TakingPhoto 1.cdf').is_file()
    assert list(positions_3d) == list(SUBJECTS)
    assert list(positions_3d['S1']) == list(h36m_release.RELEASE_TAKES['S1'])
    assert 'Photo 1' in positions_3d['S1'] and 'WalkDog' in positions_3d['S1']
    assert 'Directions' not in positions_3d['S11'] and 'Directions 1' in positions_3d['S11']
    assert len(positions_3d['S11']) == 29
    for subject, takes in positions_3d.items():
        for take, world in takes.items():
            assert world.dtype == np.float32 and world.shape == (FRAMES, 32, 3)
            np.testing.assert_allclose(world, content[subject][take] / 1000, rtol=0, atol=1e-6)


def test_positions_2d_are_the_distorted_projection_with_videopose3d_metadata(release, prepared):
    _, content = release
    _, positions_2d, metadata = _load(prepared[0])
    assert metadata == METADATA
    for subject, takes in positions_2d.items():
        for take, views in takes.items():
            assert isinstance(views, list) and len(views) == 4
            expected = _project_independently(subject, content[subject][take])
            for view, pixels in zip(views, expected):
                assert view.dtype == np.float32 and view.shape == (FRAMES, 17, 2)
                assert np.abs(view - pixels).max() < PIXEL_TOLERANCE
                assert 100 < pixels.mean() < 900          # the subject is in the picture


def test_counts_and_the_dropped_take_are_printed(prepared):
    lines = prepared[1].splitlines()
    assert f'S1: 30 takes, {30 * FRAMES} frames ({4 * 30 * FRAMES} 2D poses over 4 cameras)' in lines
    assert f'S11: 29 takes, {29 * FRAMES} frames ({4 * 29 * FRAMES} 2D poses over 4 cameras)' in lines
    assert 'S11 Directions: not written (its video is corrupt; the community drops it)' in lines
    assert lines[-1].startswith(f'wrote {prepared[0] / "data_3d_h36m.npz"} and ') and '59 takes' in lines[-1]


def test_every_form_of_the_archive_gives_the_same_files(release, prepared, tmp_path, capsys):
    _, content = release
    archive = write_h36m_archive(tmp_path / 'h36m.zip', content)
    extracted = tmp_path / 'extracted'
    with zipfile.ZipFile(archive) as f:
        f.extractall(extracted)
    expected = _load(prepared[0])
    for path in (archive, extracted, extracted / 'h36m'):
        out = tmp_path / f'out_{path.name}'
        code, printed, err = _prepare(capsys, '--from-archive', path, '--out', out, '--subjects', 'S1,S11')
        assert code == 0, err
        assert 'S11 Directions: not written' in printed
        positions_3d, positions_2d, metadata = _load(out)
        assert metadata == expected[2]
        for subject in SUBJECTS:
            assert list(positions_3d[subject]) == list(expected[0][subject])
            for take in positions_3d[subject]:
                assert np.array_equal(positions_3d[subject][take], expected[0][subject][take])
                assert all(np.array_equal(a, b) for a, b in zip(positions_2d[subject][take],
                                                                expected[1][subject][take]))


@pytest.fixture
def s1_release(tmp_path):
    """A fresh one-subject release (S1, 3 frames a take) to break, and an output folder."""
    content = h36m_content(('S1',), frames=3, seed=2)
    return write_h36m_source(tmp_path / 'release', content), tmp_path / 'out', content


def _take_file(root, take):
    return root / 'S1' / 'MyPoseFeatures' / 'D3_Positions' / f'{official_take_name("S1", take)}.cdf'


def test_a_missing_take_stops_before_writing_unless_allowed(s1_release, capsys):
    root, out, _ = s1_release
    _take_file(root, 'Walking 1').unlink()
    _take_file(root, 'Photo').unlink()
    out.mkdir()
    (out / 'data_3d_h36m.npz').write_bytes(b'kept')
    code, printed, err = _prepare(capsys, '--from-source', root, '--out', out, '--subjects', 'S1')
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert 'missing takes (2): S1 Photo, S1 Walking 1;' in err and '--allow-missing' in err
    assert (out / 'data_3d_h36m.npz').read_bytes() == b'kept' and not (out / 'data_2d_h36m_gt.npz').exists()
    code, printed, err = _prepare(capsys, '--from-source', root, '--out', out, '--subjects', 'S1', '--allow-missing')
    assert code == 0, err
    positions_3d, positions_2d, _ = _load(out)
    assert len(positions_3d['S1']) == len(positions_2d['S1']) == 28 and 'Walking 1' not in positions_3d['S1']
    assert 'S1: 28 takes, 84 frames (336 2D poses over 4 cameras)' in printed
    assert 'missing, not written (2): S1 Photo, S1 Walking 1' in printed.splitlines()
    assert '(replacing the files there)' in printed


def test_an_unexpected_take_stops_before_writing(s1_release, capsys):
    root, out, content = s1_release
    write_cdf_take(_take_file(root, 'Walking 3'), content['S1']['Walking'])
    code, _, err = _prepare(capsys, '--from-source', root, '--out', out, '--subjects', 'S1')
    assert code == 2 and f'unexpected takes: S1 Walking 3 ({_take_file(root, "Walking 3")})' in err
    assert not out.exists() or not list(out.iterdir())
    code, printed, err = _prepare(capsys, '--from-source', root, '--out', out, '--subjects', 'S1', '--allow-missing')
    assert code == 0 and 'unexpected, written: S1 Walking 3' in printed
    assert list(_load(out)[0]['S1'])[-1] == 'Walking 3'
    write_cdf_take(_take_file(root, 'Dancing 1'), content['S1']['Walking'])
    code, _, err = _prepare(capsys, '--from-source', root, '--out', out, '--subjects', 'S1', '--allow-missing')
    assert code == 2 and 'unexpected takes of no Human3.6M action: S1 Dancing 1' in err


def _nan_in_frame_2(root, content):
    world = content['S1']['Eating'].copy()
    world[2, 7, 1] = np.nan
    write_cdf_take(_take_file(root, 'Eating'), world)


def _wrong_joint_count(root, content):
    write_cdf_take(_take_file(root, 'Eating'), content['S1']['Eating'][:, :17])


def _not_a_cdf(root, content):
    _take_file(root, 'Eating').write_text('not a CDF file')


def _no_pose_variable(root, content):
    from cdflib.cdfwrite import CDF as CdfWriter
    writer = CdfWriter(_take_file(root, 'Eating'), delete=True)
    writer.write_var({'Variable': 'Angles', 'Data_Type': CdfWriter.CDF_DOUBLE, 'Num_Elements': 1, 'Rec_Vary': True,
                      'Dim_Sizes': [3, 78]}, var_data=np.zeros((1, 3, 78)))
    writer.close()


def _two_files_of_one_take(root, content):
    write_cdf_take(_take_file(root, 'Eating').with_name('Photo 1.cdf'), content['S1']['Photo 1'])


def _archive_given_as_source(root, content):
    shutil.rmtree(root / 'S1')
    write_h36m_archive(root / 'h36m.zip', content)
    with zipfile.ZipFile(root / 'h36m.zip') as f:
        f.extractall(root)


@pytest.mark.parametrize('damage, message', [
    (_nan_in_frame_2, r'D3_Positions/Eating\.cdf: Pose: NaN or inf values, first in frame 2$'),
    (_wrong_joint_count, r'Eating\.cdf: Pose has shape \(1, 3, 51\); expected \(1, N, 96\), 96 values '
                         r'\(32 joints x 3\) per frame$'),
    (_not_a_cdf, r'Eating\.cdf: not a readable CDF file \(.*\)$'),
    (_no_pose_variable, r"Eating\.cdf: no variable 'Pose'; variables found: Angles$"),
    (_two_files_of_one_take, r'S1 Photo 1: two files, .*Photo 1\.cdf and .*Photo 1\.cdf; expected one per take$'),
    (_archive_given_as_source, r'no S\*/MyPoseFeatures/D3_Positions/\*\.cdf found; expected the official Human3\.6M '
                               r'release extracted .*; it holds the other release\'s files .*: use --from-archive$'),
])
def test_bad_release_files_are_one_line_errors_and_nothing_is_written(s1_release, capsys, damage, message):
    root, out, content = s1_release
    damage(root, content)
    code, _, err = _prepare(capsys, '--from-source', root, '--out', out, '--subjects', 'S1')
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert re.search(message, err.strip()), err
    assert not list(out.glob('*.npz'))


def test_bad_archives_and_flags_are_one_line_errors(tmp_path, capsys):
    content = h36m_content(('S9',), frames=3)
    del content['S9']['Walking 1']
    archive = write_h36m_archive(tmp_path / 'h36m.zip', content)
    with zipfile.ZipFile(archive, 'a') as f:
        f.writestr('h36m/S9/MyPoses/3D_positions/Walking 1.h5', b'not HDF5')
    cases = [
        (['--from-archive', archive, '--subjects', 'S9'], 'h36m.zip:h36m/S9/MyPoses/3D_positions/Walking 1.h5: not a '
                                                          'readable HDF5 file'),
        (['--from-archive', tmp_path / 'nothing.zip'], 'nothing.zip: not found; expected h36m.zip, the folder it'),
        (['--from-archive', tmp_path, '--subjects', 'S2'], '--subjects S2: expected comma-separated subjects among '
                                                           'S1,S5,S6,S7,S8,S9,S11 (S2 unknown)'),
        (['--from-source', tmp_path], f'--from-source {tmp_path}: no S*/MyPoseFeatures/D3_Positions/*.cdf found'),
        (['--from-archive', archive, '--subjects', 'S1'], 'missing takes (30): S1 Directions 1, S1 Directions,'),
    ]
    for args, message in cases:
        code, _, err = _prepare(capsys, *args, '--out', tmp_path / 'out')
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, (args, err)
    assert not (tmp_path / 'out').exists() or not list((tmp_path / 'out').iterdir())


def test_main_trains_and_evaluates_on_the_prepared_folder(tmp_path, capsys):
    root = write_h36m_source(tmp_path / 'Human3.6M', h36m_content(SUBJECTS, frames=12, seed=3))
    code, _, err = _prepare(capsys, '--from-source', root, '--out', tmp_path / 'data', '--subjects', 'S1,S11')
    assert code == 0, err
    main.main(['-k', 'gt', '--data-dir', str(tmp_path / 'data'), '-c', str(tmp_path / 'checkpoint'),
               '-str', 'S1', '-ste', 'S11', '-a', 'Walking', '-e', '1', '--nolog', '-num_proposals', '1',
               '-sampling_timesteps', '1', *TINY_RUN_FLAGS])
    printed = capsys.readouterr().out
    assert (tmp_path / 'checkpoint' / 'best_epoch.bin').is_file()
    assert 'Walking' in printed and 'Average' in printed


def test_the_loader_reads_our_files_and_videopose3d_style_ones(prepared, tmp_path):
    from common.data.h36m import load_h36m
    ours = load_h36m(prepared[0], keypoints='gt')
    assert len(ours.sequences) == (30 + 29) * 4
    # VideoPose3D's prepare_data_h36m.py writes the gt metadata without layout_name.
    positions_3d, positions_2d, metadata = _load(prepared[0])
    shutil.copy(prepared[0] / 'data_3d_h36m.npz', tmp_path / 'data_3d_h36m.npz')
    np.savez_compressed(tmp_path / 'data_2d_h36m_gt.npz', positions_2d=positions_2d,
                        metadata={k: v for k, v in metadata.items() if k != 'layout_name'})
    theirs = load_h36m(tmp_path, keypoints='gt')
    assert [(s.subject, s.action, s.camera) for s in theirs.sequences] == \
        [(s.subject, s.action, s.camera) for s in ours.sequences]
    assert all(np.array_equal(a.keypoints_2d, b.keypoints_2d) for a, b in zip(theirs.sequences, ours.sequences))

"""``python -m common.mpi_inf_3dhp prepare-train`` on a tiny training release in the official format
(``S*/Seq*/annot.mat``, MATLAB v5): the written arrays against annot3 / annot2 (joints, cameras,
units), the sequence check, every one-line error, then one epoch of main_3dhp.py."""
import re
import shutil

import h5py
import numpy as np
import pytest

import main_3dhp
from common import mpi_inf_3dhp as mpi_inf_3dhp_command
from common.data import mpi_inf_3dhp_release
from common.data.mpi_inf_3dhp import TEST_FILE, TRAIN_FILE, load_3dhp_train
from support.releases import mpi_sequence, write_annot_mat, write_mpi_train_release
from support.runs import TINY_RUN_FLAGS, run_command

FRAMES = 12
KEPT_CAMERAS = ['0', '1', '2', '4', '5', '6', '7', '8']
# The release's frame rates (mpii_get_sequence_info): these five sequences at 50 fps, the rest at 25.
SEQUENCE_FPS = {f'S{s} Seq{q}': 50 if (s, q) in {(1, 2), (3, 1), (3, 2), (5, 1), (5, 2)} else 25
                for s in range(1, 9) for q in (1, 2)}
# The 17 test joints among the 28, 1-based as the release's MATLAB tools list them.
TEST_JOINTS_1_BASED = [8, 6, 15, 16, 17, 10, 11, 12, 24, 25, 26, 19, 20, 21, 5, 4, 7]


def _prepare_train(capsys, *args):
    """``python -m common.mpi_inf_3dhp prepare-train ARGS --no-progress`` in-process: (exit code, stdout, stderr)."""
    return run_command(capsys, mpi_inf_3dhp_command.main, ['prepare-train', *args, '--no-progress'])


def _load(out):
    with np.load(out / TRAIN_FILE, allow_pickle=True) as f:
        return f['data'].item()


@pytest.fixture
def release(tmp_path):
    return tmp_path / 'mpi_inf_3dhp', write_mpi_train_release(tmp_path / 'mpi_inf_3dhp', frames=FRAMES)


def test_annot3_and_annot2_of_the_test_joints_and_training_cameras(release, tmp_path, capsys):
    root, written = release
    code, printed, err = _prepare_train(capsys, root, '--out', tmp_path / 'data')
    assert code == 0, err
    data = _load(tmp_path / 'data')
    assert list(data) == [f'S{s} Seq{q}' for s in range(1, 9) for q in (1, 2)]
    joints = [j - 1 for j in TEST_JOINTS_1_BASED]
    for name, views in data.items():
        assert isinstance(views, list) and len(views) == 2 and list(views[0]) == KEPT_CAMERAS
        assert views[1] == SEQUENCE_FPS[name]                # [cameras, fps], as the community's file
        for camera, arrays in views[0].items():
            annot3 = written[name]['annot3'][int(camera)].reshape(FRAMES, 28, 3)[:, joints]
            annot2 = written[name]['annot2'][int(camera)].reshape(FRAMES, 28, 2)[:, joints]
            assert arrays['data_3d'].dtype == np.float32 and arrays['data_3d'].shape == (FRAMES, 17, 3)
            assert arrays['data_2d'].dtype == np.float32 and arrays['data_2d'].shape == (FRAMES, 17, 2)
            np.testing.assert_allclose(arrays['data_3d'], annot3, rtol=1e-6)      # millimetres, not univ_annot3
            np.testing.assert_allclose(arrays['data_2d'], annot2, rtol=1e-6)      # pixels
    lines = printed.splitlines()
    assert f'S1 Seq1: {FRAMES} frames x 8 cameras' in lines
    assert lines[-1] == (f'wrote {tmp_path / "data" / TRAIN_FILE}: 16 sequences, {16 * FRAMES} frames per camera '
                         '(the complete release: 131592), cameras 0, 1, 2, 4, 5, 6, 7, 8, annot3 in mm')
    # ... and the loader reads it: metres, root-relative at the pelvis.
    dataset = load_3dhp_train(tmp_path / 'data' / TRAIN_FILE)
    assert len(dataset.sequences) == 16 * 8
    first = dataset.sequences[0]
    np.testing.assert_allclose(first.trajectory, written['S1 Seq1']['annot3'][0].reshape(FRAMES, 28, 3)[:, 4] / 1000,
                               rtol=1e-5)


def test_frames_beyond_the_video_are_dropped_and_said(release, tmp_path, capsys, monkeypatch):
    root, written = release
    monkeypatch.setitem(mpi_inf_3dhp_release.SEQUENCE_FRAMES, ('S2', 'Seq1'), (FRAMES - 3, 25))
    code, printed, err = _prepare_train(capsys, root, '--out', tmp_path)
    assert code == 0, err
    assert 'S2 Seq1: 3 annotated frames beyond the video\'s 9 dropped, as the community does' in printed
    views = _load(tmp_path)['S2 Seq1'][0]
    assert all(len(v['data_3d']) == len(v['data_2d']) == FRAMES - 3 for v in views.values())


def test_a_missing_sequence_stops_before_writing_unless_allowed(release, tmp_path, capsys):
    root, _ = release
    shutil.rmtree(root / 'S3' / 'Seq2')
    (root / 'S7' / 'Seq1' / 'annot.mat').unlink()
    code, _, err = _prepare_train(capsys, root, '--out', tmp_path / 'data')
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert 'missing sequences (2): S3 Seq2, S7 Seq1; nothing written' in err and '--allow-missing' in err
    assert not (tmp_path / 'data' / TRAIN_FILE).exists()
    code, printed, err = _prepare_train(capsys, root, '--out', tmp_path / 'data', '--allow-missing')
    assert code == 0, err
    assert len(_load(tmp_path / 'data')) == 14
    assert printed.splitlines()[-1] == 'missing, not written (2): S3 Seq2, S7 Seq1'


def _v73(path):
    path.unlink()
    with h5py.File(path, 'w') as f:
        f['annot3'] = np.zeros((3, 84))


def _not_a_mat(path):
    path.write_text('not a MATLAB file')


def _wrong_joint_count(path):
    sequence = mpi_sequence(FRAMES)
    sequence['annot2'][4] = sequence['annot2'][4][:, :34]
    write_annot_mat(path, sequence)


def _nan(path):
    sequence = mpi_sequence(FRAMES)
    sequence['annot3'][2][5, 3 * 14 + 1] = np.nan           # joint 15 (1-based), a test joint
    write_annot_mat(path, sequence)


def _frame_counts_differ(path):
    sequence = mpi_sequence(FRAMES)
    sequence['annot3'][1] = sequence['annot3'][1][:-1]
    write_annot_mat(path, sequence)


@pytest.mark.parametrize('damage, message', [
    (_v73, r'S2/Seq1/annot\.mat: a MATLAB v7\.3 \(HDF5\) file; expected the official v5 annot\.mat'),
    (_not_a_mat, r'S2/Seq1/annot\.mat: not a readable MATLAB \.mat file \(.*\)$'),
    (_wrong_joint_count, r'annot\.mat: annot2 of camera 4: shape \(12, 34\), expected N x 56 '
                         r'\(28 joints x 2, N >= 1\)$'),
    (_nan, r'annot\.mat: camera 2 annot3: NaN or inf values, first in frame 5$'),
    (_frame_counts_differ, r'annot\.mat: camera 1 has 12 annot2 and 11 annot3 frames, camera 0 12; expected the same'),
])
def test_bad_annotations_are_one_line_errors_and_nothing_is_written(release, tmp_path, capsys, damage, message):
    root, _ = release
    damage(root / 'S2' / 'Seq1' / 'annot.mat')
    code, _, err = _prepare_train(capsys, root, '--out', tmp_path / 'data')
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert re.search(message, err.strip()), err
    assert not (tmp_path / 'data' / TRAIN_FILE).exists()


def test_wrong_folders_are_one_line_errors(tmp_path, capsys):
    (tmp_path / 'mpi_inf_3dhp_test_set' / 'TS1').mkdir(parents=True)
    for folder, message in ((tmp_path / 'absent', 'absent: not a folder; expected the official MPI-INF-3DHP training'),
                            (tmp_path / 'mpi_inf_3dhp_test_set', 'no S1..S8/Seq1,Seq2/annot.mat found; expected the '
                             'official MPI-INF-3DHP training release: it is the test set; build the test file with '
                             'convert-test')):
        code, _, err = _prepare_train(capsys, folder, '--out', tmp_path / 'data')
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_main_3dhp_trains_and_evaluates_on_the_prepared_file(tiny_dataset, tmp_path, capsys):
    root = tmp_path / 'mpi_inf_3dhp'
    write_mpi_train_release(root, frames=20, skip=[f'S{s} Seq{q}' for s in range(2, 9) for q in (1, 2)])
    code, _, err = _prepare_train(capsys, root, '--out', tmp_path / 'data', '--allow-missing')
    assert code == 0, err
    shutil.copy(tiny_dataset / TEST_FILE, tmp_path / 'data' / TEST_FILE)
    common = ['--data-dir', str(tmp_path / 'data'), '-c', str(tmp_path / 'checkpoint'), *TINY_RUN_FLAGS]
    main_3dhp.main([*common, '-e', '1', '--nolog'])
    assert (tmp_path / 'checkpoint' / 'best_epoch.bin').is_file()
    main_3dhp.main([*common, '--evaluate', 'best_epoch.bin', '-num_proposals', '1', '-sampling_timesteps', '1'])
    assert (tmp_path / 'checkpoint' / 'inference_data_P_Agg.mat').is_file()

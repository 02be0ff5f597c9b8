"""main_3dhp.py end to end on tiny synthetic MPI-INF-3DHP files: train, evaluate, export the four
.mat files in the official layout, and score them (library call and 3dhp_test/score.py)."""
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import scipy.io

import main_3dhp
from common.data.mpi_inf_3dhp import TEST_FILE, TEST_SEQUENCES
from common.evaluation import metrics
from common.evaluation.mpi_inf_3dhp_scoring import load_predictions_mat
from conftest import REPO_ROOT, TINY_RUN_FLAGS

PELVIS = 14
HYPOTHESES, STEPS = 2, 2


def write_official_annotations(test_npz, folder):
    """TS*/annot_data.mat (HDF5, MATLAB's reversed dimensions) from a data_test_3dhp_ori.npz, so
    the synthetic test set can be scored like the official one (activity 1 everywhere)."""
    with np.load(test_npz, allow_pickle=True) as f:
        data = f['data'].item()
    for name, views in data.items():
        n = len(views['valid'])
        (folder / name).mkdir(parents=True)
        with h5py.File(folder / name / 'annot_data.mat', 'w') as mat:
            mat['annot2'] = np.asarray(views['data_2d'], np.float64).reshape(n, 1, 17, 2)
            mat['annot3'] = np.asarray(views['data_3d'], np.float64).reshape(n, 1, 17, 3)
            mat['univ_annot3'] = np.asarray(views['data_3d'], np.float64).reshape(n, 1, 17, 3)
            mat['valid_frame'] = np.asarray(views['valid'], np.float64).reshape(n, 1)
            mat['activity_annotation'] = np.ones((n, 1))
    return data


@pytest.fixture(scope='module')
def evaluated(tiny_dataset, tmp_path_factory):
    folder = tmp_path_factory.mktemp('model_3dhp')
    annotations = folder / 'mpi_inf_3dhp_test_set'
    test_data = write_official_annotations(tiny_dataset / TEST_FILE, annotations)
    common = ['--data-dir', str(tiny_dataset), '-c', str(folder), *TINY_RUN_FLAGS]
    main_3dhp.main([*common, '-e', '1', '--nolog'])
    # Per frame, each valid frame once, as the official scorer counts (the default, original count, differs).
    result = main_3dhp.main([*common, '--evaluate', 'best_epoch.bin', '-num_proposals', str(HYPOTHESES),
                             '-sampling_timesteps', str(STEPS), '-b', '4', '--annotations', str(annotations),
                             '--protocol', 'per-frame'])
    return folder, annotations, test_data, result


def test_exports_have_the_official_layout_in_millimetres(evaluated):
    folder, _, test_data, _ = evaluated
    for setting in metrics.SETTINGS:
        path = folder / f'inference_data_{setting.replace("-", "_")}.mat'
        variables = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith('__')}
        assert sorted(variables) == sorted(TEST_SEQUENCES)
        for name, array in variables.items():
            n = len(test_data[name]['valid'])
            assert array.dtype == np.float64 and array.shape == (3, 17, n, STEPS)
            assert np.all(array[:, PELVIS] == 0)
            # root-relative millimetres: limbs hundreds of mm long, not metres
            assert 100 < np.abs(array).max() < 3000


def test_scores_agree_with_the_evaluation_table(evaluated):
    folder, _, test_data, result = evaluated
    for setting in metrics.SETTINGS:
        suffix = setting.replace('-', '_')
        sequence_csv = folder / f'mpii_3dhp_evaluation_sequencewise_ori_{suffix}_t{STEPS}.csv'
        assert sequence_csv.is_file()
        rows = {}
        for line in sequence_csv.read_text().splitlines():
            rows.setdefault(line.split(',')[0], line.split(','))             # first block: MPJPE
        for index, name in enumerate(TEST_SEQUENCES):
            scorer_mpjpe = float(rows[f'TestSeq{index + 1}'][18])       # the 'Average' column of the MPJPE block
            assert scorer_mpjpe == pytest.approx(result.groups[name][(setting, 1)][-1], abs=1e-3)


def test_independent_error_on_valid_frames(evaluated):
    folder, _, test_data, result = evaluated
    predictions = load_predictions_mat(folder / 'inference_data_P_Agg.mat')
    for name in TEST_SEQUENCES:
        truth = np.asarray(test_data[name]['data_3d'], np.float64)
        truth = truth - truth[:, PELVIS:PELVIS + 1]
        valid = np.asarray(test_data[name]['valid']) != 0
        error = np.linalg.norm(predictions[name][-1][valid] - truth[valid], axis=-1).mean()
        assert error == pytest.approx(result.groups[name][('P-Agg', 1)][-1], abs=1e-3)
        assert result.frames[name] == valid.sum()


def test_score_command_reads_the_export(evaluated, tmp_path):
    """The tables go into the current folder (or --out), never beside the prediction file."""
    folder, annotations, _, result = evaluated
    inputs, work = tmp_path / 'inputs', tmp_path / 'work'
    inputs.mkdir(), work.mkdir()
    shutil.copy(folder / 'inference_data_J_Agg.mat', inputs)
    done = subprocess.run([sys.executable, str(REPO_ROOT / '3dhp_test' / 'score.py'),
                           str(inputs / 'inference_data_J_Agg.mat'), str(annotations)],
                          capture_output=True, text=True, cwd=work)
    assert done.returncode == 0, done.stderr
    assert 'PCK' in done.stdout and 'AUC' in done.stdout
    assert [p.name for p in inputs.iterdir()] == ['inference_data_J_Agg.mat']
    assert sorted(p.name for p in work.iterdir()) == sorted(
        f'mpii_3dhp_evaluation_{kind}_ori_J_Agg_t{t}.csv' for kind in ('sequencewise', 'activitywise')
        for t in range(1, STEPS + 1))

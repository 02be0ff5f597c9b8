"""main_3dhp.py end to end on tiny synthetic MPI-INF-3DHP files: train, evaluate, export the four
.mat files in the official layout, and score them (library call and 3dhp_test/score.py)."""
import re
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import scipy.io

import main_3dhp
from common.core.errors import UserError
from common.data.mpi_inf_3dhp import TEST_FILE, TEST_SEQUENCES
from common.evaluation import metrics
from common.evaluation.mpi_inf_3dhp_scoring import load_predictions_mat
from common.run import mpi_inf_3dhp_experiment
from support.releases import write_official_annotations
from support.runs import REPO_ROOT, TINY_RUN_FLAGS

PELVIS = 14
HYPOTHESES, STEPS = 2, 2


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


@pytest.fixture
def no_sampling(monkeypatch):
    """Neither sampling nor training may start: every input is checked before."""
    import common.run.experiment as experiment

    def started(*args, **kwargs):
        raise AssertionError('the model ran before the inputs were checked')
    monkeypatch.setattr(experiment, 'evaluate', started)
    monkeypatch.setattr(experiment, 'train', started)


def _damage(annotations, folder, case):
    """A copy of the official-format annotations with one fault; returns the folder to pass."""
    shutil.copytree(annotations, folder)
    if case == 'missing folder':
        return folder / 'nope'
    if case == 'a file':
        return folder / 'TS1' / 'annot_data.mat'
    if case == 'missing sequence':
        shutil.rmtree(folder / 'TS6')
    elif case == 'truncated file':
        mat = folder / 'TS3' / 'annot_data.mat'
        mat.write_bytes(mat.read_bytes()[:1000])
    elif case == 'NaN on a valid frame':          # the scorer would print and write nan MPJPE, PCK and AUC
        with h5py.File(folder / 'TS4' / 'annot_data.mat', 'r+') as mat:
            first_valid = int(np.flatnonzero(mat['valid_frame'][:, 0])[0])
            annot3 = mat['annot3'][:]
            annot3[first_valid, 0, 7, 2] = np.nan
            annot3[np.flatnonzero(mat['valid_frame'][:, 0] == 0), 0, 3, 0] = np.nan     # invalid frames: not scored
            mat['annot3'][:] = annot3
        return folder, first_valid
    elif case == 'other frame count':
        with h5py.File(folder / 'TS2' / 'annot_data.mat', 'r+') as mat:
            for key in ('annot2', 'annot3', 'univ_annot3', 'valid_frame', 'activity_annotation'):
                values = mat[key][:5]
                del mat[key]
                mat[key] = values
    return folder


@pytest.mark.parametrize('case, message', [
    ('missing folder', r'--annotations .*nope: .*nope: annotation folder not found'),
    ('missing sequence', r'--annotations .*: .*TS6/annot_data\.mat: not found'),
    ('truncated file', r'TS3/annot_data\.mat: not a readable MATLAB v7\.3 \(HDF5\) file'),
    ('other frame count', r'TS2/annot_data\.mat has annot3 \(5, 17, 3\); expected \(40, 17, 3\), the frames of TS2'),
    ('a file', r'--annotations .*TS1/annot_data\.mat: .*TS1/annot_data\.mat: a file, not a folder; expected the folder '
               r'holding TS1\.\.TS6/annot_data\.mat \(the official mpi_inf_3dhp_test_set\)$'),
    ('NaN on a valid frame', r'TS4/annot_data\.mat: annot3 holds NaN or infinite values on 1 valid frame, the first '
                             r'frame {} \(0-based\); expected finite millimetres on every frame valid_frame marks$'),
])
@pytest.mark.parametrize('run', ['evaluate', 'train'])
def test_bad_annotations_are_refused_before_the_model_runs(evaluated, tiny_dataset, tmp_path, capsys, no_sampling,
                                                           case, message, run):
    folder, annotations, _, _ = evaluated
    bad = _damage(annotations, tmp_path / 'annotations', case)
    if case == 'NaN on a valid frame':
        bad, first_valid = bad
        message = message.format(first_valid)
    run_folder = tmp_path / 'run'
    run_folder.mkdir()
    shutil.copy(folder / 'best_epoch.bin', run_folder)
    flags = ['--evaluate', 'best_epoch.bin'] if run == 'evaluate' else ['-e', '1', '-c', str(tmp_path / 'new')]
    with pytest.raises(SystemExit) as exit_info:
        main_3dhp.main(['--data-dir', str(tiny_dataset), '-c', str(run_folder), *TINY_RUN_FLAGS, '--nolog', *flags,
                        '--annotations', str(bad)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and re.match('error: .*' + message, err.rstrip('\n')), err


def test_exports_and_tables_are_written_when_scoring_fails(evaluated, tiny_dataset, tmp_path, capsys, monkeypatch):
    folder, annotations, _, _ = evaluated
    shutil.copy(folder / 'best_epoch.bin', tmp_path)

    def failing_score(*args):
        raise UserError('prediction TS1: largest root-relative coordinate is 0.9, which looks like metres')
    monkeypatch.setattr(mpi_inf_3dhp_experiment, 'score_predictions', failing_score)
    with pytest.raises(SystemExit) as exit_info:
        main_3dhp.main(['--data-dir', str(tiny_dataset), '-c', str(tmp_path), *TINY_RUN_FLAGS, '--nolog',
                        '--evaluate', 'best_epoch.bin', '--annotations', str(annotations)])
    assert exit_info.value.code == 2
    assert re.match(r'error: inference_data_\w+\.mat: prediction TS1: largest root-relative coordinate is 0\.9, '
                    f'which looks like metres; the four .mat files in {re.escape(str(tmp_path))} are written',
                    capsys.readouterr().err)
    assert sorted(p.name for p in tmp_path.glob('*.mat')) == sorted(
        f'inference_data_{setting.replace("-", "_")}.mat' for setting in metrics.SETTINGS)
    assert len(list(tmp_path.glob('best_epoch_H1_K1_*.csv'))) == 1 and len(list(tmp_path.glob('*.json'))) == 1


def test_score_command_checks_its_outputs_first(evaluated, tmp_path, capsys):
    """A bad --out or --setting is refused before the (here missing) prediction file is read."""
    import importlib.util
    _, annotations, _, _ = evaluated
    spec = importlib.util.spec_from_file_location('score_script', REPO_ROOT / '3dhp_test' / 'score.py')
    score_script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(score_script)
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    for flags, message in ((['--out', str(blocker / 'tables')], r'--out .*a_file/tables: .*a_file is a file, expected a folder'),
                           (['--setting', 'a/b'], r'--setting a/b: expected a name for the CSV files, without a folder')):
        with pytest.raises(SystemExit) as exit_info:
            score_script.main([str(tmp_path / 'missing.mat'), str(annotations), *flags])
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and err.count('\n') == 1 and re.match('error: ' + message, err), err

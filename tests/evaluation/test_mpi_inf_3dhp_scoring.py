"""MPI-INF-3DHP scoring without MATLAB, checked on the real TS5/TS6 annotations (skipped if absent)."""
import csv
import math
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest
import scipy.io

from common.core.errors import EXIT_USER_ERROR, UserError
from common.data.mpi_inf_3dhp import read_test_annotations
from common.evaluation.mpi_inf_3dhp_scoring import (AUC_THRESHOLDS_MM, GROUPED_JOINTS, GROUP_NAMES, OFFICIAL_JOINT_NAMES,
                                         format_summary, load_predictions_mat, save_predictions_mat,
                                         score_predictions, score_table_paths, write_score_tables)
from common.data.skeleton import MPI_INF_3DHP_17
from support.runs import REPO_ROOT

PERFECT_AUC = 100.0 * 30 / 31       # threshold 0 with a strict '<' counts nothing
PELVIS = 14
# The official groups, 1-based joint indices as written in mpii_get_pck_auc_joint_groups.m.
OFFICIAL_GROUPS_1_BASED = {'Head': [1], 'Neck': [2], 'Shou': [3, 6], 'Elbow': [4, 7], 'Wrist': [5, 8],
                           'Hip': [9, 12], 'Knee': [10, 13], 'Ankle': [11, 14]}


@pytest.fixture(scope='module')
def annotations(mpi_inf_3dhp_annotations):
    return read_test_annotations(mpi_inf_3dhp_annotations, ['TS5', 'TS6'])


def root_relative_truth(annotation):
    """(N, 17, 3) mm: annot3 of every frame minus its pelvis."""
    return annotation.annot3 - annotation.annot3[:, PELVIS:PELVIS + 1]


def perfect(annotations, num_steps=1):
    return {name: np.repeat(root_relative_truth(a)[None], num_steps, axis=0) for name, a in annotations.items()}


def noisy(annotations, num_steps=1, sigma_mm=60.0, seed=0):
    """Ground truth plus Gaussian noise (pelvis kept at zero), (K, N, 17, 3) mm per sequence."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, poses in perfect(annotations, num_steps).items():
        poses = poses + rng.normal(0.0, sigma_mm, poses.shape)
        poses[:, :, PELVIS] = 0.0
        out[name] = poses
    return out


def all_rows(result):
    return list(result.sequences) + [r for r in result.activities if r.num_frames] + [result.overall]


def test_scoring_constants_are_the_official_ones():
    assert len(AUC_THRESHOLDS_MM) == 31 and AUC_THRESHOLDS_MM[0] == 0 and AUC_THRESHOLDS_MM[-1] == 150
    assert list(GROUPED_JOINTS) == list(range(14))          # pelvis (14), spine (15), head (16) excluded
    assert OFFICIAL_JOINT_NAMES[MPI_INF_3DHP_17.root] == 'pelvis'
    # Same joints as the project's skeleton, named the official way.
    for ours, official in zip(MPI_INF_3DHP_17.joint_names, OFFICIAL_JOINT_NAMES):
        assert ours.replace('r_', 'right_').replace('l_', 'left_') == official


def test_ground_truth_scores_perfectly_at_every_step(annotations):
    result = score_predictions(perfect(annotations, num_steps=3), annotations)
    assert result.num_steps == 3
    assert [r.name for r in result.sequences] == ['TS5', 'TS6']
    assert result.overall.num_frames == 276 + 392
    for row in all_rows(result):
        np.testing.assert_allclose(row.pck, 100.0, atol=1e-9)
        np.testing.assert_allclose(row.group_pck, 100.0, atol=1e-9)
        np.testing.assert_allclose(row.auc, 96.7742, atol=1e-3)
        np.testing.assert_allclose(row.group_auc, PERFECT_AUC, atol=1e-9)
        np.testing.assert_allclose(row.mpjpe, 0.0, atol=1e-9)
    # TS5 and TS6 hold activities 1, 4, 5, 7 only: the other rows have no frames and are NaN.
    empty = [r for r in result.activities if r.num_frames == 0]
    assert [r.name for r in empty] == ['Exercising', 'Sitting', 'Sports']
    assert all(np.isnan(r.pck).all() and np.isnan(r.joint_mpjpe).all() for r in empty)


def test_mat_file_round_trip_keeps_the_official_layout(annotations, tmp_path):
    predictions = noisy(annotations, num_steps=2)
    path = tmp_path / 'inference_data_P_Agg.mat'
    save_predictions_mat(path, predictions)
    raw = scipy.io.loadmat(path)
    for name, poses in predictions.items():
        n = annotations[name].num_frames
        assert raw[name].shape == (3, 17, n, 2) and raw[name].dtype == np.float64
        np.testing.assert_array_equal(raw[name][:, :, 5, 1], poses[1, 5].T)   # xyz x joint of frame 5, step 2
    loaded = load_predictions_mat(path)
    assert list(loaded) == ['TS5', 'TS6']
    for name in predictions:
        assert loaded[name].dtype == np.float64
        np.testing.assert_array_equal(loaded[name], predictions[name])
    assert not [p for p in tmp_path.iterdir() if p.name != path.name]       # no temporary left behind


def test_single_step_and_matlab_v73_files_load(annotations, tmp_path):
    one_step = {'TS5': perfect(annotations)['TS5']}
    save_predictions_mat(tmp_path / 'k1.mat', one_step)
    np.testing.assert_array_equal(load_predictions_mat(tmp_path / 'k1.mat')['TS5'], one_step['TS5'])
    # MATLAB drops a trailing singleton dimension: a 3 x 17 x N variable is one step.
    scipy.io.savemat(tmp_path / 'squeezed.mat', {'TS5': one_step['TS5'][0].transpose(2, 1, 0)})
    np.testing.assert_array_equal(load_predictions_mat(tmp_path / 'squeezed.mat')['TS5'], one_step['TS5'])
    # save -v7.3 from MATLAB: HDF5 behind a 512-byte MAT header, dimensions stored reversed.
    path = tmp_path / 'v73.mat'
    with h5py.File(path, 'w', userblock_size=512) as f:
        f['TS5'] = one_step['TS5']
    header = b'MATLAB 7.3 MAT-file'.ljust(116) + bytes(8) + b'\x00\x02IM'
    with open(path, 'r+b') as f:
        f.write(header)
    np.testing.assert_array_equal(load_predictions_mat(path)['TS5'], one_step['TS5'])


def test_garbage_on_invalid_frames_changes_nothing(annotations):
    clean = noisy(annotations, num_steps=2)
    dirty = {name: poses.copy() for name, poses in clean.items()}
    rng = np.random.default_rng(1)
    for name, poses in dirty.items():
        invalid = ~annotations[name].valid
        assert invalid.any()
        poses[:, invalid] = rng.normal(0.0, 1e4, poses[:, invalid].shape)
    expected, got = score_predictions(clean, annotations), score_predictions(dirty, annotations)
    for a, b in zip(all_rows(expected), all_rows(got)):
        for field in ('joint_mpjpe', 'group_pck', 'group_auc', 'pck', 'auc'):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_left_right_swap_scores_far_worse(annotations):
    truth = perfect(annotations)
    swap = MPI_INF_3DHP_17.mirror_permutation()
    swapped = {name: poses[:, :, swap] for name, poses in truth.items()}
    good, bad = score_predictions(truth, annotations).overall, score_predictions(swapped, annotations).overall
    assert good.pck[0] - bad.pck[0] > 10
    assert bad.mpjpe[0] - good.mpjpe[0] > 50


def test_steps_are_scored_independently(annotations):
    truth, rough = perfect(annotations), noisy(annotations)
    both = {name: np.concatenate([truth[name], rough[name]]) for name in truth}
    result = score_predictions(both, annotations)
    alone = score_predictions(rough, annotations)
    for row, rough_row in zip(all_rows(result), all_rows(alone)):
        assert row.pck[0] == pytest.approx(100.0) and row.mpjpe[0] == pytest.approx(0.0)
        assert row.pck[1] == pytest.approx(rough_row.pck[0]) and row.auc[1] == pytest.approx(rough_row.auc[0])
        assert row.mpjpe[1] == pytest.approx(rough_row.mpjpe[0]) and row.mpjpe[1] > 50


def test_all_row_pools_frames_instead_of_averaging_sequences(annotations):
    # D3DP's published tables: "All" MPJPE 28.829 = frame-weighted mean of the sequences (plain mean 29.99).
    result = score_predictions(noisy(annotations, sigma_mm=40.0), annotations)
    frames = np.array([r.num_frames for r in result.sequences])
    sequence_mpjpe = np.array([r.mpjpe[0] for r in result.sequences])
    assert result.overall.mpjpe[0] == pytest.approx((frames * sequence_mpjpe).sum() / frames.sum())
    assert abs(result.overall.mpjpe[0] - sequence_mpjpe.mean()) > 1e-3
    activity_frames = sum(r.num_frames for r in result.activities)
    assert activity_frames == result.overall.num_frames == frames.sum()


def loop_reference(predictions, annotations, step, frames_of):
    """Plain loops over frames and joints; frames_of(name, frame) says whether a frame is in the row."""
    per_joint = [[] for _ in range(17)]
    for name, a in annotations.items():
        for frame in range(a.num_frames):
            if not (a.valid[frame] and frames_of(name, frame)):
                continue
            for joint in range(17):
                total = 0.0
                for axis in range(3):
                    truth = a.annot3[frame, joint, axis] - a.annot3[frame, PELVIS, axis]
                    total += (predictions[name][step, frame, joint, axis] - truth) ** 2
                per_joint[joint].append(math.sqrt(total))
    mpjpe = sum(sum(e) / len(e) for e in per_joint) / 17
    grouped = [e for joints in OFFICIAL_GROUPS_1_BASED.values() for j in joints for e in per_joint[j - 1]]
    pck = 100.0 * sum(e < 150 for e in grouped) / len(grouped)
    auc = 100.0 * sum(sum(e < t for e in grouped) / len(grouped) for t in range(0, 151, 5)) / 31
    group_pck = [100.0 * sum(e < 150 for j in joints for e in per_joint[j - 1]) /
                 sum(len(per_joint[j - 1]) for j in joints) for joints in OFFICIAL_GROUPS_1_BASED.values()]
    return mpjpe, pck, auc, group_pck


def test_noisy_prediction_matches_a_loop_based_computation(annotations):
    predictions = noisy(annotations, num_steps=2, sigma_mm=70.0, seed=3)
    result = score_predictions(predictions, annotations)
    rows = {
        'All': (result.overall, lambda name, frame: True),
        'TS6': (result.sequences[1], lambda name, frame: name == 'TS6'),
        'Reaching/Crouching': (result.activities[3],
                               lambda name, frame: annotations[name].activity[frame] == 4),
    }
    for label, (row, frames_of) in rows.items():
        assert row.name == label
        mpjpe, pck, auc, group_pck = loop_reference(predictions, annotations, 1, frames_of)
        assert 60 < pck < 95 and 20 < auc < 60                      # the noise really costs something
        assert row.mpjpe[1] == pytest.approx(mpjpe, abs=1e-9)
        assert row.pck[1] == pytest.approx(pck, abs=1e-9)
        assert row.auc[1] == pytest.approx(auc, abs=1e-9)
        np.testing.assert_allclose(row.group_pck[1], group_pck, atol=1e-9)


def assert_one_line_error(pattern, call, *args):
    with pytest.raises(UserError, match=pattern) as caught:
        call(*args)
    assert '\n' not in str(caught.value)


def test_bad_predictions_raise_one_line_user_errors(annotations):
    good = noisy(annotations)
    short = dict(good, TS5=good['TS5'][:, :-1])
    assert_one_line_error(r'TS5 is 3 x 17 x 319 x 1; expected 3 x 17 x N x K with N = 320',
                          score_predictions, short, annotations)
    metres = {name: poses / 1000.0 for name, poses in good.items()}
    assert_one_line_error(r'TS5: largest root-relative coordinate is [\d.]+, which looks like metres; '
                          'expected millimetres', score_predictions, metres, annotations)
    assert_one_line_error('prediction for TS6 missing; present: TS5', score_predictions, {'TS5': good['TS5']},
                          annotations)
    two_steps = dict(good, TS6=np.concatenate([good['TS6']] * 2))
    assert_one_line_error('different numbers of DDIM steps', score_predictions, two_steps, annotations)
    broken = dict(good, TS6=good['TS6'].copy())
    broken['TS6'][0, np.flatnonzero(annotations['TS6'].valid)[0], 3, 1] = np.nan
    assert_one_line_error('TS6 holds NaN', score_predictions, broken, annotations)
    # Scoring TS5 alone does not need TS6.
    assert score_predictions({'TS5': good['TS5']}, annotations, ['TS5']).overall.num_frames == 276


def test_bad_prediction_files_raise_one_line_user_errors(annotations, tmp_path):
    scipy.io.savemat(tmp_path / 'transposed.mat', {'TS5': perfect(annotations)['TS5'][0]})      # N x 17 x 3
    assert_one_line_error(r'transposed\.mat: variable TS5 is 320 x 17 x 3 float64; expected 3 x 17 x N x K',
                          load_predictions_mat, tmp_path / 'transposed.mat')
    scipy.io.savemat(tmp_path / 'empty.mat', {'poses': np.zeros(3)})
    assert_one_line_error(r'empty\.mat: no TS1..TS6 variables', load_predictions_mat, tmp_path / 'empty.mat')
    (tmp_path / 'junk.mat').write_text('not a mat file')
    assert_one_line_error(r'junk\.mat: not a MATLAB \.mat file', load_predictions_mat, tmp_path / 'junk.mat')
    assert_one_line_error('prediction file not found', load_predictions_mat, tmp_path / 'missing.mat')


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.reader(f))


def test_csv_tables_have_the_official_names_and_layout(annotations, tmp_path):
    result = score_predictions(noisy(annotations, num_steps=2), annotations)
    written = write_score_tables(result, tmp_path, 'ori_J_Agg')
    assert sorted(p.name for p in written) == sorted(p.name for p in tmp_path.iterdir()) == [
        f'mpii_3dhp_evaluation_{kind}_ori_J_Agg_t{t}.csv' for kind in ('activitywise', 'sequencewise') for t in (1, 2)]

    sequence_path, activity_path = score_table_paths(tmp_path, 'ori_J_Agg', 2)
    seq, act = read_csv(sequence_path), read_csv(activity_path)
    assert all(len(line) == 19 for line in seq + act)
    assert seq[0] == [f'seq_table{i}' for i in range(1, 20)]
    assert act[0] == [f'activity_table{i}' for i in range(1, 20)]
    assert seq[1] == [''] + list(OFFICIAL_JOINT_NAMES) + ['Average']
    assert [line[0] for line in seq[1:]] == ['', 'TestSeq5', 'TestSeq6', 'PCK', 'TestSeq5', 'TestSeq6',
                                             'AUC', 'TestSeq5', 'TestSeq6']
    assert seq[4][:10] == ['PCK'] + list(GROUP_NAMES) + ['Total'] and seq[4][10:] == [''] * 9
    activities = ['Standing/Walking', 'Exercising', 'Sitting', 'Reaching/Crouching', 'On The Floor', 'Sports',
                  'Miscellaneous', 'All']
    assert [line[0] for line in act[1:]] == [''] + activities + ['PCK'] + activities + ['AUC'] + activities
    assert act[3][1:] == ['NaN'] * 18                                       # Exercising: no frames in TS5/TS6

    # Values are the result's at step 2, written with 15 significant digits.
    ts6 = result.sequences[1]
    np.testing.assert_allclose([float(v) for v in seq[3][1:18]], ts6.joint_mpjpe[1], rtol=1e-14)
    assert float(seq[3][18]) == pytest.approx(ts6.mpjpe[1], rel=1e-14)
    assert float(seq[6][9]) == pytest.approx(ts6.pck[1], rel=1e-14)
    assert float(act[27][9]) == pytest.approx(result.overall.auc[1], rel=1e-14)
    assert seq[3][15] == '0' and len(seq[3][1].replace('.', '')) <= 15

    summary = format_summary(result)
    assert 'PCK@150mm (%)' in summary and 'AUC (%)' in summary and 'MPJPE (mm)' in summary
    assert f'{result.overall.pck[1]:.2f}' in summary and 'Exercising' not in summary


def test_score_command_prints_and_writes_tables(annotations, mpi_inf_3dhp_annotations, tmp_path):
    prediction = tmp_path / 'inference_data_J_Agg.mat'
    save_predictions_mat(prediction, noisy(annotations))
    script = str(REPO_ROOT / '3dhp_test' / 'score.py')
    done = subprocess.run([sys.executable, script, str(prediction), str(mpi_inf_3dhp_annotations)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert 'MPJPE (mm)' in done.stdout
    assert (tmp_path / 'mpii_3dhp_evaluation_sequencewise_ori_J_Agg_t1.csv').is_file()

    save_predictions_mat(tmp_path / 'metres.mat', {n: p / 1000.0 for n, p in noisy(annotations).items()})
    done = subprocess.run([sys.executable, script, str(tmp_path / 'metres.mat'), str(mpi_inf_3dhp_annotations)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == EXIT_USER_ERROR
    assert done.stderr.count('\n') == 1 and done.stderr.startswith('error: ')
    assert 'metres.mat: prediction TS5' in done.stderr and 'looks like metres' in done.stderr

    (tmp_path / 'no_annotations' / 'TS1').mkdir(parents=True)
    done = subprocess.run([sys.executable, script, str(prediction), str(tmp_path / 'no_annotations')],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == EXIT_USER_ERROR and 'TS1/annot_data.mat: not found' in done.stderr


OCTAVE = shutil.which('octave-cli') or shutil.which('octave')


@pytest.mark.skipif(OCTAVE is None, reason='octave not installed')
def test_octave_script_agrees_with_python(annotations, mpi_inf_3dhp_annotations, tmp_path):
    # Step 1 exact (errors of 0 test the strict '<'), step 2 noisy; garbage on invalid frames.
    rough = noisy(annotations, sigma_mm=50.0, seed=7)
    predictions = {name: np.concatenate([truth, rough[name]]) for name, truth in perfect(annotations).items()}
    for name, poses in predictions.items():
        poses[:, ~annotations[name].valid] = 1e4
    prediction = tmp_path / 'inference_data_P_Best.mat'
    save_predictions_mat(prediction, predictions)
    result = score_predictions(load_predictions_mat(prediction), annotations)
    write_score_tables(result, tmp_path / 'python', 'ori_P_Best')
    call = (f"addpath('{REPO_ROOT / '3dhp_test'}'); "
            f"mpii_score_predictions('{prediction}', '{mpi_inf_3dhp_annotations}', '{tmp_path / 'octave'}')")
    done = subprocess.run([OCTAVE, '--quiet', '--no-window-system', '--eval', call], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for step in (1, 2):
        for ours, theirs in zip(score_table_paths(tmp_path / 'python', 'ori_P_Best', step),
                                score_table_paths(tmp_path / 'octave', 'ori_P_Best', step)):
            a, b = read_csv(ours), read_csv(theirs)
            assert len(a) == len(b)
            for line_a, line_b in zip(a, b):
                for cell_a, cell_b in zip(line_a, line_b):
                    try:
                        x, y = float(cell_a), float(cell_b)
                    except ValueError:
                        assert cell_a == cell_b
                        continue
                    assert x == pytest.approx(y, abs=1e-6, nan_ok=True)

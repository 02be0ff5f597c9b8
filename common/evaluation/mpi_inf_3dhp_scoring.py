"""MPI-INF-3DHP test scoring without MATLAB: the official scorer's numbers, computed in numpy.

Prediction files
    ``inference_data_{P_Agg,P_Best,J_Best,J_Agg}.mat`` hold one variable per evaluated test
    sequence, ``TS1`` .. ``TS6``, each a double array 3 x 17 x N x K in MATLAB order (xyz,
    joint, every frame of the sequence including invalid ones, DDIM step), millimetres,
    root-relative (pelvis at zero). In Python the same data is (K, N, 17, 3).

Definitions of the official scorer (read in the public MATLAB code shipped with the test set
and used by D3DP: ``paTRICK-swk/D3DP`` ``3dhp_test/test_util/mpii_test_predictions_ori_py.m``
with the helpers ``mpii_evaluate_errors``, ``mpii_compute_3d_pck``,
``mpii_get_pck_auc_joint_groups``, ``mpii_get_joints('relevant')`` and
``mpii_get_activity_name``; CSV layout from ``3dhp_test/test_util/H20_K10/*.csv``):

* Ground truth: ``annot3`` (camera frame, mm; the "ori" script, not ``univ_annot3``), made
  root-relative by subtracting joint 15 (1-based; pelvis, 0-based 14) of the same frame.
  The prediction is used exactly as given (it is not re-centred).
* Frames: only those with ``valid_frame`` set, in file order; the prediction of frame j is
  column j of the full-length array, so invalid frames are skipped, never compacted.
* Error of a joint in a frame: Euclidean distance in mm.
* MPJPE: per joint, the mean over the frames of a row; "Average" = mean of those 17 values
  (pelvis included, its error is zero for a root-relative prediction).
* PCK: 100 * fraction of (joint, frame) pairs with error < 150 mm (strict), per joint group;
  "Total" = the joint-count weighted mean of the groups = the fraction over all 14 grouped
  joints (pelvis, spine and head are in no group).
* AUC: per group, 100 * mean over the 31 thresholds 0, 5, ..., 150 mm of the same fraction
  (strict '<', so threshold 0 counts nothing: a perfect prediction scores 30/31 = 96.7742);
  "Total" uses the joint-weighted curve.
* Joint groups (names as in the CSV): Head = head_top; Neck = neck; Shou, Elbow, Wrist, Hip,
  Knee, Ankle = the right and the left joint.
* Sequence rows: frames of one sequence (label ``TestSeq<i>``). Activity rows (1..7:
  Standing/Walking, Exercising, Sitting, Reaching/Crouching, On The Floor, Sports,
  Miscellaneous): the valid frames of all scored sequences whose ``activity_annotation`` is
  that class, pooled (frame-weighted, not a mean of sequences). "All": every valid frame of
  every scored sequence, pooled. A row without frames is NaN (MATLAB's mean of nothing).
  Checked on D3DP's published H20_K10 tables: their "All" MPJPE 28.829 and PCK 98.134 are the
  frame-weighted means of the six sequence rows (603, 540, 506, 558, 276, 392 valid frames, read
  off the PCK fractions), while the plain mean of the sequences would be 29.99.
* Steps: each DDIM step t = 1..K is scored on its own; the scorer writes two CSV files per
  step: ``mpii_3dhp_evaluation_sequencewise_<setting>_t<t>.csv`` and ``..._activitywise_...``
  (D3DP's setting is ``ori_<aggregation>``, e.g. ``ori_J_Agg``).
* CSV layout (``writetable(cell2table(table))``): a first line of variable names
  ``seq_table1..seq_table19`` (``activity_table1..19``); an MPJPE block (header: empty cell,
  the 17 joint names, ``Average``; one row per sequence or activity; the activity table adds
  ``All``); a ``PCK`` block and an ``AUC`` block (header: PCK/AUC, the 8 group names,
  ``Total``; rows as above), padded with empty cells to 19 columns. Numbers are written with
  15 significant digits (``%.15g``; e.g. 31.3830091047589, 100, 0 in the published tables).
  NaN of an empty row is written ``NaN``, MATLAB's spelling (the published tables, scored on all
  six sequences, have no empty row to confirm it). The sequence table has no "All" row;
  ``ScoreResult.overall`` carries it for the summary.

Only deviation, deliberate: a sequence row is labelled by its TS number (``TestSeq5`` for TS5)
where MATLAB numbers rows by position in its list; the two agree when TS1..TS6 are scored.
"""
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from common.core.atomic import write_bytes_atomic
from common.core.errors import UserError
from common.data.skeleton import MPI_INF_3DHP_17

# Joint names as the official scorer writes them (``mpii_get_joints('relevant')``), in the
# order of ``annot3``; the same joints as ``MPI_INF_3DHP_17``.
OFFICIAL_JOINT_NAMES = ('head_top', 'neck', 'right_shoulder', 'right_elbow', 'right_wrist',
                        'left_shoulder', 'left_elbow', 'left_wrist', 'right_hip', 'right_knee',
                        'right_ankle', 'left_hip', 'left_knee', 'left_ankle', 'pelvis', 'spine', 'head')
NUM_JOINTS = len(OFFICIAL_JOINT_NAMES)
assert NUM_JOINTS == MPI_INF_3DHP_17.num_joints
ROOT_JOINT = MPI_INF_3DHP_17.root

# PCK/AUC joint groups (``mpii_get_pck_auc_joint_groups``); pelvis, spine and head are in none.
JOINT_GROUPS = (
    ('Head', ('head_top',)),
    ('Neck', ('neck',)),
    ('Shou', ('right_shoulder', 'left_shoulder')),
    ('Elbow', ('right_elbow', 'left_elbow')),
    ('Wrist', ('right_wrist', 'left_wrist')),
    ('Hip', ('right_hip', 'left_hip')),
    ('Knee', ('right_knee', 'left_knee')),
    ('Ankle', ('right_ankle', 'left_ankle')),
)
GROUP_NAMES = tuple(name for name, _ in JOINT_GROUPS)

PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLD_STEP_MM = 5.0
# 0, 5, ..., 150 mm: 31 thresholds.
AUC_THRESHOLDS_MM = np.arange(0.0, PCK_THRESHOLD_MM + AUC_THRESHOLD_STEP_MM / 2, AUC_THRESHOLD_STEP_MM)
PERCENT = 100.0

ACTIVITY_NAMES = {1: 'Standing/Walking', 2: 'Exercising', 3: 'Sitting', 4: 'Reaching/Crouching',
                  5: 'On The Floor', 6: 'Sports', 7: 'Miscellaneous'}
ALL_ROW = 'All'

SEQUENCE_VARIABLE = re.compile(r'^TS\d+$')
# A root-relative human pose in millimetres reaches hundreds of mm from the pelvis; in metres
# every coordinate stays below ~1.5. Anything smaller than this is taken for metres.
METRES_SUSPICION_MM = 10.0

CSV_NUMBER_FORMAT = '.15g'      # MATLAB writetable: 15 significant digits
CSV_WIDTH = NUM_JOINTS + 2      # row label, 17 joints, Average
PREDICTION_LAYOUT = '3 x 17 x N x K (xyz, joint, all N frames of the sequence, DDIM step), double, millimetres'


def _group_weights() -> np.ndarray:
    """(G, J) matrix averaging per-joint values into the joint groups."""
    weights = np.zeros((len(JOINT_GROUPS), NUM_JOINTS))
    for g, (_, joints) in enumerate(JOINT_GROUPS):
        weights[g, [OFFICIAL_JOINT_NAMES.index(j) for j in joints]] = 1.0 / len(joints)
    return weights


GROUP_WEIGHTS = _group_weights()
GROUPED_JOINTS = np.flatnonzero(GROUP_WEIGHTS.sum(axis=0))      # the 14 joints PCK/AUC look at


@dataclass(frozen=True)
class ScoreRow:
    """Scores of one set of valid frames (a sequence, an activity or all), for every DDIM step.

    joint_mpjpe: (K, 17) mm, per joint (official order); group_pck, group_auc: (K, 8) percent,
    per ``GROUP_NAMES``; pck, auc: (K,) percent over the 14 grouped joints. NaN when the row
    has no frames.
    """
    name: str
    num_frames: int
    joint_mpjpe: np.ndarray
    group_pck: np.ndarray
    group_auc: np.ndarray
    pck: np.ndarray
    auc: np.ndarray

    @property
    def mpjpe(self) -> np.ndarray:
        """(K,) mm, mean over the 17 joints."""
        return self.joint_mpjpe.mean(axis=-1)


@dataclass(frozen=True)
class ScoreResult:
    """The official tables for every step: sequence rows, the 7 activity rows and the "All" row."""
    sequences: tuple
    activities: tuple
    overall: ScoreRow

    @property
    def num_steps(self) -> int:
        return self.overall.joint_mpjpe.shape[0]


def save_predictions_mat(path, predictions: dict):
    """Write the prediction file the official scorer loads, atomically.

    predictions: {'TS1': (K, N, 17, 3) array, ...}, millimetres, root-relative, all N frames.
    Stored as MATLAB double 3 x 17 x N x K per sequence (MAT v5, read by MATLAB and Octave).
    """
    variables = {}
    for name, poses in predictions.items():
        poses = np.asarray(poses, dtype=np.float64)
        if poses.ndim != 4 or poses.shape[2:] != (NUM_JOINTS, 3):
            raise ValueError(f'{name}: expected (K, N, {NUM_JOINTS}, 3) millimetres, got {poses.shape}')
        variables[name] = np.ascontiguousarray(poses.transpose(3, 2, 1, 0))
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, variables, do_compression=False)
    write_bytes_atomic(Path(path), buffer.getvalue())


def _read_mat_variables(path: Path) -> dict:
    """{name: array in MATLAB dimension order} of the TS* variables of a MAT v5 or v7.3 file."""
    try:
        content = scipy.io.loadmat(path)
    except NotImplementedError:             # MAT v7.3 is HDF5; h5py stores dimensions reversed
        with h5py.File(path, 'r') as f:
            return {k: np.array(f[k]).T for k in f if SEQUENCE_VARIABLE.match(k)}
    except (scipy.io.matlab.MatReadError, ValueError, OSError) as err:
        raise UserError(f'{path}: not a MATLAB .mat file ({err})') from None
    return {k: v for k, v in content.items() if SEQUENCE_VARIABLE.match(k)}


def load_predictions_mat(path) -> dict:
    """Read a prediction file -> {'TS1': (K, N, 17, 3) float64 millimetres, ...}.

    MATLAB drops trailing singleton dimensions (3 x 17 x N when K = 1); they are restored.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f'{path}: prediction file not found; expected a .mat with TS1..TS6 of {PREDICTION_LAYOUT}')
    variables = _read_mat_variables(path)
    if not variables:
        raise UserError(f'{path}: no TS1..TS6 variables; expected each of {PREDICTION_LAYOUT}')
    predictions = {}
    for name, array in sorted(variables.items(), key=lambda item: int(item[0][2:])):
        if not np.issubdtype(array.dtype, np.number) or not 2 <= array.ndim <= 4 or array.shape[:2] != (3, NUM_JOINTS):
            shape = ' x '.join(map(str, array.shape))
            raise UserError(f'{path}: variable {name} is {shape} {array.dtype}; expected {PREDICTION_LAYOUT}')
        array = array.reshape(array.shape + (1,) * (4 - array.ndim))
        predictions[name] = array.astype(np.float64).transpose(3, 2, 1, 0)
    return predictions


def _matlab_shape(poses: np.ndarray) -> str:
    """'3 x 17 x N x K' text for a (K, N, 17, 3) array (any ndim; shown reversed like MATLAB)."""
    return ' x '.join(str(s) for s in reversed(poses.shape))


def _checked_prediction(name: str, poses, annotation) -> np.ndarray:
    """(K, N, 17, 3) float64 for one sequence, or a UserError saying what is wrong with it."""
    poses = np.asarray(poses, dtype=np.float64)
    n = annotation.num_frames
    if poses.ndim != 4 or poses.shape[1:] != (n, NUM_JOINTS, 3):
        raise UserError(f'prediction {name} is {_matlab_shape(poses)}; expected 3 x {NUM_JOINTS} x N x K with '
                        f'N = {n}, every frame of {name} in annot_data.mat, invalid ones included')
    valid = poses[:, annotation.valid]
    if not np.isfinite(valid).all():
        raise UserError(f'prediction {name} holds NaN or infinite values on valid frames; expected millimetres')
    extent = np.abs(valid - valid[..., ROOT_JOINT:ROOT_JOINT + 1, :]).max(initial=0.0)
    if extent < METRES_SUSPICION_MM:
        raise UserError(f'prediction {name}: largest root-relative coordinate is {extent:.3g}, which looks like '
                        'metres; expected millimetres')
    return poses


def joint_errors(poses: np.ndarray, annotation) -> np.ndarray:
    """(K, V, 17) Euclidean joint errors in mm on the V valid frames.

    poses: (K, N, 17, 3) mm, used as given; ground truth: ``annotation.annot3`` minus its pelvis.
    """
    truth = annotation.annot3[annotation.valid]
    truth = truth - truth[:, ROOT_JOINT:ROOT_JOINT + 1]
    return np.linalg.norm(poses[:, annotation.valid] - truth, axis=-1)


def score_row(name: str, errors: np.ndarray) -> ScoreRow:
    """Official MPJPE, PCK and AUC of one row from its (K, V, 17) joint errors in mm."""
    num_steps, num_frames, _ = errors.shape
    if num_frames == 0:
        def nan(*shape):
            return np.full((num_steps,) + shape, np.nan)
        return ScoreRow(name, 0, nan(NUM_JOINTS), nan(len(GROUP_NAMES)), nan(len(GROUP_NAMES)), nan(), nan())
    joint_pck = (errors < PCK_THRESHOLD_MM).mean(axis=1)                               # (K, J)
    joint_curve = (errors[..., None] < AUC_THRESHOLDS_MM).mean(axis=1)                 # (K, J, T)
    group_curve = np.einsum('gj,kjt->kgt', GROUP_WEIGHTS, joint_curve)
    return ScoreRow(
        name=name,
        num_frames=num_frames,
        joint_mpjpe=errors.mean(axis=1),
        group_pck=PERCENT * joint_pck @ GROUP_WEIGHTS.T,
        group_auc=PERCENT * group_curve.mean(axis=-1),
        pck=PERCENT * joint_pck[:, GROUPED_JOINTS].mean(axis=-1),
        auc=PERCENT * joint_curve[:, GROUPED_JOINTS].mean(axis=(-2, -1)),
    )


def score_predictions(predictions: dict, annotations: dict, sequences=None) -> ScoreResult:
    """Score predictions like the official MATLAB scorer, every DDIM step on its own.

    predictions: {'TS1': (K, N, 17, 3) mm, root-relative, all N frames} (``load_predictions_mat``).
    annotations: {'TS1': TestAnnotation} (``common.data.mpi_inf_3dhp.read_test_annotations``).
    sequences: the sequences to score, default every annotated one; each needs a prediction.
    """
    sequences = list(annotations) if sequences is None else list(sequences)
    for name in sequences:
        if name not in annotations:
            raise UserError(f'no annotation for {name}; annotated: {", ".join(annotations) or "none"}')
        if name not in predictions:
            raise UserError(f'prediction for {name} missing; present: {", ".join(predictions) or "none"}')
    checked = {name: _checked_prediction(name, predictions[name], annotations[name]) for name in sequences}
    steps = {name: poses.shape[0] for name, poses in checked.items()}
    if len(set(steps.values())) > 1:
        raise UserError(f'predictions have different numbers of DDIM steps K: {steps}; expected one K for all')

    errors = {name: joint_errors(checked[name], annotations[name]) for name in sequences}
    all_errors = np.concatenate([errors[name] for name in sequences], axis=1)
    all_activities = np.concatenate([annotations[name].activity[annotations[name].valid] for name in sequences])
    return ScoreResult(
        sequences=tuple(score_row(name, errors[name]) for name in sequences),
        activities=tuple(score_row(label, all_errors[:, all_activities == activity])
                         for activity, label in ACTIVITY_NAMES.items()),
        overall=score_row(ALL_ROW, all_errors),
    )


def _table_cells(labelled_rows, step: int) -> list:
    """The official table for one 0-based step: lists of 19 text cells. labelled_rows: [(label, ScoreRow)]."""
    def padded(cells):
        return cells + [''] * (CSV_WIDTH - len(cells))

    def numbers(values):
        return ['NaN' if np.isnan(v) else format(v, CSV_NUMBER_FORMAT) for v in values]

    table = [padded([''] + list(OFFICIAL_JOINT_NAMES) + ['Average'])]
    table += [padded([label] + numbers([*row.joint_mpjpe[step], row.mpjpe[step]])) for label, row in labelled_rows]
    table.append(padded(['PCK'] + list(GROUP_NAMES) + ['Total']))
    table += [padded([label] + numbers([*row.group_pck[step], row.pck[step]])) for label, row in labelled_rows]
    table.append(padded(['AUC'] + list(GROUP_NAMES) + ['Total']))
    table += [padded([label] + numbers([*row.group_auc[step], row.auc[step]])) for label, row in labelled_rows]
    return table


def _csv_text(variable: str, table: list) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow([f'{variable}{i}' for i in range(1, CSV_WIDTH + 1)])
    writer.writerows(table)
    return out.getvalue()


def sequence_label(name: str) -> str:
    """'TS5' -> 'TestSeq5', the official row label."""
    return 'TestSeq' + name[len('TS'):]


def score_table_paths(out_dir, setting: str, step: int) -> tuple:
    """(sequencewise, activitywise) CSV paths of a 1-based step, named like the official outputs."""
    out_dir = Path(out_dir)
    return tuple(out_dir / f'mpii_3dhp_evaluation_{kind}_{setting}_t{step}.csv'
                 for kind in ('sequencewise', 'activitywise'))


def write_score_tables(result: ScoreResult, out_dir, setting: str) -> list:
    """Write the sequence-wise and activity-wise CSV tables of every step (t = 1..K), atomically.

    Returns the written paths. ``setting`` names the files, e.g. ``ori_J_Agg`` as in D3DP.
    """
    written = []
    for step in range(result.num_steps):
        sequence_path, activity_path = score_table_paths(out_dir, setting, step + 1)
        sequence_table = _table_cells([(sequence_label(r.name), r) for r in result.sequences], step)
        activity_table = _table_cells([(r.name, r) for r in result.activities + (result.overall,)], step)
        write_bytes_atomic(sequence_path, _csv_text('seq_table', sequence_table).encode())
        write_bytes_atomic(activity_path, _csv_text('activity_table', activity_table).encode())
        written += [sequence_path, activity_path]
    return written


def format_summary(result: ScoreResult) -> str:
    """Printable tables: the "All" row for every step, then every row at the last step."""
    header = f'{"":<20} {"frames":>6} {"PCK@150mm (%)":>14} {"AUC (%)":>8} {"MPJPE (mm)":>11}'

    def line(label, row, step):
        return f'{label:<20} {row.num_frames:>6} {row.pck[step]:>14.2f} {row.auc[step]:>8.2f} {row.mpjpe[step]:>11.2f}'

    last = result.num_steps - 1
    lines = [f'All valid frames, per DDIM step (K = {result.num_steps}):', header]
    lines += [line(f't = {step + 1}', result.overall, step) for step in range(result.num_steps)]
    lines += ['', f'Per sequence and activity, step t = {last + 1}:', header]
    lines += [line(r.name, r, last) for r in result.sequences]
    lines += [line(r.name, r, last) for r in result.activities if r.num_frames]
    lines.append(line(ALL_ROW, result.overall, last))
    return '\n'.join(lines)

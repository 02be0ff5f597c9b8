"""The MPI-INF-3DHP experiment of ``main_3dhp.py``: its data (``load_data``: the processed training and
test files, ``--test-sequences``, the official annotations of ``--annotations``), the original's counting,
the export of the four ``inference_data_*.mat`` files and their scoring, and ``main(argv)``, which trains or
evaluates (``common.run.experiment``).
"""
from pathlib import Path

import numpy as np

from common.core.errors import UserError, exit_on_user_error
from common.core.units import MM_PER_M
from common.data.mpi_inf_3dhp import (ANNOTATION_FILE, TEST_FILE, TEST_SEQUENCES, TRAIN_FILE, load_3dhp_test,
                                      load_3dhp_train, read_test_annotations)
from common.data.skeleton import MPI_INF_3DHP_17
from common.evaluation.baseline import MEAN_POSE_LABEL
from common.evaluation.metrics import GROUND_TRUTH_USED
from common.evaluation.protocol import ORIGINAL, Counting
from common.evaluation.mpi_inf_3dhp_scoring import (format_summary, save_predictions_mat, score_predictions,
                                                    write_score_tables)
from common.evaluation.report import setting_label, smoothing_tag
from common.run.arguments import parse_args
from common.run.experiment import ExperimentData, run

# The original's main_3dhp.py evaluates in batches of 2 windows (whatever -b says) and validates in
# batches of 4; both pool every sequence's counted frames into one number (--protocol original).
ORIGINAL_TEST_COUNTING = Counting(
    ORIGINAL, 2, pooled=True, batch_source="fixed at 2 in the original's main_3dhp.py; -b sets only the sampling batch")
ORIGINAL_VALIDATION_COUNTING = Counting(ORIGINAL, 4, pooled=True,
                                        batch_source="fixed at 4 in the original's per-epoch validation")


def export_file_name(setting: str, smooth_window=None) -> str:
    """'J-Agg' -> 'inference_data_J_Agg.mat' (the names the official scoring script reads); with
    ``--smooth 9`` (smooth_window 9) 'inference_data_J_Agg_smooth9.mat'."""
    return '_'.join(['inference_data', setting.replace('-', '_'), *smoothing_tag(smooth_window)]) + '.mat'


def export_and_score(result, sequences, annotations, checkpoint_dir: Path):
    """Write the four prediction files, then score them when the official ``annotations`` are given
    ({name: TestAnnotation}, read by ``read_checked_annotations``, or None)."""
    exports = {}
    for setting in result.sequence_results[0].poses:
        exports[setting] = {sequences[r.index].subject: r.poses[setting].transpose(1, 0, 2, 3) * MM_PER_M
                            for r in result.sequence_results}
        path = checkpoint_dir / export_file_name(setting, result.smooth_window)
        save_predictions_mat(path, exports[setting])
        print(f'Wrote {path}')
    if annotations is None:
        return
    for setting, predictions in exports.items():
        try:
            score = score_predictions(predictions, annotations)
        except UserError as err:
            raise UserError(f'{export_file_name(setting, result.smooth_window)}: {err}; the four .mat files in '
                            f'{checkpoint_dir} are written (score them with 3dhp_test/score.py)') from None
        name = '_'.join(['ori', setting.replace('-', '_'), *smoothing_tag(result.smooth_window)])
        write_score_tables(score, checkpoint_dir, name)
        print(f'\n{setting_label(setting)} (official scorer definitions; ground truth used: '
              f'{GROUND_TRUTH_USED[setting]}):\n{format_summary(score)}')
    if result.mean_pose_errors is not None:
        constant = {name: np.broadcast_to(result.mean_pose.pose * MM_PER_M, (1, *poses.shape[1:]))
                    for name, poses in exports['P-Agg'].items()}
        overall = score_predictions(constant, annotations).overall
        print(f'\n{MEAN_POSE_LABEL} (baseline, no model; official scorer definitions), all valid frames: '
              f'PCK@150mm {overall.pck[0]:.2f} %, AUC {overall.auc[0]:.2f} %, MPJPE {overall.mpjpe[0]:.2f} mm')


def read_checked_annotations(folder, test) -> dict:
    """--annotations: the official ``TS*/annot_data.mat`` of the ``test`` sequences, each with as many
    frames as the test file has; read before any model work, so a bad folder costs no sampling."""
    try:
        annotations = read_test_annotations(folder, [s.subject for s in test])
    except UserError as err:
        raise UserError(f'--annotations {folder}: {err}') from None
    for sequence in test:
        annotation = annotations[sequence.subject]
        if annotation.annot3.shape[1:] != (MPI_INF_3DHP_17.num_joints, 3) or \
                annotation.num_frames != sequence.num_frames:
            raise UserError(f'--annotations {folder}: {sequence.subject}/{ANNOTATION_FILE} has annot3 '
                            f'{annotation.annot3.shape}; expected ({sequence.num_frames}, '
                            f'{MPI_INF_3DHP_17.num_joints}, 3), the frames of {sequence.subject} in {TEST_FILE}')
    return annotations


def load_data(args) -> ExperimentData:
    """main_3dhp.py's parsed flags -> the MPI-INF-3DHP sequences (the test sequences also validate), the
    annotations of ``--annotations`` read and checked, and the hook that exports and scores an evaluation."""
    sequences = [s for s in args.test_sequences.split(',') if s]
    unknown = [s for s in sequences if s not in TEST_SEQUENCES]
    if unknown or not sequences:
        raise UserError(f'--test-sequences {args.test_sequences}: expected names among {",".join(TEST_SEQUENCES)}')
    data_dir = Path(args.data_dir)
    train = [] if args.evaluate else load_3dhp_train(data_dir / TRAIN_FILE).sequences
    test_set = load_3dhp_test(data_dir / TEST_FILE, sequences)
    test = test_set.sequences
    annotations = read_checked_annotations(args.annotations, test) if args.annotations else None
    names = [s.subject for s in test]
    return ExperimentData(
        layout='mpi_inf_3dhp', skeleton=test_set.skeleton, keypoints_mirror=test_set.keypoints_mirror,
        train=train, validation=test, validation_groups=names, test=test, test_groups=names,
        test_action_labels=[''] * len(test), group_title='sequence', action_source='absent', keep_poses=True,
        on_evaluated=lambda result, folder, stem: export_and_score(result, test, annotations, folder),
        training_sequences=lambda: load_3dhp_train(data_dir / TRAIN_FILE).sequences,
        description={'validation': 'the test sequences (valid frames), as the reference does'},
        result_tags=() if sequences == list(TEST_SEQUENCES) else ('+'.join(sequences),),
        original_test_counting=ORIGINAL_TEST_COUNTING, original_validation_counting=ORIGINAL_VALIDATION_COUNTING,
        training_data={'training data': f'{TRAIN_FILE} ({len(train)} sequences, {sum(s.num_frames for s in train)} '
                                        'frames)' if train else TRAIN_FILE})


def main(argv=None):
    """Parse ``argv`` (default: sys.argv), then train or evaluate; returns the final EvaluationResult."""
    with exit_on_user_error():
        args = parse_args('mpi_inf_3dhp', argv)
        return run(args, load_data)


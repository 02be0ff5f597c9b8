"""Score MPI-INF-3DHP test predictions like the official MATLAB scorer, without MATLAB.

    python 3dhp_test/score.py checkpoint/model_3dhp/inference_data_J_Agg.mat path/to/mpi_inf_3dhp_test_set

prints the summary and writes the official CSV tables (per DDIM step t) into the current folder,
or --out: mpii_3dhp_evaluation_{sequencewise,activitywise}_<setting>_t<t>.csv (never beside the
prediction file, whose folder may not be yours). The output folder and names are checked first,
before anything is read or scored.
"""
import argparse
import re
import sys
from pathlib import Path

# The folder name starts with a digit, so this file is run as a script, not imported as a module.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.core.errors import UserError, exit_on_user_error  # noqa: E402

with exit_on_user_error():          # Ctrl-C while the modules load: one line, exit 130
    from common.core.atomic import check_writable
    from common.data.mpi_inf_3dhp import read_test_annotations
    from common.evaluation.metrics import GROUND_TRUTH_USED
    from common.evaluation.mpi_inf_3dhp_scoring import (format_summary, load_predictions_mat, score_predictions,
                                                        write_score_tables)
    from common.evaluation.report import setting_label

PREDICTION_PREFIX = 'inference_data_'
GROUND_TRUTH_TAG = 'ori'    # the official "ori" script: camera-frame annot3 as ground truth


def default_setting(prediction_path: Path) -> str:
    """'inference_data_J_Agg.mat' -> 'ori_J_Agg' (D3DP's file names); any other file -> its stem."""
    stem = prediction_path.stem
    if stem.startswith(PREDICTION_PREFIX):
        return f'{GROUND_TRUTH_TAG}_{stem[len(PREDICTION_PREFIX):]}'
    return stem


def export_ground_truth_note(path: Path) -> str:
    """What our export ``inference_data_<setting>[_smoothN].mat`` took from the ground truth ('' for other files)."""
    setting = re.sub(r'_smooth\d+$', '', path.stem.removeprefix(PREDICTION_PREFIX)).replace('_', '-')
    if setting not in GROUND_TRUTH_USED:
        return ''
    return f'; {setting_label(setting)} used ground truth when predicting: {GROUND_TRUTH_USED[setting]}'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('predictions', type=Path,
                        help='.mat file with TS1..TS6, each 3 x 17 x N x K double, millimetres, root-relative')
    parser.add_argument('annotations', type=Path,
                        help='official test set folder holding TS1..TS6/annot_data.mat')
    parser.add_argument('--out', type=Path, default=Path('.'),
                        help='folder for the CSV tables (default: the current folder)')
    parser.add_argument('--setting', default=None,
                        help='name used in the CSV file names (default: ori_<X> for inference_data_<X>.mat)')
    parser.add_argument('--sequences', default=None,
                        help='comma-separated sequences to score, e.g. TS5,TS6 (default: every TS folder present)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    with exit_on_user_error():
        setting = args.setting or default_setting(args.predictions)
        if Path(setting).name != setting or not setting:
            raise UserError(f'--setting {setting}: expected a name for the CSV files, without a folder')
        check_writable(args.out, '--out')
        sequences = args.sequences.split(',') if args.sequences else None
        annotations = read_test_annotations(args.annotations, sequences)
        predictions = load_predictions_mat(args.predictions)
        try:
            result = score_predictions(predictions, annotations)
        except UserError as err:
            raise UserError(f'{args.predictions}: {err}') from None
        out_dir = args.out
        written = write_score_tables(result, out_dir, setting)
    print(f'{args.predictions} ({setting}), ground truth: annot3 of {", ".join(annotations)}'
          + export_ground_truth_note(args.predictions))
    print(format_summary(result))
    print(f'wrote {len(written)} CSV tables to {out_dir}')


if __name__ == '__main__':
    main()

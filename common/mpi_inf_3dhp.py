"""MPI-INF-3DHP's official files -> the processed files ``main_3dhp.py`` reads.

    python -m common.mpi_inf_3dhp convert-test ANNOT_ROOT data/data_test_3dhp_ori.npz [--sequences TS5,TS6]
    python -m common.mpi_inf_3dhp prepare-train RELEASE [--out data] [--allow-missing] [--no-progress]

``convert-test`` builds the test file from the official ``TS*/annot_data.mat``
(``common.data.mpi_inf_3dhp.convert_test_annotations``); ``prepare-train`` builds the training file from
the official training release (``common.data.mpi_inf_3dhp_release``). Both check what they read before
anything is written, and write atomically.
"""
import argparse
from pathlib import Path

from common.core.errors import UserError, exit_on_user_error

with exit_on_user_error():          # Ctrl-C while the modules load: one line, exit 130
    from common.data.mpi_inf_3dhp import ANNOTATION_FILE, TEST_FILE, TRAIN_FILE, convert_test_annotations
    from common.data.mpi_inf_3dhp_release import prepare_train, train_summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m common.mpi_inf_3dhp', description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    convert = commands.add_parser('convert-test', help=f'build {TEST_FILE} from the official TS*/{ANNOTATION_FILE}')
    convert.add_argument('annot_root', help='folder holding TS1..TS6/annot_data.mat (mpi_inf_3dhp_test_set)')
    convert.add_argument('out', help=f'output .npz, e.g. data/{TEST_FILE}')
    convert.add_argument('--sequences', help='comma-separated test sequences to convert (default: all present)')
    train = commands.add_parser('prepare-train', help=f'build {TRAIN_FILE} from the official training release')
    train.add_argument('release', help='folder holding S1..S8/Seq1,Seq2/annot.mat (the training release)')
    train.add_argument('--out', default='data', help=f'output folder for {TRAIN_FILE} (default: data)')
    train.add_argument('--allow-missing', action='store_true',
                       help='write the sequences that are there when some are missing (they are listed)')
    train.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def main(argv=None):
    with exit_on_user_error():
        args = parse_args(argv)
        if args.command == 'prepare-train':
            prepared = prepare_train(args.release, Path(args.out) / TRAIN_FILE, args.allow_missing,
                                     show_progress=not args.no_progress)
            print('\n'.join(train_summary(prepared)))
            return
        sequences = None if args.sequences is None else [s.strip() for s in args.sequences.split(',') if s.strip()]
        if sequences is not None and not sequences:
            raise UserError('--sequences: expected comma-separated names such as TS5,TS6')
        annotations = convert_test_annotations(args.annot_root, args.out, sequences)
        for name, annotation in annotations.items():
            print(f'{name}: {annotation.num_frames} frames, {int(annotation.valid.sum())} valid')
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()

"""Human3.6M's releases -> the VideoPose3D files ``main.py`` reads: ``python -m common.h36m prepare``.

    python -m common.h36m prepare (--from-source PATH | --from-archive PATH) [--out data]
        [--subjects S1,S5,...] [--allow-missing] [--no-progress]

``--from-source``: the official release, extracted; ``--from-archive``: the widely used preprocessed
``h36m.zip``. Both write ``data_3d_h36m.npz`` and ``data_2d_h36m_gt.npz`` (``common.data.h36m_release``
reads, checks and converts the takes; facts in docs/datasets.md), nothing unless every take was read.
"""
import argparse

from common.core.errors import UserError, exit_on_user_error

with exit_on_user_error():          # Ctrl-C while torch and the modules load: one line, exit 130
    from common.data.h36m import POSITIONS_3D_FILE, keypoints_file_name
    from common.data.h36m_release import (ARCHIVE, ARCHIVE_TOP_FOLDER, GT_KEYPOINTS, SOURCE, SUBJECTS, prepare,
                                          summary)


def parse_subjects(text) -> tuple:
    """--subjects: None -> every subject of the release; else the comma-separated subjects, each once."""
    if text is None:
        return SUBJECTS
    subjects = tuple(dict.fromkeys(s.strip() for s in text.split(',') if s.strip()))
    unknown = [s for s in subjects if s not in SUBJECTS]
    if not subjects or unknown:
        raise UserError(f'--subjects {text}: expected comma-separated subjects among {",".join(SUBJECTS)}'
                        + (f' ({", ".join(unknown)} unknown)' if unknown else ''))
    return subjects


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m common.h36m', description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    command = commands.add_parser(
        'prepare', help=f'write {POSITIONS_3D_FILE} and {keypoints_file_name(GT_KEYPOINTS)} from a Human3.6M release')
    release = command.add_mutually_exclusive_group(required=True)
    release.add_argument(SOURCE.flag, metavar='PATH',
                         help=f'the official release, extracted (S1/{SOURCE.folder}/Directions 1.cdf, ...)')
    release.add_argument(ARCHIVE.flag, metavar='PATH', help=f'h36m.zip, the folder it extracts to, or its '
                                                            f'{ARCHIVE_TOP_FOLDER}/ (S1/{ARCHIVE.folder}/*.h5)')
    command.add_argument('--out', default='data', help='output folder (default: data)')
    command.add_argument('--subjects', help=f'comma-separated subjects to prepare (default: {",".join(SUBJECTS)})')
    command.add_argument('--allow-missing', action='store_true',
                         help='write the takes that are there when some are missing (they are listed)')
    command.add_argument('--no-progress', action='store_true', help='no progress bar')
    return parser.parse_args(argv)


def main(argv=None):
    with exit_on_user_error():
        args = parse_args(argv)
        subjects = parse_subjects(args.subjects)
        path, fmt = (args.from_source, SOURCE) if args.from_source is not None else (args.from_archive, ARCHIVE)
        prepared = prepare(path, fmt, args.out, subjects, args.allow_missing,
                           show_progress=not args.no_progress)
        print('\n'.join(summary(prepared)))


if __name__ == '__main__':
    main()

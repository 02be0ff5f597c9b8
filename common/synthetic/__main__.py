"""Synthetic Human3.6M and MPI-INF-3DHP datasets, written in the exact layouts of the real files.

Researchers without the real datasets generate these files and run every loader, the demo and
the tests unchanged::

    python -m common.synthetic --out data/synthetic [--seed 0] [--size demo|full] [--frames N]
        [--takes T] [--detector-name synthetic_det] [--no-3dhp] [--h36m-size] [--no-progress]

``--h36m-size`` makes the Human3.6M files at the real dataset's size (``h36m_size_plan``): its
seven subjects, 15 actions x 2 takes (S11 without ``Directions``, which the community's files
drop), take lengths within the real ones' range whose totals are the real 1,559,752 training
(S1, S5, S6, S7, S8) and 543,344 test (S9, S11) 2D poses over the four cameras. Takes are made
one at a time and only the arrays written are kept (about 0.8 GB), so scale runs need no licence.

The files and how they are made: ``common.synthetic.writer``.
"""
import argparse
import time
from pathlib import Path

from common.core.errors import UserError, exit_on_user_error

with exit_on_user_error():          # Ctrl-C while the modules load: one line, exit 130
    from common.synthetic.writer import (DEFAULT_DETECTOR, README_DETECTOR, SIZES, generate, generate_h36m_size,
                                         h36m_size_summary)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m common.synthetic', description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', required=True, type=Path,
                        help='folder to write the .npz files into (created if needed)')
    parser.add_argument('--seed', type=int, default=0, help='random seed; same seed, same data (default 0)')
    parser.add_argument('--size', choices=sorted(SIZES), default='demo',
                        help='demo: 2 takes of 300-400 frames per action (seconds to make); full: more and longer')
    parser.add_argument('--frames', type=int, help='frames per take (overrides the size preset)')
    parser.add_argument('--takes', type=int, help='takes per action (overrides the size preset)')
    parser.add_argument('--detector-name', default=DEFAULT_DETECTOR,
                        help=f'detector file is data_2d_h36m_<name>.npz (default {DEFAULT_DETECTOR}); the same '
                             f'file is also written as data_2d_h36m_{README_DETECTOR}.npz for the README\'s commands')
    parser.add_argument('--no-3dhp', action='store_true', help='skip the MPI-INF-3DHP files')
    parser.add_argument('--h36m-size', action='store_true',
                        help='Human3.6M at the real dataset\'s size: its subjects, 15 actions x 2 takes, about 1.56 M '
                             'training and 0.54 M test 2D poses (under a minute, 1.7 GB of memory, 0.9 GB on disk; '
                             '--size then '
                             'sizes only the MPI-INF-3DHP files)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bars')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    if args.h36m_size:
        given = [flag for flag, value in (('--frames', args.frames), ('--takes', args.takes)) if value is not None]
        if given:
            raise UserError(f'{" and ".join(given)}: --h36m-size sets the takes and their frames (the real '
                            f'dataset\'s); drop {" and ".join(given)}')
        data = generate_h36m_size(args.out, seed=args.seed, size=args.size, detector_name=args.detector_name,
                                  with_3dhp=not args.no_3dhp, show_progress=not args.no_progress)
        print(h36m_size_summary(data.h36m_frames))
    else:
        data = generate(args.out, seed=args.seed, size=args.size, frames=args.frames, takes=args.takes,
                        detector_name=args.detector_name, with_3dhp=not args.no_3dhp)
    for path in data.files.values():
        print(f'{path}  {path.stat().st_size / 1e6:.2f} MB')
    print(f'generated {len(data.files)} files in {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    with exit_on_user_error():
        main()

"""The README's first command: FinePOSE from nothing to a trained, evaluated model on a laptop CPU.

    python -m common.demo [--out demo_out] [--epochs 3]

1. Generates a small synthetic dataset in the real Human3.6M file layouts (``common.synthetic.writer``)
   into ``OUT/data`` (kept for later runs).
2. Evaluates the untrained model (``main.py -e 0``) as a baseline.
3. Trains a small FinePOSE (27 frames, width 64, depth 2, the tiny random text tower) with
   ``main.py`` and evaluates its best checkpoint with several hypotheses and DDIM steps, printing
   all four settings (P-Best, J-Best, P-Agg, J-Agg).

Every step is an ordinary ``main.py`` run: the printed commands can be rerun by hand.
"""
import argparse
import shlex
import time
from pathlib import Path

import main as h36m_main
from common.core.errors import UserError, exit_on_user_error
from common.evaluation.report import count
from common.synthetic import writer as synthetic

DEMO_FRAMES_PER_TAKE = 150
DEMO_TAKES = 1
DEMO_CLIP_FRAMES = 27
DEMO_CLIPS_PER_BATCH = 16
DEMO_HYPOTHESES = 4
DEMO_STEPS = 2
REPORTED_SETTING = ('P-Agg', 1)


def model_flags(data_dir: Path, epochs: int) -> list:
    """The small configuration: everything a 2-core CPU trains in minutes (each demo run starts over)."""
    return ['--data-dir', str(data_dir), '-k', synthetic.DEFAULT_DETECTOR, '-gpu', '',
            '-f', str(DEMO_CLIP_FRAMES), '-b', str(DEMO_CLIPS_PER_BATCH),
            '-cs', '64', '-dep', '2', '--text-tower', 'tiny', '-lr', '1e-3', '-e', str(epochs),
            '-num_proposals', str(DEMO_HYPOTHESES), '-sampling_timesteps', str(DEMO_STEPS), '--overwrite']


def ensure_data(data_dir: Path, seed: int) -> None:
    files = [synthetic.FILE_3D, synthetic.FILE_2D.format('gt'), synthetic.FILE_2D.format(synthetic.DEFAULT_DETECTOR)]
    if all((data_dir / f).is_file() for f in files):
        print(f'Using the synthetic dataset in {data_dir}')
        return
    start = time.time()
    synthetic.generate(data_dir, seed=seed, frames=DEMO_FRAMES_PER_TAKE, takes=DEMO_TAKES, with_3dhp=False)
    print(f'Generated a synthetic Human3.6M-format dataset in {data_dir} ({time.time() - start:.1f} s)')


def run_main(flags: list):
    print('\n$ python main.py ' + ' '.join(shlex.quote(f) for f in flags), flush=True)
    return h36m_main.main(flags)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m common.demo', description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', type=Path, default=Path('demo_out'), help='folder for data and checkpoints (default: demo_out)')
    parser.add_argument('--epochs', type=int, default=3, help='training epochs (default: 3)')
    parser.add_argument('--seed', type=int, default=0, help='seed of the synthetic data (default: 0)')
    args = parser.parse_args(argv)
    if args.epochs < 1:
        raise UserError(f'--epochs {args.epochs}: expected at least 1')
    return args


def main(argv=None):
    with exit_on_user_error():
        args = parse_args(argv)
        start = time.time()
        data_dir = args.out / 'data'
        ensure_data(data_dir, args.seed)
        untrained = run_main(model_flags(data_dir, 0) + ['-c', str(args.out / 'untrained'), '--nolog'])
        trained = run_main(model_flags(data_dir, args.epochs) + ['-c', str(args.out / 'checkpoint')])
        setting, protocol = REPORTED_SETTING
        before, after = untrained.average[REPORTED_SETTING][-1], trained.average[REPORTED_SETTING][-1]
        print(f'\nDemo done in {time.time() - start:.0f} s. Test MPJPE ({setting}, H={DEMO_HYPOTHESES}, '
              f'K={DEMO_STEPS}): untrained {before:.1f} mm -> trained {after:.1f} mm after {count(args.epochs, "epoch")}.')
        print(f'Checkpoints, tables and TensorBoard logs: {args.out / "checkpoint"} '
              f'(tensorboard --logdir {args.out / "checkpoint" / "tensorboard"})')


if __name__ == '__main__':
    main()

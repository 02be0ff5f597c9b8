"""The README's first command: FinePOSE from nothing to a model that has visibly learnt, on a laptop CPU.

    python -m common.demo [--out demo_out] [--epochs N]

1. Generates a small synthetic dataset in the real Human3.6M file layouts (``common.synthetic.writer``)
   into ``OUT/data`` (kept for later runs).
2. Evaluates the untrained model (``main.py -e 0``): the untrained numbers and the baseline every
   table carries, the training set's mean pose predicted at every frame.
3. Trains a small FinePOSE with a recipe chosen to learn within minutes on a CPU (``RECIPE``: each
   choice and its reason are printed; it differs from the paper's on purpose, see the README's demo
   section for the measured alternatives) and evaluates its best checkpoint, all four settings.
4. Renders one test sequence next to its ground truth (``main.py --render``) and exports its poses.
5. Prints untrained, mean-pose and trained errors, the rendered sequence's shoulder and hip widths
   against the ground truth's, the render and the checkpoint, ready for the README's "Your own video".

Every step is an ordinary ``main.py`` run (``common.run.h36m_experiment``, in this process): the printed
commands can be rerun by hand.
"""
import argparse
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from common.core.errors import UserError, exit_on_user_error

with exit_on_user_error():          # Ctrl-C while torch and the modules load: one line, exit 130
    import numpy as np

    from common.data.h36m import load_h36m
    from common.evaluation.baseline import MEAN_POSE_LABEL
    from common.evaluation.report import count
    from common.run import h36m_experiment
    from common.synthetic import writer as synthetic

M_PER_CM = 0.01
REPORTED_SETTING = ('P-Agg', 1)
# The render: one test sequence, its ground truth beside it.
RENDER_SUBJECT, RENDER_ACTION, RENDER_CAMERA = 'S9', 'Walking', 0
RENDER_NAME = f'render_{RENDER_SUBJECT}_{RENDER_ACTION}_camera{RENDER_CAMERA}'
RENDER_DOWNSAMPLE = 2              # 25 fps: half the frames to draw, the motion unchanged
# Human3.6M joints whose distances show a body's width (``skeleton.H36M_17``).
SHOULDERS, HIPS = (11, 14), (4, 1)


@dataclass(frozen=True)
class Choice:
    """One setting of the demo's recipe: the ``main.py`` flags and why (one printed line)."""
    flags: tuple
    why: str


# The synthetic data: every subject and action once, 150 frames (3 s) per take, four cameras.
DEMO_FRAMES_PER_TAKE = 150
DEMO_TAKES = 1
DEMO_EPOCHS = 4
DEMO_HYPOTHESES = 4
DEMO_STEPS = 2
# Measured side by side (README, demo section); P-Agg of the test set, the mean pose scoring 194.4 mm.
RECIPE = (
    Choice(('-f', '9'), "9-frame clips (paper: 243): 3x the clips a second of 27 frames (27 frames, 4 epochs: "
                        "119.8 mm)"),
    Choice(('-cs', '64', '-dep', '2'), "width 64, depth 2 (paper: 512, 8): about 100x fewer operations; depth 4 "
                                       "learnt no faster a second"),
    Choice(('--text-tower', 'tiny'), 'a tiny random CLIP-shaped text tower: no CLIP weights are downloaded here'),
    Choice(('-b', '4'), "4 clips a step, the original's default: twice the steps of -b 8 for little more time "
                        "(-b 8, 4 epochs: 88.8 mm)"),
    Choice(('-lr', '2e-3'), "the paper's 6e-5 is for 100 epochs; a few epochs need larger steps"),
)
DATA_WHY = ('the synthetic data (python -m common.synthetic flags), kept from the earlier demo: an epoch already '
            'holds 1530 new steps, and both full evaluations of its test set take 14-30 s')
EPOCHS_WHY = ('the model learns to lift in one drop during epoch 3 (validation 127, 103, 69 mm after epochs 1-3); '
              'the 4th is margin')
GRADIENT_WHY = ("the original's gradient weighting (the default) kept: with this recipe --gradient-scale plain "
                'scored the same (68.1 vs 66.9 mm after 3 epochs)')
SAMPLING = ('-num_proposals', str(DEMO_HYPOTHESES), '-sampling_timesteps', str(DEMO_STEPS))


def recipe_flags() -> list:
    return [flag for choice in RECIPE for flag in choice.flags]


def model_flags(data_dir: Path, epochs: int) -> list:
    """The demo's ``main.py`` flags: its data, ``RECIPE``, ``epochs``, H and K (each demo run starts over)."""
    return ['--data-dir', str(data_dir), '-k', synthetic.DEFAULT_DETECTOR, '-gpu', '', *recipe_flags(),
            '-e', str(epochs), *SAMPLING, '--overwrite']


def print_recipe(epochs: int) -> None:
    print('Training recipe (differs from the paper\'s on purpose: it must learn within minutes on a CPU; the '
          'README\'s demo section shows the measured alternatives):')
    data = Choice(('--frames', str(DEMO_FRAMES_PER_TAKE), '--takes', str(DEMO_TAKES)), DATA_WHY)
    for choice in (data, *RECIPE,
                   Choice(('-e', str(epochs)), EPOCHS_WHY if epochs == DEMO_EPOCHS else 'as asked (--epochs)'),
                   Choice(('(no --gradient-scale)',), GRADIENT_WHY)):
        print(f'  {" ".join(choice.flags):<24} {choice.why}')


def ensure_data(data_dir: Path, seed: int) -> None:
    files = [synthetic.FILE_3D, synthetic.FILE_2D.format('gt'), synthetic.FILE_2D.format(synthetic.DEFAULT_DETECTOR)]
    if all((data_dir / f).is_file() for f in files):
        print(f'Using the synthetic dataset in {data_dir}')
        return
    start = time.time()
    synthetic.generate(data_dir, seed=seed, frames=DEMO_FRAMES_PER_TAKE, takes=DEMO_TAKES, with_3dhp=False)
    print(f'Generated a synthetic Human3.6M-format dataset in {data_dir} ({time.time() - start:.1f} s): '
          f'{DEMO_FRAMES_PER_TAKE} frames per take, {count(DEMO_TAKES, "take")} of each action per subject')


def run_main(flags: list):
    """One ``main.py`` run, in this process (``common.run.h36m_experiment.main``), its command printed first."""
    print('\n$ python main.py ' + ' '.join(shlex.quote(f) for f in flags), flush=True)
    return h36m_experiment.main(flags)


def mean_width_m(poses: np.ndarray, joints: tuple) -> float:
    """The mean distance (metres) between two joints over the frames of (N, J, 3) poses."""
    return float(np.linalg.norm(poses[:, joints[0]] - poses[:, joints[1]], axis=-1).mean())


def width_line(predicted: np.ndarray, ground_truth: np.ndarray) -> str:
    """'shoulders 29.8 cm apart (ground truth 30.7), hips 25.1 cm (26.0)' of (N, J, 3) poses."""
    parts = []
    for name, joints in (('shoulders', SHOULDERS), ('hips', HIPS)):
        parts.append(f'{name} {mean_width_m(predicted, joints) / M_PER_CM:.1f} cm apart (ground truth '
                     f'{mean_width_m(ground_truth, joints) / M_PER_CM:.1f})')
    return ', '.join(parts)


def render_sequence(data_dir: Path, checkpoint_dir: Path, out: Path):
    """Render the ``RENDER_*`` test sequence beside its ground truth and export its poses; returns
    (render path, exported (N, J, 3) poses, the sequence's ground truth (N, J, 3))."""
    render, export = out / f'{RENDER_NAME}.gif', out / f'{RENDER_NAME}.npy'
    run_main(['--data-dir', str(data_dir), '-k', synthetic.DEFAULT_DETECTOR, '-gpu', '', '-c', str(checkpoint_dir),
              '--evaluate', 'best_epoch.bin', *SAMPLING, '--render', '--viz-subject', RENDER_SUBJECT,
              '--viz-action', RENDER_ACTION, '--viz-camera', str(RENDER_CAMERA), '--viz-output', str(render),
              '--viz-downsample', str(RENDER_DOWNSAMPLE), '--viz-export', str(export)])
    dataset = load_h36m(data_dir, synthetic.DEFAULT_DETECTOR)
    (sequence,) = [s for s in dataset.select([RENDER_SUBJECT], [RENDER_ACTION])
                   if s.action == RENDER_ACTION and s.camera == RENDER_CAMERA]
    return render, np.load(export), sequence.positions_3d


def summary(untrained, trained, epochs: int, seconds: float) -> str:
    """The three numbers: untrained, mean training pose, trained (and its ratio to the mean pose)."""
    setting, _ = REPORTED_SETTING
    before, after = untrained.average[REPORTED_SETTING][-1], trained.average[REPORTED_SETTING][-1]
    sampled = trained.settings
    lines = [f'Demo done in {seconds:.0f} s. Test MPJPE ({setting}, H={sampled.num_hypotheses}, '
             f'K={sampled.num_steps}, subjects S9 and S11):',
             f'  untrained model          {before:7.1f} mm']
    if trained.mean_pose_errors is not None:
        baseline = trained.mean_pose_errors['average'][1]
        lines.append(f'  {MEAN_POSE_LABEL:<24} {baseline:7.1f} mm   (no model: the training set\'s mean pose '
                     'at every frame)')
        ratio = f'   = {after / baseline:.2f} x the mean pose'
    else:
        ratio = ''
    lines.append(f'  trained, {count(epochs, "epoch"):<15} {after:7.1f} mm{ratio}')
    return '\n'.join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m common.demo', description=__doc__.split('\n\n')[0])
    parser.add_argument('--out', type=Path, default=Path('demo_out'),
                        help='folder for data, checkpoints and the render (default: demo_out)')
    parser.add_argument('--epochs', type=int, default=DEMO_EPOCHS, help=f'training epochs (default: {DEMO_EPOCHS})')
    parser.add_argument('--seed', type=int, default=0, help='seed of the synthetic data (default: 0)')
    args = parser.parse_args(argv)
    if args.epochs < 1:
        raise UserError(f'--epochs {args.epochs}: expected at least 1')
    return args


def main(argv=None):
    with exit_on_user_error():
        args = parse_args(argv)
        start = time.time()
        data_dir, checkpoint_dir = args.out / 'data', args.out / 'checkpoint'
        print_recipe(args.epochs)
        ensure_data(data_dir, args.seed)
        untrained = run_main(model_flags(data_dir, 0) + ['-c', str(args.out / 'untrained'), '--nolog'])
        trained = run_main(model_flags(data_dir, args.epochs) + ['-c', str(checkpoint_dir)])
        render, predicted, ground_truth = render_sequence(data_dir, checkpoint_dir, args.out)
        print('\n' + summary(untrained, trained, args.epochs, time.time() - start))
        print(f'Render of {RENDER_SUBJECT} {RENDER_ACTION} camera {RENDER_CAMERA} (prediction beside ground truth): '
              f'{render}\n  its predicted poses (J-Agg): {width_line(predicted, ground_truth)}')
        print(f'Checkpoint: {checkpoint_dir / "best_epoch.bin"} (tables and TensorBoard logs beside it: '
              f'tensorboard --logdir {checkpoint_dir / "tensorboard"}). The README\'s "Your own video" commands '
              f'take it with -c {checkpoint_dir}, e.g.\n  python main.py -d custom -k myvideos -c {checkpoint_dir} '
              '--evaluate best_epoch.bin -num_proposals 20 -sampling_timesteps 10 -b 4\n(it learnt synthetic bodies '
              'and synthetic detections: expect rough poses on a real video)')


if __name__ == '__main__':
    main()

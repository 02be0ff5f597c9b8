"""Command-line flags shared by ``main.py`` (Human3.6M) and ``main_3dhp.py`` (MPI-INF-3DHP).

The flags users know from VideoPose3D / D3DP / FinePOSE keep their spelling (``-k``, ``-c``,
``-gpu``, ``-num_proposals``, ``-sampling_timesteps``, ...). New flags are ``--kebab-case``.
"""
import argparse
import math
import os
import shlex
import sys

from common.core.errors import UserError, said_by_rank_zero
from common.evaluation.protocol import COUNTING_RULES, ORIGINAL
from common.run.batch_rule import CLIPS_PER_BATCH, training_batch

TRAIN_CLIP_FRAMES = 243
EPOCHS = 100
EPOCHS_GT_KEYPOINTS = 120
VAL_CLIPS_PER_BATCH = 16
ATTENTION_HEADS = 8           # the denoiser's heads (ModelConfig.heads): -cs must be a multiple
MAX_SEED = 2 ** 32 - 1        # numpy's RandomState takes seeds up to this


# Flags that only training reads: written with --evaluate (or -d custom, --render, --viz-export) they
# do nothing, which the run says in one line (``experiment.ignored_training_flags_note``). -no-da is
# not one: it also shapes the mean-pose baseline an evaluation computes from -str.
TRAINING_ONLY_FLAGS = ('epochs', 'stride', 'subset', 'learning_rate', 'lr_decay', 'weight_decay', 'action_dropout',
                       'gradient_scale', 'no_eval', 'val_batch_size', 'val_subjects', 'checkpoint_frequency',
                       'export_training_curves', 'activation_checkpointing')


def _add_common(parser: argparse.ArgumentParser, dataset: str):
    data = parser.add_argument_group('data')
    data.add_argument('--data-dir', default='data', metavar='PATH', help='folder with the dataset files (default: data)')
    data.add_argument('-f', '--number-of-frames', type=int, default=TRAIN_CLIP_FRAMES, metavar='N',
                      help='frames per clip (default: 243)')
    data.add_argument('-no-da', '--no-data-augmentation', dest='data_augmentation', action='store_false',
                      help='disable train-time horizontal flipping')
    if dataset == 'h36m':
        data.add_argument('--subset', type=float, default=1.0, metavar='FRACTION',
                          help='train on this fraction of every training sequence, as VideoPose3D and the original '
                               'do: one contiguous stretch per sequence, its start fixed by the sequence length '
                               '(default: 1, all)')
        data.add_argument('--downsample', type=int, default=1, metavar='FACTOR',
                          help='keep every FACTOR-th frame of the training and the test sequences, as the original '
                               'does (default: 1, all)')
    else:
        for flag, kind in (('--subset', float), ('--downsample', int)):
            data.add_argument(flag, type=kind, default=1, help="Human3.6M only (main.py): the original's main_3dhp.py "
                                                               'parses it and ignores it; anything but 1 is refused')

    run = parser.add_argument_group('run')
    run.add_argument('-c', '--checkpoint', default='checkpoint', metavar='PATH',
                     help='folder for checkpoints, logs and evaluation tables (default: checkpoint)')
    run.add_argument('-cf', '--checkpoint-frequency', type=int, default=20, metavar='N',
                     help='also keep epoch_N.bin every N epochs (default: 20)')
    run.add_argument('-r', '--resume', default='', metavar='FILE', help='checkpoint to resume training from (in -c or a path)')
    run.add_argument('--overwrite', action='store_true',
                     help='train from scratch into a -c folder that holds checkpoints of an earlier run: first '
                          'delete that run\'s checkpoints (last/best/epoch_N.bin) and result files')
    run.add_argument('--evaluate', default='', metavar='FILE',
                     help='evaluate this checkpoint (ours or an official reference .bin; in -c or a path)')
    run.add_argument('--nolog', action='store_true', help='no TensorBoard logs')
    run.add_argument('--export-training-curves', action='store_true', help='write training_curves.png in -c every epoch')
    run.add_argument('-gpu', default=None, metavar='LIST',
                     help="GPUs to use, e.g. 0,1 (DataParallel); '' for CPU; default: all visible GPUs, else CPU")
    run.add_argument('--seed', type=int, default=1,
                     help=f'seed of data order, diffusion noise and sampling, 0 to {MAX_SEED} (default: 1)')
    progress = run.add_mutually_exclusive_group()
    progress.add_argument('--progress', action='store_true',
                          help='draw progress bars even when stderr is not a terminal (a log file)')
    progress.add_argument('--no-progress', action='store_true',
                          help='no progress bars (default: bars only when stderr is a terminal)')
    run.add_argument('--threads', type=int, default=None, metavar='N',
                     help='CPU threads of this process (default: $OMP_NUM_THREADS when set, else all cores; under '
                          'torchrun the cores divided by the processes on this machine). Runs sharing a machine '
                          'should split its cores: more threads than cores in all is many times slower')

    model = parser.add_argument_group('model')
    model.add_argument('-cs', type=int, default=512, metavar='C', help='channels of the denoiser (default: 512)')
    model.add_argument('-dep', type=int, default=8, metavar='D', help='depth: spatial+temporal block pairs (default: 8)')
    model.add_argument('--drop-path', type=float, default=0.1, metavar='P', help='stochastic depth rate in training (default: 0.1)')
    model.add_argument('-timestep', type=int, default=1000, metavar='T', help='diffusion steps (default: 1000)')
    model.add_argument('-scale', type=float, default=1.0, help='signal scale inside the diffusion (default: 1.0)')
    prompts = model.add_mutually_exclusive_group()
    prompts.add_argument('--learn-prompts', dest='learn_prompts', action='store_true',
                         help='train the learnable prompt vectors (gradients flow through the frozen CLIP text '
                              'tower); default: they keep their initial values, as in the original, which encodes '
                              'the prompts under no_grad')
    prompts.add_argument('--frozen-prompts', dest='learn_prompts', action='store_false',
                         help='the default now (the original\'s prompts that do not learn); kept for older commands')
    model.add_argument('--per-clip-prompts', action='store_true',
                       help="in FPC every clip attends to its own prompt; default: the original's batched mixing, "
                            "where joint j of clip b in a training batch of B clips attends to clip (b*17+j) mod "
                            "B's prompt (it tiles the prompts over the batch with repeat)")
    model.add_argument('--clip-weights', default=None, metavar='PATH',
                       help="OpenAI's CLIP ViT-B/32 weights (default: ~/.cache/clip/ViT-B-32.pt; never downloaded)")
    model.add_argument('--require-clip-weights', action='store_true',
                       help='fail instead of using a random text tower when the CLIP weights are missing')
    model.add_argument('--text-tower', default='vit-b-32', choices=['vit-b-32', 'tiny'],
                       help="CLIP text tower: 'vit-b-32' (the paper; OpenAI weights) or 'tiny' (a small random "
                            "CLIP-shaped tower for demos and tests without CLIP weights; default: vit-b-32)")

    train = parser.add_argument_group('training')
    gt_epochs = f'; {EPOCHS_GT_KEYPOINTS} with -k gt' if dataset == 'h36m' else ''
    train.add_argument('-e', '--epochs', type=int, default=None, metavar='N',
                       help=f'training epochs (default: {EPOCHS}{gt_epochs}; 0 saves and evaluates the untrained '
                            'model)')
    train.add_argument('-b', '--batch-size', type=int, default=CLIPS_PER_BATCH, metavar='N',
                       help=f'training: clips per step (the global batch, whatever the number of processes; 243 '
                            f'or more is refused: the original\'s frames), or frames when -s is given, as the '
                            f'original reads it (-b // -s clips; -b defaults to 1024 frames then); --evaluate and '
                            f'inference: windows per sampling batch (default: {CLIPS_PER_BATCH} clips, the '
                            f'original\'s 1024 frames / 243)')
    train.add_argument('-s', '--stride', type=int, default=None, metavar='FRAMES',
                       help='training: read -b in frames and take -b // -s clips a step, as the original does '
                            '(its default -s 243 whatever -f is; the clips stay -f frames long); e.g. -f 27 -s 27 '
                            'trains 37 clips a step. Not used by --evaluate')
    train.add_argument('-lr', '--learning-rate', type=float, default=6e-5, metavar='LR', help='AdamW learning rate (default: 6e-5)')
    train.add_argument('-lrd', '--lr-decay', type=float, default=0.993, metavar='F',
                       help='learning rate multiplier after each epoch (default: 0.993)')
    train.add_argument('--weight-decay', type=float, default=0.1, help='AdamW weight decay (default: 0.1)')
    if dataset == 'h36m':
        train.add_argument('--action-dropout', type=float, default=0.0, metavar='P',
                           help='probability of training a clip with an empty action prompt, so the model also '
                                'works without a label (default: 0)')
    else:
        parser.set_defaults(action_dropout=0.0)       # 3DHP prompts have no action label to drop
    train.add_argument('--gradient-scale', default='original', choices=['original', 'plain'],
                       help="'original' (default): step with L * dL/dw as the original code does (it calls "
                            "loss.backward(loss), L in its data's unit: metres for Human3.6M, millimetres for "
                            "MPI-INF-3DHP), so each batch counts by its own loss; 'plain': step with dL/dw")
    train.add_argument('--improvements', action='store_true',
                       help='every training improvement over the original at once: --learn-prompts '
                            '--per-clip-prompts --gradient-scale plain')
    train.add_argument('--no-eval', action='store_true',
                       help='skip the validation after each epoch (best_epoch.bin is then the last epoch)')
    train.add_argument('--val-batch-size', type=int, default=VAL_CLIPS_PER_BATCH, metavar='CLIPS',
                       help='clips per sampling batch when validating and when evaluating right after training '
                            f'(default: {VAL_CLIPS_PER_BATCH})')

    add_execution_flags(parser.add_argument_group('speed and memory (results stay the same unless noted)'))

    evaluation = parser.add_argument_group('evaluation')
    evaluation.add_argument('-num_proposals', type=int, default=1, metavar='H', help='hypotheses per clip (paper: 20)')
    evaluation.add_argument('-sampling_timesteps', type=int, default=1, metavar='K', help='DDIM steps (paper: 10)')
    evaluation.add_argument('--p2', action='store_true', help='also report Protocol #2 (P-MPJPE)')
    evaluation.add_argument('--protocol', default=ORIGINAL, choices=COUNTING_RULES,
                            help="how the tables count frames: 'original' (default; the published tables' count): "
                                 'every frame of every -f window (a sequence\'s last window, aligned to its end, counts '
                                 'its overlap twice; a short sequence counts its padding) and P-Best per evaluation '
                                 'batch of -b windows of one sequence (default 1024, the original\'s); '
                                 "'per-frame': every real frame once and P-Best per window, independent of -b")
    evaluation.add_argument('--no-test-time-flip', dest='test_time_flip', action='store_false',
                            help='do not average with the horizontally flipped input')
    evaluation.add_argument('--smooth', type=int, default=None, metavar='WINDOW',
                            help='smooth the final per-frame poses of each sequence along time with a Savitzky-Golay '
                                 'filter of WINDOW frames (odd, at least 3; polynomial order 2), never across '
                                 'sequences: every setting of the evaluation tables (named _smoothWINDOW), the 3DHP '
                                 'exports, and the poses of -d custom / --viz-export / --render. A sequence shorter '
                                 'than WINDOW gets the largest odd window that fits. Default: off, as the original')
    return parser


def add_execution_flags(group):
    """--bf16, --compile, --activation-checkpointing (``model.build.ExecutionOptions``; also tools/benchmark.py)."""
    group.add_argument('--bf16', action='store_true',
                       help='run the denoiser under bfloat16 autocast: faster on GPUs and CPUs with AMX, much slower '
                            'on other CPUs; changes results slightly')
    group.add_argument('--compile', action='store_true', help='torch.compile the denoiser (the first steps compile)')
    group.add_argument('--activation-checkpointing', action='store_true',
                       help='recompute the denoiser blocks in the backward pass: much less training memory, '
                            'about a third more compute')


def _add_inference(parser: argparse.ArgumentParser):
    custom = parser.add_argument_group(
        'inference on your own 2D keypoints (-d custom -k NAME reads data_2d_custom_NAME.npz)')
    custom.add_argument('--prompt-action', default=None, metavar='TEXT',
                        help="action word of the prompt, e.g. 'Walking' (default: empty for -d custom; "
                             'for Human3.6M sequences as --eval-action says)')
    custom.add_argument('--aggregation', default='j-agg', choices=['p-agg', 'j-agg'],
                        help="how H hypotheses become one pose: 'p-agg' (their mean) or 'j-agg' (JPMA: per joint "
                             'the hypothesis whose reprojection is closest to the 2D keypoint; default)')
    custom.add_argument('--focal-length', type=float, default=None, metavar='PX',
                        help='-d custom: focal length of the assumed pinhole camera in pixels (principal point at '
                             "the image centre; used by j-agg); default: the image width, a 53 degree horizontal "
                             'field of view (Human3.6M cameras: about 1.15 x the width)')

    viz = parser.add_argument_group('visualisation (as in VideoPose3D)')
    viz.add_argument('--render', action='store_true',
                     help='render the --viz-subject sequence to --viz-output instead of evaluating the test set')
    viz.add_argument('--viz-subject', '--viz-video-name', dest='viz_subject', default=None, metavar='NAME',
                     help='sequence to render or export: a Human3.6M subject (S9), or with -d custom the video name '
                          '(default for -d custom: the only video of the file)')
    viz.add_argument('--viz-action', default=None, metavar='NAME',
                     help="Human3.6M action to render, e.g. 'Walking 1' (refused with -d custom, whose videos "
                          'have no actions: --prompt-action puts a word in the prompt)')
    viz.add_argument('--viz-camera', type=int, default=0, metavar='I',
                     help="camera index (Human3.6M 0-3; -d custom: index in the video's keypoint list; default: 0)")
    viz.add_argument('--viz-video', default=None, metavar='PATH',
                     help='video (MP4, MOV, AVI, WebM, ... read with PyAV) or image (GIF, PNG, WebP via Pillow) to '
                          'draw the 2D keypoints on (default: a blank image)')
    viz.add_argument('--viz-skip', type=int, default=0, metavar='N', help='skip the first N frames of --viz-video')
    viz.add_argument('--viz-output', default=None, metavar='FILE',
                     help='with --render: .mp4 (H.264 through PyAV), .gif (Pillow) or .png (the first frame only); a '
                          'bare file name is written into the -c folder, a path with a folder (./a.gif) where it says')
    viz.add_argument('--viz-export', default=None, metavar='FILE.npy|FILE.bvh',
                     help='save the predicted poses in the format of the extension: .npy, the (N, 17, 3) array, '
                          'metres, camera frame, root-relative; .bvh, an animation (centimetres, Y up, root along the '
                          'trajectory) for Blender; a bare file name is written into the -c folder')
    viz.add_argument('--viz-bitrate', type=int, default=3000, metavar='KBPS', help='.mp4 bitrate (default: 3000)')
    viz.add_argument('--viz-no-ground-truth', action='store_true', help='do not draw the ground truth')
    viz.add_argument('--viz-limit', type=int, default=-1, metavar='N',
                     help='render only the first N frames (default: all)')
    viz.add_argument('--viz-downsample', type=int, default=1, metavar='N',
                     help='average every N frames into one (and divide the frame rate by N; default: 1)')
    viz.add_argument('--viz-size', type=float, default=5.0, metavar='INCHES', help='size of each panel (default: 5)')


def build_parser(dataset: str) -> argparse.ArgumentParser:
    """The parser of ``main.py`` (dataset 'h36m') or ``main_3dhp.py`` ('mpi_inf_3dhp')."""
    parser = argparse.ArgumentParser(
        description='FinePOSE on Human3.6M' if dataset == 'h36m' else 'FinePOSE on MPI-INF-3DHP')
    _add_common(parser, dataset)
    if dataset == 'h36m':
        h36m = parser.add_argument_group('Human3.6M')
        h36m.add_argument('-d', '--dataset', default='h36m', choices=['h36m', 'custom'], help='dataset (default: h36m)')
        h36m.add_argument('-k', '--keypoints', default='cpn_ft_h36m_dbb', metavar='NAME',
                          help='2D keypoints file data_2d_h36m_NAME.npz (default: cpn_ft_h36m_dbb)')
        h36m.add_argument('-str', '--subjects-train', default='S1,S5,S6,S7,S8', metavar='LIST',
                          help='training subjects (default: S1,S5,S6,S7,S8)')
        h36m.add_argument('-ste', '--subjects-test', default='S9,S11', metavar='LIST',
                          help='test subjects (default: S9,S11)')
        h36m.add_argument('--val-subjects', default=None, metavar='LIST',
                          help='subjects validated after each epoch (default: the test subjects, as the community does)')
        h36m.add_argument('-a', '--actions', default='*', metavar='LIST',
                          help="actions (prefixes) to use, or '*' (default: *, all)")
        h36m.add_argument('--eval-action', default='gt', choices=['gt', 'none'],
                          help="action label in the evaluation prompts: 'gt' (the ground-truth label) or 'none' "
                               "(empty; default: gt)")
        _add_inference(parser)
    else:
        hp = parser.add_argument_group('MPI-INF-3DHP')
        hp.add_argument('--test-sequences', default='TS1,TS2,TS3,TS4,TS5,TS6', metavar='LIST',
                        help='test sequences to evaluate and export (default: TS1,TS2,TS3,TS4,TS5,TS6)')
        hp.add_argument('--annotations', default=None, metavar='PATH',
                        help='folder with the official TS*/annot_data.mat, to print PCK/AUC after --evaluate')
    return parser


def given_flags(dataset: str, argv=None) -> set:
    """The destinations of the flags written on the command line, as opposed to left at their default
    (so a checkpoint's configuration can fill the others, and a flag that contradicts it is an error)."""
    parser = build_parser(dataset)
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    flags = {action.dest for action in parser._actions if action.option_strings}
    return set(vars(parser.parse_args(argv))) & flags      # not the parser's own defaults (set_defaults)


def flag_names(dataset: str) -> dict:
    """dest -> the flag as users type it (the first spelling of the first flag setting it), e.g.
    'number_of_frames' -> '-f', 'learn_prompts' -> '--learn-prompts'."""
    names = {}
    for action in build_parser(dataset)._actions:
        if action.option_strings:
            names.setdefault(action.dest, action.option_strings[0])
    return names


def _positive(v):
    return v > 0


def _at_least_one(v):
    return v >= 1


def _not_negative(v):
    return v >= 0


# dest -> (condition, what is expected). Every int and float flag has an entry (a test checks it);
# floats must also be finite. A value of None (a default resolved later) is not checked.
NUMERIC_RANGES = {
    'number_of_frames': (_at_least_one, 'a positive integer'),
    'checkpoint_frequency': (_at_least_one, 'a positive integer'),
    'seed': (lambda v: 0 <= v <= MAX_SEED, f'an integer from 0 to {MAX_SEED}'),
    'cs': (lambda v: v >= ATTENTION_HEADS and v % ATTENTION_HEADS == 0,
           f'a positive multiple of the {ATTENTION_HEADS} attention heads'),
    'dep': (_at_least_one, 'a positive integer'),
    'drop_path': (lambda v: 0 <= v < 1, 'a rate in [0, 1)'),
    'timestep': (_at_least_one, 'a positive integer'),
    'scale': (_positive, 'a positive finite scale'),
    'epochs': (_not_negative, 'a number of epochs >= 0'),
    'batch_size': (_at_least_one, 'a positive number of clips'),
    'threads': (_at_least_one, 'a positive number of threads'),
    'subset': (lambda v: 0 < v <= 1, 'a fraction in (0, 1]'),
    'downsample': (_at_least_one, 'a factor of at least 1'),
    'stride': (_at_least_one, 'a positive integer'),
    'learning_rate': (_positive, 'a positive finite learning rate'),
    'lr_decay': (lambda v: 0 < v <= 1, 'a multiplier in (0, 1]'),
    'weight_decay': (_not_negative, 'a finite weight decay >= 0'),
    'action_dropout': (lambda v: 0 <= v <= 1, 'a probability in [0, 1]'),
    'val_batch_size': (_at_least_one, 'a positive number of clips'),
    'num_proposals': (_at_least_one, 'at least 1 hypothesis'),
    'sampling_timesteps': (_at_least_one, 'at least 1 DDIM step'),
    'smooth': (lambda v: v >= 3 and v % 2 == 1, 'an odd window of at least 3 frames, e.g. 9'),
    'focal_length': (_positive, 'a positive number of pixels'),
    'viz_camera': (_not_negative, 'an integer of at least 0'),
    'viz_skip': (_not_negative, 'an integer of at least 0'),
    'viz_bitrate': (_at_least_one, 'an integer of at least 1'),
    'viz_limit': (lambda v: v == -1 or v >= 1, 'a positive number of frames, or -1 for all'),
    'viz_downsample': (_at_least_one, 'an integer of at least 1'),
    'viz_size': (_positive, 'a positive finite size in inches'),
}


def check_numeric_flags(args, names: dict):
    """Range-check every numeric flag of ``args`` (see ``NUMERIC_RANGES``); ``names``: ``flag_names``."""
    for dest, (condition, expected) in NUMERIC_RANGES.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value) or not condition(value):
            raise UserError(f'{names[dest]} {value:g}: expected {expected}' if isinstance(value, float)
                            else f'{names[dest]} {value}: expected {expected}')


def check_sampling_steps(sampling_timesteps: int, timesteps: int, checkpoint=None):
    """DDIM steps cannot exceed the model's diffusion steps (those of ``checkpoint`` when it sets them)."""
    if sampling_timesteps > timesteps:
        raise UserError(f'-sampling_timesteps {sampling_timesteps} exceeds -timestep {timesteps}'
                        + (f' of {checkpoint}' if checkpoint else ''))


def parse_args(dataset: str, argv=None):
    """Parse and check flags; bad values raise ``UserError`` (a one-line message). Under torchrun
    every process parses the same flags: only rank 0 says what is wrong (``said_by_rank_zero``).

    ``args.given`` holds the destinations of the flags written explicitly (``given_flags``).
    """
    with said_by_rank_zero():
        return _parse_and_check(dataset, argv)


def _parse_and_check(dataset: str, argv):
    args = build_parser(dataset).parse_args(argv)
    args.given = given_flags(dataset, argv)
    # What the log shows: the shell command, or the flags when called from Python (the demo, tests).
    args.command_line = shlex.join(['python', *sys.argv] if argv is None else ['flags:', *argv])
    args.flag_names = flag_names(dataset)
    check_numeric_flags(args, args.flag_names)
    if args.resume and args.evaluate:
        raise UserError('--resume and --evaluate cannot be used together')
    if args.overwrite and (args.resume or args.evaluate):
        raise UserError('--overwrite starts a new training run; it cannot be used with -r or --evaluate')
    _apply_improvements(args)
    if dataset == 'mpi_inf_3dhp':
        for flag in ('subset', 'downsample'):
            if getattr(args, flag) != 1:
                raise UserError(f'--{flag} {getattr(args, flag):g}: main.py (Human3.6M) only; the original\'s '
                                'main_3dhp.py parses it and ignores it, and so would this run: drop it')
    if not (args.evaluate or args.resume):   # otherwise the checkpoint's diffusion steps count (experiment.py)
        check_sampling_steps(args.sampling_timesteps, args.timestep)
    if hasattr(args, 'render'):
        _check_inference_flags(args)
    args.training_batch = None if args.evaluate else training_batch(args.batch_size, args.stride,
                                                                    'batch_size' in args.given)
    if args.epochs is None:
        args.epochs = EPOCHS_GT_KEYPOINTS if getattr(args, 'keypoints', '') == 'gt' else EPOCHS
    if args.threads is None:
        args.threads = default_threads(os.environ)
    args.no_progress = not show_progress(args.progress, args.no_progress, sys.stderr)
    return args


def show_progress(forced: bool, refused: bool, stream) -> bool:
    """Whether to draw progress bars (tqdm, on ``stream``): --progress forces them, --no-progress
    refuses them; by default only on a terminal, since a log file would collect every redraw."""
    if forced or refused:
        return forced
    isatty = getattr(stream, 'isatty', None)
    return bool(isatty and isatty())


# --improvements: dest -> (the value it sets, how a contradicting flag reads).
IMPROVEMENTS = {'learn_prompts': (True, '--frozen-prompts'), 'per_clip_prompts': (True, None),
                'gradient_scale': ('plain', '--gradient-scale original')}


def _apply_improvements(args):
    """--improvements sets every improvement flag (counted as given, so a checkpoint trained
    otherwise is a contradiction); a flag given with the original's value contradicts it."""
    if not args.improvements:
        return
    for dest, (value, contradicting) in IMPROVEMENTS.items():
        if dest in args.given and getattr(args, dest) != value:
            raise UserError(f'{contradicting} contradicts --improvements (which sets --learn-prompts '
                            '--per-clip-prompts --gradient-scale plain); drop one of them')
        setattr(args, dest, value)
    args.given |= set(IMPROVEMENTS)


def default_threads(environ) -> int:
    """--threads default: the cores this process may use, shared among the processes torchrun starts
    on this machine (LOCAL_WORLD_SIZE); outside torchrun an explicit OMP_NUM_THREADS wins."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    local_processes = int(environ.get('LOCAL_WORLD_SIZE', '1'))
    if local_processes == 1 and environ.get('OMP_NUM_THREADS', '').isdigit() and int(environ['OMP_NUM_THREADS']) > 0:
        return int(environ['OMP_NUM_THREADS'])
    return max(1, cores // local_processes)


# Flags that only --render reads, and those that choose the sequence of --render / --viz-export:
# given without them they would be ignored, so they are refused.
RENDER_FLAGS = ('viz_output', 'viz_video', 'viz_skip', 'viz_bitrate', 'viz_no_ground_truth', 'viz_limit',
                'viz_downsample', 'viz_size')
SEQUENCE_FLAGS = ('viz_subject', 'viz_action', 'viz_camera')


def _check_inference_flags(args):
    names = flag_names('h36m')
    unused = [names[d] for d in RENDER_FLAGS if d in args.given] if not args.render else []
    if unused:
        raise UserError(f'{", ".join(unused)}: used only with --render, which is not given; add --render to draw the '
                        'sequence, or drop these flags')
    unused = [names[d] for d in SEQUENCE_FLAGS if d in args.given] if not (args.render or args.viz_export) else []
    if unused:
        raise UserError(f'{", ".join(unused)}: used only with --render or --viz-export (the sequence to draw or '
                        'export), neither given; add one, or drop these flags')
    if args.dataset == 'custom' and args.viz_action is not None:
        raise UserError(f'--viz-action {args.viz_action}: -d custom videos have no actions to choose from '
                        f'(--viz-subject picks the video); to put the word in the prompt, pass --prompt-action '
                        f'{shlex.quote(args.viz_action)} instead')
    for name in ('viz_output', 'viz_export'):       # outputs of a run belong in its -c folder
        value = getattr(args, name)
        if value and not os.path.dirname(value):
            setattr(args, name, os.path.join(args.checkpoint, value))
    if args.focal_length is not None and args.dataset != 'custom':
        raise UserError(f'--focal-length {args.focal_length:g}: only for -d custom (Human3.6M sequences come with '
                        'their calibrated cameras); drop it')
    if args.dataset == 'custom' and not args.evaluate:
        raise UserError('-d custom: pass --evaluate CHECKPOINT (custom keypoints have no 3D poses to train on)')
    if (args.render or args.viz_export) and not args.evaluate:
        raise UserError('--render / --viz-export: pass --evaluate CHECKPOINT, the model that predicts the poses')
    if args.render and not args.viz_output:
        raise UserError('--render: pass --viz-output FILE (.gif, .mp4 or .png)')

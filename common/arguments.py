"""Command-line flags shared by ``main.py`` (Human3.6M) and ``main_3dhp.py`` (MPI-INF-3DHP).

The flags users know from VideoPose3D / D3DP / FinePOSE keep their spelling (``-k``, ``-c``,
``-gpu``, ``-num_proposals``, ``-sampling_timesteps``, ...). New flags are ``--kebab-case``.
"""
import argparse

from common.errors import UserError

TRAIN_CLIP_FRAMES = 243
EPOCHS_GT_KEYPOINTS = 120


def _add_common(parser: argparse.ArgumentParser):
    data = parser.add_argument_group('data')
    data.add_argument('--data-dir', default='data', metavar='PATH', help='folder with the dataset files (default: data)')
    data.add_argument('-f', '--number-of-frames', type=int, default=TRAIN_CLIP_FRAMES, metavar='N',
                      help='frames per clip (default: 243)')
    data.add_argument('-no-da', '--no-data-augmentation', dest='data_augmentation', action='store_false',
                      help='disable train-time horizontal flipping')

    run = parser.add_argument_group('run')
    run.add_argument('-c', '--checkpoint', default='checkpoint', metavar='PATH',
                     help='folder for checkpoints, logs and evaluation tables (default: checkpoint)')
    run.add_argument('-cf', '--checkpoint-frequency', type=int, default=20, metavar='N',
                     help='also keep epoch_N.bin every N epochs (default: 20)')
    run.add_argument('-r', '--resume', default='', metavar='FILE', help='checkpoint to resume training from (in -c or a path)')
    run.add_argument('--evaluate', default='', metavar='FILE',
                     help='evaluate this checkpoint (ours or an official reference .bin; in -c or a path)')
    run.add_argument('--nolog', action='store_true', help='no TensorBoard logs')
    run.add_argument('--export-training-curves', action='store_true', help='write training_curves.png in -c every epoch')
    run.add_argument('-gpu', default=None, metavar='LIST',
                     help="GPUs to use, e.g. 0,1 (DataParallel); '' for CPU; default: all visible GPUs, else CPU")
    run.add_argument('--seed', type=int, default=1, help='seed of data order, diffusion noise and sampling (default: 1)')
    run.add_argument('--no-progress', action='store_true', help='no progress bars')

    model = parser.add_argument_group('model')
    model.add_argument('-cs', type=int, default=512, metavar='C', help='channels of the denoiser (default: 512)')
    model.add_argument('-dep', type=int, default=8, metavar='D', help='depth: spatial+temporal block pairs (default: 8)')
    model.add_argument('--drop-path', type=float, default=0.1, metavar='P', help='stochastic depth rate in training (default: 0.1)')
    model.add_argument('-timestep', type=int, default=1000, metavar='T', help='diffusion steps (default: 1000)')
    model.add_argument('-scale', type=float, default=1.0, help='signal scale inside the diffusion (default: 1.0)')
    model.add_argument('--frozen-prompts', action='store_true',
                       help='do not train the learnable prompt vectors (the reference behaviour: CLIP under no_grad)')
    model.add_argument('--clip-weights', default=None, metavar='PATH',
                       help="OpenAI's CLIP ViT-B/32 weights (default: ~/.cache/clip/ViT-B-32.pt; never downloaded)")
    model.add_argument('--require-clip-weights', action='store_true',
                       help='fail instead of using a random text tower when the CLIP weights are missing')
    model.add_argument('--text-tower', default='vit-b-32', choices=['vit-b-32', 'tiny'],
                       help="CLIP text tower: 'vit-b-32' (the paper; OpenAI weights) or 'tiny' (a small random "
                            "CLIP-shaped tower for demos and tests without CLIP weights; default: vit-b-32)")

    train = parser.add_argument_group('training')
    train.add_argument('-e', '--epochs', type=int, default=None, metavar='N',
                       help='training epochs (default: 100; 120 with -k gt)')
    train.add_argument('-b', '--batch-size', type=int, default=1024, metavar='N',
                       help='training: frames per batch, clips = N // stride (1024 // 243 = 4 clips); '
                            'evaluation: clips per batch (the paper evaluates with -b 4)')
    train.add_argument('-s', '--stride', type=int, default=TRAIN_CLIP_FRAMES, metavar='N',
                       help='frames per training clip used to turn -b into clips (default: 243)')
    train.add_argument('-lr', '--learning-rate', type=float, default=6e-5, metavar='LR', help='AdamW learning rate (default: 6e-5)')
    train.add_argument('-lrd', '--lr-decay', type=float, default=0.993, metavar='F',
                       help='learning rate multiplier after each epoch (default: 0.993)')
    train.add_argument('--weight-decay', type=float, default=0.1, help='AdamW weight decay (default: 0.1)')
    train.add_argument('--action-dropout', type=float, default=0.0, metavar='P',
                       help='probability of training a clip with an empty action prompt, so the model also works '
                            'without a label (default: 0)')
    train.add_argument('--no-eval', action='store_true', help='skip the validation after each epoch')
    train.add_argument('--val-batch-size', type=int, default=16, metavar='N', help='clips per validation batch (default: 16)')

    speed = parser.add_argument_group('speed and memory (results stay the same unless noted)')
    speed.add_argument('--bf16', action='store_true',
                       help='run the denoiser under bfloat16 autocast: faster on GPUs and CPUs with AMX, much slower '
                            'on other CPUs; changes results slightly')
    speed.add_argument('--compile', action='store_true', help='torch.compile the denoiser (the first steps compile)')
    speed.add_argument('--activation-checkpointing', action='store_true',
                       help='recompute the denoiser blocks in the backward pass: much less training memory, '
                            'about a third more compute')

    evaluation = parser.add_argument_group('evaluation')
    evaluation.add_argument('-num_proposals', type=int, default=1, metavar='H', help='hypotheses per clip (paper: 20)')
    evaluation.add_argument('-sampling_timesteps', type=int, default=1, metavar='K', help='DDIM steps (paper: 10)')
    evaluation.add_argument('--p2', action='store_true', help='also report Protocol #2 (P-MPJPE)')
    evaluation.add_argument('--no-test-time-flip', dest='test_time_flip', action='store_false',
                            help='do not average with the horizontally flipped input')
    return parser


def build_parser(dataset: str) -> argparse.ArgumentParser:
    """The parser of ``main.py`` (dataset 'h36m') or ``main_3dhp.py`` ('mpi_inf_3dhp')."""
    parser = argparse.ArgumentParser(
        description='FinePOSE on Human3.6M' if dataset == 'h36m' else 'FinePOSE on MPI-INF-3DHP')
    _add_common(parser)
    if dataset == 'h36m':
        h36m = parser.add_argument_group('Human3.6M')
        h36m.add_argument('-d', '--dataset', default='h36m', choices=['h36m', 'custom'], help='dataset (default: h36m)')
        h36m.add_argument('-k', '--keypoints', default='cpn_ft_h36m_dbb', metavar='NAME',
                          help='2D keypoints file data_2d_h36m_NAME.npz (default: cpn_ft_h36m_dbb)')
        h36m.add_argument('-str', '--subjects-train', default='S1,S5,S6,S7,S8', metavar='LIST', help='training subjects')
        h36m.add_argument('-ste', '--subjects-test', default='S9,S11', metavar='LIST', help='test subjects')
        h36m.add_argument('--val-subjects', default=None, metavar='LIST',
                          help='subjects validated after each epoch (default: the test subjects, as the community does)')
        h36m.add_argument('-a', '--actions', default='*', metavar='LIST', help="actions (prefixes) to use, or '*'")
        h36m.add_argument('--eval-action', default='gt', choices=['gt', 'none'],
                          help="action label in the evaluation prompts: 'gt' (the ground-truth label) or 'none' (empty)")
    else:
        hp = parser.add_argument_group('MPI-INF-3DHP')
        hp.add_argument('--test-sequences', default='TS1,TS2,TS3,TS4,TS5,TS6', metavar='LIST',
                        help='test sequences to evaluate and export')
        hp.add_argument('--annotations', default=None, metavar='PATH',
                        help='folder with the official TS*/annot_data.mat, to print PCK/AUC after --evaluate')
    return parser


def parse_args(dataset: str, argv=None):
    """Parse and check flags; bad values raise ``UserError`` (a one-line message)."""
    args = build_parser(dataset).parse_args(argv)
    if args.resume and args.evaluate:
        raise UserError('--resume and --evaluate cannot be used together')
    if args.num_proposals < 1:
        raise UserError(f'-num_proposals {args.num_proposals}: expected at least 1 hypothesis')
    if args.sampling_timesteps < 1:
        raise UserError(f'-sampling_timesteps {args.sampling_timesteps}: expected at least 1 DDIM step')
    if args.sampling_timesteps > args.timestep:
        raise UserError(f'-sampling_timesteps {args.sampling_timesteps} exceeds -timestep {args.timestep}')
    for flag, value in (('-f', args.number_of_frames), ('-b', args.batch_size), ('-s', args.stride), ('-cs', args.cs),
                        ('-dep', args.dep), ('-timestep', args.timestep), ('-cf', args.checkpoint_frequency)):
        if value < 1:
            raise UserError(f'{flag} {value}: expected a positive integer')
    if args.cs % 8:
        raise UserError(f'-cs {args.cs}: expected a multiple of the 8 attention heads')
    if not 0.0 <= args.action_dropout <= 1.0:
        raise UserError(f'--action-dropout {args.action_dropout}: expected a probability in [0, 1]')
    if args.epochs is None:
        args.epochs = EPOCHS_GT_KEYPOINTS if getattr(args, 'keypoints', '') == 'gt' else 100
    return args

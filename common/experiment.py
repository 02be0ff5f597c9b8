"""The flow shared by ``main.py`` and ``main_3dhp.py``: build, then train or evaluate.

An entry point loads its dataset into an ``ExperimentData`` and calls ``run``; everything that
does not depend on the dataset (devices, model, checkpoints, training, evaluation, tables)
happens here, once.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from common.checkpoints import config_from_dict, load_model_weights, read_checkpoint
from common.clip_text import TEXT_TOWERS
from common.devices import setup_runtime, shutdown
from common.errors import UserError
from common.evaluation import SamplingSettings, evaluate
from common.generators import ChunkedGenerator
from common.model import ExecutionOptions, ModelConfig, apply_execution_options, build_model
from common.arguments import CLIPS_PER_BATCH
from common.report import count, format_result, ground_truth_notice, write_result_files
from common.tb_logging import ScalarLogger
from common.training import BEST_CHECKPOINT, TrainSettings, train


@dataclass
class ExperimentData:
    """What a dataset contributes. Sequences are ``common.sequences.Sequence``.

    test_groups / validation_groups: one group key per sequence (action, or test sequence).
    test_action_labels: the label fed to each test sequence's prompt.
    on_evaluated: called with (EvaluationResult, checkpoint folder, stem) on rank 0 after the
    final evaluation (3DHP: export and score the .mat files).
    """
    layout: str
    skeleton: object
    keypoints_mirror: object
    train: list
    validation: list
    validation_groups: list
    test: list
    test_groups: list
    test_action_labels: list
    group_title: str
    action_source: str = 'gt'
    keep_poses: bool = False
    on_evaluated: Optional[Callable] = None
    description: dict = field(default_factory=dict)


def model_config_from_args(args, layout: str) -> ModelConfig:
    return ModelConfig(layout=layout, num_frames=args.number_of_frames, width=args.cs, depth=args.dep,
                       drop_path=args.drop_path, timesteps=args.timestep, scale=args.scale,
                       frozen_prompts=args.frozen_prompts, text_tower=TEXT_TOWERS[args.text_tower])


def resolve_checkpoint(name: str, checkpoint_dir: Path, flag: str) -> Path:
    """A checkpoint given as a path, or as a file name inside the -c folder (the reference's way)."""
    for candidate in (Path(name), checkpoint_dir / name):
        if candidate.is_file():
            return candidate
    available = sorted(p.name for p in checkpoint_dir.glob('*.bin')) if checkpoint_dir.is_dir() else []
    hint = f'; available in {checkpoint_dir}: {", ".join(available)}' if available else ''
    raise UserError(f'{flag} {name}: no such checkpoint (looked for {name} and {checkpoint_dir / name}){hint}')


def _check_frames(args, data: ExperimentData):
    longest = max(s.num_frames for s in data.train + data.test)
    if args.number_of_frames > longest:
        raise UserError(f'-f {args.number_of_frames}: longer than every sequence (longest: {longest} frames); '
                        'choose a smaller -f')


def batch_description(clips: int, processes: int) -> str:
    """How many clips a training batch holds, and why (the log line)."""
    why = (f"-b {clips}, the default: the paper's 1024 frames = {CLIPS_PER_BATCH} clips of 243 frames"
           if clips == CLIPS_PER_BATCH else f'-b {clips}')
    split = f', split over {processes} processes' if processes > 1 else ''
    return f'{count(clips, "clip")} per batch ({why}{split})'


def _parameter_counts(model):
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return trainable, frozen


def _build(args, config: ModelConfig, skeleton, keypoints_mirror, runtime):
    model = build_model(config, keypoints_mirror, skeleton.mirror_permutation(), args.clip_weights,
                        args.require_clip_weights)
    options = ExecutionOptions(bf16=args.bf16, compile=args.compile, activation_checkpointing=args.activation_checkpointing)
    return apply_execution_options(model.to(runtime.device), options)


def load_checkpoint_model(args, layout: str, skeleton, keypoints_mirror, runtime):
    """The model of ``--evaluate``, weights loaded, on ``runtime.device``.

    Our checkpoints carry their configuration; an official one is built from the flags
    (``-f``, ``-cs``, ``-dep``, ...). A model trained for another joint layout is a ``UserError``.
    Returns (model, checkpoint path, checkpoint dict from ``read_checkpoint``).
    """
    path = resolve_checkpoint(args.evaluate, Path(args.checkpoint), '--evaluate')
    checkpoint = read_checkpoint(path)
    config = (config_from_dict(checkpoint['model_config']) if checkpoint['format'] != 'official'
              else model_config_from_args(args, layout))
    if config.layout != layout:
        raise UserError(f'--evaluate {path}: a model for the {config.layout} layout, but this data has the '
                        f'{layout} layout')
    model = _build(args, config, skeleton, keypoints_mirror, runtime)
    load_model_weights(model, checkpoint, path)
    return model, path, checkpoint


def _evaluate_and_report(args, model, data: ExperimentData, runtime, checkpoint_dir: Path, stem: str):
    # Standalone --evaluate samples -b clips at a time (the paper's -b 4); after training, --val-batch-size.
    clips_per_batch = args.batch_size if args.evaluate else args.val_batch_size
    settings = SamplingSettings(args.num_proposals, args.sampling_timesteps, args.test_time_flip, clips_per_batch, args.seed)
    protocols = (1, 2) if args.p2 else (1,)
    result = evaluate(model, data.test, data.test_groups, runtime, model.denoiser.num_frames, data.skeleton.root,
                      settings, data.test_action_labels, protocols, data.keep_poses,
                      show_progress=not args.no_progress and runtime.is_main)
    if runtime.is_main:
        print(ground_truth_notice(data.action_source))
        print(format_result(result, data.group_title))
        files = write_result_files(result, checkpoint_dir, f'{stem}_H{settings.num_hypotheses}_K{settings.num_steps}',
                                   data.group_title, {'checkpoint': stem, 'action_source': data.action_source})
        print('Wrote ' + ', '.join(str(f) for f in files))
        if data.on_evaluated is not None:
            data.on_evaluated(result, checkpoint_dir, stem)
    return result


def run(args, data: ExperimentData):
    """Train (then evaluate the best checkpoint) or, with --evaluate, evaluate a checkpoint."""
    runtime = setup_runtime(args.gpu, args.threads)
    torch.manual_seed(args.seed)
    checkpoint_dir = Path(args.checkpoint)
    if runtime.is_main:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        print(args.command_line)
        print(f'Device: {runtime.device}' + (f' (DataParallel on GPUs {runtime.gpu_ids})' if runtime.gpu_ids else '')
              + (f', rank {runtime.rank} of {runtime.world_size}' if runtime.distributed else '')
              + f', {count(torch.get_num_threads(), "CPU thread")} per process (--threads)')
    _check_frames(args, data)
    try:
        if args.evaluate:
            model, path, checkpoint = load_checkpoint_model(args, data.layout, data.skeleton, data.keypoints_mirror,
                                                            runtime)
            if runtime.is_main:
                trained = f", trained for {count(checkpoint['epoch'], 'epoch')}" if 'epoch' in checkpoint else ''
                print(f'Evaluating {path} ({checkpoint["format"]} checkpoint{trained})')
            return _evaluate_and_report(args, model, data, runtime, checkpoint_dir, path.stem)

        resume = None
        config = model_config_from_args(args, data.layout)
        if args.resume:
            resume_path = resolve_checkpoint(args.resume, checkpoint_dir, '-r')
            resume = read_checkpoint(resume_path)
            if resume['format'] == 'official' or resume.get('optimizer') is None:
                raise UserError(f'-r {resume_path}: not a resumable checkpoint of this project '
                                '(official checkpoints hold no resumable state; use --evaluate)')
            config = config_from_dict(resume['model_config'])
        model = _build(args, config, data.skeleton, data.keypoints_mirror, runtime)
        trainable, frozen = _parameter_counts(model)
        generator = ChunkedGenerator(data.train, config.num_frames, args.batch_size, data.keypoints_mirror,
                                     data.skeleton.mirror_permutation(), augment=args.data_augmentation,
                                     seed=args.seed)
        if runtime.is_main:
            print(f'Model: {trainable / 1e6:.2f}M trainable, {frozen / 1e6:.2f}M frozen parameters '
                  f'(CLIP text tower: {model.prompt_encoder.text_tower.source})')
            print(f'Training on {count(sum(s.num_frames for s in data.train), "frame")} of '
                  f'{count(len(data.train), "sequence")}: {count(generator.num_clips, "clip")} of '
                  f'{count(config.num_frames, "frame")}; {batch_description(args.batch_size, runtime.world_size)}, '
                  f'{count(generator.num_batches, "batch", "batches")} per epoch')
            print(f'No validation (--no-eval): {BEST_CHECKPOINT} is the last epoch' if args.no_eval else
                  f'Validating after each epoch on {count(len(data.validation), "sequence")} '
                  f'({data.description.get("validation", "")})')
        logger = ScalarLogger(checkpoint_dir / 'tensorboard', enabled=runtime.is_main and not args.nolog)
        logger.text('command', args.command_line)
        settings = TrainSettings(epochs=args.epochs, learning_rate=args.learning_rate, lr_decay=args.lr_decay,
                                 weight_decay=args.weight_decay, action_dropout=args.action_dropout,
                                 checkpoint_frequency=args.checkpoint_frequency, seed=args.seed,
                                 gradient_scale=args.gradient_scale,
                                 validate=not args.no_eval, export_curves=args.export_training_curves,
                                 show_progress=not args.no_progress)
        validation = dict(sequences=data.validation, groups=data.validation_groups, num_frames=config.num_frames,
                          root=data.skeleton.root, batch_size=args.val_batch_size)
        train(model, config, runtime, generator, validation, settings, checkpoint_dir, logger, resume,
              args.resume and resume_path)
        logger.close()
        best = checkpoint_dir / BEST_CHECKPOINT
        load_model_weights(model, read_checkpoint(best), best)
        if runtime.is_main:
            print(f'Evaluating the {"last (--no-eval)" if args.no_eval else "best"} checkpoint {best}')
        return _evaluate_and_report(args, model, data, runtime, checkpoint_dir, best.stem)
    finally:
        shutdown(runtime)

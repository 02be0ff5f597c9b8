"""The flow shared by ``main.py`` and ``main_3dhp.py``: build, then train or evaluate.

An entry point loads its dataset into an ``ExperimentData`` and calls ``run``; everything that
does not depend on the dataset (devices, model, checkpoints, training, evaluation, tables)
happens here, once.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from common.core.atomic import check_writable, remove_stale_temporaries
from common.core.errors import UserError
from common.data.generators import ChunkedGenerator
from common.evaluation.protocol import SamplingSettings, evaluate
from common.evaluation.report import count, format_result, ground_truth_notice, result_file_stem, write_result_files
from common.model.build import ExecutionOptions, ModelConfig, apply_execution_options, build_model
from common.model.clip_text import TEXT_TOWERS
from common.run.arguments import check_sampling_steps
from common.run.batch_rule import epoch_shortfall
from common.run.checkpoint_config import adopt_checkpoint_config
from common.run.checkpoints import config_from_dict, legacy_config_notes, load_model_weights, read_checkpoint
from common.run.devices import setup_runtime, shutdown
from common.run.run_folder import delete_earlier_run, refuse_used_folder
from common.run.tb_logging import ScalarLogger
from common.run.training import BEST_CHECKPOINT, TrainSettings, train


@dataclass
class ExperimentData:
    """What a dataset contributes. Sequences are ``common.data.sequences.Sequence``.

    test_groups / validation_groups: one group key per sequence (action, or test sequence).
    test_action_labels: the label fed to each test sequence's prompt.
    result_tags: what, besides the sampling settings, makes the evaluation's numbers (e.g. the
    keypoints and subjects), for the result file names (``report.result_file_stem``).
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
    description: dict = field(default_factory=dict)       # 'validation', and lines printed: 'training', 'test'
    result_tags: tuple = ()


def model_config_from_args(args, layout: str) -> ModelConfig:
    return ModelConfig(layout=layout, num_frames=args.number_of_frames, width=args.cs, depth=args.dep,
                       drop_path=args.drop_path, timesteps=args.timestep, scale=args.scale,
                       learn_prompts=args.learn_prompts, per_clip_prompts=args.per_clip_prompts,
                       text_tower=TEXT_TOWERS[args.text_tower])


def read_model_checkpoint(args, name: str, flag: str, layout: str):
    """Read the checkpoint of ``--evaluate``/``-r`` and settle the model configuration: ours carry
    it (the flags follow it, see ``adopt_checkpoint_config``); an official one is built from the
    flags. Also checks -sampling_timesteps against the model's diffusion steps.
    Returns (path, checkpoint dict, ModelConfig, the line describing where the configuration came from)."""
    path = resolve_checkpoint(name, Path(args.checkpoint), flag)
    checkpoint = read_checkpoint(path)
    if checkpoint['format'] == 'official':
        if args.clip_weights:
            raise UserError(f'--clip-weights {args.clip_weights}: {path} is an official checkpoint and carries its '
                            'own CLIP text tower; drop --clip-weights')
        config = model_config_from_args(args, layout)
        check_sampling_steps(args.sampling_timesteps, config.timesteps)
        return path, checkpoint, config, f'Model configuration from the flags (official checkpoint {path})'
    config = config_from_dict(checkpoint['model_config'])
    if config.layout != layout:
        raise UserError(f'{flag} {path}: a model for the {config.layout} layout, but this data has the '
                        f'{layout} layout')
    described = adopt_checkpoint_config(args, config, path)
    described += ''.join(f'\n{path}: {note}' for note in legacy_config_notes(checkpoint['model_config']))
    check_sampling_steps(args.sampling_timesteps, config.timesteps, path)
    return path, checkpoint, config, described


def execution_options_from_args(args) -> ExecutionOptions:
    """The flags of ``arguments.add_execution_flags`` as ``ExecutionOptions``."""
    return ExecutionOptions(bf16=args.bf16, compile=args.compile, activation_checkpointing=args.activation_checkpointing)


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


def batch_description(batch, processes: int) -> str:
    """How many clips a training step takes, and why (``batch_rule.TrainingBatch``; the log line)."""
    return batch.description + (f', split over {processes} processes' if processes > 1 else '')


def ignored_training_flags_note(args, inference: bool = False):
    """The line saying which training flags given do nothing here (--evaluate; ``inference``:
    -d custom, --render, --viz-export, which also ignore --downsample), or None."""
    ignored = [f'-s {args.stride}'] if args.stride is not None else []
    if getattr(args, 'subset', 1) != 1:
        ignored.append(f'--subset {args.subset:g}')
    if inference and getattr(args, 'downsample', 1) != 1:
        ignored.append(f'--downsample {args.downsample}')
    if not ignored:
        return None
    return (f'{" ".join(ignored)}: not used here (training flags; -b {args.batch_size} counts windows per sampling '
            'batch)')


def _parameter_counts(model):
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    return trainable, frozen


def _build(args, config: ModelConfig, skeleton, keypoints_mirror, runtime, clip_in_checkpoint: bool = False):
    model = build_model(config, keypoints_mirror, skeleton.mirror_permutation(), args.clip_weights,
                        args.require_clip_weights, clip_in_checkpoint)
    return apply_execution_options(model.to(runtime.device), execution_options_from_args(args))


def build_checkpoint_model(args, path, checkpoint, config, skeleton, keypoints_mirror, runtime):
    """The model of a checkpoint read by ``read_model_checkpoint``, weights loaded, on ``runtime.device``
    (an official checkpoint also fills the CLIP text tower)."""
    model = _build(args, config, skeleton, keypoints_mirror, runtime, checkpoint['format'] == 'official')
    load_model_weights(model, checkpoint, path)
    return model


def load_checkpoint_model(args, layout: str, skeleton, keypoints_mirror, runtime):
    """The model of ``--evaluate``, weights loaded, on ``runtime.device``; prints where its
    configuration came from. Returns (model, checkpoint path, checkpoint dict from ``read_checkpoint``)."""
    path, checkpoint, config, described = read_model_checkpoint(args, args.evaluate, '--evaluate', layout)
    if runtime.is_main:
        print(described)
        if ignored_training_flags_note(args, inference=True):
            print(ignored_training_flags_note(args, inference=True))
    return build_checkpoint_model(args, path, checkpoint, config, skeleton, keypoints_mirror, runtime), path, checkpoint


def _evaluate_and_report(args, model, data: ExperimentData, runtime, checkpoint_dir: Path, stem: str):
    # Standalone --evaluate samples -b clips at a time (the paper's -b 4); after training, --val-batch-size.
    clips_per_batch = args.batch_size if args.evaluate else args.val_batch_size
    settings = SamplingSettings(args.num_proposals, args.sampling_timesteps, args.test_time_flip, clips_per_batch, args.seed)
    protocols = (1, 2) if args.p2 else (1,)
    result = evaluate(model, data.test, data.test_groups, runtime, model.denoiser.num_frames, data.skeleton.root,
                      settings, data.test_action_labels, protocols, data.keep_poses,
                      show_progress=not args.no_progress and runtime.is_main)
    if not all(np.isfinite(values).all() for values in result.average.values()):
        raise UserError(f'{stem}: the model predicts non-finite poses (NaN or inf errors); no result written')
    if runtime.is_main:
        if 'test' in data.description:
            print(data.description['test'])
        print(ground_truth_notice(data.action_source))
        print(format_result(result, data.group_title))
        name = result_file_stem(stem, settings, data.action_source, *data.result_tags, *(['bf16'] if args.bf16 else []))
        files = write_result_files(result, checkpoint_dir, name, data.group_title,
                                   {'checkpoint': stem, 'action_source': data.action_source,
                                    'data': list(data.result_tags)})
        print('Wrote ' + ', '.join(str(f) for f in files))
        if data.on_evaluated is not None:
            data.on_evaluated(result, checkpoint_dir, stem)
    return result


def run(args, load_data: Callable):
    """Train (then evaluate the best checkpoint) or, with --evaluate, evaluate a checkpoint.

    load_data: args -> ``ExperimentData``, called once the -c folder is known to be usable.
    """
    runtime = setup_runtime(args.gpu, args.threads)
    torch.manual_seed(args.seed)
    try:
        checkpoint_dir = _prepare_checkpoint_folder(args, runtime)
        data = load_data(args)
        if args.evaluate:
            path, checkpoint, config, described = read_model_checkpoint(args, args.evaluate, '--evaluate', data.layout)
            _check_frames(args, data)
            if runtime.is_main:
                print(described)
                if ignored_training_flags_note(args):
                    print(ignored_training_flags_note(args))
            model = build_checkpoint_model(args, path, checkpoint, config, data.skeleton, data.keypoints_mirror, runtime)
            if runtime.is_main:
                trained = f", trained for {count(checkpoint['epoch'], 'epoch')}" if 'epoch' in checkpoint else ''
                print(f'Evaluating {path} ({checkpoint["format"]} checkpoint{trained}; CLIP text tower: '
                      f'{model.prompt_encoder.text_tower.source})')
            return _evaluate_and_report(args, model, data, runtime, checkpoint_dir, path.stem)

        resume = None
        config = model_config_from_args(args, data.layout)
        if args.resume:
            resume_path, resume, config, described = read_model_checkpoint(args, args.resume, '-r', data.layout)
            if resume['format'] == 'official' or resume.get('optimizer') is None:
                raise UserError(f'-r {resume_path}: not a resumable checkpoint of this project '
                                '(official checkpoints hold no resumable state; use --evaluate)')
            if runtime.is_main:
                print(described)
        _check_frames(args, data)
        model = _build(args, config, data.skeleton, data.keypoints_mirror, runtime)
        trainable, frozen = _parameter_counts(model)
        generator = ChunkedGenerator(data.train, config.num_frames, args.training_batch.clips, data.keypoints_mirror,
                                     data.skeleton.mirror_permutation(), augment=args.data_augmentation,
                                     seed=args.seed)
        if runtime.is_main:
            print(f'Model: {trainable / 1e6:.2f}M trainable, {frozen / 1e6:.2f}M frozen parameters '
                  f'(CLIP text tower: {model.prompt_encoder.text_tower.source})')
            print(f'Training on {count(sum(s.num_frames for s in data.train), "frame")} of '
                  f'{count(len(data.train), "sequence")}: {count(generator.num_clips, "clip")} of '
                  f'{count(config.num_frames, "frame")}; {batch_description(args.training_batch, runtime.world_size)}, '
                  f'{count(generator.num_batches, "step")} per epoch')
            if 'training' in data.description:
                print(data.description['training'])
            shortfall = epoch_shortfall(args.training_batch, generator.num_clips)
            if shortfall:
                print(shortfall)
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
        try:
            run_id = train(model, config, runtime, generator, validation, settings, checkpoint_dir, logger, resume,
                           args.resume and resume_path)
        finally:
            logger.close()
        best = checkpoint_dir / BEST_CHECKPOINT
        checkpoint = read_checkpoint(best)
        if checkpoint.get('run_id') != run_id:
            raise UserError(f'{best} was not written by this run; not evaluating it')
        load_model_weights(model, checkpoint, best)
        if runtime.is_main:
            print(f'Evaluating the {"last (--no-eval)" if args.no_eval else "best"} checkpoint {best}')
        return _evaluate_and_report(args, model, data, runtime, checkpoint_dir, best.stem)
    finally:
        shutdown(runtime)


def _prepare_checkpoint_folder(args, runtime) -> Path:
    """Before any work: -c writable, our abandoned temporary files removed, and a new training run
    in a folder of its own (``run_folder``: an earlier run's checkpoints are refused, or deleted
    with --overwrite). Every process checks; the main one changes files."""
    checkpoint_dir = check_writable(args.checkpoint, '-c')
    if runtime.is_main:
        print(args.command_line)
        print(f'Device: {runtime.device}' + (f' (DataParallel on GPUs {runtime.gpu_ids})' if runtime.gpu_ids else '')
              + (f', rank {runtime.rank} of {runtime.world_size}' if runtime.distributed else '')
              + f', {count(torch.get_num_threads(), "CPU thread")} per process (--threads)')
    earlier = [] if args.evaluate else refuse_used_folder(checkpoint_dir, bool(args.resume), args.overwrite)
    runtime.barrier()
    if runtime.is_main:
        report_removed_temporaries(checkpoint_dir)
        if earlier:
            removed = delete_earlier_run(checkpoint_dir)
            print(f'--overwrite: deleted {len(removed)} files of the earlier run in {checkpoint_dir}: '
                  + ', '.join(str(p.relative_to(checkpoint_dir)) for p in removed))
    runtime.barrier()
    return checkpoint_dir


def report_removed_temporaries(folder) -> None:
    removed = remove_stale_temporaries(folder)
    if removed:
        print(f'Removed {len(removed)} temporary files left by an interrupted save in {folder}: '
              + ', '.join(p.name for p in removed))

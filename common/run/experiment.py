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

from common.core.atomic import (check_name_length, check_writable, missing_folders, remove_empty_folders,
                                remove_stale_temporaries)
from common.core.errors import UserError
from common.data.generators import ChunkedGenerator, training_mean_pose
from common.evaluation.baseline import MeanPose
from common.evaluation.metrics import VELOCITY
from common.evaluation.protocol import ORIGINAL, PER_FRAME_COUNTING, Counting, SamplingSettings, evaluate
from common.evaluation.report import (count, format_result, ground_truth_notice, result_file_stem, smoothing_tag,
                                      write_result_files)
from common.evaluation.smoothing import check_smoothable
from common.model.build import ExecutionOptions, ModelConfig, apply_execution_options, build_model
from common.model.clip_text import TEXT_TOWERS
from common.run.arguments import TRAINING_ONLY_FLAGS, check_sampling_steps
from common.run.batch_rule import epoch_shortfall
from common.run.checkpoint_config import adopt_checkpoint_config
from common.run.checkpoints import (RESUME_KEYS, check_keys, checksum_note, config_from_dict, legacy_config_notes,
                                    load_model_weights, read_checkpoint, stored_mean_pose)
from common.run.devices import setup_runtime, shutdown
from common.run.run_folder import FolderLock, delete_earlier_run, refuse_used_folder
from common.run.tb_logging import ScalarLogger
from common.run.training import BEST_CHECKPOINT, LAST_CHECKPOINT, TrainSettings, train


@dataclass
class ExperimentData:
    """What a dataset contributes. Sequences are ``common.data.sequences.Sequence``.

    test_groups / validation_groups: one group key per sequence (action, or test sequence).
    test_action_labels: the label fed to each test sequence's prompt.
    result_tags: what, besides the sampling settings, makes the evaluation's numbers (e.g. the
    keypoints and subjects), for the result file names (``report.result_file_stem``).
    training_data: what training trains on, as the user selects it ({'-str': 'S1,S5', ...}):
    recorded in the checkpoints, and a resume with another selection is refused.
    notes: lines the main process prints once the data is loaded (e.g. training subjects that
    are also test subjects).
    on_evaluated: called with (EvaluationResult, checkpoint folder, stem) on rank 0 after the
    final evaluation (3DHP: export and score the .mat files).
    original_test_counting / original_validation_counting: how the original's evaluation and its
    per-epoch validation count (``--protocol original``); None for the test: P-Best per batch of
    ``-b`` windows (``original_p_best_windows``) with the groups averaged, as the original's main.py.
    training_sequences: () -> the training sequences as a training run would read them (a
    ``UserError`` when they are not at hand); called only to compute the mean-pose baseline of an
    evaluated checkpoint that carries none (``evaluation_mean_pose``).
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
    training_data: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    original_test_counting: Optional[Counting] = None
    # The original's per-epoch validation: H=1 (P-Best = P-Agg), each sequence in one batch, pooled.
    original_validation_counting: Counting = Counting(ORIGINAL, None, pooled=True)
    training_sequences: Optional[Callable] = None


LONGEST_RESULT_SUFFIX = '.json'     # report.write_result_files writes NAME.csv and NAME.json
# The original's default -b (1024), which its evaluation reads as windows: one P-Best batch per sequence.
ORIGINAL_EVALUATION_BATCH = 1024


def original_p_best_windows(args) -> tuple:
    """(windows per P-Best batch, where that comes from) under --protocol original: the -b written on
    the command line, read as windows as the original's evaluation reads it (after training too:
    there the sampling batch is --val-batch-size, which changes no number); else the original's
    default, 1024."""
    if 'batch_size' in args.given:
        return args.batch_size, f'-b {args.batch_size}'
    return ORIGINAL_EVALUATION_BATCH, f"-b {ORIGINAL_EVALUATION_BATCH}, the original's default"


def final_counting(args, data: ExperimentData) -> Counting:
    """How the final table (--evaluate, or after training) counts (``--protocol``)."""
    if args.protocol != ORIGINAL:
        return PER_FRAME_COUNTING
    if data.original_test_counting is not None:
        return data.original_test_counting
    windows, source = original_p_best_windows(args)
    return Counting(ORIGINAL, windows, batch_source=source)


def validation_counting(args, data: ExperimentData) -> Counting:
    """How the per-epoch validation that picks best_epoch.bin counts (``--protocol``)."""
    return data.original_validation_counting if args.protocol == ORIGINAL else PER_FRAME_COUNTING


def model_config_from_args(args, layout: str) -> ModelConfig:
    return ModelConfig(layout=layout, num_frames=args.number_of_frames, width=args.cs, depth=args.dep,
                       drop_path=args.drop_path, timesteps=args.timestep, scale=args.scale,
                       learn_prompts=args.learn_prompts, per_clip_prompts=args.per_clip_prompts,
                       text_tower=TEXT_TOWERS[args.text_tower])


def read_model_checkpoint(args, name: str, flag: str, layout: str):
    """Read the checkpoint of ``--evaluate``/``-r`` and settle the model configuration: ours carry
    it (the flags follow it, see ``adopt_checkpoint_config``); an official one is built from the
    flags. Also checks -sampling_timesteps against the model's diffusion steps.
    Returns (path, checkpoint dict, ModelConfig, the lines describing where the configuration came
    from, preceded by ``checksum_note``'s when the file carries no checksums to check)."""
    path = resolve_checkpoint(name, Path(args.checkpoint), flag)
    checkpoint = read_checkpoint(path)
    note = checksum_note(path)
    if checkpoint['format'] == 'official':
        if args.clip_weights:
            raise UserError(f'--clip-weights {args.clip_weights}: {path} is an official checkpoint and carries its '
                            'own CLIP text tower; drop --clip-weights')
        config = model_config_from_args(args, layout)
        check_sampling_steps(args.sampling_timesteps, config.timesteps)
        described = f'Model configuration from the flags (official checkpoint {path})'
    else:
        config = config_from_dict(checkpoint['model_config'], path)
        if config.layout != layout:
            raise UserError(f'{flag} {path}: a model for the {config.layout} layout, but this data has the '
                            f'{layout} layout')
        described = adopt_checkpoint_config(args, config, path)
        described += ''.join(f'\n{path}: {note}' for note in legacy_config_notes(checkpoint['model_config']))
        check_sampling_steps(args.sampling_timesteps, config.timesteps, path)
    return path, checkpoint, config, '\n'.join(filter(None, [note, described]))


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


def dataset_sequence_name(sequence) -> str:
    """'S9 Walking 1 camera 0' ('TS1 camera 0' without an action)."""
    return ' '.join(str(part) for part in (sequence.subject, sequence.action, 'camera', sequence.camera) if part != '')


def sequence_lengths(sequences, name=dataset_sequence_name) -> dict:
    """{name(sequence): frames} of ``Sequence``s (what ``check_smoothable`` names)."""
    return {name(s): s.num_frames for s in sequences}


def smoothing_note(args, sequences, name=dataset_sequence_name):
    """--smooth, before the model runs: a ``UserError`` for a sequence too short to smooth; the one
    line naming those smoothed with a shorter window, or None (also without --smooth). ``name``:
    Sequence -> how the lines call it."""
    return check_smoothable(args.smooth, sequence_lengths(sequences, name)) if args.smooth else None


def _selection_text(selection: dict) -> str:
    return ' '.join(f'{key} {value}' for key, value in selection.items())


def check_same_training_data(recorded, selected: dict, source) -> None:
    """A resumed run trains on the data it started with: ``recorded`` (the checkpoint's
    ``training_data``; None in files written before it was recorded) must equal ``selected``."""
    if recorded is not None and recorded != selected:
        differing = [key for key in {**recorded, **selected} if recorded.get(key) != selected.get(key)]
        raise UserError(f'-r {source}: its run trained on {_selection_text({k: recorded.get(k) for k in differing})}, '
                        f'this command selects {_selection_text({k: selected.get(k) for k in differing})}; resume '
                        f'with the run\'s selection ({_selection_text(recorded)}), or start a new run in another -c')


def check_resumed_epochs(epochs: int, trained: int, source) -> Optional[str]:
    """-e counts the run's epochs in all: fewer than the checkpoint ``source`` has ``trained`` is a
    ``UserError``; as many trains nothing (the final evaluation only), said in the line returned."""
    if epochs < trained:
        raise UserError(f'-e {epochs}: {source} has already trained {count(trained, "epoch")} (-e counts all the '
                        f'epochs of the run); pass -e {trained + 1} or more to train further, or evaluate it with '
                        f'--evaluate {source}')
    if epochs == trained:
        return (f'-e {epochs}: {source} has trained {count(trained, "epoch")} already; nothing to train, the run '
                f'evaluates {BEST_CHECKPOINT}')
    return None


def _check_frames(args, data: ExperimentData):
    longest = max(s.num_frames for s in data.train + data.test)
    if args.number_of_frames > longest:
        raise UserError(f'-f {args.number_of_frames}: longer than every sequence (longest: {longest} frames); '
                        'choose a smaller -f')


def batch_description(batch, processes: int) -> str:
    """How many clips a training step takes, and why (``batch_rule.TrainingBatch``; the log line)."""
    return batch.description + (f', split over {processes} processes' if processes > 1 else '')


def ignored_training_flags_note(args, inference: bool = False):
    """The line saying which training flags written on the command line do nothing here (--evaluate;
    ``inference``: -d custom, --render, --viz-export, which also ignore --downsample), or None."""
    unused = [dest for dest in TRAINING_ONLY_FLAGS if dest in args.given]
    if args.improvements and 'gradient_scale' in unused:     # set by --improvements, not typed
        unused.remove('gradient_scale')
    if inference and 'downsample' in args.given:
        unused.append('downsample')
    if not unused:
        return None
    ignored = [_as_typed(args.flag_names[dest], getattr(args, dest)) for dest in unused]
    return (f'{" ".join(ignored)}: not used here (training flags; -b {args.batch_size} counts windows per sampling '
            'batch)')


def _as_typed(flag: str, value) -> str:
    """A flag and its value as a user writes them (a switch alone, a float without trailing zeros)."""
    if isinstance(value, bool):
        return flag
    return f'{flag} {value:g}' if isinstance(value, float) else f'{flag} {value}'


def clips_description(generator: ChunkedGenerator, frames: int) -> str:
    """The training clips of an epoch, their mirrored copies (flip augmentation) said as such."""
    if generator.augment:
        return f'{count(generator.num_clips // 2, "clip")} x 2 with their mirrored copies, of {count(frames, "frame")}'
    return f'{count(generator.num_clips, "clip")} of {count(frames, "frame")}'


def training_generator(args, data: ExperimentData, num_frames: int) -> ChunkedGenerator:
    """The training clips of ``data.train``: ``num_frames`` frames, ``args.training_batch`` clips a
    step, flip augmentation unless -no-da, shuffled from --seed."""
    return ChunkedGenerator(data.train, num_frames, args.training_batch.clips, data.keypoints_mirror,
                            data.skeleton.mirror_permutation(), augment=args.data_augmentation, seed=args.seed)


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


def mean_pose_of(args, data: ExperimentData, sequences, chunk_length: int, note: str = '') -> MeanPose:
    """The mean pose of ``sequences`` as training clips them (``generators.training_mean_pose``:
    ``chunk_length``-frame chunks, mirrored copies with flip augmentation), described in words."""
    pose = training_mean_pose(sequences, chunk_length, data.skeleton.mirror_permutation(), args.data_augmentation)
    mirrored = ' and their mirror images (flip augmentation)' if args.data_augmentation else ''
    frames = sum(s.num_frames for s in sequences)
    return MeanPose(pose, f'the mean pose of the training clips{note} ({_selection_text(data.training_data)}: '
                          f'{count(len(sequences), "sequence")}, {count(frames, "frame")}, as {chunk_length}-frame '
                          f'clips{mirrored}), root-relative, camera frame')


def evaluation_mean_pose(args, data: ExperimentData, checkpoint: dict, path: Path, chunk_length: int) -> MeanPose:
    """The baseline of ``--evaluate``'s tables: the mean pose stored in our checkpoint; for an official
    checkpoint, or one of ours written before checkpoints carried it, computed now from the training
    data (-str, as training would read it) when at hand, else absent with the reason."""
    stored = stored_mean_pose(checkpoint, path.name)
    if stored is not None:
        return stored
    why = ('official checkpoints carry none' if checkpoint['format'] == 'official'
           else f'{path.name} was written before checkpoints carried it')
    try:
        sequences = data.training_sequences() if data.training_sequences is not None else []
    except UserError as err:
        return MeanPose(None, f'{why}, and its training data is not at hand ({err})')
    if not any(s.positions_3d is not None for s in sequences):
        return MeanPose(None, f'{why}, and no training sequence with 3D poses is at hand')
    return mean_pose_of(args, data, sequences, chunk_length, f', computed now ({why})')



def final_sampling(args) -> SamplingSettings:
    """The final evaluation's sampling: standalone --evaluate samples -b clips at a time (the paper's
    -b 4); after training, --val-batch-size."""
    clips_per_batch = args.batch_size if args.evaluate else args.val_batch_size
    return SamplingSettings(args.num_proposals, args.sampling_timesteps, args.test_time_flip, clips_per_batch,
                            args.seed)


def result_name(args, data: ExperimentData, stem: str) -> str:
    """The name (without extension) of the final evaluation's tables of checkpoint ``stem``."""
    return result_file_stem(stem, final_sampling(args), data.action_source, final_counting(args, data),
                            *data.result_tags, *(['bf16'] if args.bf16 else []), *smoothing_tag(args.smooth))


def check_result_name(args, data: ExperimentData, checkpoint_dir: Path, stem: str, what: str, remedy: str) -> None:
    """Before any model work: the tables' file names (``result_name``) fit the file system; else a
    ``UserError`` saying ``what`` is evaluated and the ``remedy``."""
    check_name_length(checkpoint_dir / f'{result_name(args, data, stem)}{LONGEST_RESULT_SUFFIX}',
                      f'{what}: its result table', remedy)


def _evaluate_and_report(args, model, data: ExperimentData, runtime, checkpoint_dir: Path, stem: str,
                         mean_pose: MeanPose = None):
    settings = final_sampling(args)
    protocols = (1, 2) if args.p2 else (1,)
    counting = final_counting(args, data)
    result = evaluate(model, data.test, data.test_groups, runtime, model.denoiser.num_frames, data.skeleton.root,
                      settings, data.test_action_labels, protocols, data.keep_poses,
                      show_progress=not args.no_progress and runtime.is_main, counting=counting,
                      smooth_window=args.smooth, mean_pose=mean_pose)
    if not all(np.isfinite(values).all() for (_, metric), values in result.average.items() if metric != VELOCITY):
        raise UserError(f'{stem}: the model predicts non-finite poses (NaN or inf errors); no result written')
    if runtime.is_main:
        if 'test' in data.description:
            print(data.description['test'])
        print(ground_truth_notice(data.action_source))
        print(format_result(result, data.group_title))
        files = write_result_files(result, checkpoint_dir, result_name(args, data, stem), data.group_title,
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
    lock = None
    created = missing_folders(args.checkpoint) if runtime.is_main else []
    try:
        checkpoint_dir = check_writable(args.checkpoint, '-c')
        lock = _lock_training_folder(args, runtime, checkpoint_dir)
        _prepare_checkpoint_folder(args, runtime, checkpoint_dir, lock)
        data = load_data(args)
        smoothing = smoothing_note(args, data.test)
        for note in data.notes + ([smoothing] if smoothing else []) if runtime.is_main else []:
            print(note)
        if args.evaluate:
            path, checkpoint, config, described = read_model_checkpoint(args, args.evaluate, '--evaluate', data.layout)
            check_result_name(args, data, checkpoint_dir, path.stem, f'--evaluate {path}', 'rename the checkpoint')
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
            mean_pose = evaluation_mean_pose(args, data, checkpoint, path, config.num_frames)
            return _evaluate_and_report(args, model, data, runtime, checkpoint_dir, path.stem, mean_pose)

        resume = None
        config = model_config_from_args(args, data.layout)
        if args.resume:
            resume_path, resume, config, described = read_model_checkpoint(args, args.resume, '-r', data.layout)
            if resume['format'] == 'official' or resume.get('optimizer') is None:
                raise UserError(f'-r {resume_path}: not a resumable checkpoint of this project '
                                '(official checkpoints hold no resumable state; use --evaluate)')
            check_keys(resume, RESUME_KEYS, f'-r {resume_path}', ' to resume from')
            check_same_training_data(resume.get('training_data'), data.training_data, resume_path)
            epochs_note = check_resumed_epochs(args.epochs, resume['epoch'], resume_path)
            if runtime.is_main:
                print('\n'.join(filter(None, [described, epochs_note])))
        check_result_name(args, data, checkpoint_dir, Path(BEST_CHECKPOINT).stem, 'the evaluation after training',
                          'shorten the names it is made of (-k, -ste, -a)')
        _check_frames(args, data)
        model = _build(args, config, data.skeleton, data.keypoints_mirror, runtime)
        trainable, frozen = _parameter_counts(model)
        mean_pose = mean_pose_of(args, data, data.train, config.num_frames)
        generator = training_generator(args, data, config.num_frames)
        if runtime.is_main:
            print(f'Model: {trainable / 1e6:.2f}M trainable, {frozen / 1e6:.2f}M frozen parameters '
                  f'(CLIP text tower: {model.prompt_encoder.text_tower.source})')
            print(f'Training on {count(sum(s.num_frames for s in data.train), "frame")} of '
                  f'{count(len(data.train), "sequence")}: {clips_description(generator, config.num_frames)}; '
                  f'{batch_description(args.training_batch, runtime.world_size)}, '
                  f'{count(generator.num_batches, "step")} per epoch')
            if 'training' in data.description:
                print(data.description['training'])
            shortfall = epoch_shortfall(args.training_batch, generator.num_clips)
            if shortfall:
                print(shortfall)
            if args.epochs == 0:
                print(f'-e 0: no training; the initial weights are saved as {LAST_CHECKPOINT} and {BEST_CHECKPOINT} '
                      'and evaluated, an untrained baseline')
            else:
                print(f'No validation (--no-eval): {BEST_CHECKPOINT} is the last epoch' if args.no_eval else
                      f'Validating after each epoch on {count(len(data.validation), "sequence")} '
                      f'({data.description.get("validation", "")}), '
                      + ('counted as the original counts (--protocol original: every window frame, all sequences '
                         'pooled)' if args.protocol == ORIGINAL else 'counted per frame (--protocol per-frame)'))
        logger = ScalarLogger(checkpoint_dir / 'tensorboard', enabled=runtime.is_main and not args.nolog)
        logger.text('command', args.command_line)
        settings = TrainSettings(epochs=args.epochs, learning_rate=args.learning_rate, lr_decay=args.lr_decay,
                                 weight_decay=args.weight_decay, action_dropout=args.action_dropout,
                                 checkpoint_frequency=args.checkpoint_frequency, seed=args.seed,
                                 gradient_scale=args.gradient_scale,
                                 validate=not args.no_eval, export_curves=args.export_training_curves,
                                 show_progress=not args.no_progress)
        validation = dict(sequences=data.validation, groups=data.validation_groups, num_frames=config.num_frames,
                          root=data.skeleton.root, batch_size=args.val_batch_size,
                          counting=validation_counting(args, data))
        try:
            run_id = train(model, config, runtime, generator, validation, settings, checkpoint_dir, logger, resume,
                           args.resume and resume_path, data.training_data, mean_pose)
        finally:
            logger.close()
        best = checkpoint_dir / BEST_CHECKPOINT
        checkpoint = read_checkpoint(best)
        if checkpoint.get('run_id') != run_id:
            raise UserError(f'{best} was not written by this run; not evaluating it')
        load_model_weights(model, checkpoint, best)
        if runtime.is_main:
            print(f'Evaluating the {"last (--no-eval)" if args.no_eval else "best"} checkpoint {best}')
        return _evaluate_and_report(args, model, data, runtime, checkpoint_dir, best.stem,
                                    stored_mean_pose(checkpoint, best.name))
    finally:
        if lock is not None:
            lock.release()
        remove_empty_folders(created)        # a refused run leaves no folder behind
        shutdown(runtime)


def _lock_training_folder(args, runtime, checkpoint_dir: Path):
    """A training run's ``FolderLock`` on -c, held by the main process (None elsewhere, and for
    --evaluate, which writes only its own result files, atomically: evaluations run beside a
    training run and each other). A held folder is a ``UserError`` in every process."""
    lock = refusal = None
    if runtime.is_main and not args.evaluate:
        try:
            lock = FolderLock.acquire(checkpoint_dir, args.command_line)
        except UserError as err:
            refusal = str(err)
    refusal = runtime.gather(refusal)[0]
    if refusal:
        raise UserError(refusal)
    return lock


def _prepare_checkpoint_folder(args, runtime, checkpoint_dir: Path, lock) -> None:
    """Before any work, in the writable -c folder (``check_writable``), locked for training
    (``_lock_training_folder``): our abandoned temporary files removed, and a new training run in
    a folder of its own (``run_folder``: an earlier run's checkpoints are refused, or deleted with
    --overwrite). Every process checks; the main one changes files."""
    if runtime.is_main:
        print(args.command_line)
        print(f'Device: {runtime.device}' + (f' (DataParallel on GPUs {runtime.gpu_ids})' if runtime.gpu_ids else '')
              + (f', rank {runtime.rank} of {runtime.world_size}' if runtime.distributed else '')
              + f', {count(torch.get_num_threads(), "CPU thread")} per process (--threads)')
        if lock is not None and lock.note:
            print(lock.note)
    earlier = [] if args.evaluate else refuse_used_folder(checkpoint_dir, bool(args.resume), args.overwrite)
    runtime.barrier()
    if runtime.is_main:
        report_removed_temporaries(checkpoint_dir)
        if earlier:
            removed = delete_earlier_run(checkpoint_dir)
            print(f'--overwrite: deleted {len(removed)} files of the earlier run in {checkpoint_dir}: '
                  + ', '.join(str(p.relative_to(checkpoint_dir)) for p in removed))
    runtime.barrier()


def report_removed_temporaries(folder) -> None:
    removed = remove_stale_temporaries(folder)
    if removed:
        print(f'Removed {len(removed)} temporary files left by an interrupted save in {folder}: '
              + ', '.join(p.name for p in removed))

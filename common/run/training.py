"""Training: epochs of AdamW steps on shuffled clips, validation, checkpoints, exact resume.

One step: every clip of the global batch of B clips draws from its own generator, seeded by
(seed, epoch, batch, its position in the global batch) (``keyed_random``): its diffusion step t,
its noise, its stochastic-depth masks and, with ``--action-dropout``, whether its action label
is emptied. With torchrun each rank then takes its share of the clips, and each share runs as
micro-batches, so the step is the same function of the global batch (to float rounding) whatever
the number of processes and micro-batches. The loss is the MPJPE of the x0 prediction (metres);
it is logged in millimetres.

Gradient weighting (``--gradient-scale``): the original FinePOSE calls
``loss.backward(loss.detach())``, so each step follows L * dL/dw (the gradient of L^2 / 2), L being
the global batch's loss in the unit its data files hold (metres for Human3.6M, millimetres for
MPI-INF-3DHP). AdamW hides a constant factor but not this one: it weights every batch by its own
loss. 'original' (the default) reproduces it; 'plain' steps with dL/dw.

Prompts (``ModelConfig``): by default as in the original, the prompt vectors do not learn and
FPC mixes the prompts of the global batch's clips (``PoseDiffusion.fpc_prompt_tokens``: which
clip's prompt each joint of each clip attends to is decided over the global batch and sliced
with it, so the step does not depend on processes or micro-batches either; the original, on one
device, mixes over the same batch, and under DataParallel over each GPU's share instead).

Resuming restores weights, optimizer, learning rate, epoch and the data-order RNG (every other
draw is keyed by epoch and batch): an interrupted and resumed run ends with the same weights as
an uninterrupted one.
"""
import contextlib
import math
import secrets
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from common.core.errors import Interrupted, UserError, interruption_exit_code
from common.core.keyed_random import TRAINING_STREAM, generators_from_seeds, keyed_seed
from common.core.units import MM_PER_M
from common.evaluation.protocol import SamplingSettings, evaluate
from common.model.diffusion import chunk_tokens, clip_chunks
from common.model.tokenizer import get_tokenizer
from common.run.checkpoints import load_model_weights, save_checkpoint
from common.run.tb_logging import TAG_EPOCH_TIME, TAG_LR, TAG_TRAIN_LOSS, TAG_VAL_MPJPE, export_training_curves

LAST_CHECKPOINT = 'last_epoch.bin'
BEST_CHECKPOINT = 'best_epoch.bin'
VALIDATION_SETTING = ('P-Agg', 1)
GRADIENT_SCALES = ('original', 'plain')
# The original's training loss per metre of ours: its Human3.6M files hold metres, its
# MPI-INF-3DHP files millimetres (SPEC 2), and it computes the loss on them unconverted.
ORIGINAL_LOSS_UNIT_PER_M = {'h36m': 1.0, 'mpi_inf_3dhp': MM_PER_M}


def epoch_checkpoint_name(epoch: int) -> str:
    return f'epoch_{epoch}.bin'


class TrainingDiverged(UserError):
    """A non-finite training loss or validation error: the run stops at once, its last finite
    epoch kept in ``last_epoch.bin``."""


def _kept_epoch(epoch: int) -> str:
    return f'{LAST_CHECKPOINT} keeps epoch {epoch}' if epoch else 'no checkpoint was written'


def check_finite_loss(loss: float, epoch: int, step: int, completed_epochs: int) -> None:
    """Stop at the first non-finite loss (epoch and step 1-based), naming both."""
    if not math.isfinite(loss):
        raise TrainingDiverged(f'training loss is {loss} at epoch {epoch}, step {step}: the run diverged (lower -lr, '
                               f'check -scale and the data); {_kept_epoch(completed_epochs)}')


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    learning_rate: float = 6e-5
    lr_decay: float = 0.993
    weight_decay: float = 0.1
    action_dropout: float = 0.0
    checkpoint_frequency: int = 20
    seed: int = 1
    gradient_scale: str = 'original'
    validate: bool = True
    export_curves: bool = False
    show_progress: bool = True


def wrap_for_training(model, runtime, find_unused_parameters: bool):
    """The module whose forward computes the loss: DDP under torchrun, DataParallel for -gpu 0,1."""
    if runtime.distributed:
        ids = [runtime.device.index] if runtime.device.type == 'cuda' else None
        return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)
    if runtime.gpu_ids:
        return nn.DataParallel(model, device_ids=runtime.gpu_ids)
    return model


FUSED_OPTIMIZER_DEVICES = ('cpu', 'cuda')


def make_optimizer(model, settings: TrainSettings):
    """AdamW over the trainable parameters; the fused kernel (one pass per parameter instead of
    about ten; 6x faster on CPU, same update to float rounding) wherever torch has one."""
    params = [p for p in model.parameters() if p.requires_grad]
    fused = all(p.device.type in FUSED_OPTIMIZER_DEVICES for p in params)
    return torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.weight_decay, fused=fused)


def step_generators(seed: int, epoch: int, batch_index: int, num_clips: int) -> list:
    """One generator per clip of a global batch, keyed by (seed, epoch, batch, position)."""
    return generators_from_seeds(keyed_seed(TRAINING_STREAM, seed, epoch, batch_index, position)
                                 for position in range(num_clips))


def prepare_step_inputs(batch, model, generators, action_dropout: float):
    """Global-batch tensors on the CPU: (keypoints_2d, positions_3d, action tokens, t, noise,
    spatial_keep, temporal_keep, attended tokens), the random ones drawn from each clip's generator
    (``step_generators``; the action dropout after the diffusion draws); the attended tokens
    (B, J, 77) say which clip's prompt each joint of each clip attends to in FPC, decided over
    the global batch (``PoseDiffusion.fpc_prompt_tokens``)."""
    keypoints = torch.from_numpy(batch.keypoints_2d)
    poses = torch.from_numpy(batch.positions_3d)
    noise = model.draw_training_noise(generators, poses.shape[1:])
    labels = list(batch.actions)
    if action_dropout > 0:
        dropped = [torch.rand((), generator=g).item() < action_dropout for g in generators]
        labels = ['' if d else label for label, d in zip(labels, dropped)]
    tokens = get_tokenizer().tokenize(labels)
    return keypoints, poses, tokens, *noise, model.fpc_prompt_tokens(tokens)


def epoch_step_inputs(train_generator, model, settings: TrainSettings, epoch: int):
    """Yield the inputs of every step of one epoch (0-based ``epoch``), as ``prepare_step_inputs``
    returns them: the host's share of training (clips cut, mirrored, keyed random draws, tokens,
    the FPC mixing). Draws this epoch's clip order from ``train_generator`` first."""
    for batch_index, batch in enumerate(train_generator.next_epoch()):
        generators = step_generators(settings.seed, epoch, batch_index, batch.size)
        yield prepare_step_inputs(batch, model, generators, settings.action_dropout)


def loss_weight_unit(gradient_scale: str, layout: str):
    """The ``loss_weight_unit`` of ``train_step`` for a ``--gradient-scale`` and prompt layout."""
    if gradient_scale not in GRADIENT_SCALES:
        raise ValueError(f'gradient_scale {gradient_scale!r}: expected one of {", ".join(GRADIENT_SCALES)}')
    return ORIGINAL_LOSS_UNIT_PER_M[layout] if gradient_scale == 'original' else None


def train_step(train_model, optimizer, inputs, runtime, loss_weight_unit=1.0) -> float:
    """One optimizer step on this rank's share of the global batch; returns the loss L (metres)
    averaged over the global batch.

    loss_weight_unit: None steps with the plain gradient dL/dw; a number u steps with
    (u * L) * dL/dw, the original's weighting (u = its loss unit per metre, see
    ``ORIGINAL_LOSS_UNIT_PER_M``). L is the global batch's loss, known only after the last
    micro-batch and the all-reduce, so the accumulated gradients are scaled once, before the step.

    The share runs as micro-batches (``diffusion.clip_chunks`` for the device: on a CPU one
    243-frame clip each, on a GPU the whole share): gradients of the share's mean loss are
    accumulated chunk by chunk, so the step is the same to float rounding, with one chunk's
    activations alive at a time. Under DDP the gradients are all-reduced once, after the last
    chunk. Every random input (``prepare_step_inputs``) is drawn per clip, so it is sliced too.
    """
    share = [x[runtime.rank::runtime.world_size] for x in inputs]
    n, f, j = share[1].shape[:3]
    chunks = clip_chunks(n, f * j, chunk_tokens(runtime.device))
    optimizer.zero_grad(set_to_none=True)
    total = torch.zeros((), device=runtime.device)
    for k, chunk in enumerate(chunks):
        defer_sync = runtime.distributed and k < len(chunks) - 1
        with train_model.no_sync() if defer_sync else contextlib.nullcontext():
            loss = train_model(*(x[chunk].to(runtime.device, non_blocking=True) for x in share))
            loss = loss.mean() * ((chunk.stop - chunk.start) / n)    # DataParallel returns one loss per GPU
            loss.backward()
        total += loss.detach()
    if runtime.distributed:
        dist.all_reduce(total)
        total /= runtime.world_size
    if loss_weight_unit is not None:
        grads = [p.grad for group in optimizer.param_groups for p in group['params'] if p.grad is not None]
        torch._foreach_mul_(grads, total * loss_weight_unit)
    optimizer.step()
    return total.item()


def _rng_states(train_generator) -> dict:
    return {'data': train_generator.random_state()}


def _restore_rng_states(states: dict, train_generator):
    """Checkpoints written before the per-clip keying also hold 'noise' and 'torch' states: the
    draws they drove are now keyed by (seed, epoch, batch, clip), so they are not needed."""
    train_generator.set_random_state(states['data'])


@dataclass
class TrainingPosition:
    """Where training is, for the line Ctrl-C prints: the epoch being trained (1-based), its step
    (1-based; 0 before its first step), whether its steps are done (while validating and saving)
    and the epoch that ``last_epoch.bin`` holds (None while this run has none)."""
    epoch: int = 1
    step: int = 0
    steps_done: bool = False
    saved_epoch: Optional[int] = None

    def interrupted_line(self, checkpoint_dir: Path) -> str:
        """The line, its resume command quoted for the shell (a -c folder with a space, ...)."""
        if self.steps_done:
            where = 'after its last step'
        else:
            where = f'step {self.step}' if self.step else 'before its first step'
        if self.saved_epoch is None:
            return f'interrupted at epoch {self.epoch} {where}; no checkpoint was written yet'
        return (f'interrupted at epoch {self.epoch} {where}; {checkpoint_dir / LAST_CHECKPOINT} holds epoch '
                f'{self.saved_epoch}; resume with -c {shlex.quote(str(checkpoint_dir))} -r {LAST_CHECKPOINT}')


def train(model, model_config, runtime, train_generator, validation, settings: TrainSettings, checkpoint_dir,
          logger, resume=None, resume_source=None, training_data=None, mean_pose=None):
    """Train ``model`` (bare PoseDiffusion on runtime.device) for ``settings.epochs`` epochs
    (0: save the initial weights as the last and best checkpoints, e.g. for an untrained baseline).

    validation: ``dict(sequences=..., groups=..., num_frames=..., root=..., batch_size=..., counting=...)``
    (counting: ``evaluation.Counting``, how the validation error that picks best_epoch.bin is counted).
    resume: a checkpoint dict from ``checkpoints.read_checkpoint`` (ours), or None.
    training_data: the data selection recorded in every checkpoint (``ExperimentData.training_data``);
    mean_pose: its mean pose (``baseline.MeanPose``), recorded too.
    Returns the run id written into every checkpoint of this run (kept across resumes), so the
    caller evaluates only a checkpoint this run wrote; checkpoints are written by rank 0 into
    ``checkpoint_dir``. A non-finite loss or validation error raises ``TrainingDiverged``; Ctrl-C
    or SIGTERM raises ``Interrupted`` with ``TrainingPosition.interrupted_line`` (on rank 0; checkpoints are
    written atomically, ``last_epoch.bin`` last, so it holds the epoch that line names).
    """
    checkpoint_dir = Path(checkpoint_dir)
    saved = resume['epoch'] if resume is not None else None
    position = TrainingPosition(epoch=(saved or 0) + 1, saved_epoch=saved)
    try:
        return _train(model, model_config, runtime, train_generator, validation, settings, checkpoint_dir, logger,
                      resume, resume_source, training_data, position, mean_pose)
    except KeyboardInterrupt as err:           # Ctrl-C, or SIGTERM (errors.Terminated)
        raise Interrupted(position.interrupted_line(checkpoint_dir) if runtime.is_main else '',
                          interruption_exit_code(err)) from None


def _train(model, model_config, runtime, train_generator, validation, settings: TrainSettings, checkpoint_dir: Path,
           logger, resume, resume_source, training_data, position: TrainingPosition, mean_pose=None):
    optimizer = make_optimizer(model, settings)
    epoch, lr = 0, settings.learning_rate
    history = {'train_loss_mm': [], 'val_mpjpe_mm': [], 'lr': [], 'epoch_time_s': []}
    best_val = float('inf')
    run_id = runtime.gather(secrets.token_hex(8))[0]    # rank 0's, the same in every process
    if resume is not None:
        run_id = resume.get('run_id')
        load_model_weights(model, resume, resume_source)
        optimizer.load_state_dict(resume['optimizer'])
        epoch, lr = resume['epoch'], resume['lr']
        history = resume['history'] or history
        best_val = resume['best_val'] if resume['best_val'] is not None else best_val
        _restore_rng_states(resume['rng_states'], train_generator)
        if runtime.is_main:
            print(f'Resuming from {resume_source} after epoch {epoch} (next epoch\'s lr {lr:.3g})')
    train_model = wrap_for_training(model, runtime, find_unused_parameters=not model_config.learn_prompts)
    weight_unit = loss_weight_unit(settings.gradient_scale, model_config.layout)

    def snapshot() -> dict:
        return dict(model=model, model_config=model_config, epoch=epoch, lr=lr, optimizer=optimizer,
                    rng_states=_rng_states(train_generator),
                    best_val=None if best_val == float('inf') else best_val, history=history, run_id=run_id,
                    training_data=training_data, mean_pose=mean_pose)

    validating = settings.validate and bool(validation['sequences'])
    if settings.epochs == 0 and resume is None and runtime.is_main:
        # -e 0: the initial weights are the result, a baseline to evaluate.
        save_checkpoint([checkpoint_dir / LAST_CHECKPOINT, checkpoint_dir / BEST_CHECKPOINT], **snapshot())
    while epoch < settings.epochs:
        position.epoch, position.step, position.steps_done = epoch + 1, 0, False
        start = time.time()
        model.train()
        losses = []
        batches = tqdm(epoch_step_inputs(train_generator, model, settings, epoch), total=train_generator.num_batches,
                       leave=False, desc=f'epoch {epoch + 1}/{settings.epochs}', unit='batch',
                       disable=not (settings.show_progress and runtime.is_main))
        for batch_index, inputs in enumerate(batches):
            position.step = batch_index + 1
            losses.append(train_step(train_model, optimizer, inputs, runtime, weight_unit))
            check_finite_loss(losses[-1], epoch + 1, batch_index + 1, epoch)
            batches.set_postfix(loss_mm=f'{losses[-1] * MM_PER_M:.1f}')
        position.steps_done = True
        epoch_lr = lr                   # the rate this epoch trained at (printed and logged)
        lr *= settings.lr_decay
        for group in optimizer.param_groups:
            group['lr'] *= settings.lr_decay
        epoch += 1
        train_loss = float(np.mean(losses)) * MM_PER_M
        val = float('nan')
        if validating:
            result = evaluate(model, validation['sequences'], validation['groups'], runtime, validation['num_frames'],
                              validation['root'], SamplingSettings(1, 1, True, validation['batch_size'], settings.seed),
                              show_progress=settings.show_progress and runtime.is_main, counting=validation['counting'])
            val = float(result.average[VALIDATION_SETTING][-1])
            if not math.isfinite(val):
                raise TrainingDiverged(f'validation MPJPE is {val} after epoch {epoch}: the model predicts non-finite '
                                       f'poses; {_kept_epoch(epoch - 1)}')
        elapsed = time.time() - start
        for key, value in (('train_loss_mm', train_loss), ('val_mpjpe_mm', val), ('lr', epoch_lr),
                           ('epoch_time_s', elapsed)):
            history[key].append(value)
        improved = not validating or val < best_val
        if validating and val < best_val:
            best_val = val
        if runtime.is_main:
            validated = f'  validation MPJPE {val:.2f} mm' + ('  (best)' if improved else '') if validating else ''
            print(f'[{epoch}] time {elapsed:.1f} s  lr {epoch_lr:.3g}  train loss {train_loss:.2f} mm' + validated)
            logger.log(TAG_TRAIN_LOSS, train_loss, epoch)
            logger.log(TAG_LR, epoch_lr, epoch)
            logger.log(TAG_EPOCH_TIME, elapsed, epoch)
            if validating:
                logger.log(TAG_VAL_MPJPE, val, epoch)
            names = ([epoch_checkpoint_name(epoch)] if epoch % settings.checkpoint_frequency == 0 else []) + (
                [BEST_CHECKPOINT] if improved else []) + [LAST_CHECKPOINT]      # last: see train()
            save_checkpoint([checkpoint_dir / name for name in names], **snapshot())
            position.saved_epoch = epoch
            if settings.export_curves:
                export_training_curves(history, checkpoint_dir / 'training_curves.png')
        runtime.barrier()
    return run_id

"""Our checkpoint format: one save/load pair, atomic writes, a format version, checked for damage.

A checkpoint holds the epoch, learning rate, model weights, model configuration, optimizer
state, the RNG state that makes resuming exact (the data order; every other draw is keyed by
epoch, batch and clip), the best validation error, the training history, the training data it
was trained on (``training_data``, see ``experiment.ExperimentData``) and that data's mean pose
(``mean_pose``: the baseline line of every evaluation table, ``evaluation.baseline``). Every load first compares
each record of the file with the CRC-32 checksum torch wrote with it (``checkpoint_checksums``)
and refuses a damaged file; official checkpoints in torch's zip format are checked alike, files
in its legacy format carry no checksums and load with a note (``checksum_note``).

The frozen CLIP text tower (63M parameters) is not stored: the checkpoint records where its
weights came from and a fingerprint of them, and loading refuses a different tower. Official
reference checkpoints (``model_pos`` with ``module.`` names, CLIP included) are recognised and
loaded through ``official_checkpoint``.
"""
import dataclasses
from pathlib import Path

import numpy as np
import torch

from common.core.atomic import atomic_output
from common.core.errors import UserError
from common.evaluation.baseline import MeanPose
from common.model.build import ModelConfig
from common.model.clip_text import TextTowerConfig
from common.model.official_checkpoint import is_official_checkpoint, load_official_state_dict, read_official_checkpoint
from common.run.checkpoint_checksums import checksum_failure, has_checksums, saving_with_checksums

FORMAT_NAME = 'finepose'
FORMAT_VERSION = 3             # 2: 'training_data'; 3: 'mean_pose'
# What every checkpoint of ours holds for loading its model (a resume also needs RESUME_KEYS).
MODEL_KEYS = ('model', 'model_config', 'clip_fingerprint', 'clip_source')
RESUME_KEYS = ('epoch', 'lr', 'optimizer', 'rng_states', 'best_val', 'history')
TEXT_TOWER_PREFIX = 'prompt_encoder.text_tower.'


def atomic_torch_save(obj, path) -> None:
    """torch.save through ``atomic_output``: an interrupted save never corrupts a checkpoint."""
    with atomic_output(path) as f, saving_with_checksums():
        torch.save(obj, f)


def model_weights(model) -> dict:
    """The state dict without the frozen CLIP text tower."""
    return {k: v for k, v in model.state_dict().items() if not k.startswith(TEXT_TOWER_PREFIX)}


def save_checkpoint(paths, *, model, model_config: ModelConfig, epoch: int, lr: float, optimizer=None,
                    rng_states=None, best_val=None, history=None, run_id=None, training_data=None,
                    mean_pose: MeanPose = None) -> None:
    """Write our checkpoint atomically to ``paths`` (one path, or a list of paths that get the same
    content). ``model`` is the bare ``PoseDiffusion`` (unwrapped);
    ``run_id`` names the training run that wrote it (``training.train``); ``training_data``
    describes the data it trained on (``ExperimentData.training_data``); ``mean_pose`` that data's
    mean pose (stored as {'pose': (J, 3) float64 tensor, metres, 'source': words})."""
    tower = model.prompt_encoder.text_tower
    content = {
        'format': FORMAT_NAME,
        'version': FORMAT_VERSION,
        'epoch': epoch,
        'lr': lr,
        'model': model_weights(model),
        'model_config': dataclasses.asdict(model_config),
        'clip_fingerprint': tower.fingerprint(),
        'clip_source': tower.source,
        'optimizer': optimizer.state_dict() if optimizer is not None else None,
        'rng_states': rng_states,
        'best_val': best_val,
        'history': history or {},
        'run_id': run_id,
        'training_data': training_data,
        'mean_pose': None if mean_pose is None else {'pose': torch.as_tensor(mean_pose.pose, dtype=torch.float64),
                                                     'source': mean_pose.source},
    }
    for path in paths if isinstance(paths, (list, tuple)) else [paths]:
        atomic_torch_save(content, path)


# Checkpoints written before the prompt defaults became the reference's hold 'frozen_prompts'
# and no 'per_clip_prompts': their models trained with each clip attending to its own prompt.
LEGACY_PROMPT_NOTE = ('written before the reference\'s batched prompt mixing existed: its clips attended to their '
                      'own prompts, so it loads as --per-clip-prompts')


def check_keys(checkpoint: dict, keys, path, purpose: str = '') -> None:
    """A ``UserError`` naming the ``keys`` missing from a checkpoint marked as ours (a hand-made file,
    or one of another tool); ``purpose``: what they are needed for."""
    missing = [key for key in keys if key not in checkpoint]
    if missing:
        raise UserError(f'{path}: marked as a checkpoint of this project (format {FORMAT_NAME!r}) but without '
                        f'{", ".join(map(repr, missing))}{purpose}; expected the keys {", ".join(keys)}, as training '
                        'writes them')


def config_from_dict(values: dict, source='checkpoint') -> ModelConfig:
    """The ``ModelConfig`` a checkpoint stores (``dataclasses.asdict``). One written before
    ``learn_prompts``/``per_clip_prompts`` loads as it was trained: learnable vectors unless it
    says ``frozen_prompts``, and per-clip prompts (``legacy_config_notes`` says so). A
    configuration of other fields is a ``UserError`` naming ``source``."""
    try:
        values = dict(values)
        values['text_tower'] = TextTowerConfig(**values['text_tower'])
        if 'frozen_prompts' in values:
            values['learn_prompts'] = not values.pop('frozen_prompts')
        values.setdefault('per_clip_prompts', True)
        return ModelConfig(**values)
    except (KeyError, TypeError, ValueError) as err:
        fields = ', '.join(field.name for field in dataclasses.fields(ModelConfig))
        raise UserError(f'{source}: its model_config is not one this code reads ({type(err).__name__}: {err}); '
                        f'expected the fields {fields}') from None


def legacy_config_notes(values: dict) -> list:
    """What ``config_from_dict`` filled in for a configuration written by older code (one line each)."""
    return [] if 'per_clip_prompts' in values else [LEGACY_PROMPT_NOTE]


def read_checkpoint(path) -> dict:
    """Read one of our checkpoints or an official one (returned as read, with 'format' = 'official')."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f'checkpoint {path} not found')
    damage = checksum_failure(path)
    if damage:
        raise UserError(damage)
    try:
        checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception:  # not ours: an official file may hold a pickled numpy RNG
        checkpoint = None
    if isinstance(checkpoint, dict) and checkpoint.get('format') == FORMAT_NAME:
        if checkpoint.get('version', 0) > FORMAT_VERSION:
            raise UserError(f'{path}: checkpoint format version {checkpoint["version"]} is newer than this code '
                            f'({FORMAT_VERSION}); update FinePOSE')
        check_keys(checkpoint, MODEL_KEYS, path)
        return checkpoint
    checkpoint = read_official_checkpoint(path)
    if not is_official_checkpoint(checkpoint):
        raise UserError(f'{path}: neither a FinePOSE checkpoint of this project nor a reference one')
    return dict(checkpoint, format='official')


def stored_mean_pose(checkpoint: dict, source):
    """The ``MeanPose`` a checkpoint of ours carries (its source prefixed with where it was read), or
    None: official checkpoints and ours written before version 3 carry none."""
    stored = checkpoint.get('mean_pose') if checkpoint.get('format') == FORMAT_NAME else None
    if stored is None:
        return None
    return MeanPose(np.asarray(stored['pose'], np.float64), f'stored in {source}: {stored["source"]}')


def checksum_note(path):
    """The one line saying that the checkpoint at ``path`` could not be checked for damage (torch's
    legacy format, without checksums), or None when ``read_checkpoint`` checked it."""
    if has_checksums(path):
        return None
    return f'{path}: in torch\'s legacy (pre-zip) format, it carries no checksums: loaded unchecked for damage'


def check_finite_weights(weights: dict, source) -> None:
    """A checkpoint with NaN or inf weights (written by a diverged run) predicts nothing useful."""
    for key, value in weights.items():
        if value.is_floating_point() and not torch.isfinite(value).all():
            raise UserError(f'{source}: parameter {key} holds NaN or inf values (a diverged training run?)')


def load_model_weights(model, checkpoint: dict, source) -> None:
    """Fill ``model`` from a checkpoint returned by ``read_checkpoint``; non-finite weights are a ``UserError``."""
    if checkpoint['format'] == 'official':
        check_finite_weights(checkpoint['model_pos'], source)
        load_official_state_dict(model, checkpoint['model_pos'], source=str(source))
        return
    expected = model_weights(model)
    weights = checkpoint['model']
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    if missing or unexpected:
        raise UserError(f'{source}: incompatible with this model ({len(missing)} missing, {len(unexpected)} '
                        f'unexpected parameters, e.g. {(missing or unexpected)[0]})')
    for key, value in weights.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise UserError(f'{source}: {key} has shape {tuple(value.shape)}, the model expects {tuple(expected[key].shape)}')
    check_finite_weights(weights, source)
    model.load_state_dict(weights, strict=False)
    tower = model.prompt_encoder.text_tower
    if checkpoint['clip_fingerprint'] != tower.fingerprint():
        raise UserError(f'{source}: trained with CLIP text weights {checkpoint["clip_source"]} '
                        f'(fingerprint {checkpoint["clip_fingerprint"]}), but this run uses {tower.source} '
                        f'(fingerprint {tower.fingerprint()}); pass --clip-weights with the same file')

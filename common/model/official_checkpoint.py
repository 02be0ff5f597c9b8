"""Official FinePOSE checkpoints: load the reference's ``.bin`` files into our model, and back.

The reference stores ``checkpoint['model_pos']``, the state dict of ``nn.DataParallel(FinePOSE)``:
names prefixed ``module.``, the denoiser and prompt modules under ``module.pose_estimator.``
with the reference's names, the whole CLIP ViT-B/32 (vision tower included) under
``module.pose_estimator.clip_text.``, and the diffusion schedule as buffers. Loading fills our
model completely, the CLIP text tower included (so no separate CLIP file is needed); only the
vision tower is ignored, and the schedule buffers are checked against ours.

``load_official_model(path)`` builds the model the file was saved from (its shapes say which) and
loads it, the one call for Python users; ``load_official_checkpoint(model, path)`` fills a model
built by hand;
``main.py --evaluate`` reads the file once through ``checkpoints.read_checkpoint`` and fills the
model with ``load_official_state_dict``, the same code path. ``official_state_dict`` writes our
weights back in the reference layout.
"""
import importlib
import re
import warnings
from pathlib import Path

import numpy as np
import torch

from common.core.errors import UserError
from common.data.skeleton import H36M_17, MPI_INF_3DHP_17
from common.model.build import ModelConfig, build_model
from common.model.clip_text import TEXT_TOWERS
from common.model.diffusion import schedule_terms

DATA_PARALLEL_PREFIX = 'module.'
VISION_TOWER_PREFIX = 'pose_estimator.clip_text.visual.'
SCHEDULE_TOLERANCE = 1e-6

# (reference name prefix, our name prefix); the first matching prefix applies.
_RENAMES = [
    ('pose_estimator.Spatial_pos_embed', 'denoiser.joint_pos_embed'),
    ('pose_estimator.Temporal_pos_embed', 'denoiser.frame_pos_embed'),
    ('pose_estimator.Spatial_patch_to_embedding.', 'denoiser.joint_embed.'),
    ('pose_estimator.time_mlp.1.', 'denoiser.timestep_mlp.0.'),
    ('pose_estimator.time_mlp.3.', 'denoiser.timestep_mlp.2.'),
    ('pose_estimator.STEblocks.', 'denoiser.spatial_blocks.'),
    ('pose_estimator.TTEblocks.', 'denoiser.temporal_blocks.'),
    ('pose_estimator.Spatial_norm.', 'denoiser.spatial_norm.'),
    ('pose_estimator.Temporal_norm.', 'denoiser.temporal_norm.'),
    ('pose_estimator.head.', 'denoiser.head.'),
    ('pose_estimator.temporal_cross_attn.proj_out.emb_layers.1.', 'denoiser.prompt_attention.stylize.emb_proj.'),
    ('pose_estimator.temporal_cross_attn.proj_out.norm.', 'denoiser.prompt_attention.stylize.norm.'),
    ('pose_estimator.temporal_cross_attn.proj_out.out_layers.2.', 'denoiser.prompt_attention.stylize.out_proj.'),
    ('pose_estimator.temporal_cross_attn.', 'denoiser.prompt_attention.'),
    ('pose_estimator.textTransEncoder.', 'prompt_encoder.encoder.'),
    ('pose_estimator.text_ln.', 'prompt_encoder.norm.'),
    ('pose_estimator.text_proj.0.', 'prompt_encoder.pooled_proj.'),
    ('pose_estimator.clip_text.', 'prompt_encoder.text_tower.'),
    ('pose_estimator.ctx_verb', 'prompt_encoder.learnable.action'),
    ('pose_estimator.ctx_', 'prompt_encoder.learnable.'),
]


def _rename(name: str, renames) -> str:
    for old, new in renames:
        if name.startswith(old):
            return new + name[len(old):]
    return None


# Globals a reference checkpoint may contain besides tensors: its data-order RNG, a numpy
# RandomState, and the numpy arrays/dtypes of that RNG's state (numpy 1 and 2 spellings).
_NUMPY_RNG_GLOBALS = {
    'numpy.random._pickle.__randomstate_ctor', 'numpy.random._pickle.__bit_generator_ctor',
    'numpy.random._mt19937.MT19937', 'numpy.random.mtrand.RandomState',
    'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct',
    'numpy.ndarray', 'numpy.dtype',
}


def _resolve_global(name: str):
    module, _, attr = name.rpartition('.')
    return getattr(importlib.import_module(module), attr)


def first_sentence(err: Exception) -> str:
    """The first sentence of an exception's message, whole (torch's load errors run to paragraphs)."""
    line = next((l.strip() for l in str(err).splitlines() if l.strip()), type(err).__name__)
    return re.split(r'(?<=[.!?])\s', line, maxsplit=1)[0].rstrip('.')


def read_official_checkpoint(path) -> dict:
    """Read a reference ``.bin`` without executing arbitrary pickled code: besides tensors only
    the numpy RNG globals above are allowed."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f'checkpoint {path} not found')
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        foreign = [n for n in names if n not in _NUMPY_RNG_GLOBALS and not n.startswith('numpy.dtypes.')]
        if foreign:
            raise UserError(f'{path}: refusing to unpickle {foreign[0]}; expected tensors and a numpy RNG only')
        with warnings.catch_warnings():
            warnings.simplefilter('ignore', DeprecationWarning)   # numpy.core is numpy 1's spelling
            allowed = [(_resolve_global(n), n) for n in names]
        # Objects rebuilt from state: the RandomState and dtypes (numpy.dtypes.UInt32DType, ...).
        allowed += [np.random.RandomState] + [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith('DType')]
        with torch.serialization.safe_globals(allowed):
            checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except UserError:
        raise
    except Exception as err:  # corrupt or foreign file: a user problem, reported in one line
        raise UserError(f'{path}: not a readable FinePOSE checkpoint ({type(err).__name__}: '
                        f'{first_sentence(err)}); expected one of ours or a reference .bin') from None
    if not isinstance(checkpoint, dict) or 'model_pos' not in checkpoint:
        raise UserError(f'{path}: no "model_pos" entry; expected a reference FinePOSE checkpoint')
    return checkpoint


def official_to_ours(state: dict, timesteps: int, source='checkpoint') -> dict:
    """Reference-layout state dict -> our parameter names.

    The vision tower is dropped; schedule buffers must equal ``schedule_terms(timesteps)``;
    any other unknown name is an error (a different model, not a FinePOSE checkpoint).
    """
    schedule = schedule_terms(timesteps)
    ours = {}
    for name, value in state.items():
        name = name[len(DATA_PARALLEL_PREFIX):] if name.startswith(DATA_PARALLEL_PREFIX) else name
        if name.startswith(VISION_TOWER_PREFIX):
            continue
        if name in schedule:
            if value.shape != schedule[name].shape or not torch.allclose(value.double(), schedule[name], atol=SCHEDULE_TOLERANCE):
                raise UserError(f'{source}: buffer {name} differs from a {timesteps}-step cosine schedule; '
                                'pass the -timestep it was trained with')
            continue
        new = _rename(name, _RENAMES)
        if new is None:
            raise UserError(f'{source}: unexpected parameter {DATA_PARALLEL_PREFIX}{name}; not a FinePOSE checkpoint')
        ours[new] = value
    return ours


_ESTIMATOR = DATA_PARALLEL_PREFIX + 'pose_estimator.'
_PROMPT_VECTORS = _ESTIMATOR + 'ctx_'


def _block_count(state: dict, prefix: str) -> int:
    return len({name[len(prefix):].split('.')[0] for name in state if name.startswith(prefix)})


def _shape(state: dict, name: str, axis: int):
    value = state.get(_ESTIMATOR + name)
    return None if value is None else int(value.shape[axis])


def official_architecture(state: dict) -> dict:
    """What a reference-layout state dict (``module.`` names) was built as, read from its shapes:
    {'depth', 'width', 'frames', 'prompt layout', 'text tower'} (None where the entry is absent)."""
    segments = sorted(name[len(_PROMPT_VECTORS):] for name in state if name.startswith(_PROMPT_VECTORS))
    layout = None
    if segments:
        layout = (f'{len(segments)} segments (' + ('Human3.6M, with the action' if 'verb' in segments
                                                   else 'MPI-INF-3DHP, no action') + ')')
    tower_width = _shape(state, 'clip_text.ln_final.weight', 0)
    tower = None if tower_width is None else (
        f'width {tower_width}, {_block_count(state, _ESTIMATOR + "clip_text.transformer.resblocks.")} layers')
    return {'depth': _block_count(state, _ESTIMATOR + 'STEblocks.') or None,
            'width': _shape(state, 'Spatial_patch_to_embedding.weight', 0),
            'frames': _shape(state, 'Temporal_pos_embed', 1),
            'prompt layout': layout, 'text tower': tower}


# What to change when the checkpoint and the model built from the flags disagree.
_ARCHITECTURE_REMEDY = {'depth': 'set -dep', 'width': 'set -cs', 'frames': 'set -f',
                        'prompt layout': 'evaluate it with main.py for Human3.6M, main_3dhp.py for MPI-INF-3DHP',
                        'text tower': 'set --text-tower vit-b-32, the paper\'s CLIP ViT-B/32'}


def check_official_architecture(model, state: dict, source='checkpoint') -> None:
    """Name every difference between a reference state dict and ``model`` (built from the flags):
    depth, width, frames, prompt layout (dataset), text tower; one ``UserError`` line."""
    found, asked = official_architecture(state), official_architecture(official_state_dict(model))
    differences = [f'{key} {found[key]} in the file, {asked[key]} asked ({_ARCHITECTURE_REMEDY[key]})'
                   for key in found if found[key] is not None and found[key] != asked[key]]
    if differences:
        raise UserError(f'{source}: the official checkpoint does not fit the model of the flags: '
                        + '; '.join(differences))


def load_official_state_dict(model, state: dict, source='checkpoint') -> None:
    """Fill ``model`` (a ``PoseDiffusion``) from a reference-layout state dict; every parameter of
    ours must be present with the same shape. The CLIP text tower comes from the file too."""
    check_official_architecture(model, state, source)
    ours = official_to_ours(state, model.num_timesteps, source)
    expected = model.state_dict()
    missing = [k for k in expected if k not in ours]
    if missing:
        raise UserError(f'{source}: missing {len(missing)} parameters of this model, e.g. {missing[0]}')
    for key, value in ours.items():
        if key not in expected:
            raise UserError(f'{source}: parameter {key} has no place in this model')
        if tuple(value.shape) != tuple(expected[key].shape):
            raise UserError(f'{source}: {key} has shape {tuple(value.shape)}, this model expects '
                            f'{tuple(expected[key].shape)}')
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in ours.items()})
    model.prompt_encoder.text_tower.source = f'{source} (official checkpoint)'


def load_official_checkpoint(model, path) -> dict:
    """Load a reference FinePOSE ``.bin`` into ``model``. Returns the checkpoint's other entries
    (epoch, lr, ...) for information."""
    checkpoint = read_official_checkpoint(path)
    load_official_state_dict(model, checkpoint['model_pos'], source=str(path))
    return {k: v for k, v in checkpoint.items() if k not in ('model_pos', 'optimizer', 'random_state')}


def official_state_dict(model) -> dict:
    """Our weights under the reference's names (``module.`` prefix), schedule buffers included;
    the CLIP vision tower, which we never build, is absent."""
    inverse = [(new, old) for old, new in _RENAMES]
    # Longest "our" prefixes first, so the stylisation entries win over their parent module's.
    inverse.sort(key=lambda pair: len(pair[0]), reverse=True)
    state = {DATA_PARALLEL_PREFIX + _rename(k, inverse): v for k, v in model.state_dict().items()}
    for name, value in schedule_terms(model.num_timesteps).items():
        state[DATA_PARALLEL_PREFIX + name] = value
    return state


def is_official_checkpoint(checkpoint: dict) -> bool:
    """True for the reference's layout (``model_pos`` with ``module.pose_estimator.`` names)."""
    model_pos = checkpoint.get('model_pos') if isinstance(checkpoint, dict) else None
    return isinstance(model_pos, dict) and any(k.startswith(DATA_PARALLEL_PREFIX + 'pose_estimator.') for k in model_pos)


LAYOUT_SKELETONS = {'h36m': H36M_17, 'mpi_inf_3dhp': MPI_INF_3DHP_17}


def _count_blocks(names, prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r'(\d+)\.')
    return len({m.group(1) for m in map(pattern.match, names) if m})


def official_model_config(state: dict, source='checkpoint') -> ModelConfig:
    """The architecture a reference state dict was saved from, read off its shapes: prompt layout
    (``ctx_verb`` only in Human3.6M models), frames, joints, width, depth, MLP ratio, diffusion
    steps and text tower. Attention heads leave no trace in the shapes: the paper's 8."""
    state = {k[len(DATA_PARALLEL_PREFIX):] if k.startswith(DATA_PARALLEL_PREFIX) else k: v for k, v in state.items()}
    try:
        _, num_frames, width = state['pose_estimator.Temporal_pos_embed'].shape
        num_joints = state['pose_estimator.Spatial_pos_embed'].shape[1]
        hidden = state['pose_estimator.STEblocks.0.mlp.fc1.weight'].shape[0]
        timesteps = state['betas'].shape[0]
        text_width = state['pose_estimator.clip_text.token_embedding.weight'].shape[1]
    except KeyError as err:
        raise UserError(f'{source}: no {DATA_PARALLEL_PREFIX}{err.args[0]}; not a FinePOSE checkpoint') from None
    text_layers = _count_blocks(state, 'pose_estimator.clip_text.transformer.resblocks.')
    towers = [name for name, tower in TEXT_TOWERS.items() if (tower.width, tower.layers) == (text_width, text_layers)]
    if not towers:
        raise UserError(f'{source}: a CLIP text tower of width {text_width} and {text_layers} layers; expected one of '
                        + ', '.join(f'{n} ({t.width}, {t.layers})' for n, t in TEXT_TOWERS.items()))
    return ModelConfig(layout='h36m' if 'pose_estimator.ctx_verb' in state else 'mpi_inf_3dhp',
                       num_frames=num_frames, num_joints=num_joints, width=width,
                       depth=_count_blocks(state, 'pose_estimator.STEblocks.'), mlp_ratio=hidden / width,
                       timesteps=timesteps, text_tower=TEXT_TOWERS[towers[0]])


def load_official_model(path):
    """The model of a reference FinePOSE ``.bin``, built from the file's shapes, weights (CLIP text
    tower included) loaded, in eval mode on the CPU. Mirror permutations: the layout's skeleton."""
    checkpoint = read_official_checkpoint(path)
    config = official_model_config(checkpoint['model_pos'], source=str(path))
    mirror = LAYOUT_SKELETONS[config.layout].mirror_permutation()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')     # "CLIP weights not found": the file carries the text tower
        model = build_model(config, mirror, mirror)
    load_official_state_dict(model, checkpoint['model_pos'], source=str(path))
    return model.eval()

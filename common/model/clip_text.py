"""CLIP's text transformer (ViT-B/32 text tower) without the 88M-parameter vision tower.

Parameter names are OpenAI's (``token_embedding``, ``positional_embedding``,
``transformer.resblocks.N.{attn.in_proj_weight, attn.in_proj_bias, attn.out_proj, ln_1,
mlp.c_fc, mlp.c_proj, ln_2}``, ``ln_final``, ``text_projection``, ``logit_scale``), so OpenAI's
weights load by name. ViT-B/32: width 512, 12 layers, 8 heads, vocabulary 49408, context 77,
causal self-attention, QuickGELU. The layers are OpenAI's own classes (``Transformer``,
``LayerNorm`` of clip-anytorch's ``clip/model.py``, loaded by ``common.model.openai_clip``).

Weights come from a local OpenAI checkpoint (TorchScript archive as downloaded by OpenAI's
``clip`` package, or a plain state dict); they are never downloaded. Without a file the tower
is built with OpenAI's initialisation from a fixed seed, so runs stay reproducible, and a
warning says the prompts are then not semantically meaningful.
"""
import hashlib
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from common.core.errors import UserError
from common.model.openai_clip import clip_source_module

DEFAULT_CLIP_WEIGHTS = Path('~/.cache/clip/ViT-B-32.pt')
RANDOM_TOWER_SEED = 20240617
LOGIT_SCALE_INIT = math.log(1 / 0.07)


@dataclass(frozen=True)
class TextTowerConfig:
    """Shape of a CLIP text tower. The default is ViT-B/32's."""
    width: int = 512
    layers: int = 12
    heads: int = 8
    vocab_size: int = 49408
    context_length: int = 77
    embed_dim: int = 512      # output of text_projection


# A small tower of the same architecture, for demos and tests when no CLIP weights exist anyway.
TINY_TEXT_TOWER = TextTowerConfig(width=64, layers=2, heads=2, embed_dim=64)
TEXT_TOWERS = {'vit-b-32': TextTowerConfig(), 'tiny': TINY_TEXT_TOWER}


class CLIPTextTower(nn.Module):
    """CLIP text encoder built from OpenAI's ``Transformer`` and ``LayerNorm`` classes. Frozen: no
    parameter requires grad and it always runs in eval mode, but activations are not detached, so
    inputs (FinePOSE's learnable prompt vectors) receive gradients through it."""

    # OpenAI's CLIP.initialize_parameters looks at the vision tower's type; this tower has none.
    visual = None

    def __init__(self, config: TextTowerConfig = TextTowerConfig()):
        super().__init__()
        openai = clip_source_module('model')
        self.config = config
        self.context_length = config.context_length
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_TOWER_SEED)    # construction draws: reproducible, global RNG untouched
            self.token_embedding = nn.Embedding(config.vocab_size, config.width)
            self.positional_embedding = nn.Parameter(torch.empty(config.context_length, config.width))
            self.transformer = openai.Transformer(config.width, config.layers, config.heads,
                                                  attn_mask=openai.CLIP.build_attention_mask(self))
            self.ln_final = openai.LayerNorm(config.width)
            self.text_projection = nn.Parameter(torch.empty(config.width, config.embed_dim))
            self.logit_scale = nn.Parameter(torch.tensor(LOGIT_SCALE_INIT))
        self.source = 'uninitialised'
        self._fingerprint = (None, '')     # (the weights' identity when hashed, their fingerprint)
        self._initialize_randomly(RANDOM_TOWER_SEED)
        self.requires_grad_(False)

    def train(self, mode: bool = True):
        return super().train(False)

    @torch.no_grad()
    def _initialize_randomly(self, seed: int):
        """OpenAI's initialisation (``CLIP.initialize_parameters``) drawn after seeding a forked
        RNG (the global RNG is untouched); the MLP biases start at zero."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            clip_source_module('model').CLIP.initialize_parameters(self)
        for block in self.transformer.resblocks:
            block.mlp.c_fc.bias.zero_()
            block.mlp.c_proj.bias.zero_()
        self.source = f'random (seed {seed})'

    def encode_embeddings(self, x):
        """Token embeddings (B, L, D), L = context length -> contextual features (B, L, D) after ln_final."""
        x = x + self.positional_embedding.to(x.dtype)
        x = self.transformer(x.transpose(0, 1)).transpose(0, 1)     # OpenAI's blocks take (L, B, D)
        return self.ln_final(x)

    def encode_text(self, tokens):
        """Token ids (B, L) -> (B, embed_dim) CLIP text features at each row's end-of-text token
        (the highest id of the vocabulary, so the row's argmax)."""
        features = self.encode_embeddings(self.token_embedding(tokens))
        end_index = tokens.argmax(dim=-1)
        pooled = torch.gather(features, 1, end_index.view(-1, 1, 1).expand(-1, 1, features.shape[-1]))
        return pooled.squeeze(1) @ self.text_projection

    def fingerprint(self) -> str:
        """Short hash of the weights, recorded in our checkpoints to detect a different tower at load time.

        Hashing the full tower's 63M weights takes about 0.4 s, and every checkpoint save and load
        asks: the hash is kept while no weight tensor was replaced or changed in place (their
        storage and torch's version counters, which ``load_state_dict`` and ``copy_`` advance)."""
        state = sorted(self.state_dict().items())
        identity = tuple((name, tensor.data_ptr(), tensor._version) for name, tensor in state)
        if self._fingerprint[0] != identity:
            digest = hashlib.sha1()
            for name, tensor in state:
                digest.update(name.encode())
                digest.update(tensor.detach().float().cpu().numpy().tobytes())
            self._fingerprint = (identity, digest.hexdigest()[:16])
        return self._fingerprint[1]


def _read_state_dict(path: Path) -> dict:
    """OpenAI's TorchScript archive or a plain (possibly nested) state dict -> flat dict of tensors."""
    try:
        archive = torch.jit.load(str(path), map_location='cpu')
        return {k: v for k, v in archive.state_dict().items()}
    except RuntimeError:
        pass
    try:
        state = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # any unreadable content is the user's file problem
        raise UserError(f'{path}: cannot read CLIP weights ({type(err).__name__}); expected OpenAI\'s '
                        'ViT-B-32.pt TorchScript archive or a state dict saved with torch.save') from None
    if isinstance(state, dict) and 'state_dict' in state and isinstance(state['state_dict'], dict):
        state = state['state_dict']
    if not isinstance(state, dict):
        raise UserError(f'{path}: expected a state dict of CLIP weights, found {type(state).__name__}')
    return state


def load_text_tower_weights(tower: CLIPTextTower, path) -> None:
    """Fill ``tower`` from a CLIP checkpoint file; the vision tower and other keys are ignored.

    Weights are cast to float32 (OpenAI's archive stores float16).
    """
    path = Path(path).expanduser()
    state = _read_state_dict(path)
    ours = tower.state_dict()
    missing = [k for k in ours if k not in state]
    if missing:
        raise UserError(f'{path}: not a CLIP text tower checkpoint: missing {missing[0]} '
                        f'(and {len(missing) - 1} more)')
    for key, value in ours.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise UserError(f'{path}: {key} has shape {tuple(state[key].shape)}, expected {tuple(value.shape)} '
                            '(ViT-B/32 text tower)')
    tower.load_state_dict({k: state[k].float() for k in ours})
    tower.source = str(path)


def build_text_tower(config: TextTowerConfig = TextTowerConfig(), weights=None, require_weights: bool = False,
                     weights_in_checkpoint: bool = False) -> CLIPTextTower:
    """A frozen text tower with OpenAI's weights from ``weights`` (default ``~/.cache/clip/ViT-B-32.pt``).

    No file: a warning and a seeded random tower of the same shape, or a ``UserError`` when
    ``require_weights``. Never downloads. A tower of another shape than ViT-B/32 has no
    published weights and is always random. ``weights_in_checkpoint``: the caller fills the tower
    from a checkpoint that carries it (an official one), so no file is read and nothing is said.
    """
    tower = CLIPTextTower(config)
    if weights_in_checkpoint:
        tower.source = 'awaiting the checkpoint\'s weights'
        return tower
    if config != TextTowerConfig():
        if weights or require_weights:
            raise UserError('CLIP weights exist only for the ViT-B/32 text tower; drop --text-tower tiny')
        return tower
    path = Path(weights).expanduser() if weights else DEFAULT_CLIP_WEIGHTS.expanduser()
    if path.is_file():
        load_text_tower_weights(tower, path)
    elif weights or require_weights:
        raise UserError(f'CLIP weights not found at {path}; place OpenAI\'s ViT-B-32.pt there or pass '
                        '--clip-weights PATH (they are never downloaded)')
    else:
        warnings.warn(f'CLIP weights not found at {path}: using a randomly initialised text tower '
                      f'(seed {RANDOM_TOWER_SEED}); prompts will carry no language meaning. Pass '
                      '--clip-weights PATH for the real ViT-B/32 weights, or --require-clip-weights to make this an error.',
                      stacklevel=2)
    return tower


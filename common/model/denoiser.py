"""The FinePOSE denoiser: a MixSTE-style spatial-temporal transformer with prompt conditioning.

Input per sample: 2D keypoints and the noisy 3D pose of F frames x J joints, the diffusion step
and the sample's encoded prompt. Output: the denoised 3D pose (x0 prediction).

* Embedding: 2D (2) and noisy 3D (3) are concatenated and mapped to C channels, plus a
  learned joint position embedding.
* PTS (prompt-driven timestep stylisation): a sinusoidal embedding of the step goes through
  Linear(C, 2C) - GELU - Linear(2C, C); the pooled prompt embedding is added; the sum is added
  to every token and also drives the stylisation of FPC.
* Depth d: alternating spatial blocks (attention over the J joints of a frame) and temporal
  blocks (attention over the F frames of a joint), each followed by a shared LayerNorm.
* FPC (fine-grained prompt-pose communication): after the first spatial block every token
  cross-attends to 77 prompt tokens: those of the prompt its (sample, joint) row is given
  (``EncodedPrompts.attended``: the reference's batched mixing by default, see ``prompts``), or
  of its own sample's prompt; the result is stylised (LayerNorm, scale/shift from the sample's
  own PTS embedding, SiLU, zero-initialised Linear) and added back. Then the frame position
  embedding is added before the first temporal block.
* Head: LayerNorm + Linear(C, 3).
* Stochastic depth (training): block i (rate linspace(0, p, depth)[i]) drops its residual
  branches for whole frames (spatial) or joints (temporal) of a clip, by keep masks that are
  inputs of ``forward``, drawn per clip from the clip's own generator (``draw_keep_masks``), so
  they do not depend on how clips are batched. Without masks (sampling) nothing is dropped.

Activations keep one layout, (N, F, J, C): spatial and temporal attention differ only in how
their queries, keys and values are viewed, so the stream is never transposed between blocks.
All attention runs through ``scaled_dot_product_attention``.

``activation_checkpointing`` (off by default; not part of the architecture, results are the
same): each block is recomputed during the backward pass instead of keeping its activations,
which cuts a 243-frame batch-4 training step's peak memory by ~3x for ~1/3 more compute.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from common.model.prompts import EncodedPrompts

BLOCK_NORM_EPS = 1e-6
TIMESTEP_FREQUENCY_BASE = 10000.0
SPATIAL, TEMPORAL = 'spatial', 'temporal'


def timestep_embedding(t, dim: int):
    """Sinusoidal embedding of diffusion steps. t: (N,) -> (N, dim): [sin(t w_i), cos(t w_i)],
    w_i = base^(-i / (dim/2 - 1)), i = 0 .. dim/2 - 1."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, device=t.device) * -(math.log(TIMESTEP_FREQUENCY_BASE) / (half - 1)))
    angles = t.float()[:, None] * freqs[None]
    return torch.cat((angles.sin(), angles.cos()), dim=-1)


def add_dropped_path(x, branch, keep=None):
    """x + drop_path(branch): stochastic depth zeroes the residual branch for some groups of tokens
    and rescales the rest by 1 / (1 - p); without ``keep`` (sampling) it is x + branch.

    x, branch: (N, F, J, C); keep: rescaled keep factors (0 or 1 / (1 - p)) shaped to broadcast,
    (N, F, 1, 1) for a spatial block (one group per sample and frame, the unit it attends over) or
    (N, 1, J, 1) for a temporal one, drawn per clip by ``PoseDenoiser.draw_keep_masks``.
    """
    if keep is None:
        return x + branch
    return torch.addcmul(x, branch, keep.to(x.dtype))


class Mlp(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class AxisAttention(nn.Module):
    """Multi-head self-attention over the joints (spatial) or the frames (temporal) of (N, F, J, C)."""

    def __init__(self, width: int, heads: int, axis: str):
        super().__init__()
        self.heads, self.axis = heads, axis
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x):
        n, f, j, c = x.shape
        h = self.heads
        qkv = self.qkv(x).view(n, f, j, 3, h, c // h)
        if self.axis == SPATIAL:
            q, k, v = qkv.permute(3, 0, 1, 4, 2, 5).reshape(3, n * f, h, j, c // h)
            y = F.scaled_dot_product_attention(q, k, v)                    # (N*F, H, J, d)
            y = y.view(n, f, h, j, c // h).transpose(2, 3)
        else:
            q, k, v = qkv.permute(3, 0, 2, 4, 1, 5).reshape(3, n * j, h, f, c // h)
            y = F.scaled_dot_product_attention(q, k, v)                    # (N*J, H, F, d)
            y = y.view(n, j, h, f, c // h).permute(0, 3, 1, 2, 4)
        return self.proj(y.reshape(n, f, j, c))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attention(norm(x)); x + MLP(norm(x)), with stochastic depth when
    given keep masks."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, axis: str):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=BLOCK_NORM_EPS)
        self.attn = AxisAttention(width, heads, axis)
        self.norm2 = nn.LayerNorm(width, eps=BLOCK_NORM_EPS)
        self.mlp = Mlp(width, int(width * mlp_ratio))
        self.axis = axis

    def forward(self, x, keep=None):
        """x: (N, F, J, C); keep: None or (N, 2, F) (spatial) / (N, 2, J) (temporal) keep factors
        of the attention and MLP branches."""
        if keep is not None:
            keep = keep[:, :, :, None, None] if self.axis == SPATIAL else keep[:, :, None, :, None]
        x = add_dropped_path(x, self.attn(self.norm1(x)), None if keep is None else keep[:, 0])
        return add_dropped_path(x, self.mlp(self.norm2(x)), None if keep is None else keep[:, 1])


class Stylization(nn.Module):
    """h -> Linear0(SiLU(LayerNorm(h) * (1 + scale) + shift)), scale and shift from the PTS embedding."""

    def __init__(self, width: int):
        super().__init__()
        self.emb_proj = nn.Linear(width, 2 * width)
        self.norm = nn.LayerNorm(width)
        self.out_proj = nn.Linear(width, width)
        nn.init.zeros_(self.out_proj.weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, h, emb):
        """h: (N, F, J, C); emb: (N, C)."""
        scale, shift = self.emb_proj(F.silu(emb))[:, None, None].chunk(2, dim=-1)
        return self.out_proj(F.silu(self.norm(h) * (1 + scale) + shift))


class PromptCrossAttention(nn.Module):
    """FPC: every token of a (sample, joint) row attends to the tokens of the prompt that row is
    given (``EncodedPrompts``: its sample's own, or another clip's under the batched mixing)."""

    def __init__(self, width: int, text_width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(width)
        self.text_norm = nn.LayerNorm(text_width)
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(text_width, width)
        self.value = nn.Linear(text_width, width)
        self.stylize = Stylization(width)

    def forward(self, x, prompts: EncodedPrompts, emb):
        """x: (N, F, J, C); prompts with index (N,) and attended None or (N, J); emb: (N, C)
        -> (N, F, J, C)."""
        n, f, j, c = x.shape
        h = self.heads
        text = self.text_norm(prompts.tokens)                                  # (U, L, Dt)
        k = self.key(text).view(text.shape[0], -1, h, c // h).transpose(1, 2)  # (U, H, L, d)
        v = self.value(text).view(text.shape[0], -1, h, c // h).transpose(1, 2)
        q = self.query(self.norm(x))
        if prompts.attended is None:
            q = q.view(n, f * j, h, c // h).transpose(1, 2)
            y = F.scaled_dot_product_attention(q, k[prompts.index], v[prompts.index])   # (N, H, F*J, d)
            y = y.transpose(1, 2).reshape(n, f, j, c)
        else:
            y = self._attend_per_row(q.view(n, f, j, h, c // h).permute(0, 2, 3, 1, 4), k, v, prompts.attended)
            y = y.permute(0, 3, 1, 2, 4).reshape(n, f, j, c)
        return x + self.stylize(y, emb)

    @staticmethod
    def _attend_per_row(q, k, v, attended):
        """q: (N, J, H, F, d) queries of every (sample, joint) row; k, v: (U, H, L, d); attended:
        (N, J) prompt row of each. The rows are attended in one call per prompt among them, so a
        row's result depends only on its queries and its prompt. Returns (N, J, H, F, d)."""
        y = torch.empty_like(q)
        for prompt in attended.unique().tolist():
            rows = attended == prompt
            queries = q[rows]                                                 # (R, H, F, d)
            size = (queries.shape[0], *k.shape[1:])
            y[rows] = F.scaled_dot_product_attention(queries, k[prompt].expand(size), v[prompt].expand(size))
        return y


class PoseDenoiser(nn.Module):
    """(2D keypoints, noisy 3D, step, prompts) -> predicted clean 3D.

    keypoints_2d: (N, F, J, 2) normalised image coordinates; noisy_3d: (N, F, J, 3);
    t: (N,) long diffusion steps; prompts: ``EncodedPrompts`` whose index has N entries.
    Returns (N, F, J, 3) in the unit of the diffusion's data (metres / scale).
    """

    def __init__(self, num_frames: int, num_joints: int = 17, width: int = 512, depth: int = 8,
                 heads: int = 8, mlp_ratio: float = 2.0, drop_path_rate: float = 0.1, text_width: int = 512):
        super().__init__()
        self.num_frames, self.num_joints, self.width = num_frames, num_joints, width
        self.joint_embed = nn.Linear(2 + 3, width)
        self.joint_pos_embed = nn.Parameter(torch.zeros(1, num_joints, width))
        self.frame_pos_embed = nn.Parameter(torch.zeros(1, num_frames, width))
        self.timestep_mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))
        self.drop_path_rates = torch.linspace(0, drop_path_rate, depth).tolist()   # block i's stochastic depth
        self.spatial_blocks = nn.ModuleList(
            [TransformerBlock(width, heads, mlp_ratio, SPATIAL) for _ in range(depth)])
        self.temporal_blocks = nn.ModuleList(
            [TransformerBlock(width, heads, mlp_ratio, TEMPORAL) for _ in range(depth)])
        self.spatial_norm = nn.LayerNorm(width, eps=BLOCK_NORM_EPS)
        self.temporal_norm = nn.LayerNorm(width, eps=BLOCK_NORM_EPS)
        self.prompt_attention = PromptCrossAttention(width, text_width, heads)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 3))
        self.activation_checkpointing = False

    def draw_keep_masks(self, generator):
        """One clip's stochastic-depth keep factors, drawn from ``generator`` (CPU): spatial
        (depth, 2, F) and temporal (depth, 2, J), for the attention and MLP branch of every block;
        each entry is 0 with the block's rate p, else 1 / (1 - p) (p = 0: always 1)."""
        return self.keep_factors(*self.draw_keep_uniforms(generator))

    def draw_keep_uniforms(self, generator):
        """The uniform numbers behind one clip's keep masks, in the order drawn from ``generator``:
        spatial (depth, 2, F), temporal (depth, 2, J)."""
        return tuple(torch.rand((len(self.drop_path_rates), 2, size), generator=generator)
                     for size in (self.num_frames, self.num_joints))

    def keep_factors(self, *uniforms):
        """Keep factors of uniform draws (..., depth, 2, n), any number of clips at once: 0 where the
        draw is at least 1 - p, else 1 / (1 - p), p the block's rate."""
        keep_probability = 1 - torch.tensor(self.drop_path_rates)[:, None, None]
        return tuple((u < keep_probability).float() / keep_probability for u in uniforms)

    def forward(self, keypoints_2d, noisy_3d, t, prompts: EncodedPrompts, spatial_keep=None, temporal_keep=None):
        """spatial_keep (N, depth, 2, F), temporal_keep (N, depth, 2, J): stochastic depth's keep
        factors (``draw_keep_masks`` per clip), or None for none (sampling)."""
        n, f, j, _ = keypoints_2d.shape
        if (f, j) != (self.num_frames, self.num_joints):
            raise ValueError(f'denoiser built for {self.num_frames} frames x {self.num_joints} joints, got {f} x {j}')

        def keep(masks, i):
            return None if masks is None else masks[:, i]

        emb = self.timestep_mlp(timestep_embedding(t, self.width)) + prompts.pooled[prompts.index]   # PTS, (N, C)
        x = self.joint_embed(torch.cat((keypoints_2d, noisy_3d), dim=-1))
        x = x + self.joint_pos_embed[:, None] + emb[:, None, None]
        x = self._maybe_checkpointed(self._spatial, 0, x, keep(spatial_keep, 0))
        x = self._maybe_checkpointed(self.prompt_attention, x, prompts, emb)                        # FPC
        x = x + self.frame_pos_embed[:, :, None]
        x = self._maybe_checkpointed(self._temporal, 0, x, keep(temporal_keep, 0))
        for i in range(1, len(self.spatial_blocks)):
            x = self._maybe_checkpointed(self._spatial, i, x, keep(spatial_keep, i))
            x = self._maybe_checkpointed(self._temporal, i, x, keep(temporal_keep, i))
        return self.head(x)

    def _spatial(self, i: int, x, keep=None):
        return self.spatial_norm(self.spatial_blocks[i](x, keep))

    def _temporal(self, i: int, x, keep=None):
        return self.temporal_norm(self.temporal_blocks[i](x, keep))

    def _maybe_checkpointed(self, fn, *args):
        """fn(*args); with activation checkpointing (and autograd recording) its activations are
        recomputed in the backward pass instead of kept (stochastic depth's masks are inputs, so
        the recomputation applies the same ones)."""
        if self.activation_checkpointing and torch.is_grad_enabled():
            return checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)

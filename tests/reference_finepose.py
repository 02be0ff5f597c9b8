"""An independent transcription of the reference FinePOSE network, for parity tests only.

Written from the reference's published behaviour, keeping its structure where that structure
decides the numbers: tensors flattened to (batch * frames, joints, C) and
(batch * joints, frames, C) between blocks, explicit softmax attention, the cross-attention's
einsum over keys/values tiled with ``repeat``, CLIP's text transformer in (L, N, D) layout with
OpenAI's own ``model.py`` modules, ``nn.TransformerEncoder`` in sequence-first layout, and the
pooled token picked at the action's end-of-text index. Its parameter names are the reference
checkpoint's (``Spatial_patch_to_embedding``, ``STEblocks``, ``ctx_verb``, ...), so a state dict
in the reference layout loads into it by name.

Training mode takes (B, F, J, ...) inputs, evaluation mode (B, H, F, J, 3) noisy poses, as the
reference does. ``reference_ddim_sample`` is the reference's sampling loop (test-time flip as a
second denoiser call, float64 coefficients). Not used by the package.
"""
import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from clip_reference import load_clip_module
from common.diffusion import schedule_terms
from common.skeleton import flip_horizontal

KEEP = 4
REFERENCE_TIMESTEPS = 1000
REFERENCE_CLAMP = 1.1


class RefMlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class RefAttention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        weights = ((q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5).softmax(dim=-1)
        return self.proj((weights @ v).transpose(1, 2).reshape(b, n, c))


class RefBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = RefAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = RefMlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class RefSinusoid(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim

    def forward(self, time):
        half = self.dim // 2
        scale = math.log(10000) / (half - 1)
        freqs = torch.exp(torch.arange(half, device=time.device) * -scale)
        angles = time[:, None] * freqs[None, :]
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class RefStylization(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.norm = nn.LayerNorm(dim)
        self.out_layers = nn.Sequential(nn.SiLU(), nn.Dropout(0.0), nn.Linear(dim, dim))

    def forward(self, h, emb):
        b, t, d = h.shape
        emb_out = self.emb_layers(emb.reshape(b, t, d))[:, 0:1, :]
        scale, shift = torch.chunk(emb_out, 2, dim=2)
        return self.out_layers(self.norm(h) * (1 + scale) + shift)


class RefCrossAttention(nn.Module):
    def __init__(self, dim, text_dim, heads):
        super().__init__()
        self.heads = heads
        self.norm, self.text_norm = nn.LayerNorm(dim), nn.LayerNorm(text_dim)
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(text_dim, dim), nn.Linear(text_dim, dim)
        self.proj_out = RefStylization(dim)

    def forward(self, x, xf, emb):
        b, t, d = x.shape
        n = xf.shape[1]
        h = self.heads
        query = self.query(self.norm(x)).unsqueeze(2).view(b, t, h, -1)
        key = self.key(self.text_norm(xf)).unsqueeze(1)
        key = key.repeat(b // key.shape[0], 1, 1, 1).view(b, n, h, -1)
        weights = F.softmax(torch.einsum('bnhd,bmhd->bnmh', query, key) / math.sqrt(d // h), dim=2)
        value = self.value(self.text_norm(xf)).unsqueeze(1)
        value = value.repeat(b // value.shape[0], 1, 1, 1).view(b, n, h, -1)
        y = torch.einsum('bnmh,bmhd->bnhd', weights, value).reshape(b, t, d)
        return x + self.proj_out(y, emb)


class RefClipText(nn.Module):
    """CLIP's text modules under the reference's names, built from OpenAI's model.py classes."""

    def __init__(self, width, layers, heads, vocab, context):
        super().__init__()
        openai = load_clip_module('model')
        mask = torch.full((context, context), float('-inf')).triu_(1)
        self.transformer = openai.Transformer(width, layers, heads, attn_mask=mask)
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(torch.zeros(context, width))
        self.ln_final = openai.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.zeros(width, width))
        self.logit_scale = nn.Parameter(torch.zeros([]))


class RefMixSTE2(nn.Module):
    """The reference denoiser + prompt encoder (is_train selects the input layout)."""

    def __init__(self, num_frame, width, depth, text_width=512, text_layers=12, text_heads=8, vocab=49408,
                 heads=8, layout='h36m', is_train=True):
        super().__init__()
        self.is_train, self.depth, self.layout = is_train, depth, layout
        self.Spatial_patch_to_embedding = nn.Linear(5, width)
        self.Spatial_pos_embed = nn.Parameter(torch.zeros(1, 17, width))
        self.Temporal_pos_embed = nn.Parameter(torch.zeros(1, num_frame, width))
        self.time_mlp = nn.Sequential(RefSinusoid(width), nn.Linear(width, width * 2), nn.GELU(), nn.Linear(width * 2, width))
        self.STEblocks = nn.ModuleList([RefBlock(width, heads, 2.0) for _ in range(depth)])
        self.TTEblocks = nn.ModuleList([RefBlock(width, heads, 2.0) for _ in range(depth)])
        self.Spatial_norm = nn.LayerNorm(width, eps=1e-6)
        self.Temporal_norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, 3))
        self.temporal_cross_attn = RefCrossAttention(width, text_width, heads)
        layer = nn.TransformerEncoderLayer(d_model=text_width, nhead=heads, dim_feedforward=4 * text_width,
                                           dropout=0.0, activation='gelu')
        self.textTransEncoder = nn.TransformerEncoder(layer, num_layers=4, enable_nested_tensor=False)
        self.text_ln = nn.LayerNorm(text_width)
        self.text_proj = nn.Sequential(nn.Linear(text_width, width))
        self.clip_text = RefClipText(text_width, text_layers, text_heads, vocab, 77)
        counts = ({'subject': 3, 'verb': 8, 'speed': 6, 'head': 6, 'body': 6, 'arm': 10, 'leg': 10} if layout == 'h36m'
                  else {'subject': 5, 'speed': 8, 'head': 8, 'body': 8, 'arm': 12, 'leg': 12})
        for name, n in counts.items():
            setattr(self, f'ctx_{name}', nn.Parameter(torch.zeros(n, text_width)))
        self.segment_names = list(counts)

    def encode_text(self, text, pre_text):
        """text: (B, 77) action tokens; pre_text: (B, S, 77) tokens of the fixed words."""
        clip = self.clip_text
        b = pre_text.shape[0]
        action = clip.token_embedding(text) if text is not None else None
        words = clip.token_embedding(pre_text)
        pieces, word_i = [], 0
        for name in self.segment_names:
            ctx = getattr(self, f'ctx_{name}')
            ctx = ctx.view(1, *ctx.shape).repeat(b, 1, 1)
            if name == 'verb':
                pieces.append(torch.cat((ctx, action[:, :KEEP]), dim=1))
            else:
                pieces.append(torch.cat((ctx, words[:, word_i, :KEEP]), dim=1))
                word_i += 1
        x = torch.cat(pieces, dim=1)
        with torch.no_grad():
            x = x + clip.positional_embedding
            x = clip.transformer(x.permute(1, 0, 2))
            x = clip.ln_final(x)
        out = self.text_ln(self.textTransEncoder(x))
        pooled_at = text.argmax(dim=-1) if self.layout == 'h36m' else torch.full((out.shape[1],), 76)
        pooled = self.text_proj(out[pooled_at, torch.arange(out.shape[1])])
        return pooled, out.permute(1, 0, 2)

    def forward(self, x_2d, x_3d, t, text, pre_text):
        pooled, tokens = self.encode_text(text, pre_text)
        if self.is_train:
            b, f, n, _ = x_2d.shape
            x = rearrange(torch.cat((x_2d, x_3d), dim=-1), 'b f n c -> (b f) n c')
            x = self.Spatial_patch_to_embedding(x) + self.Spatial_pos_embed
            emb = (self.time_mlp(t)[:, None, None, :] + pooled.view(pooled.shape[0], 1, 1, -1)).repeat(1, f, n, 1)
            emb = rearrange(emb, 'b f n c -> (b f) n c')
        else:
            b, h, f, n, _ = x_3d.shape
            x_2d = x_2d[:, None].repeat(1, h, 1, 1, 1)
            x = rearrange(torch.cat((x_2d, x_3d), dim=-1), 'b h f n c -> (b h f) n c')
            x = self.Spatial_patch_to_embedding(x) + self.Spatial_pos_embed
            emb = self.time_mlp(t)[:, None, None, None, :] + pooled.view(pooled.shape[0], 1, 1, 1, -1)
            emb = rearrange(emb.repeat(1, h, f, n, 1), 'b h f n c -> (b h f) n c')
        x = self.Spatial_norm(self.STEblocks[0](x + emb))
        x = rearrange(x, '(b f) n c -> (b n) f c', f=f)
        x = self.temporal_cross_attn(x, tokens, emb)
        x = self.Temporal_norm(self.TTEblocks[0](x + self.Temporal_pos_embed))
        x = rearrange(x, '(b n) f c -> b f n c', n=n)
        for i in range(1, self.depth):
            x = rearrange(x, 'b f n c -> (b f) n c')
            x = self.Spatial_norm(self.STEblocks[i](x))
            x = rearrange(x, '(b f) n c -> (b n) f c', f=f)
            x = self.Temporal_norm(self.TTEblocks[i](x))
            x = rearrange(x, '(b n) f c -> b f n c', n=n)
        x = self.head(x)
        return x.view(b, f, n, -1) if self.is_train else x.view(b, h, f, n, -1)


def reference_ddim_sample(denoise, keypoints_2d, keypoints_mirror, joints_mirror, num_hypotheses: int,
                          num_steps: int, generator):
    """The reference's DDIM loop (eta 1, T = 1000) with test-time flip.

    denoise(keypoints_2d (B, F, J, 2), x_t (B, H, F, J, 3), t: int) -> x0 (B, H, F, J, 3).
    Noise comes from ``generator`` on the CPU (the start poses, then one draw per step) and is
    moved to the keypoints' device. Returns (B, K, H, F, J, 3): every step's x0.
    """
    terms = schedule_terms(REFERENCE_TIMESTEPS)
    abar = terms['alphas_cumprod']
    b, f, j, _ = keypoints_2d.shape
    shape = (b, num_hypotheses, f, j, 3)
    img = torch.randn(shape, generator=generator).to(keypoints_2d.device)
    keypoints_flip = flip_horizontal(keypoints_2d, keypoints_mirror)
    times = torch.linspace(-1, REFERENCE_TIMESTEPS - 1, num_steps + 1).int().tolist()[::-1]
    steps = []
    for time, time_next in zip(times[:-1], times[1:]):
        x_t = img.clamp(-REFERENCE_CLAMP, REFERENCE_CLAMP)
        plain = denoise(keypoints_2d, x_t, time)
        mirror = denoise(keypoints_flip, flip_horizontal(x_t, joints_mirror), time)
        x0 = ((plain + flip_horizontal(mirror, joints_mirror)) / 2).clamp(-REFERENCE_CLAMP, REFERENCE_CLAMP)
        steps.append(x0)
        if time_next < 0:
            break
        eps = ((terms['sqrt_recip_alphas_cumprod'][time] * img.double() - x0) / terms['sqrt_recipm1_alphas_cumprod'][time]).float()
        sigma = ((1 - abar[time] / abar[time_next]) * (1 - abar[time_next]) / (1 - abar[time])).sqrt()
        c = (1 - abar[time_next] - sigma ** 2).sqrt()
        img = x0 * abar[time_next].sqrt() + c * eps + sigma * torch.randn(shape, generator=generator).to(img.device)
    return torch.stack(steps, dim=1)

"""Diffusion over 3D poses: cosine schedule, forward noising, DDIM sampling with test-time flip.

Notation (Ho et al. 2020; Song et al. 2021): abar_t = prod_{s<=t} (1 - beta_s).

* Forward process:   x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps,  eps ~ N(0, I).
* The network predicts x0 directly; the implied noise is
                     eps = (sqrt(1/abar_t) x_t - x0) / sqrt(1/abar_t - 1).
* DDIM step t -> s:  sigma = eta sqrt((1 - abar_t/abar_s) (1 - abar_s) / (1 - abar_t)),
                     x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s - sigma^2) eps + sigma z.
  Step times for K steps over T: int(linspace(-1, T - 1, K + 1)) reversed, taken in pairs
  (t, s); the last pair has s = -1, where sampling stops at x0. With T=1000, K=10:
  999, 899, ..., 99.

Poses are scaled by ``scale`` and clamped to +-``CLAMP_RATIO * scale`` inside the diffusion,
as in the reference (which builds for metres with scale 1).

While sampling, the B*H clips (twice that with flip) are denoised in equal chunks of at most
``chunk_tokens(device)`` pose tokens (``clip_chunks``): clips never interact inside the
denoiser, so the result is the same, but only one chunk's activations are alive at a time.
Training steps use the same chunks as micro-batches (``training.train_step``).

Every random draw is per clip, from the clip's own generator (``keyed_random``): the sampling
noise (start and every step) and, in training, the step t, the noise and the stochastic-depth
masks. Batches, chunks, processes and GPUs then only change float rounding, never the numbers drawn.
"""
import math
from typing import NamedTuple

import torch
from torch import nn

from common.core.keyed_random import normal_per_clip
from common.data.skeleton import flip_horizontal
from common.model.prompts import EncodedPrompts, FinePromptEncoder, batch_mixing_sources

COSINE_SCHEDULE_OFFSET = 0.008
MAX_BETA = 0.999
CLAMP_RATIO = 1.1
DDIM_ETA = 1.0
# Clips x frames x joints per denoiser call (at least one clip). On a CPU a 4096-token chunk's
# activations (8 MB each at width 512) stay in the last-level cache: on a 2-core CPU sampling
# 27-frame clips with H=20 ran ~20% faster than in one 18,360-token call, with ~25% lower peak
# memory, and a 243-frame batch-4 training step as 4 one-clip micro-batches took 35.9 s instead
# of 45.8 s, peak 4.8 GB instead of 9.0 GB. A GPU wants large calls; its chunks only bound memory.
CPU_CHUNK_TOKENS = 4096
GPU_CHUNK_TOKENS = 65536


def chunk_tokens(device) -> int:
    """The most pose tokens per denoiser call on ``device`` (a torch.device or its type name)."""
    return CPU_CHUNK_TOKENS if torch.device(device).type == 'cpu' else GPU_CHUNK_TOKENS


def clip_chunks(num_clips: int, tokens_per_clip: int, max_tokens: int) -> list:
    """Slices splitting ``num_clips`` clips into as few near-equal chunks as keep each at most
    ``max_tokens`` tokens (a clip larger than that is a chunk alone); e.g. (8, 153, 459) ->
    [0:3], [3:6], [6:8]."""
    chunks = max(1, math.ceil(num_clips * tokens_per_clip / max_tokens))
    size = math.ceil(num_clips / chunks)
    return [slice(i, min(i + size, num_clips)) for i in range(0, num_clips, size)]


def cosine_beta_schedule(timesteps: int, s: float = COSINE_SCHEDULE_OFFSET):
    """Betas (T,) float64 of the cosine schedule (Nichol & Dhariwal 2021), clipped to [0, 0.999]."""
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64)
    abar = torch.cos((x / timesteps + s) / (1 + s) * math.pi * 0.5) ** 2
    abar = abar / abar[0]
    return torch.clip(1 - abar[1:] / abar[:-1], 0, MAX_BETA)


def schedule_terms(timesteps: int) -> dict:
    """Every schedule quantity of the DDPM formulation (float64, (T,)), named as in the
    reference's buffers; used to check official checkpoints against our schedule."""
    betas = cosine_beta_schedule(timesteps)
    abar = torch.cumprod(1 - betas, dim=0)
    abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    posterior_variance = betas * (1 - abar_prev) / (1 - abar)
    return {
        'betas': betas,
        'alphas_cumprod': abar,
        'alphas_cumprod_prev': abar_prev,
        'sqrt_alphas_cumprod': abar.sqrt(),
        'sqrt_one_minus_alphas_cumprod': (1 - abar).sqrt(),
        'log_one_minus_alphas_cumprod': (1 - abar).log(),
        'sqrt_recip_alphas_cumprod': (1 / abar).sqrt(),
        'sqrt_recipm1_alphas_cumprod': (1 / abar - 1).sqrt(),
        'posterior_variance': posterior_variance,
        'posterior_log_variance_clipped': posterior_variance.clamp(min=1e-20).log(),
        'posterior_mean_coef1': betas * abar_prev.sqrt() / (1 - abar),
        'posterior_mean_coef2': (1 - abar_prev) * (1 - betas).sqrt() / (1 - abar),
    }


class TrainingNoise(NamedTuple):
    """Every random draw of a training step for B clips (``PoseDiffusion.draw_training_noise``):
    t (B,) diffusion steps, noise (B, F, J, 3), stochastic depth's keep factors spatial_keep
    (B, depth, 2, F) and temporal_keep (B, depth, 2, J). In the order ``PoseDiffusion.forward``
    takes them."""
    t: torch.Tensor
    noise: torch.Tensor
    spatial_keep: torch.Tensor
    temporal_keep: torch.Tensor


def ddim_time_pairs(timesteps: int, num_steps: int):
    """[(t, s), ...] for K DDIM steps; the last s is -1 (stop at x0)."""
    times = torch.linspace(-1, timesteps - 1, num_steps + 1).int().tolist()[::-1]
    return list(zip(times[:-1], times[1:]))


class PoseDiffusion(nn.Module):
    """FinePOSE: prompt encoder (FPP) + denoiser (FPC, PTS) + diffusion.

    ``forward`` returns the training loss; ``ddim_sample`` generates hypotheses.
    keypoints_mirror / joints_mirror: (J,) permutations used by the test-time flip.
    per_clip_prompts: in FPC every clip attends to its own prompt; False (the reference) mixes the
    prompts of a batch's clips as the reference does (``prompts.batch_mixing_sources``): over the
    global training batch (``fpc_prompt_tokens``, carried with the clips, so micro-batches,
    processes and GPUs change nothing; the reference on one device mixes over the same batch) and
    over each sampling batch (one sequence, one prompt: nothing changes there).
    """

    def __init__(self, denoiser, prompt_encoder: FinePromptEncoder, keypoints_mirror, joints_mirror,
                 timesteps: int = 1000, scale: float = 1.0, per_clip_prompts: bool = False):
        super().__init__()
        self.denoiser = denoiser
        self.prompt_encoder = prompt_encoder
        self.num_timesteps = timesteps
        self.scale = scale
        self.per_clip_prompts = per_clip_prompts
        self.keypoints_mirror = list(keypoints_mirror)
        self.joints_mirror = list(joints_mirror)
        self.autocast_dtype = None      # e.g. torch.bfloat16: run the denoiser under autocast (see model.ExecutionOptions)
        terms = schedule_terms(timesteps)
        # float64 and non-persistent: exact coefficients, never cast with the model's dtype.
        self.register_buffer('alphas_cumprod', terms['alphas_cumprod'], persistent=False)
        self.register_buffer('sqrt_alphas_cumprod', terms['sqrt_alphas_cumprod'], persistent=False)
        self.register_buffer('sqrt_one_minus_alphas_cumprod', terms['sqrt_one_minus_alphas_cumprod'], persistent=False)

    def _per_sample(self, coefficients, t, x):
        """Gather (T,) coefficients at steps t (N,) -> (N, 1, ..., 1) in x's dtype."""
        return coefficients[t].to(x.dtype).view(-1, *([1] * (x.ndim - 1)))

    def q_sample(self, x0, t, noise):
        """Forward process: x0 (N, F, J, 3) metres, t (N,), noise like x0 -> x_t in model units
        (scaled, clamped to +-1.1 scale, divided by scale)."""
        x_t = self._per_sample(self.sqrt_alphas_cumprod, t, x0) * x0 * self.scale \
            + self._per_sample(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise
        return x_t.clamp(-CLAMP_RATIO * self.scale, CLAMP_RATIO * self.scale) / self.scale

    def draw_training_noise(self, generators, pose_shape) -> TrainingNoise:
        """One clip per generator (CPU ``torch.Generator``s, e.g. ``keyed_random.generators_from_seeds``):
        each draws, in this order, its uniform step t, its Gaussian noise ``pose_shape`` (F, J, 3)
        and its stochastic-depth keep masks, so a clip's draws do not depend on the other clips.
        Returns CPU tensors."""
        draws = [(torch.randint(0, self.num_timesteps, (), generator=g), torch.randn(pose_shape, generator=g),
                  *self.denoiser.draw_keep_uniforms(g)) for g in generators]
        t, noise, *uniforms = (torch.stack(parts) for parts in zip(*draws))
        return TrainingNoise(t, noise, *self.denoiser.keep_factors(*uniforms))     # every clip's masks at once

    def fpc_prompt_tokens(self, action_tokens):
        """(B, L) action tokens of a training batch -> (B, J, L): the action tokens of the prompt
        each joint of each clip attends to in FPC (its own with ``per_clip_prompts``, else the
        reference's batched mixing over these B clips). Computed once for the global batch and
        sliced with it, so a micro-batch's clips attend where they would in the whole batch."""
        b, j = action_tokens.shape[0], self.denoiser.num_joints
        if self.per_clip_prompts:
            return action_tokens[:, None].expand(b, j, -1)
        return action_tokens[batch_mixing_sources(b, j).to(action_tokens.device)]

    def forward(self, keypoints_2d, poses_3d, action_tokens, t, noise, spatial_keep=None, temporal_keep=None,
                attended_tokens=None):
        """Training loss. keypoints_2d: (B, F, J, 2); poses_3d: (B, F, J, 3) metres, root-relative;
        action_tokens: (B, 77); t, noise and the keep masks (None: no stochastic depth) from
        ``draw_training_noise``; attended_tokens: (B, J, 77) from ``fpc_prompt_tokens`` of the
        global batch (None: of these B clips). Returns the MPJPE (metres) of the x0 prediction, a scalar."""
        if attended_tokens is None:
            attended_tokens = self.fpc_prompt_tokens(action_tokens)
        prompts = self.prompt_encoder(action_tokens, attended_tokens)
        predicted = self._denoise(keypoints_2d, self.q_sample(poses_3d, t, noise), t, prompts,
                                  spatial_keep, temporal_keep)
        return torch.linalg.vector_norm(predicted - poses_3d, dim=-1).mean()

    def _denoise(self, keypoints_2d, x_t, t, prompts: EncodedPrompts, spatial_keep=None, temporal_keep=None):
        """The denoiser's x0 prediction (N, F, J, 3), float32; under autocast to ``autocast_dtype`` when set."""
        with torch.autocast(x_t.device.type, dtype=self.autocast_dtype or torch.bfloat16,
                            enabled=self.autocast_dtype is not None):
            return self.denoiser(keypoints_2d, x_t, t, prompts, spatial_keep, temporal_keep).float()

    def _denoise_in_chunks(self, keypoints_2d, x_t, t, prompts: EncodedPrompts):
        """``_denoise`` over the ``clip_chunks`` of x_t's device."""
        n, f, j, _ = x_t.shape
        return torch.cat([self._denoise(keypoints_2d[c], x_t[c], t[c], prompts.rows(c.start, c.stop))
                          for c in clip_chunks(n, f * j, chunk_tokens(x_t.device))])

    def _predict_x0(self, x_t, keypoints_2d, t: int, prompts: EncodedPrompts, flip: bool):
        """One denoiser call on (N, F, J, 3) noisy poses; with flip the mirrored input is batched
        with the plain one and the mirrored prediction is mirrored back and averaged."""
        x_in = x_t.clamp(-CLAMP_RATIO * self.scale, CLAMP_RATIO * self.scale) / self.scale
        if flip:
            x_in = torch.cat([x_in, flip_horizontal(x_in, self.joints_mirror)])
            keypoints_2d = torch.cat([keypoints_2d, flip_horizontal(keypoints_2d, self.keypoints_mirror)])
            prompts = prompts.repeat(2)
        steps = torch.full((x_in.shape[0],), t, dtype=torch.long, device=x_in.device)
        predicted = self._denoise_in_chunks(keypoints_2d, x_in, steps, prompts)
        if flip:
            plain, mirrored = predicted.chunk(2)
            predicted = (plain + flip_horizontal(mirrored, self.joints_mirror)) / 2
        return (predicted * self.scale).clamp(-CLAMP_RATIO * self.scale, CLAMP_RATIO * self.scale)

    @torch.inference_mode()
    def ddim_sample(self, keypoints_2d, action_tokens, num_hypotheses: int = 1, num_steps: int = 1,
                    flip: bool = True, *, generators):
        """DDIM sampling of H hypotheses with K steps (eta = 1).

        keypoints_2d: (B, F, J, 2); action_tokens: (B, 77); generators: one CPU ``torch.Generator``
        per clip: clip i's start noise (H, F, J, 3) and every step's noise come from generators[i]
        alone, so a clip's hypotheses do not depend on the batch it is sampled in. The flip pass
        mirrors the same noise.
        Returns (B, K, H, F, J, 3): the x0 prediction of every step, metres, root-relative
        (as predicted: the root joint is not forced to zero here).
        The prompt is encoded once and reused for every step, hypothesis and the flip pass. Without
        ``per_clip_prompts`` FPC mixes the prompts of the B clips as the reference does (its
        sampling batches hold one sequence, so all clips share one prompt and nothing changes).
        """
        b, f, j, _ = keypoints_2d.shape
        h = num_hypotheses
        if len(generators) != b:
            raise ValueError(f'ddim_sample: {len(generators)} generators for {b} clips; expected one per clip')
        prompts = self.prompt_encoder(action_tokens)
        prompts = prompts.repeat_interleave(h) if self.per_clip_prompts else prompts.mixed_over_batch(j, h)
        keypoints = keypoints_2d.repeat_interleave(h, dim=0)                 # (B*H, F, J, 2)
        x = normal_per_clip(generators, (h, f, j, 3), keypoints_2d.device)
        x0_per_step = []
        for t, s in ddim_time_pairs(self.num_timesteps, num_steps):
            x0 = self._predict_x0(x, keypoints, t, prompts, flip)
            x0_per_step.append(x0)
            if s < 0:
                break
            abar_t, abar_s = self.alphas_cumprod[t].item(), self.alphas_cumprod[s].item()
            eps = (math.sqrt(1 / abar_t) * x - x0) / math.sqrt(1 / abar_t - 1)
            sigma = DDIM_ETA * math.sqrt((1 - abar_t / abar_s) * (1 - abar_s) / (1 - abar_t))
            c = math.sqrt(1 - abar_s - sigma ** 2)
            x = math.sqrt(abar_s) * x0 + c * eps + sigma * normal_per_clip(generators, (h, f, j, 3), x.device)
        return torch.stack(x0_per_step, dim=1).view(b, h, len(x0_per_step), f, j, 3).transpose(1, 2)

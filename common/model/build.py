"""Model configuration and construction: one place that turns flags into a FinePOSE."""
from dataclasses import dataclass, field

import torch

from common.model.clip_text import TextTowerConfig, build_text_tower
from common.model.denoiser import PoseDenoiser
from common.model.diffusion import PoseDiffusion
from common.model.prompts import LAYOUTS, FinePromptEncoder


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and diffusion settings (paper defaults). Saved inside our checkpoints.

    layout: prompt layout name ('h36m': 7 segments with the action label; 'mpi_inf_3dhp': 6).
    learn_prompts: the learnable prompt vectors receive gradients (False: the reference, which
        encodes the prompts under no_grad, so they keep their initial values).
    per_clip_prompts: in FPC each clip attends to its own prompt (False: the reference's
        batched mixing of the prompts of a batch's clips, see ``prompts.batch_mixing_sources``).
    The defaults are the reference's behaviour, with which the published models were trained.
    """
    layout: str = 'h36m'
    num_frames: int = 243
    num_joints: int = 17
    width: int = 512
    depth: int = 8
    heads: int = 8
    mlp_ratio: float = 2.0
    drop_path: float = 0.1
    timesteps: int = 1000
    scale: float = 1.0
    learn_prompts: bool = False
    per_clip_prompts: bool = False
    text_tower: TextTowerConfig = field(default_factory=TextTowerConfig)


def build_model(config: ModelConfig, keypoints_mirror, joints_mirror, clip_weights=None,
                require_clip_weights: bool = False, clip_in_checkpoint: bool = False) -> PoseDiffusion:
    """A FinePOSE model; CLIP text weights from ``clip_weights``, or from the checkpoint loaded next
    when ``clip_in_checkpoint`` (see ``clip_text.build_text_tower``)."""
    tower = build_text_tower(config.text_tower, clip_weights, require_clip_weights, clip_in_checkpoint)
    prompt_encoder = FinePromptEncoder(LAYOUTS[config.layout], tower, config.width, heads=config.heads,
                                       learn_prompts=config.learn_prompts)
    denoiser = PoseDenoiser(config.num_frames, config.num_joints, config.width, config.depth, config.heads,
                            config.mlp_ratio, config.drop_path, text_width=config.text_tower.width)
    return PoseDiffusion(denoiser, prompt_encoder, keypoints_mirror, joints_mirror, config.timesteps, config.scale,
                         per_clip_prompts=config.per_clip_prompts)


@dataclass(frozen=True)
class ExecutionOptions:
    """How a built model runs, as opposed to what it is; never saved in checkpoints. All off by
    default (measured with ``tools/benchmark.py``; see docs/performance.md).

    bf16: run the denoiser under bfloat16 autocast (training and sampling). Changes results a
        little (the benchmark reports by how many mm); fast on GPUs and on CPUs with bf16
        matrix units (AMX), far slower than float32 on CPUs without them.
    compile: ``torch.compile`` the denoiser in place (parameter names unchanged); the first
        calls compile, which takes minutes and needs a C++ compiler on CPU.
    activation_checkpointing: recompute the denoiser's blocks during the backward pass instead
        of keeping their activations: same results, much lower training memory, more compute.
    """
    bf16: bool = False
    compile: bool = False
    activation_checkpointing: bool = False


def apply_execution_options(model: PoseDiffusion, options: ExecutionOptions) -> PoseDiffusion:
    model.autocast_dtype = torch.bfloat16 if options.bf16 else None
    model.denoiser.activation_checkpointing = options.activation_checkpointing
    if options.compile:
        model.denoiser.compile()
    return model

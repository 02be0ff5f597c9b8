"""Evaluation: sample H hypotheses with K DDIM steps for every frame of every test sequence,
aggregate them four ways (P-Best, J-Best, P-Agg, J-Agg) and score them per group.

Each sequence is cut into consecutive windows of F frames, the last one aligned to the end,
so every frame is predicted; windows are sampled in batches of ``batch_size`` clips, and the
per-frame results are stitched back with each frame counted once. Errors are averaged over
the (valid) frames of a group (a Human3.6M action over all its subjects, takes and cameras;
an MPI-INF-3DHP test sequence), then over groups.

Each window's noise comes from its own generator, seeded by (seed, the sequence's subject,
action and camera, window) (``keyed_random``), so results do not depend on the batch size, on
how sequences are split across processes or a batch across GPUs (only float rounding does), nor
on which other sequences are evaluated.
"""
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from common.core.keyed_random import SAMPLING_STREAM, generators_from_seeds, keyed_seed
from common.data.generators import make_windows, stitch_windows
from common.evaluation import metrics
from common.model.tokenizer import get_tokenizer

PROTOCOLS = (1, 2)


@dataclass(frozen=True)
class SamplingSettings:
    num_hypotheses: int = 1
    num_steps: int = 1
    flip: bool = True
    batch_size: int = 4      # windows (clips) per sampling batch
    seed: int = 1


class HypothesisSampler(nn.Module):
    """``forward`` = DDIM sampling, so ``nn.DataParallel`` can split sampling batches over GPUs."""

    def __init__(self, model, settings: SamplingSettings):
        super().__init__()
        self.model = model
        self.settings = settings

    def forward(self, keypoints_2d, action_tokens, clip_seeds):
        """(B, F, J, 2), (B, 77), (B,) int64 noise seeds (``sampling_seeds``) -> (B, K, H, F, J, 3)
        metres. The seeds are a tensor so that DataParallel hands each GPU its clips' seeds."""
        s = self.settings
        return self.model.ddim_sample(keypoints_2d, action_tokens, s.num_hypotheses, s.num_steps, s.flip,
                                      generators=generators_from_seeds(clip_seeds))


def zero_root(poses, root: int):
    """Set the root joint of (..., J, 3) poses to exactly 0 (root-relative convention)."""
    poses = poses.clone()
    poses[..., root, :] = 0
    return poses


@dataclass
class SequenceResult:
    """Per-frame results of one sequence.

    errors: {(setting, protocol): (N, K) float64 metres, mean over joints};
    poses: {setting: (N, K, J, 3) float32 metres, root-relative} when requested;
    valid: (N,) bool.
    """
    index: int
    errors: dict
    valid: np.ndarray
    poses: Optional[dict] = None


@dataclass
class EvaluationResult:
    """Errors in millimetres per group and averaged over groups, for every (setting, protocol)
    as (K,) arrays (one value per DDIM step)."""
    groups: OrderedDict
    average: dict
    frames: OrderedDict
    settings: SamplingSettings
    protocols: tuple
    sequence_results: list = field(default_factory=list)


def action_tokens_for(labels):
    return get_tokenizer().tokenize(list(labels))


def sampling_seeds(seed: int, sequence_key, windows: range) -> torch.Tensor:
    """The noise seeds (len(windows),) int64 of windows ``windows`` of one sequence: each a
    function of (seed, sequence_key (``Sequence.key``), window) only."""
    return torch.tensor([keyed_seed(SAMPLING_STREAM, seed, sequence_key, w) for w in windows], dtype=torch.int64)


def evaluate_sequence(sampler, sequence, index: int, num_frames: int, root: int, settings: SamplingSettings,
                      device, action_label: str, protocols=(1,), keep_poses=False, progress=None) -> SequenceResult:
    """Sample and score one sequence (with ground truth, trajectory and intrinsics)."""
    kp_windows = torch.from_numpy(make_windows(sequence.keypoints_2d, num_frames))
    gt_windows = torch.from_numpy(make_windows(sequence.positions_3d, num_frames))
    traj_windows = torch.from_numpy(make_windows(sequence.trajectory, num_frames))
    intrinsics = torch.from_numpy(sequence.intrinsics)
    tokens = action_tokens_for([action_label])
    errors = {}
    poses = {}
    for begin in range(0, len(kp_windows), settings.batch_size):
        kp = kp_windows[begin:begin + settings.batch_size].to(device)
        n = kp.shape[0]
        seeds = sampling_seeds(settings.seed, sequence.key, range(begin, begin + n))
        hyps = zero_root(sampler(kp, tokens.expand(n, -1).to(device), seeds).float().cpu(), root)
        gt = gt_windows[begin:begin + n]
        args = (hyps, gt, kp.cpu(), traj_windows[begin:begin + n], intrinsics.expand(n, -1))
        aggregated = metrics.aggregate_poses(*args)
        for setting, pose in aggregated.items():
            errors.setdefault((setting, 1), []).append(metrics.joint_errors(pose, gt[:, None]).mean(-1))
            if keep_poses:
                poses.setdefault(setting, []).append(pose)
        if 2 in protocols:
            for setting, err in metrics.multi_hypothesis_errors(*args, protocol=2).items():
                errors.setdefault((setting, 2), []).append(err)
        if progress is not None:
            progress.update(n)

    def stitch(chunks):
        # (W, K, F, ...) -> (W, F, K, ...) -> (N, K, ...)
        return stitch_windows(torch.cat(chunks).transpose(1, 2), sequence.num_frames)

    valid = np.ones(sequence.num_frames, bool) if sequence.valid is None else np.asarray(sequence.valid, bool)
    return SequenceResult(
        index=index,
        errors={key: stitch(chunks).double().numpy() for key, chunks in errors.items()},
        valid=valid,
        poses={s: stitch(chunks).numpy() for s, chunks in poses.items()} if keep_poses else None,
    )


def evaluate(model, sequences, groups, runtime, num_frames: int, root: int, settings: SamplingSettings,
             action_labels=None, protocols=(1,), keep_poses=False, show_progress=True) -> EvaluationResult:
    """Evaluate ``sequences`` (list of Sequence) grouped by ``groups`` (one key per sequence).

    action_labels: the label fed to each sequence's prompt (default: its ground-truth label).
    ``model`` is the bare PoseDiffusion; with several GPUs in one process sampling batches are
    split by DataParallel; with torchrun each rank samples a share of the sequences.
    """
    from common.core.units import MM_PER_M
    labels = action_labels if action_labels is not None else [s.action_label for s in sequences]
    sampler = HypothesisSampler(model, settings)
    if runtime.gpu_ids:
        sampler = nn.DataParallel(sampler, device_ids=runtime.gpu_ids)
    was_training = model.training
    model.eval()
    mine = runtime.shard(list(range(len(sequences))))
    total = sum(-(-sequences[i].num_frames // num_frames) for i in mine)
    with tqdm(total=total, desc='evaluating', unit='clip', disable=not show_progress, leave=False) as progress:
        results = [evaluate_sequence(sampler, sequences[i], i, num_frames, root, settings, runtime.device, labels[i],
                                     protocols, keep_poses, progress) for i in mine]
    model.train(was_training)
    results = sorted((r for part in runtime.gather(results) for r in part), key=lambda r: r.index)

    keys = list(results[0].errors) if results else []
    sums, counts = OrderedDict(), OrderedDict()
    for r in results:
        g = groups[r.index]
        counts[g] = counts.get(g, 0) + int(r.valid.sum())
        for key in keys:
            sums.setdefault(g, {}).setdefault(key, 0.0)
            sums[g][key] = sums[g][key] + r.errors[key][r.valid].sum(axis=0)
    per_group = OrderedDict((g, {key: sums[g][key] / max(counts[g], 1) * MM_PER_M for key in keys}) for g in sums)
    average = {key: np.mean([per_group[g][key] for g in per_group], axis=0) for key in keys}
    return EvaluationResult(per_group, average, counts, settings, tuple(protocols), results)

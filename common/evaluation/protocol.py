"""Evaluation: sample H hypotheses with K DDIM steps for every window of every test sequence,
aggregate them four ways (P-Best, J-Best, P-Agg, J-Agg) and score them per group.

Each sequence (one take seen by one camera) is cut into windows of F frames from its start, the
last one aligned to the sequence's end (a sequence shorter than F is one window, replicate-padded
at its end). Errors are then counted by one of two rules (``Counting``, ``--protocol``):

* ``original`` (the default): as the original FinePOSE counts. Every frame of every window
  counts, so the frames where the last window overlaps the one before count twice and a short
  sequence's padding frames count as frames; P-Best picks one hypothesis per evaluation batch of
  ``windows_per_batch`` consecutive windows of one sequence (the original's ``-b``, read as
  windows; its default 1024 means one hypothesis per sequence). Where frames are marked invalid
  (MPI-INF-3DHP), a batch's error is its mean over its valid window frames, weighted by all of
  its window frames, as the original's ``main_3dhp.py`` does (a batch without a valid frame
  counts for nothing; the original would print nan). The published tables were counted so.
* ``per-frame``: every real, valid frame once (a window's overlap with the one before and the
  padding do not count) and P-Best per window, so nothing depends on ``-b``.

A group's error (a Human3.6M action over all its subjects, takes and cameras; an MPI-INF-3DHP
test sequence) is its counted frames' weighted mean; the average is the mean over groups, or,
with ``Counting.pooled``, the weighted mean over every counted frame of every group (the
original's MPI-INF-3DHP table and its per-epoch validation).

Windows are sampled in batches of ``SamplingSettings.batch_size``; each window's noise comes from
its own generator, seeded by (seed, the sequence's subject, action and camera, window)
(``keyed_random``), so hypotheses do not depend on the sampling batch size, on how sequences are
split across processes or a batch across GPUs (only float rounding does), nor on which other
sequences are evaluated. P-Best's batches are an aggregation rule over those hypotheses, not a
way of drawing them.
"""
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from common.core.keyed_random import SAMPLING_STREAM, generators_from_seeds, keyed_seed
from common.data.generators import make_windows, stitch_windows, window_starts
from common.evaluation import metrics
from common.model.tokenizer import get_tokenizer

PROTOCOLS = (1, 2)
ORIGINAL, PER_FRAME = 'original', 'per-frame'
COUNTING_RULES = (ORIGINAL, PER_FRAME)


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


@dataclass(frozen=True)
class Counting:
    """Which frames an evaluation counts and which windows share a P-Best choice (``--protocol``).

    rule: ``ORIGINAL`` or ``PER_FRAME`` (module docstring).
    windows_per_batch: windows of one sequence per evaluation batch: P-Best (and, with invalid
        frames, the weighting) per batch; None: one batch per sequence. ``PER_FRAME``: 1.
    pooled: average over every counted frame of every group, instead of over the groups' errors.
    batch_source: where ``windows_per_batch`` comes from, in words ('-b 4', ...), for the tables.
    """
    rule: str = ORIGINAL
    windows_per_batch: Optional[int] = None
    pooled: bool = False
    batch_source: str = 'one batch per sequence'

    def __post_init__(self):
        if self.rule not in COUNTING_RULES:
            raise ValueError(f'counting rule {self.rule!r}: expected one of {", ".join(COUNTING_RULES)}')
        if self.rule == PER_FRAME and self.windows_per_batch != 1:
            raise ValueError('per-frame counting picks P-Best per window: windows_per_batch must be 1')


PER_FRAME_COUNTING = Counting(PER_FRAME, 1, batch_source='per window')


def frame_weights(counting: Counting, num_frames: int, window_length: int, valid=None):
    """How much each window frame of one sequence counts, and by what P-Best chooses.

    num_frames: N real frames; valid: (N,) bool or None (every frame valid). Returns (count,
    choose), each (W, F) float64 for the ``window_starts`` windows: ``count`` the weight of each
    window frame in the sums (their total is the frames the rule divides by); ``choose`` the
    weights of ``metrics.p_best_index`` (``original``: those of ``count``, which pick by the
    batch's mean over its valid frames; ``per-frame``: every frame of the window, padding included).
    """
    starts = window_starts(num_frames, window_length)
    frames = starts[:, None] + np.arange(window_length)                          # (W, F)
    valid = np.ones(num_frames, bool) if valid is None else np.asarray(valid, bool)
    frame_valid = valid[np.minimum(frames, num_frames - 1)]                       # replicate-padded, as the windows
    if counting.rule == PER_FRAME:
        first_time = (frames >= np.arange(len(starts))[:, None] * window_length) & (frames < num_frames)
        return (first_time & frame_valid).astype(np.float64), np.ones(frames.shape)
    batch = np.arange(len(starts)) // (counting.windows_per_batch or len(starts))
    valid_in_batch = np.bincount(batch, weights=frame_valid.sum(axis=1))          # (batches,)
    frames_in_batch = np.bincount(batch) * window_length
    scale = np.divide(frames_in_batch, valid_in_batch, out=np.zeros(len(valid_in_batch)), where=valid_in_batch > 0)
    count = frame_valid * scale[batch][:, None]
    return count, count


@dataclass
class SequenceResult:
    """One sequence's counted errors.

    sums: {(setting, protocol): (K,) float64 metres x counted frames}: the weighted sum of the
    per-frame errors (mean over joints) by ``frame_weights``' count; frames: the counted frames
    (the weights' total); poses: {setting: (N, K, J, 3) float32 metres, root-relative, one pose
    per frame} when requested.
    """
    index: int
    sums: dict
    frames: float
    poses: Optional[dict] = None


@dataclass
class EvaluationResult:
    """Errors in millimetres per group and averaged (``Counting.pooled``: over every counted
    frame) for every (setting, protocol) as (K,) arrays (one value per DDIM step); frames: the
    counted frames per group; window_frames: F."""
    groups: OrderedDict
    average: dict
    frames: OrderedDict
    settings: SamplingSettings
    protocols: tuple
    sequence_results: list = field(default_factory=list)
    counting: Counting = Counting()
    window_frames: int = 0
    invalid_frames: bool = False


def action_tokens_for(labels):
    return get_tokenizer().tokenize(list(labels))


def sampling_seeds(seed: int, sequence_key, windows: range) -> torch.Tensor:
    """The noise seeds (len(windows),) int64 of windows ``windows`` of one sequence: each a
    function of (seed, sequence_key (``Sequence.key``), window) only."""
    return torch.tensor([keyed_seed(SAMPLING_STREAM, seed, sequence_key, w) for w in windows], dtype=torch.int64)


class _PBestPoses:
    """P-Best poses of one sequence's windows, batch by batch: each sampling batch's hypotheses
    are kept only until every evaluation batch they belong to is complete (P-Best's choice for
    the poses: the lowest MPJPE over all frames of the batch's windows, as the original exports)."""

    def __init__(self, num_windows: int, windows_per_batch):
        self.num_windows, self.per_batch = num_windows, windows_per_batch or num_windows
        self.pending, self.done, self.poses = [], 0, []

    def add(self, hyps, all_frame_errors):
        """hyps (n, K, H, F, J, 3) of the next n windows; all_frame_errors: (windows so far, K, H, F)
        Protocol 1 errors of every hypothesis of every window sampled so far."""
        self.pending.append(hyps)
        sampled = all_frame_errors.shape[0]
        complete = sampled if sampled == self.num_windows else sampled // self.per_batch * self.per_batch
        if complete > self.done:
            pending = torch.cat(self.pending)
            index = metrics.p_best_index(all_frame_errors[self.done:complete], self.per_batch)
            self.poses.append(metrics.pick_hypotheses(pending[:complete - self.done], index))
            self.pending, self.done = [pending[complete - self.done:]], complete


def evaluate_sequence(sampler, sequence, index: int, num_frames: int, root: int, settings: SamplingSettings,
                      device, action_label: str, counting: Counting, protocols=(1,), keep_poses=False,
                      progress=None) -> SequenceResult:
    """Sample and score one sequence (with ground truth, trajectory and intrinsics)."""
    kp_windows = torch.from_numpy(make_windows(sequence.keypoints_2d, num_frames))
    gt_windows = torch.from_numpy(make_windows(sequence.positions_3d, num_frames))
    traj_windows = torch.from_numpy(make_windows(sequence.trajectory, num_frames))
    intrinsics = torch.from_numpy(sequence.intrinsics)
    tokens = action_tokens_for([action_label])
    count, choose = frame_weights(counting, sequence.num_frames, num_frames, sequence.valid)
    hypothesis_errors, errors, poses = {}, {}, {}
    p_best_poses = _PBestPoses(len(kp_windows), counting.windows_per_batch)
    for begin in range(0, len(kp_windows), settings.batch_size):
        kp = kp_windows[begin:begin + settings.batch_size].to(device)
        n = kp.shape[0]
        seeds = sampling_seeds(settings.seed, sequence.key, range(begin, begin + n))
        hyps = zero_root(sampler(kp, tokens.expand(n, -1).to(device), seeds).float().cpu(), root)
        args = (hyps, gt_windows[begin:begin + n], kp.cpu(), traj_windows[begin:begin + n], intrinsics.expand(n, -1))
        for protocol in protocols:
            every, settings_errors = metrics.setting_errors(*args, protocol=protocol)
            hypothesis_errors.setdefault(protocol, []).append(every)
            for setting, err in settings_errors.items():
                errors.setdefault((setting, protocol), []).append(err)
        if keep_poses:
            for setting, pose in metrics.setting_poses(*args).items():
                poses.setdefault(setting, []).append(pose)
            p_best_poses.add(hyps, torch.cat(hypothesis_errors[1]))
        if progress is not None:
            progress.update(n)
    for protocol, chunks in hypothesis_errors.items():
        every = torch.cat(chunks)                                                     # (W, K, H, F)
        errors[('P-Best', protocol)] = [metrics.pick_hypotheses(
            every, metrics.p_best_index(every, counting.windows_per_batch, choose))]
    weights = torch.from_numpy(count)[:, None, :]                                    # (W, 1, F)
    sums = {(setting, protocol): (torch.cat(errors[(setting, protocol)]).double() * weights).sum(dim=(0, 2)).numpy()
            for protocol in protocols for setting in metrics.SETTINGS}
    if keep_poses:
        poses = {'P-Best': p_best_poses.poses, **poses}

    def stitch(chunks):
        # (W, K, F, ...) -> (W, F, K, ...) -> (N, K, ...)
        return stitch_windows(torch.cat(chunks).transpose(1, 2), sequence.num_frames,
                              overlap_from_last=counting.rule == ORIGINAL).numpy()

    return SequenceResult(index=index, sums=sums, frames=float(count.sum()),
                          poses={s: stitch(chunks) for s, chunks in poses.items()} if keep_poses else None)


def evaluate(model, sequences, groups, runtime, num_frames: int, root: int, settings: SamplingSettings,
             action_labels=None, protocols=(1,), keep_poses=False, show_progress=True,
             counting: Counting = Counting()) -> EvaluationResult:
    """Evaluate ``sequences`` (list of Sequence) grouped by ``groups`` (one key per sequence),
    counting errors by ``counting`` (default: the original's, one P-Best batch per sequence).

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
                                     counting, protocols, keep_poses, progress) for i in mine]
    model.train(was_training)
    results = sorted((r for part in runtime.gather(results) for r in part), key=lambda r: r.index)

    sums, frames = OrderedDict(), OrderedDict()
    for r in results:
        g = groups[r.index]
        frames[g] = frames.get(g, 0.0) + r.frames
        for key, value in r.sums.items():
            sums.setdefault(g, {})[key] = sums.get(g, {}).get(key, 0.0) + value
    keys = list(results[0].sums) if results else []
    per_group = OrderedDict((g, {key: sums[g][key] / max(frames[g], 1) * MM_PER_M for key in keys}) for g in sums)
    if counting.pooled:
        total_frames = max(sum(frames.values()), 1)
        average = {key: sum(sums[g][key] for g in sums) / total_frames * MM_PER_M for key in keys}
    else:
        average = {key: np.mean([per_group[g][key] for g in per_group], axis=0) for key in keys}
    return EvaluationResult(per_group, average, OrderedDict((g, int(round(f))) for g, f in frames.items()), settings,
                            tuple(protocols), results, counting, num_frames,
                            any(s.valid is not None and not np.all(s.valid) for s in sequences))

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

MPJVE (``metrics.VELOCITY``) is counted on each setting's per-frame poses of a sequence (its
windows stitched, each frame once: under ``original`` the last window supplies the frames it
overlaps, as the original's exports take them; under ``per-frame`` the first window covering a
frame): every pair of consecutive real frames of one sequence, both valid, counts once, under
either rule; never a pair across sequences, never padding. A group's MPJVE is the mean over its
pairs (``Counting.pooled``: the average too, over every pair; else the mean over groups).

``smooth_window`` (``--smooth``) smooths each setting's per-frame poses of each sequence along
time (``smoothing.smooth_track``, after P-Best's choice); every number is then of the smoothed
poses: a window frame counts as its sequence frame's smoothed pose (a padding frame as the last
frame's), at the weights of the counting rule, and Protocol #2 aligns each smoothed pose.

``mean_pose`` (``baseline.MeanPose``) adds the baseline of every table: the training set's mean
pose predicted at every frame, counted as the settings are (``baseline.mean_pose_sums``), kept
apart from the settings in ``EvaluationResult.mean_pose_errors``.

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
from common.core.units import MM_PER_M
from common.data.generators import make_windows, stitch_windows, window_starts
from common.evaluation import metrics, smoothing
from common.evaluation.baseline import MEAN_POSE_LABEL, MeanPose, mean_pose_sums
from common.evaluation.metrics import VELOCITY
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


def sequence_frame_weights(count, num_frames: int):
    """(W, F) window-frame weights (``frame_weights``' count) -> (N,) float64 the weight of each
    sequence frame: the sum over the window frames showing it (a padding frame shows the last frame)."""
    window_length = count.shape[1]
    frames = np.minimum(window_starts(num_frames, window_length)[:, None] + np.arange(window_length), num_frames - 1)
    return np.bincount(frames.ravel(), weights=np.asarray(count, np.float64).ravel(), minlength=num_frames)


@dataclass
class SequenceResult:
    """One sequence's counted errors.

    sums: {(setting, protocol): (K,) float64 metres x counted frames}: the weighted sum of the
    per-frame errors (mean over joints) by ``frame_weights``' count; and {(setting, VELOCITY):
    (K,) float64 metres x counted pairs}: the sum of the velocity errors of the counted frame
    pairs (``metrics.velocity_error_sums``); frames: the counted frames (the weights' total);
    pairs: the counted frame pairs; poses: {setting: (N, K, J, 3) float32 metres, root-relative,
    one pose per frame, smoothed with ``--smooth``} when requested.
    """
    index: int
    sums: dict
    frames: float
    pairs: int = 0
    poses: Optional[dict] = None


@dataclass
class EvaluationResult:
    """Errors in millimetres per group and averaged (``Counting.pooled``: over every counted
    frame) for every (setting, protocol) and (setting, VELOCITY) as (K,) arrays (one value per
    DDIM step; MPJVE nan for a group without a counted frame pair); frames: the counted frames
    per group; window_frames: F; pairs: the counted frame pairs per group (MPJVE); smooth_window:
    ``--smooth``'s window, None when the poses are not smoothed; mean_pose: the baseline asked for
    (None: no baseline line, e.g. the per-epoch validation); mean_pose_errors: its errors in mm,
    {'average': {metric: mm}, 'groups': {group: {metric: mm}}} (metric 1, 2 or VELOCITY), None
    when absent."""
    groups: OrderedDict
    average: dict
    frames: OrderedDict
    settings: SamplingSettings
    protocols: tuple
    sequence_results: list = field(default_factory=list)
    counting: Counting = Counting()
    window_frames: int = 0
    invalid_frames: bool = False
    pairs: OrderedDict = field(default_factory=OrderedDict)
    smooth_window: Optional[int] = None
    mean_pose: Optional[MeanPose] = None
    mean_pose_errors: Optional[dict] = None


def action_tokens_for(labels):
    return get_tokenizer().tokenize(list(labels))


def sampling_seeds(seed: int, sequence_key, windows: range) -> torch.Tensor:
    """The noise seeds (len(windows),) int64 of windows ``windows`` of one sequence: each a
    function of (seed, sequence_key (``Sequence.key``), window) only."""
    return torch.tensor([keyed_seed(SAMPLING_STREAM, seed, sequence_key, w) for w in windows], dtype=torch.int64)


class _PBestPoses:
    """P-Best poses of one sequence's windows, batch by batch: each sampling batch's hypotheses
    are kept only until every evaluation batch they belong to is complete. The choice: the
    hypothesis with the lowest Protocol 1 error over the batch's window frames, weighted by
    ``weights`` (W, F) (``frame_weights``' choose: the table's P-Best), or over all of them (None:
    as the original exports)."""

    def __init__(self, num_windows: int, windows_per_batch, weights=None):
        self.num_windows, self.per_batch, self.weights = num_windows, windows_per_batch or num_windows, weights
        self.pending, self.pending_errors, self.done, self.poses = [], [], 0, []

    def add(self, hyps, frame_errors):
        """hyps (n, K, H, F, J, 3) of the next n windows and their Protocol 1 errors (n, K, H, F)."""
        self.pending.append(hyps)
        self.pending_errors.append(frame_errors)
        sampled = self.done + sum(len(h) for h in self.pending)
        complete = sampled if sampled == self.num_windows else sampled // self.per_batch * self.per_batch
        if complete > self.done:
            pending, errors, n = torch.cat(self.pending), torch.cat(self.pending_errors), complete - self.done
            weights = None if self.weights is None else self.weights[self.done:complete]
            index = metrics.p_best_index(errors[:n], self.per_batch, weights)
            self.poses.append(metrics.pick_hypotheses(pending[:n], index))
            self.pending, self.pending_errors, self.done = [pending[n:]], [errors[n:]], complete


def evaluate_sequence(sampler, sequence, index: int, num_frames: int, root: int, settings: SamplingSettings,
                      device, action_label: str, counting: Counting, protocols=(1,), keep_poses=False,
                      progress=None, smooth_window: Optional[int] = None, mean_pose=None) -> SequenceResult:
    """Sample and score one sequence (with ground truth, trajectory and intrinsics); protocols
    include 1. Positions and MPJVE are counted as the module docstring says, of the poses smoothed
    with ``smooth_window`` frames when given; with ``mean_pose`` ((J, 3) metres) also the baseline's,
    under the keys (``MEAN_POSE_LABEL``, metric)."""
    kp_windows = torch.from_numpy(make_windows(sequence.keypoints_2d, num_frames))
    gt_windows = torch.from_numpy(make_windows(sequence.positions_3d, num_frames))
    traj_windows = torch.from_numpy(make_windows(sequence.trajectory, num_frames))
    intrinsics = torch.from_numpy(sequence.intrinsics)
    tokens = action_tokens_for([action_label])
    count, choose = frame_weights(counting, sequence.num_frames, num_frames, sequence.valid)
    hypothesis_errors, errors, window_poses = {}, {}, {}
    # The table's P-Best, and the exported one where the original chooses it otherwise (invalid frames).
    p_best = _PBestPoses(len(kp_windows), counting.windows_per_batch, choose)
    exported_p_best = p_best if not keep_poses or np.all(choose == 1) else \
        _PBestPoses(len(kp_windows), counting.windows_per_batch)
    trackers = [p_best] if exported_p_best is p_best else [p_best, exported_p_best]
    for begin in range(0, len(kp_windows), settings.batch_size):
        kp = kp_windows[begin:begin + settings.batch_size].to(device)
        n = kp.shape[0]
        seeds = sampling_seeds(settings.seed, sequence.key, range(begin, begin + n))
        hyps = zero_root(sampler(kp, tokens.expand(n, -1).to(device), seeds).float().cpu(), root)
        args = (hyps, gt_windows[begin:begin + n], kp.cpu(), traj_windows[begin:begin + n], intrinsics.expand(n, -1))
        choices = metrics.SettingChoices.of(*args)
        for protocol in protocols:
            every, settings_errors = choices.errors(protocol)
            hypothesis_errors.setdefault(protocol, []).append(every)
            for setting, err in settings_errors.items():
                errors.setdefault((setting, protocol), []).append(err)
        for setting, pose in choices.poses().items():
            window_poses.setdefault(setting, []).append(pose)
        for tracker in trackers:
            tracker.add(hyps, hypothesis_errors[1][-1])
        if progress is not None:
            progress.update(n)
    for protocol, chunks in hypothesis_errors.items():
        every = torch.cat(chunks)                                                     # (W, K, H, F)
        errors[('P-Best', protocol)] = [metrics.pick_hypotheses(
            every, metrics.p_best_index(every, counting.windows_per_batch, choose))]

    def per_frame(chunks):
        # (W, K, F, J, 3) -> (W, F, K, J, 3) -> (N, K, J, 3), smoothed along N when asked
        track = stitch_windows(torch.cat(chunks).transpose(1, 2), sequence.num_frames,
                               overlap_from_last=counting.rule == ORIGINAL)
        return track if smooth_window is None else torch.from_numpy(smoothing.smooth_track(track, smooth_window))

    tracks = {'P-Best': per_frame(p_best.poses), **{s: per_frame(chunks) for s, chunks in window_poses.items()}}
    target = torch.from_numpy(sequence.positions_3d)
    if smooth_window is None:
        weights = torch.from_numpy(count)[:, None, :]                                # (W, 1, F)
        sums = {(setting, protocol): (torch.cat(errors[(setting, protocol)]).double() * weights).sum(dim=(0, 2)).numpy()
                for protocol in protocols for setting in metrics.SETTINGS}
    else:
        weights = torch.from_numpy(sequence_frame_weights(count, sequence.num_frames))[:, None]     # (N, 1)
        sums = {(setting, protocol): (metrics.protocol_joint_errors(tracks[setting], target[:, None], protocol)
                                      .mean(dim=-1).double() * weights).sum(dim=0).numpy()
                for protocol in protocols for setting in metrics.SETTINGS}
    velocities = {setting: metrics.velocity_error_sums(tracks[setting], target, sequence.valid)
                  for setting in metrics.SETTINGS}
    sums.update({(setting, VELOCITY): total.numpy() for setting, (total, _) in velocities.items()})
    pairs = velocities['P-Best'][1]
    if mean_pose is not None:
        frame_weight = sequence_frame_weights(count, sequence.num_frames)
        baseline, _ = mean_pose_sums(mean_pose, sequence.positions_3d, frame_weight, sequence.valid, root, protocols)
        sums.update({(MEAN_POSE_LABEL, metric): total for metric, total in baseline.items()})
    poses = None
    if keep_poses:
        exported = {**tracks, 'P-Best': tracks['P-Best'] if exported_p_best is p_best else
                    per_frame(exported_p_best.poses)}
        poses = {setting: exported[setting].numpy().astype(np.float32) for setting in metrics.SETTINGS}
    return SequenceResult(index=index, sums=sums, frames=float(count.sum()), pairs=pairs, poses=poses)


def evaluate(model, sequences, groups, runtime, num_frames: int, root: int, settings: SamplingSettings,
             action_labels=None, protocols=(1,), keep_poses=False, show_progress=True,
             counting: Counting = Counting(), smooth_window: Optional[int] = None,
             mean_pose: Optional[MeanPose] = None) -> EvaluationResult:
    """Evaluate ``sequences`` (list of Sequence) grouped by ``groups`` (one key per sequence),
    counting errors by ``counting`` (default: the original's, one P-Best batch per sequence), of
    the poses smoothed with ``smooth_window`` frames when given (every sequence must have at least
    ``smoothing.MIN_SMOOTH_FRAMES``: ``smoothing.check_smoothable``). With ``mean_pose`` the
    result also holds the baseline's errors (``EvaluationResult.mean_pose_errors``, when present).

    action_labels: the label fed to each sequence's prompt (default: its ground-truth label).
    ``model`` is the bare PoseDiffusion; with several GPUs in one process sampling batches are
    split by DataParallel; with torchrun each rank samples a share of the sequences.
    """
    labels = action_labels if action_labels is not None else [s.action_label for s in sequences]
    sampler = HypothesisSampler(model, settings)
    if runtime.gpu_ids:
        sampler = nn.DataParallel(sampler, device_ids=runtime.gpu_ids)
    was_training = model.training
    model.eval()
    mine = runtime.shard(list(range(len(sequences))))
    total = sum(-(-sequences[i].num_frames // num_frames) for i in mine)
    baseline_pose = mean_pose.pose if mean_pose is not None else None
    with tqdm(total=total, desc='evaluating', unit='clip', disable=not show_progress, leave=False) as progress:
        results = [evaluate_sequence(sampler, sequences[i], i, num_frames, root, settings, runtime.device, labels[i],
                                     counting, protocols, keep_poses, progress, smooth_window, baseline_pose)
                   for i in mine]
    model.train(was_training)
    results = sorted((r for part in runtime.gather(results) for r in part), key=lambda r: r.index)

    sums, frames, pairs = OrderedDict(), OrderedDict(), OrderedDict()
    for r in results:
        g = groups[r.index]
        frames[g] = frames.get(g, 0.0) + r.frames
        pairs[g] = pairs.get(g, 0) + r.pairs
        for key, value in r.sums.items():
            sums.setdefault(g, {})[key] = sums.get(g, {}).get(key, 0.0) + value
    keys = list(results[0].sums) if results else []
    positions = [key for key in keys if key[1] != VELOCITY]
    velocities = [key for key in keys if key[1] == VELOCITY]
    per_group = OrderedDict((g, {**{key: sums[g][key] / max(frames[g], 1) * MM_PER_M for key in positions},
                                 **{key: _velocity_mm(sums[g][key], pairs[g]) for key in velocities}}) for g in sums)
    if counting.pooled:
        total_frames = max(sum(frames.values()), 1)
        average = {key: sum(sums[g][key] for g in sums) / total_frames * MM_PER_M for key in positions}
        average.update({key: _velocity_mm(sum(sums[g][key] for g in sums), sum(pairs.values())) for key in velocities})
    else:
        average = {key: np.mean([per_group[g][key] for g in per_group], axis=0) for key in positions}
        with_pairs = [g for g in per_group if pairs[g] > 0] or list(per_group)     # none: every group's nan
        average.update({key: np.mean([per_group[g][key] for g in with_pairs], axis=0) for key in velocities})
    baseline_errors = _split_mean_pose(per_group, average) if baseline_pose is not None else None
    return EvaluationResult(per_group, average, OrderedDict((g, int(round(f))) for g, f in frames.items()), settings,
                            tuple(protocols), results, counting, num_frames,
                            any(s.valid is not None and not np.all(s.valid) for s in sequences), pairs, smooth_window,
                            mean_pose, baseline_errors)


def _split_mean_pose(per_group, average) -> dict:
    """Take the baseline's (``MEAN_POSE_LABEL``, metric) entries out of the settings' tables (in
    place) -> {'average': {metric: mm}, 'groups': {group: {metric: mm}}}."""
    def take(errors):
        return {metric: float(errors.pop((label, metric))[0]) for label, metric in list(errors)
                if label == MEAN_POSE_LABEL}
    return {'average': take(average), 'groups': OrderedDict((g, take(errors)) for g, errors in per_group.items())}


def _velocity_mm(total, pairs: int):
    """(K,) MPJVE in mm from the sum over ``pairs`` frame pairs (metres); nan where no pair counts."""
    return total / pairs * MM_PER_M if pairs > 0 else np.full(np.shape(total), np.nan)

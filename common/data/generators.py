"""Clips of F frames cut from sequences: shuffled training chunks, and evaluation windows.

Training (``ChunkedGenerator``): each sequence of N frames is cut into n = ceil(N / F)
non-overlapping chunks, centred on the sequence (the n*F - N missing frames are split between
both ends, the left getting the smaller half) and edge-padded (frames before the start repeat
the first frame, frames after the end the last one). With augmentation every chunk is used
twice, plain and mirrored left-right.

The training set's mean pose (``training_mean_pose``), the baseline of every evaluation table, is
the mean over every frame of every clip of an epoch, exactly as these chunks cut, pad and mirror them.

Evaluation (``window_starts``, ``make_windows``, ``stitch_windows``): consecutive windows
0, F, 2F, ... with the last one aligned to the sequence end, and the inverse that puts
per-window results back together, each frame taken exactly once (its overlap from the earlier
windows, or from the last one).
"""
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import torch

from common.data.camera import flip_intrinsics
from common.data.skeleton import flip_horizontal


@dataclass
class Batch:
    """B clips of F frames.

    keypoints_2d: (B, F, J, 2) float32, normalised image coordinates.
    positions_3d: (B, F, J, 3) float32, metres, camera frame, root-relative, or None.
    trajectory:   (B, F, 3) float32, metres, camera frame (root position), or None.
    intrinsics:   (B, 9) float32 normalised intrinsics, or None.
    actions:      B action labels (``Sequence.action_label``, e.g. "Walking"; '' for 3DHP).
    valid:        (B, F) bool annotation validity, or None when every frame is valid.
    """
    keypoints_2d: np.ndarray
    positions_3d: Optional[np.ndarray]
    trajectory: Optional[np.ndarray]
    intrinsics: Optional[np.ndarray]
    actions: list
    valid: Optional[np.ndarray]

    @property
    def size(self) -> int:
        return self.keypoints_2d.shape[0]


def chunk_starts(n_frames: int, chunk_length: int) -> np.ndarray:
    """(n,) first frame of each centred chunk; may be negative (left padding). n = ceil(N / F)."""
    n_chunks = -(-n_frames // chunk_length)
    offset = (n_chunks * chunk_length - n_frames) // 2
    return np.arange(n_chunks) * chunk_length - offset


class ChunkedGenerator:
    """Training batches of centred, edge-padded, non-overlapping chunks, optionally mirrored.

    sequences: list of ``Sequence`` (all with positions_3d or all without; same for trajectory
    and intrinsics; valid may be missing on some, meaning all frames valid).
    chunk_length: F frames per clip; batch_size: clips per batch (the last batch may be smaller).
    keypoints_mirror / joints_mirror: (J,) mirror permutations of the 2D keypoints / 3D joints.
    augment: add the mirrored copy of every chunk; shuffle: new random clip order each epoch,
    drawn from the generator's own RNG seeded with ``seed``.

    The sequences' frames are copied once into contiguous arrays, which the sequences then view
    (their float32 arrays are replaced by equal views, so the frames are held once: 0.55 GB less at
    Human3.6M's size); a batch is one gather of (B, F) frame indices (clipped to each sequence,
    which is the edge padding).
    """

    def __init__(self, sequences: list, chunk_length: int, batch_size: int, keypoints_mirror, joints_mirror,
                 augment: bool = True, shuffle: bool = True, seed: int = 1234):
        if not sequences:
            raise ValueError('ChunkedGenerator needs at least one sequence')
        if chunk_length < 1 or batch_size < 1:
            raise ValueError(f'chunk_length and batch_size must be positive, got {chunk_length}, {batch_size}')
        self.chunk_length = chunk_length
        self.batch_size = batch_size
        self.keypoints_mirror = np.asarray(keypoints_mirror)
        self.joints_mirror = np.asarray(joints_mirror)
        self.augment = augment
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)

        lengths = np.array([seq.num_frames for seq in sequences])
        self._first_frame = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self._keypoints_2d = np.concatenate([seq.keypoints_2d for seq in sequences]).astype(np.float32, copy=False)
        self._positions_3d = _concatenate_optional(sequences, 'positions_3d')
        self._trajectory = _concatenate_optional(sequences, 'trajectory')
        self._valid = None
        if any(seq.valid is not None for seq in sequences):
            self._valid = np.concatenate([np.ones(seq.num_frames, bool) if seq.valid is None
                                          else np.asarray(seq.valid, bool) for seq in sequences])
        has_intrinsics = [seq.intrinsics is not None for seq in sequences]
        if any(has_intrinsics) and not all(has_intrinsics):
            raise ValueError('either every sequence or none must have intrinsics')
        self._intrinsics = (np.stack([seq.intrinsics for seq in sequences]).astype(np.float32)
                            if all(has_intrinsics) else None)
        self._action_labels = [seq.action_label for seq in sequences]
        _view_contiguous(sequences, self._first_frame, lengths, keypoints_2d=self._keypoints_2d,
                         positions_3d=self._positions_3d, trajectory=self._trajectory)

        # One row per (sequence, chunk, flip): the clips of an epoch before shuffling.
        starts = [chunk_starts(n, chunk_length) for n in lengths]
        chunk_sequence = np.repeat(np.arange(len(sequences)), [len(s) for s in starts])
        chunk_start = np.concatenate(starts)
        flips = (False, True) if augment else (False,)
        self._clip_sequence = np.repeat(chunk_sequence, len(flips))
        self._clip_start = np.repeat(chunk_start, len(flips))
        self._clip_flip = np.tile(np.array(flips), len(chunk_start))
        self._lengths = lengths

    @property
    def num_clips(self) -> int:
        return len(self._clip_sequence)

    @property
    def num_batches(self) -> int:
        return -(-self.num_clips // self.batch_size)

    def random_state(self) -> dict:
        """The shuffling RNG's state (a picklable dict); ``set_random_state`` restores it."""
        return self._rng.bit_generator.state

    def set_random_state(self, state: dict):
        self._rng.bit_generator.state = state

    def next_epoch(self) -> Iterator[Batch]:
        """Draw this epoch's clip order now (advancing the RNG once) and return an iterator of its batches."""
        order = self._rng.permutation(self.num_clips) if self.shuffle else np.arange(self.num_clips)
        return self._batches(order)

    def _batches(self, order: np.ndarray) -> Iterator[Batch]:
        for begin in range(0, len(order), self.batch_size):
            yield self.batch(order[begin:begin + self.batch_size])

    def batch(self, clips: np.ndarray) -> Batch:
        """The Batch of the given clip indices (rows of the unshuffled clip list)."""
        sequence = self._clip_sequence[clips]
        last = self._lengths[sequence] - 1
        frames = np.clip(self._clip_start[clips, None] + np.arange(self.chunk_length), 0, last[:, None])
        frames += self._first_frame[sequence][:, None]
        flip = self._clip_flip[clips]

        keypoints_2d = self._keypoints_2d[frames]
        keypoints_2d[flip] = flip_horizontal(keypoints_2d[flip], self.keypoints_mirror)
        positions_3d = trajectory = intrinsics = valid = None
        if self._positions_3d is not None:
            positions_3d = self._positions_3d[frames]
            positions_3d[flip] = flip_horizontal(positions_3d[flip], self.joints_mirror)
        if self._trajectory is not None:
            trajectory = self._trajectory[frames]
            trajectory[flip, :, 0] *= -1
        if self._intrinsics is not None:
            intrinsics = self._intrinsics[sequence]
            intrinsics[flip] = flip_intrinsics(intrinsics[flip])
        if self._valid is not None:
            valid = self._valid[frames]
        return Batch(keypoints_2d=keypoints_2d, positions_3d=positions_3d, trajectory=trajectory,
                     intrinsics=intrinsics, actions=[self._action_labels[s] for s in sequence], valid=valid)


def _view_contiguous(sequences: list, first_frames, lengths, **contiguous):
    """Point each sequence's float32 arrays at its frames of the ``contiguous`` (field -> (sum N, ...))
    arrays: the same values, without a second copy of every frame alive."""
    for field, frames in contiguous.items():
        if frames is None:
            continue
        for seq, first, n in zip(sequences, first_frames, lengths):
            if getattr(seq, field).dtype == np.float32:
                setattr(seq, field, frames[first:first + n])


def training_mean_pose(sequences: list, chunk_length: int, joints_mirror, augment: bool = True) -> np.ndarray:
    """The mean 3D pose of what ``ChunkedGenerator`` trains on: (J, 3) float64, metres, camera frame,
    root-relative (as ``Sequence.positions_3d``).

    The mean over every frame of every clip of an epoch: each sequence cut into the centred chunks of
    ``chunk_length`` frames (``chunk_starts``), an edge-padding frame counting as the first or last
    frame it repeats; with ``augment`` every clip also mirrored (``flip_horizontal`` with
    ``joints_mirror``), so the mean is that of the plain clips and their mirror images, half each.
    sequences: ``Sequence``s with positions_3d (a sequence without counts for nothing). The clips'
    order and batches do not matter; one pass of per-frame counts per sequence (``np.bincount``).
    """
    total, frames = None, 0
    for sequence in sequences:
        if sequence.positions_3d is None:
            continue
        n = sequence.num_frames
        clip_frames = np.clip(chunk_starts(n, chunk_length)[:, None] + np.arange(chunk_length), 0, n - 1)
        counts = np.bincount(clip_frames.ravel(), minlength=n).astype(np.float64)         # (N,) uses of each frame
        weighted = np.tensordot(counts, np.asarray(sequence.positions_3d, np.float64), axes=1)   # (J, 3)
        total = weighted if total is None else total + weighted
        frames += counts.sum()
    if total is None:
        raise ValueError('training_mean_pose needs at least one sequence with 3D positions')
    mean = total / frames
    return (mean + flip_horizontal(mean, np.asarray(joints_mirror))) / 2 if augment else mean


def _concatenate_optional(sequences: list, field: str) -> Optional[np.ndarray]:
    """All sequences' ``field`` arrays concatenated along frames (float32), or None if none has it."""
    arrays = [getattr(seq, field) for seq in sequences]
    present = [a is not None for a in arrays]
    if not any(present):
        return None
    if not all(present):
        raise ValueError(f'either every sequence or none must have {field}')
    return np.concatenate(arrays).astype(np.float32, copy=False)


def window_starts(n_frames: int, window_length: int) -> np.ndarray:
    """(W,) first frame of each evaluation window: 0, F, 2F, ..., the last one at N - F.

    W = ceil(N / F). When N <= F there is one window at 0, padded on the right to F frames.
    """
    if n_frames < 1 or window_length < 1:
        raise ValueError(f'n_frames and window_length must be positive, got {n_frames}, {window_length}')
    starts = np.arange(-(-n_frames // window_length)) * window_length
    starts[-1] = max(n_frames - window_length, 0)
    return starts


def make_windows(array, window_length: int):
    """(N, ...) numpy array or torch tensor -> (W, F, ...) windows at ``window_starts`` (edge-padded if N < F)."""
    n_frames = array.shape[0]
    frames = window_starts(n_frames, window_length)[:, None] + np.arange(window_length)
    frames = np.minimum(frames, n_frames - 1)
    if isinstance(array, torch.Tensor):
        return array[torch.as_tensor(frames, device=array.device)]
    return array[frames]


def stitch_windows(windows, n_frames: int, overlap_from_last: bool = False):
    """(W, F, ...) per-window results -> (N, ...), each frame taken exactly once.

    The last window ends at frame N (or holds the whole sequence plus padding when N <= F) and
    may overlap the one before. By default the earlier windows own the overlap (windows 0..W-2
    taken whole, the last one adds only the frames not covered yet); with ``overlap_from_last``
    the last window is taken whole (as the original FinePOSE writes its MPI-INF-3DHP exports).
    """
    window_length = windows.shape[1]
    starts = window_starts(n_frames, window_length)
    if windows.shape[0] != len(starts):
        raise ValueError(f'{windows.shape[0]} windows of {window_length} frames cannot cover {n_frames} frames '
                         f'(expected {len(starts)})')
    covered = (len(starts) - 1) * window_length
    leading = windows[:-1].reshape((covered,) + tuple(windows.shape[2:]))
    first_from_last = starts[-1] if overlap_from_last else covered
    leading, last = leading[:first_from_last], windows[-1, first_from_last - starts[-1]:n_frames - starts[-1]]
    if isinstance(windows, torch.Tensor):
        return torch.cat([leading, last])
    return np.concatenate([leading, last])

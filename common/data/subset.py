"""``--subset`` and ``--downsample``: the frames VideoPose3D's and the original FinePOSE's ``fetch``
keep of each sequence (one camera's view of one take).

For a sequence of N frames, downsampling factor d and subset fraction s:

* s < 1: a contiguous stretch of n = round(floor(N / d) * s) * d frames (Python's round, halves
  to even), starting at frame ``deterministic_random(0, N - n + 1, str(N))``, of which every d-th
  frame is kept. The start depends only on N, so the four cameras of a take, and any two
  sequences of equal length, keep the same stretch.
* s = 1: every d-th frame, from the first.

``deterministic_random(lo, hi, text)`` = lo + int(u * (hi - lo)), u = the first four bytes of
SHA-256(text) read as a little-endian unsigned integer, divided by 2^32 - 1.

The original applies the subset to the training sequences only and the downsampling to the
training and the test sequences alike.
"""
import dataclasses
import hashlib

import numpy as np

from common.data.sequences import Sequence

PER_FRAME_FIELDS = ('keypoints_2d', 'positions_3d', 'trajectory', 'valid')


def deterministic_random(min_value: int, max_value: int, text: str) -> int:
    """An integer in [min_value, max_value] (max_value only when the hash is all ones) that is a
    fixed function of ``text`` (see the module docstring)."""
    raw = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], byteorder='little', signed=False)
    return int(raw / (2 ** 32 - 1) * (max_value - min_value)) + min_value


def kept_frames(num_frames: int, subset: float = 1.0, downsample: int = 1) -> np.ndarray:
    """(M,) indices of the frames of an N-frame sequence that ``--subset``/``--downsample`` keep
    (possibly none)."""
    if subset < 1:
        length = int(round(num_frames // downsample * subset) * downsample)
        start = deterministic_random(0, num_frames - length + 1, str(num_frames))
        return np.arange(start, min(start + length, num_frames), downsample)     # a slice stops at the end
    return np.arange(0, num_frames, downsample)


def select_frames(sequence: Sequence, frames: np.ndarray) -> Sequence:
    """``sequence`` restricted to ``frames`` (its per-frame arrays indexed, the rest shared)."""
    changes = {name: getattr(sequence, name)[frames] for name in PER_FRAME_FIELDS if getattr(sequence, name) is not None}
    return dataclasses.replace(sequence, **changes)


def reduce_sequences(sequences: list, subset: float = 1.0, downsample: int = 1) -> list:
    """The sequences with the frames ``kept_frames`` keeps; sequences left without a frame are dropped."""
    if subset == 1 and downsample == 1:
        return list(sequences)
    reduced = [select_frames(s, kept_frames(s.num_frames, subset, downsample)) for s in sequences]
    return [s for s in reduced if s.num_frames > 0]

"""``--subset`` and ``--downsample``: the frames VideoPose3D's and the original FinePOSE's ``fetch``
keep of each sequence (one camera's view of one take).

For a sequence of N frames, downsampling factor d and subset fraction s:

* s < 1: a contiguous stretch of n = round(floor(N / d) * s) * d frames (Python's round, halves
  to even), starting at frame floor(u(N) * (N - n + 1)) (``stretch_start``), of which every d-th
  frame is kept. The start depends only on N, so the four cameras of a take, and any two
  sequences of equal length, keep the same stretch.
* s = 1: every d-th frame, from the first.

u(N) (``hash_fraction`` of the decimal text of N) is the first four bytes of SHA-256 of that text,
read as a little-endian unsigned 32-bit integer and divided by 2^32 - 1 (so u is in [0, 1]), in
double precision as the original computes it: the same start to the frame.

The original applies the subset to the training sequences only and the downsampling to the
training and the test sequences alike.
"""
import dataclasses
import hashlib
import math
import struct

import numpy as np

from common.data.sequences import Sequence

PER_FRAME_FIELDS = ('keypoints_2d', 'positions_3d', 'trajectory', 'valid')
HASH_WORD = struct.Struct('<I')            # the digest's first 4 bytes, little-endian unsigned
LARGEST_WORD = 2 ** (8 * HASH_WORD.size) - 1


def hash_fraction(text: str) -> float:
    """A number in [0, 1] fixed by ``text``: the first word of its SHA-256 digest over ``LARGEST_WORD``."""
    word, = HASH_WORD.unpack_from(hashlib.sha256(text.encode()).digest())
    return word / LARGEST_WORD


def stretch_start(num_frames: int, length: int) -> int:
    """First frame of the ``length``-frame stretch that ``--subset`` keeps of an N-frame sequence:
    in [0, N - length] (N - length + 1 only if the digest's first word is all ones)."""
    return math.floor(hash_fraction(str(num_frames)) * (num_frames - length + 1))


def kept_frames(num_frames: int, subset: float = 1.0, downsample: int = 1) -> np.ndarray:
    """(M,) indices of the frames of an N-frame sequence that ``--subset``/``--downsample`` keep
    (possibly none)."""
    if subset < 1:
        length = int(round(num_frames // downsample * subset) * downsample)
        start = stretch_start(num_frames, length)
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

"""--subset and --downsample keep the frames the original's fetch() keeps (VideoPose3D's rule),
computed here from the rule as published: a stretch of round(N // d * s) * d frames starting at
floor(w / (2^32 - 1) * (N - n + 1)), w the first 4 bytes of SHA-256(str(N)) read little-endian,
then every d-th frame; s = 1: every d-th frame. The test evaluates the start in exact rational
arithmetic from the digest's hex text; the code uses doubles, as the original does."""
import hashlib
from fractions import Fraction

import numpy as np
import pytest

from common.data.sequences import Sequence
from common.data.subset import kept_frames, reduce_sequences, select_frames, stretch_start


def _published_start(num_frames, length):
    """The rule's start frame, exactly: the digest's first 4 bytes are its first 8 hex digits, byte
    pairs in reverse order for little-endian."""
    hex_digits = hashlib.sha256(str(num_frames).encode('ascii')).hexdigest()[:8]
    word = int(''.join(hex_digits[i:i + 2] for i in (6, 4, 2, 0)), 16)
    return int(Fraction(word, 0xFFFFFFFF) * (num_frames - length + 1))


def _original_frames(num_frames, subset, downsample):
    """The frame indices the original's fetch() slices out of an N-frame sequence."""
    if subset == 1:
        return np.arange(0, num_frames, downsample)
    length = int(round(num_frames // downsample * subset) * downsample)
    start = _published_start(num_frames, length)
    return np.arange(num_frames)[start:start + length][::downsample]


@pytest.mark.parametrize('num_frames, length, start', [(150, 15, 114), (150, 16, 113), (1001, 100, 815),
                                                       (2356, 236, 1054), (40, 4, 30)])
def test_stretch_start_pins_the_originals_values(num_frames, length, start):
    """Values of the published rule, worked out once (e.g. SHA-256('150') begins 9a e2 bd d7: w =
    0xd7bde29a = 3619545754, 3619545754 / 4294967295 * 136 = 114.6)."""
    assert stretch_start(num_frames, length) == _published_start(num_frames, length) == start


@pytest.mark.parametrize('num_frames', [40, 130, 150, 1001, 2356])
@pytest.mark.parametrize('subset', [0.1, 0.5, 1.0])
@pytest.mark.parametrize('downsample', [1, 2, 3])
def test_kept_frames_are_the_originals(num_frames, subset, downsample):
    assert np.array_equal(kept_frames(num_frames, subset, downsample), _original_frames(num_frames, subset, downsample))


def test_worked_examples():
    """150 frames: --subset 0.1 keeps a 15-frame stretch, --downsample 2 every other frame, both
    together round(75 * 0.1) = 8 frames of a 16-frame stretch (7.5 rounds to even); 130 frames,
    --subset 0.1 --downsample 2: round(6.5) = 6 frames."""
    start = kept_frames(150, 0.1)[0]
    assert np.array_equal(kept_frames(150, 0.1), np.arange(start, start + 15))
    assert np.array_equal(kept_frames(150, 1.0, 2), np.arange(0, 150, 2))
    both = kept_frames(150, 0.1, 2)
    assert len(both) == 8 and np.array_equal(np.diff(both), [2] * 7) and 0 <= both[0] <= 150 - 16
    assert len(kept_frames(130, 0.1, 2)) == 6
    print(f'150 frames: --subset 0.1 keeps {kept_frames(150, 0.1).tolist()}; with --downsample 2 {both.tolist()}')


def _sequence(num_frames, subject='S1'):
    g = np.random.default_rng(num_frames)
    return Sequence(subject=subject, action='Walking 1', camera=0,
                    keypoints_2d=g.normal(size=(num_frames, 17, 2)).astype(np.float32),
                    positions_3d=g.normal(size=(num_frames, 17, 3)).astype(np.float32),
                    trajectory=g.normal(size=(num_frames, 3)).astype(np.float32),
                    intrinsics=np.arange(9, dtype=np.float32), valid=g.random(num_frames) > 0.3)


def test_every_per_frame_array_keeps_the_same_frames():
    sequence = _sequence(150)
    frames = kept_frames(150, 0.5, 2)
    reduced = select_frames(sequence, frames)
    assert reduced.num_frames == len(frames) == 38
    for name in ('keypoints_2d', 'positions_3d', 'trajectory', 'valid'):
        assert np.array_equal(getattr(reduced, name), getattr(sequence, name)[frames]), name
    assert reduced.intrinsics is sequence.intrinsics and reduced.key == sequence.key


def test_cameras_of_a_take_keep_the_same_stretch_and_empty_sequences_are_dropped():
    views = [_sequence(150, 'S1'), _sequence(150, 'S5'), _sequence(4, 'S6')]
    reduced = reduce_sequences(views, subset=0.1)
    assert [s.subject for s in reduced] == ['S1', 'S5']            # 4 frames x 0.1 rounds to none
    assert np.array_equal(reduced[0].keypoints_2d, views[0].keypoints_2d[kept_frames(150, 0.1)])
    assert np.array_equal(reduced[1].positions_3d, views[1].positions_3d[kept_frames(150, 0.1)])
    assert reduce_sequences(views) == views

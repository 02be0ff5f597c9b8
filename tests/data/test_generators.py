"""Training chunks (centring, padding, flips, shuffling, RNG state) and evaluation windows."""
import pickle

import numpy as np
import pytest
import torch

from common.data.generators import ChunkedGenerator, make_windows, stitch_windows, training_mean_pose, window_starts
from common.data.sequences import Sequence

J = 5
# Joints 1 <-> 3 and 2 <-> 4 are mirror pairs; 0 is central.
MIRROR = np.array([0, 3, 4, 1, 2])


def make_sequence(index, n_frames, action='Walking 1', valid=None, with_intrinsics=True):
    """A sequence whose values identify the frame: 2D y = frame id (index * 1000 + t), 2D x = joint * t."""
    t = np.arange(n_frames, dtype=np.float32)
    frame_id = index * 1000 + t
    keypoints = np.stack(np.broadcast_arrays(t[:, None] * np.arange(J), frame_id[:, None] + 0 * np.arange(J)), -1)
    rng = np.random.default_rng(index)
    positions = rng.normal(size=(n_frames, J, 3)).astype(np.float32)
    return Sequence(subject=f'S{index}', action=action, camera=0, keypoints_2d=keypoints.astype(np.float32),
                    positions_3d=positions, trajectory=rng.normal(size=(n_frames, 3)).astype(np.float32),
                    intrinsics=rng.normal(size=9).astype(np.float32) if with_intrinsics else None, valid=valid)


def plain_generator(sequences, chunk_length, **kwargs):
    options = dict(batch_size=1000, keypoints_mirror=MIRROR, joints_mirror=MIRROR, augment=False, shuffle=False)
    options.update(kwargs)
    return ChunkedGenerator(sequences, chunk_length, **options)


@pytest.mark.parametrize('n_frames, chunk_length, expected_frames', [
    # n = 3 chunks of 4 cover 12 frames: 2 missing, 1 padded on each side.
    (10, 4, [[0, 0, 1, 2], [3, 4, 5, 6], [7, 8, 9, 9]]),
    # 1 missing frame: the left gets the smaller half (0), the right 1.
    (5, 3, [[0, 1, 2], [3, 4, 4]]),
    # Shorter than one chunk: 4 missing, 2 on each side.
    (4, 8, [[0, 0, 0, 1, 2, 3, 3, 3]]),
    (6, 3, [[0, 1, 2], [3, 4, 5]]),
])
def test_chunks_are_centred_and_edge_padded(n_frames, chunk_length, expected_frames):
    batch = next(iter(plain_generator([make_sequence(0, n_frames)], chunk_length).next_epoch()))
    assert batch.keypoints_2d.shape == (len(expected_frames), chunk_length, J, 2)
    np.testing.assert_array_equal(batch.keypoints_2d[:, :, 0, 1], expected_frames)
    sequence = make_sequence(0, n_frames)
    np.testing.assert_array_equal(batch.positions_3d, sequence.positions_3d[np.array(expected_frames)])
    np.testing.assert_array_equal(batch.trajectory, sequence.trajectory[np.array(expected_frames)])


def _mirror(x, mirror):
    """Independent mirror: joint j of the result is joint mirror[j] of x, x coordinate negated."""
    out = np.stack([x[..., m, :] for m in mirror], axis=-2)
    out[..., 0] = -out[..., 0]
    return out


def test_flipped_clip_is_the_mirror_of_its_plain_twin_and_flipping_twice_is_identity():
    sequences = [make_sequence(0, 9), make_sequence(1, 5, action='Sitting')]
    generator = plain_generator(sequences, 4, augment=True)
    batch = next(iter(generator.next_epoch()))
    plain, flipped = slice(0, None, 2), slice(1, None, 2)   # unshuffled: (chunk, plain), (chunk, flipped)
    np.testing.assert_array_equal(batch.keypoints_2d[flipped], _mirror(batch.keypoints_2d[plain], MIRROR))
    np.testing.assert_array_equal(batch.positions_3d[flipped], _mirror(batch.positions_3d[plain], MIRROR))
    np.testing.assert_array_equal(_mirror(batch.keypoints_2d[flipped], MIRROR), batch.keypoints_2d[plain])
    np.testing.assert_array_equal(_mirror(batch.positions_3d[flipped], MIRROR), batch.positions_3d[plain])
    np.testing.assert_array_equal(batch.trajectory[flipped], batch.trajectory[plain] * [-1, 1, 1])
    # Mirrored image: principal point x (index 2) and tangential p1 (index 7) change sign.
    sign = np.ones(9)
    sign[[2, 7]] = -1
    np.testing.assert_array_equal(batch.intrinsics[flipped], batch.intrinsics[plain] * sign)
    np.testing.assert_array_equal(batch.intrinsics[plain][0], sequences[0].intrinsics)
    assert batch.actions == ['Walking'] * 6 + ['Sitting'] * 4
    assert batch.valid is None


def test_augment_doubles_clips_and_batches_cover_every_frame():
    sequences = [make_sequence(i, n) for i, n in enumerate((1, 7, 16, 30))]
    single = plain_generator(sequences, 8)
    doubled = ChunkedGenerator(sequences, 8, batch_size=3, keypoints_mirror=MIRROR, joints_mirror=MIRROR)
    assert single.num_clips == 1 + 1 + 2 + 4
    assert doubled.num_clips == 2 * single.num_clips and doubled.num_batches == 6
    batches = list(doubled.next_epoch())
    assert [b.size for b in batches] == [3, 3, 3, 3, 3, 1]
    seen = np.concatenate([b.keypoints_2d[..., 1].ravel() for b in batches])
    all_frames = np.concatenate([s.keypoints_2d[:, 0, 1] for s in sequences])
    assert set(seen.tolist()) == set(all_frames.tolist())


def _order(generator):
    """Identify the clips of one epoch by their first 2D value (frame id) and x sign (flip)."""
    return [tuple(b.keypoints_2d[:, -1, 1, :].ravel()) for b in generator.next_epoch()]


def test_shuffling_is_deterministic_and_resumable():
    sequences = [make_sequence(i, n) for i, n in enumerate((40, 25, 60))]

    def make(seed=1234):
        return ChunkedGenerator(sequences, 6, batch_size=4, keypoints_mirror=MIRROR, joints_mirror=MIRROR, seed=seed)

    a, b = make(), make()
    first = _order(a)
    assert first == _order(b)
    assert first != _order(make(seed=99))
    state = pickle.loads(pickle.dumps(a.random_state()))
    second = _order(a)
    assert second != first
    resumed = make(seed=7)
    resumed.set_random_state(state)
    assert _order(resumed) == second
    # Without shuffling every epoch has the same, unshuffled order.
    fixed = make()
    fixed.shuffle = False
    assert _order(fixed) == _order(fixed)


def test_valid_mask_and_missing_fields():
    valid = np.array([True, False, True, True, False])
    sequences = [make_sequence(0, 5, valid=valid, with_intrinsics=False), make_sequence(1, 3, with_intrinsics=False)]
    batch = next(iter(plain_generator(sequences, 5).next_epoch()))
    assert batch.intrinsics is None
    # Sequence 1 has no mask (all valid); its single chunk is 3 frames padded by 1 on each side.
    np.testing.assert_array_equal(batch.valid, [valid, [True] * 5])
    np.testing.assert_array_equal(batch.keypoints_2d[1, :, 0, 1], [1000, 1000, 1001, 1002, 1002])
    with pytest.raises(ValueError, match='intrinsics'):
        plain_generator([make_sequence(0, 5), make_sequence(1, 5, with_intrinsics=False)], 4)


def test_sequences_view_the_generators_frames_instead_of_keeping_a_copy():
    sequences = [make_sequence(0, 9), make_sequence(1, 5)]
    originals = [(s.keypoints_2d.copy(), s.positions_3d.copy(), s.trajectory.copy()) for s in sequences]
    float64 = make_sequence(2, 4)
    float64.keypoints_2d = float64.keypoints_2d.astype(np.float64)
    generator = plain_generator(sequences + [float64], 3)
    for seq, values in zip(sequences, originals):
        for field, original in zip(('keypoints_2d', 'positions_3d', 'trajectory'), values):
            array = getattr(seq, field)
            np.testing.assert_array_equal(array, original)
            assert np.shares_memory(array, getattr(generator, f'_{field}')) and array.dtype == np.float32
    assert float64.keypoints_2d.dtype == np.float64                  # another dtype is left as it is
    assert not np.shares_memory(float64.keypoints_2d, generator._keypoints_2d)
    batch = next(iter(generator.next_epoch()))                      # batches are copies: the views stay intact
    batch.keypoints_2d[:] = -1
    np.testing.assert_array_equal(sequences[0].keypoints_2d, originals[0][0])


@pytest.mark.parametrize('n_frames', [1, 3, 5, 10, 12, 23])
def test_windows_cover_every_frame_once_and_the_last_ends_at_n(n_frames):
    window = 5
    starts = window_starts(n_frames, window)
    assert len(starts) == -(-n_frames // window)
    assert starts[0] == 0 and np.all(starts[:-1] == np.arange(len(starts) - 1) * window)
    frames = np.arange(n_frames)
    windows = make_windows(frames, window)
    assert windows.shape == (len(starts), window)
    if n_frames >= window:
        assert starts[-1] + window == n_frames and windows[-1, -1] == n_frames - 1
    else:   # one window, right-edge-padded with the last frame
        assert starts.tolist() == [0]
        assert windows[0].tolist() == list(range(n_frames)) + [n_frames - 1] * (window - n_frames)
    np.testing.assert_array_equal(stitch_windows(windows, n_frames), frames)
    # Results given per window (here: the window index) come back once per frame.
    marks = np.broadcast_to(np.arange(len(starts))[:, None], windows.shape)
    counts = np.bincount(stitch_windows(windows, n_frames), minlength=n_frames)
    assert counts.tolist() == [1] * n_frames
    assert stitch_windows(marks, n_frames)[-1] == len(starts) - 1
    # With the overlap taken from the last window: the same frames, the last window owning its whole span.
    np.testing.assert_array_equal(stitch_windows(windows, n_frames, overlap_from_last=True), frames)
    owner = stitch_windows(marks, n_frames, overlap_from_last=True)
    expected = np.minimum(frames // window, len(starts) - 1)
    expected[max(n_frames - window, 0):] = len(starts) - 1
    np.testing.assert_array_equal(owner, expected)


def test_windows_of_torch_tensors_with_trailing_dimensions():
    poses = torch.arange(12 * 2 * 3, dtype=torch.float32).reshape(12, 2, 3)
    windows = make_windows(poses, 5)
    assert windows.shape == (3, 5, 2, 3) and torch.equal(windows[-1], poses[7:12])
    assert torch.equal(stitch_windows(windows, 12), poses)
    with pytest.raises(ValueError, match='cannot cover 12 frames'):
        stitch_windows(windows[:2], 12)


@pytest.mark.parametrize('augment', [False, True])
def test_training_mean_pose_is_the_mean_of_every_frame_an_epoch_trains_on(augment):
    """The mean of every pose of every batch of an epoch (padding frames and mirrored copies as the
    batches hold them), against the closed form of ``training_mean_pose``."""
    sequences = [make_sequence(0, 10), make_sequence(1, 5), make_sequence(2, 3)]      # padded, shorter than a chunk
    generator = ChunkedGenerator(sequences, 4, batch_size=3, keypoints_mirror=MIRROR, joints_mirror=MIRROR,
                                 augment=augment, seed=5)
    seen = np.concatenate([batch.positions_3d for batch in generator.next_epoch()]).astype(np.float64)  # (C, F, J, 3)
    assert seen.shape[0] == (2 if augment else 1) * (3 + 2 + 1)
    np.testing.assert_allclose(training_mean_pose(sequences, 4, MIRROR, augment), seen.mean(axis=(0, 1)), atol=1e-12)
    if augment:                                   # the mirrored copies make the mean its own mirror image
        mean = training_mean_pose(sequences, 4, MIRROR, augment)
        np.testing.assert_allclose(mean[MIRROR] * [-1, 1, 1], mean, atol=1e-12)
    else:                                         # padded frames count: not the plain mean over frames
        frames_mean = np.concatenate([s.positions_3d for s in sequences]).mean(axis=0)
        assert np.abs(training_mean_pose(sequences, 4, MIRROR, augment) - frames_mean).max() > 1e-3

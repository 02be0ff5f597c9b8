"""Rendering helpers: frame downsampling."""
import numpy as np

from common.run.visualization import downsample_frames


def test_downsample_averages_groups_and_drops_the_incomplete_one():
    poses = np.arange(7 * 17 * 3, dtype=np.float32).reshape(7, 17, 3)
    out = downsample_frames(poses, 3)
    assert out.shape == (2, 17, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], (poses[0] + poses[1] + poses[2]) / 3)
    np.testing.assert_allclose(out[1], (poses[3] + poses[4] + poses[5]) / 3)
    np.testing.assert_array_equal(downsample_frames(poses, 1), poses)
    assert downsample_frames(poses[:2], 3).shape == (0, 17, 3)

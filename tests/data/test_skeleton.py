"""Skeleton definitions and horizontal flipping."""
import numpy as np
import torch

from common.data.skeleton import H36M_17, MPI_INF_3DHP_17, flip_horizontal, h36m_17_parents_from_32, reduce_h36m_32_to_17


def test_h36m_17_tree_derives_from_the_32_joint_skeleton():
    assert h36m_17_parents_from_32() == H36M_17.parents == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)


def test_reduction_keeps_the_published_joints():
    x = np.arange(2 * 32 * 3, dtype=np.float64).reshape(2, 32, 3)
    y = reduce_h36m_32_to_17(x)
    assert y.shape == (2, 17, 3)
    np.testing.assert_array_equal(y[:, 4], x[:, 6])    # left hip
    np.testing.assert_array_equal(y[:, 16], x[:, 27])  # right wrist


def test_3dhp_root_and_symmetry():
    assert MPI_INF_3DHP_17.root == 14
    perm = MPI_INF_3DHP_17.mirror_permutation()
    assert perm[2] == 5 and perm[10] == 13 and perm[14] == 14
    for skel in (H36M_17, MPI_INF_3DHP_17):
        assert sorted(skel.mirror_permutation()) == list(range(17))


def test_flip_twice_is_identity_numpy_and_torch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 9, 17, 3))
    perm = H36M_17.mirror_permutation()
    once = flip_horizontal(x, perm)
    assert not np.allclose(once, x)
    np.testing.assert_array_equal(once[..., 1, 0], -x[..., 4, 0])
    np.testing.assert_array_equal(flip_horizontal(once, perm), x)
    t = torch.from_numpy(x)
    torch.testing.assert_close(flip_horizontal(flip_horizontal(t, perm), perm), t)
    torch.testing.assert_close(flip_horizontal(t, perm), torch.from_numpy(once))

"""Skeletons: joint order, kinematic parents and left/right symmetry of the 17-joint layouts.

Two layouts are used:

* Human3.6M 17 joints (VideoPose3D order), obtained from the dataset's 32-joint motion
  capture skeleton by keeping ``H36M_KEPT_JOINTS`` and re-parenting both shoulders to the thorax.
* MPI-INF-3DHP 17 joints (the order of the official ``annot3`` restricted to the 17 test joints),
  root at the pelvis (index 14).

Horizontal flipping (data augmentation and test-time flip) negates x and swaps left and right
joints; ``flip_horizontal`` is the one implementation used for 2D keypoints, 3D poses and
noisy diffusion inputs alike.
"""
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    """A kinematic tree with named joints and a left/right symmetry."""
    name: str
    joint_names: tuple
    parents: tuple          # parents[j] is the parent of joint j, -1 for the root
    joints_left: tuple
    joints_right: tuple

    def __post_init__(self):
        n = len(self.joint_names)
        assert len(self.parents) == n, (self.name, len(self.parents), n)
        assert len(self.joints_left) == len(self.joints_right)
        assert self.parents.count(-1) == 1, 'exactly one root'

    @property
    def num_joints(self) -> int:
        return len(self.parents)

    @property
    def root(self) -> int:
        return self.parents.index(-1)

    def mirror_permutation(self) -> np.ndarray:
        """(J,) int array p such that joint j of a mirrored pose is joint p[j] of the original."""
        perm = np.arange(self.num_joints)
        perm[list(self.joints_left)] = self.joints_right
        perm[list(self.joints_right)] = self.joints_left
        return perm

    def bones(self):
        """List of (child, parent) pairs, root excluded."""
        return [(j, p) for j, p in enumerate(self.parents) if p >= 0]


def flip_horizontal(x, mirror_perm):
    """Mirror poses left-right: negate the x coordinate and swap left/right joints.

    x: (..., J, C) numpy array or torch tensor, C >= 1 (2D keypoints or 3D positions, any
    frame whose x axis is horizontal: normalised image or camera coordinates).
    mirror_perm: (J,) from ``Skeleton.mirror_permutation``.
    Returns a new array/tensor; applying it twice gives back ``x``.
    """
    out = x[..., mirror_perm, :]
    if isinstance(out, np.ndarray):
        out = out.copy()
        out[..., 0] *= -1
        return out
    sign = out.new_ones(out.shape[-1])
    sign[0] = -1
    return out * sign


# Human3.6M 32-joint motion-capture skeleton (as stored in data_3d_h36m.npz).
H36M_32_PARENTS = (-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12,
                   16, 17, 18, 19, 20, 19, 22, 12, 24, 25, 26, 27, 28, 27, 30)
# Joints of the 32-joint skeleton removed to obtain the 17-joint one.
H36M_REMOVED_JOINTS = (4, 5, 9, 10, 11, 16, 20, 21, 22, 23, 24, 28, 29, 30, 31)
H36M_KEPT_JOINTS = tuple(j for j in range(32) if j not in H36M_REMOVED_JOINTS)

H36M_17 = Skeleton(
    name='h36m',
    joint_names=('Hip', 'RHip', 'RKnee', 'RFoot', 'LHip', 'LKnee', 'LFoot', 'Spine', 'Thorax',
                 'Neck/Nose', 'Head', 'LShoulder', 'LElbow', 'LWrist', 'RShoulder', 'RElbow', 'RWrist'),
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    joints_left=(4, 5, 6, 11, 12, 13),
    joints_right=(1, 2, 3, 14, 15, 16),
)

MPI_INF_3DHP_17 = Skeleton(
    name='mpi_inf_3dhp',
    joint_names=('head_top', 'neck', 'r_shoulder', 'r_elbow', 'r_wrist', 'l_shoulder', 'l_elbow',
                 'l_wrist', 'r_hip', 'r_knee', 'r_ankle', 'l_hip', 'l_knee', 'l_ankle', 'pelvis',
                 'spine', 'head'),
    parents=(16, 15, 1, 2, 3, 1, 5, 6, 14, 8, 9, 14, 11, 12, -1, 14, 1),
    joints_left=(5, 6, 7, 11, 12, 13),
    joints_right=(2, 3, 4, 8, 9, 10),
)

SKELETONS = {'h36m': H36M_17, 'mpi_inf_3dhp': MPI_INF_3DHP_17}


def reduce_h36m_32_to_17(positions_32: np.ndarray) -> np.ndarray:
    """(N, 32, 3) Human3.6M motion-capture joints -> (N, 17, 3) in ``H36M_17`` order.

    Only selects joints; re-parenting the shoulders changes the tree, not positions.
    """
    if positions_32.shape[-2] != 32:
        raise ValueError(f'expected 32 joints, got array of shape {positions_32.shape}')
    return positions_32[..., list(H36M_KEPT_JOINTS), :]


def h36m_17_parents_from_32():
    """Parents of the reduced skeleton derived from the 32-joint tree (used to check H36M_17)."""
    kept = H36M_KEPT_JOINTS
    new_index = {old: new for new, old in enumerate(kept)}
    parents = []
    for old in kept:
        p = H36M_32_PARENTS[old]
        while p != -1 and p not in new_index:
            p = H36M_32_PARENTS[p]
        parents.append(-1 if p == -1 else new_index[p])
    # Human3.6M convention: both shoulders hang from the thorax (joint 8), not from the neck.
    parents[11] = parents[14] = 8
    return tuple(parents)

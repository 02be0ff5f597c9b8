"""Kinematic body model of the synthetic dataset, on the Human3.6M 32-joint motion-capture tree.

A body is a set of rest offsets, one per joint of ``skeleton.H36M_32_PARENTS``: the position of
the joint relative to its parent, in the parent's frame, in metres. Body frame: x to the
person's right, y forward, z up. Bone lengths are fixed per subject and never change over time.

Posing (``pose_world``) combines two techniques:

* forward kinematics for the root, legs, spine and head, from local joint rotations
  (intrinsic z-x-y Euler angles: twist about z, flexion about x, lateral bend about y);
* analytic two-bone inverse kinematics for each arm: the wrist goes to a target given in the
  chest frame, the elbow bends towards a pole direction; hand and thumb sites continue the
  forearm. Targets describe gestures (hand to mouth, pointing, waving) directly.

The body is then lifted so that its lowest foot marker touches the floor (world z = 0 plane).
"""
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from common.data.skeleton import H36M_32_PARENTS

NUM_JOINTS_32 = len(H36M_32_PARENTS)
EULER_ORDER = 'ZXY'          # intrinsic: twist (z), flexion (x), lateral bend (y)

# Joint indices of the 32-joint tree used by the model.
ROOT = 0
RIGHT_HIP, RIGHT_KNEE, RIGHT_ANKLE, RIGHT_TOE, RIGHT_TOE_SITE = 1, 2, 3, 4, 5
LEFT_HIP, LEFT_KNEE, LEFT_ANKLE, LEFT_TOE, LEFT_TOE_SITE = 6, 7, 8, 9, 10
LOWER_SPINE, CHEST, THORAX, HEAD, HEAD_TOP = 11, 12, 13, 14, 15
LEFT_SHOULDER_ANCHOR, LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST = 16, 17, 18, 19
LEFT_HAND, LEFT_HAND_SITE, LEFT_THUMB, LEFT_THUMB_SITE = 20, 21, 22, 23
RIGHT_SHOULDER_ANCHOR, RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST = 24, 25, 26, 27
RIGHT_HAND, RIGHT_HAND_SITE, RIGHT_THUMB, RIGHT_THUMB_SITE = 28, 29, 30, 31

FOOT_JOINTS = (RIGHT_ANKLE, RIGHT_TOE, RIGHT_TOE_SITE, LEFT_ANKLE, LEFT_TOE, LEFT_TOE_SITE)
# Per side, in the order (right, left) used for every two-sided quantity of the model:
# hip, knee, ankle and the arm chain shoulder, elbow, wrist, hand, hand site, thumb, thumb site.
SIDES = ('right', 'left')
LATERAL_SIGN = np.array([1.0, -1.0])      # x of the right side is +out, of the left side -out
HIPS = (RIGHT_HIP, LEFT_HIP)
KNEES = (RIGHT_KNEE, LEFT_KNEE)
ANKLES = (RIGHT_ANKLE, LEFT_ANKLE)
ARMS = ((RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST, RIGHT_HAND, RIGHT_HAND_SITE, RIGHT_THUMB, RIGHT_THUMB_SITE),
        (LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST, LEFT_HAND, LEFT_HAND_SITE, LEFT_THUMB, LEFT_THUMB_SITE))

# Rest offsets of a reference adult (metres; x right, y forward, z up). Mirrored pairs are
# written once per side; the shoulder anchors coincide with the thorax, as in the real data.
_NECK_OFFSET = (0.0, 0.01, 0.25)
_REFERENCE_OFFSETS = np.array([
    (0.0, 0.0, 0.0),          # 0 hip centre (root)
    (0.125, -0.01, -0.02),    # 1 right hip
    (0.0, 0.0, -0.44),        # 2 right knee
    (0.0, 0.0, -0.44),        # 3 right ankle
    (0.0, 0.13, -0.065),      # 4 right toe base
    (0.0, 0.05, 0.0),         # 5 right toe tip
    (-0.125, -0.01, -0.02),   # 6 left hip
    (0.0, 0.0, -0.44),        # 7 left knee
    (0.0, 0.0, -0.44),        # 8 left ankle
    (0.0, 0.13, -0.065),      # 9 left toe base
    (0.0, 0.05, 0.0),         # 10 left toe tip
    (0.0, 0.0, 0.11),         # 11 lower spine
    (0.0, 0.0, 0.13),         # 12 chest ("Spine" of the 17 joints)
    _NECK_OFFSET,             # 13 thorax / neck base
    (0.0, 0.05, 0.11),        # 14 head centre ("Neck/Nose")
    (0.0, -0.02, 0.115),      # 15 head top ("Head")
    _NECK_OFFSET,             # 16 left shoulder anchor
    (-0.145, -0.01, -0.03),   # 17 left shoulder
    (0.0, 0.0, -0.28),        # 18 left elbow (length only: arms are posed by IK)
    (0.0, 0.0, -0.25),        # 19 left wrist
    (0.0, 0.0, -0.07),        # 20 left hand
    (0.0, 0.0, -0.03),        # 21 left hand tip
    (0.0, 0.0, -0.045),       # 22 left thumb
    (0.0, 0.0, -0.025),       # 23 left thumb tip
    _NECK_OFFSET,             # 24 right shoulder anchor
    (0.145, -0.01, -0.03),    # 25 right shoulder
    (0.0, 0.0, -0.28),        # 26 right elbow
    (0.0, 0.0, -0.25),        # 27 right wrist
    (0.0, 0.0, -0.07),        # 28 right hand
    (0.0, 0.0, -0.03),        # 29 right hand tip
    (0.0, 0.0, -0.045),       # 30 right thumb
    (0.0, 0.0, -0.025),       # 31 right thumb tip
])
assert _REFERENCE_OFFSETS.shape == (NUM_JOINTS_32, 3)

# Bones that share one random length factor per subject (left/right kept symmetric, and the
# shoulder anchors tied to the neck so that they keep coinciding with the thorax).
_BONE_GROUPS = ((RIGHT_HIP, LEFT_HIP), (RIGHT_KNEE, LEFT_KNEE), (RIGHT_ANKLE, LEFT_ANKLE),
                (RIGHT_TOE, LEFT_TOE, RIGHT_TOE_SITE, LEFT_TOE_SITE), (LOWER_SPINE,), (CHEST,),
                (THORAX, LEFT_SHOULDER_ANCHOR, RIGHT_SHOULDER_ANCHOR), (HEAD,), (HEAD_TOP,),
                (LEFT_SHOULDER, RIGHT_SHOULDER), (LEFT_ELBOW, RIGHT_ELBOW), (LEFT_WRIST, RIGHT_WRIST),
                (LEFT_HAND, RIGHT_HAND, LEFT_HAND_SITE, RIGHT_HAND_SITE,
                 LEFT_THUMB, RIGHT_THUMB, LEFT_THUMB_SITE, RIGHT_THUMB_SITE))
BONE_LENGTH_SPREAD = 0.03    # standard deviation of the per-bone length factor
BONE_LENGTH_LIMIT = 0.06     # the factor is clipped to 1 +- this
HEIGHT_RANGE_M = (1.55, 1.90)

FLOOR_CONTACT_M = 0.02       # height of the lowest foot marker above the floor (marker radius)
THUMB_ANGLE = np.radians(35.0)      # thumb direction: the forearm's, tilted away from the elbow's bend
MAX_REACH = 0.995            # the wrist stays this fraction of the full arm length from the shoulder
MIN_REACH_MARGIN_M = 0.02    # and at least this much beyond |upper arm - forearm|


def _rest_positions(offsets: np.ndarray) -> np.ndarray:
    """(32, 3) joint positions of the rest pose (all rotations identity, arms hanging), root at 0."""
    positions = np.zeros_like(offsets)
    for joint, parent in enumerate(H36M_32_PARENTS):
        if parent >= 0:
            positions[joint] = positions[parent] + offsets[joint]
    return positions


def stature(offsets: np.ndarray) -> float:
    """Standing height in metres: floor to the head-top joint, in the rest pose."""
    rest = _rest_positions(offsets)
    return float(rest[HEAD_TOP, 2] - rest[list(FOOT_JOINTS), 2].min() + FLOOR_CONTACT_M)


REFERENCE_STATURE_M = stature(_REFERENCE_OFFSETS)
# For gesture targets: the right shoulder relative to the thorax in the chest frame (the shoulder
# anchors coincide with the thorax), and the arm's full length, of the reference adult.
REFERENCE_SHOULDER_FROM_THORAX = _REFERENCE_OFFSETS[RIGHT_SHOULDER]
REFERENCE_ARM_REACH_M = float(np.linalg.norm(_REFERENCE_OFFSETS[[RIGHT_ELBOW, RIGHT_WRIST]], axis=-1).sum())


@dataclass(frozen=True)
class Body:
    """One subject's skeleton. offsets: (32, 3) metres, rest offset of each joint from its parent."""
    offsets: np.ndarray

    @property
    def height(self) -> float:
        """Standing height in metres (floor to the head-top joint)."""
        return stature(self.offsets)

    @property
    def scale(self) -> float:
        """Size relative to the reference adult; gesture targets are given for the reference."""
        return self.height / REFERENCE_STATURE_M

    def bone_lengths(self) -> np.ndarray:
        """(32,) metres: distance of every joint from its parent (0 for the root)."""
        return np.linalg.norm(self.offsets, axis=-1)

    @property
    def leg_length(self) -> float:
        """Hip to ankle, metres, with the leg straight."""
        return float(self.bone_lengths()[RIGHT_KNEE] + self.bone_lengths()[RIGHT_ANKLE])


def random_body(rng: np.random.Generator) -> Body:
    """A subject of random height (``HEIGHT_RANGE_M``) with bone lengths varied by a few percent."""
    factors = np.ones(NUM_JOINTS_32)
    spread = np.clip(rng.normal(0.0, BONE_LENGTH_SPREAD, len(_BONE_GROUPS)), -BONE_LENGTH_LIMIT, BONE_LENGTH_LIMIT)
    for group, factor in zip(_BONE_GROUPS, spread):
        factors[list(group)] = 1.0 + factor
    offsets = _REFERENCE_OFFSETS * factors[:, None]
    height = rng.uniform(*HEIGHT_RANGE_M)
    return Body(offsets=offsets * height / stature(offsets))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _two_bone_ik(shoulder, target, pole, upper: float, fore: float):
    """Place elbow and wrist of an arm so that the wrist is as close to ``target`` as the arm allows.

    shoulder, target, pole: (N, 3) world frame; pole is the direction the elbow bends towards.
    Returns elbow (N, 3), wrist (N, 3) and the bend direction (N, 3), unit, orthogonal to the
    shoulder-wrist line. |elbow - shoulder| = upper and |wrist - elbow| = fore exactly.
    """
    to_target = target - shoulder
    reach = np.linalg.norm(to_target, axis=-1, keepdims=True)
    along = to_target / np.maximum(reach, 1e-9)
    reach = np.clip(reach, abs(upper - fore) + MIN_REACH_MARGIN_M, MAX_REACH * (upper + fore))
    # Law of cosines: angle at the shoulder between the upper arm and the shoulder-wrist line.
    cos_shoulder = np.clip((upper ** 2 + reach ** 2 - fore ** 2) / (2 * upper * reach), -1.0, 1.0)
    bend = pole - np.sum(pole * along, axis=-1, keepdims=True) * along
    degenerate = np.linalg.norm(bend, axis=-1, keepdims=True) < 1e-6
    fallback = np.cross(along, np.array([0.0, 0.0, 1.0]))
    fallback = np.where(np.linalg.norm(fallback, axis=-1, keepdims=True) < 1e-6, np.array([1.0, 0.0, 0.0]), fallback)
    bend = _unit(np.where(degenerate, fallback, bend))
    elbow = shoulder + upper * (cos_shoulder * along + np.sqrt(1.0 - cos_shoulder ** 2) * bend)
    wrist = shoulder + reach * along
    return elbow, wrist, bend


def forward_kinematics(offsets: np.ndarray, root_position: np.ndarray, local_euler: np.ndarray):
    """Joint positions and global orientations from local rotations.

    offsets: (32, 3) metres; root_position: (N, 3) world metres; local_euler: (N, 32, 3) radians,
    ``EULER_ORDER`` angles of every joint relative to its parent (the root's: relative to the world).
    Returns positions (N, 32, 3) world metres and global rotations (N, 32, 3, 3) (body -> world).
    """
    n = root_position.shape[0]
    turning = np.flatnonzero(np.any(local_euler != 0, axis=(0, 2)))     # most joints never rotate
    local = dict(zip(turning, Rotation.from_euler(EULER_ORDER, local_euler[:, turning].reshape(-1, 3))
                     .as_matrix().reshape(n, len(turning), 3, 3).swapaxes(0, 1)))
    positions = np.empty((n, NUM_JOINTS_32, 3))
    rotations = np.empty((n, NUM_JOINTS_32, 3, 3))
    for joint, parent in enumerate(H36M_32_PARENTS):     # parents precede children
        parent_rotation = rotations[:, parent] if parent >= 0 else np.eye(3)
        rotations[:, joint] = parent_rotation @ local[joint] if joint in local else parent_rotation
        if parent < 0:
            positions[:, joint] = root_position
        else:
            positions[:, joint] = positions[:, parent] + parent_rotation @ offsets[joint]
    return positions, rotations


def pose_world(body: Body, root_xy: np.ndarray, local_euler: np.ndarray,
               wrist_targets: np.ndarray, elbow_poles: np.ndarray) -> np.ndarray:
    """Pose the body; returns (N, 32, 3) world coordinates in metres, z up, feet on the floor.

    root_xy: (N, 2) metres, the root's floor position. local_euler: (N, 32, 3) as in
    ``forward_kinematics`` (arm joints below the shoulders are ignored).
    wrist_targets, elbow_poles: (N, 2, 3) for the (right, left) arm, in the chest frame with x
    pointing OUTWARDS from the midline (mirrored for the left arm). Targets are relative to the
    thorax joint and given for the reference adult (scaled by ``body.scale``); poles are directions.
    """
    n = root_xy.shape[0]
    root = np.concatenate([root_xy, np.zeros((n, 1))], axis=-1)
    positions, rotations = forward_kinematics(body.offsets, root, local_euler)
    chest = rotations[:, CHEST]
    mirror = np.stack([LATERAL_SIGN, np.ones(2), np.ones(2)], axis=-1)        # (2 sides, 3)
    lengths = body.bone_lengths()
    for side, (shoulder, elbow, wrist, hand, hand_site, thumb, thumb_site) in enumerate(ARMS):
        target_chest = wrist_targets[:, side] * mirror[side] * body.scale
        target = positions[:, THORAX] + np.einsum('nij,nj->ni', chest, target_chest)
        pole = np.einsum('nij,nj->ni', chest, elbow_poles[:, side] * mirror[side])
        elbow_at, wrist_at, bend = _two_bone_ik(positions[:, shoulder], target, pole, lengths[elbow], lengths[wrist])
        forearm = _unit(wrist_at - elbow_at)
        thumb_direction = _unit(np.cos(THUMB_ANGLE) * forearm - np.sin(THUMB_ANGLE) * bend)
        positions[:, elbow] = elbow_at
        positions[:, wrist] = wrist_at
        positions[:, hand] = wrist_at + lengths[hand] * forearm
        positions[:, hand_site] = positions[:, hand] + lengths[hand_site] * forearm
        positions[:, thumb] = wrist_at + lengths[thumb] * thumb_direction
        positions[:, thumb_site] = positions[:, thumb] + lengths[thumb_site] * thumb_direction
    lowest_foot = positions[:, list(FOOT_JOINTS), 2].min(axis=1)
    positions[..., 2] += (FLOOR_CONTACT_M - lowest_foot)[:, None]
    return positions

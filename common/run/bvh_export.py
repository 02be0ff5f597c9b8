"""``--viz-export NAME.bvh``: predicted poses as a BVH (Biovision hierarchy) animation, for Blender & co.

BVH has no place for units or axes; they are stated here, in docs/your-own-video.md and in the log line.

* HIERARCHY: the skeleton's tree (Human3.6M 17 joints, root the pelvis ``Hip``), children in joint
  order. Names are the skeleton's with every character other than a letter, digit or ``_``
  written as ``_`` (``Neck/Nose`` -> ``Neck_Nose``).
* Axes, Y up: a camera-frame point (x right, y down, z forward) is written as (x, -y, -z), the
  camera frame turned 180 degrees about its x axis (x right, y up, z towards the camera). A
  person facing the camera faces +z with their left side towards +x, as BVH characters usually do.
* Units: centimetres (``CM_PER_M``); ``Frame Time`` is 1 / fps seconds.
* Rest pose (OFFSET): a T-pose facing +z (``H36M_RIG``): legs, spine, neck and head vertical,
  hips and arms sideways; every bone as long as the median over frames of its predicted length.
* MOTION: every joint's local rotation as ``Zrotation Xrotation Yrotation`` degrees (the matrix
  Rz @ Rx @ Ry, scipy's intrinsic 'ZXY'; each channel unwrapped over time, so no 360-degree
  jumps), chosen so that every bone points along the predicted bone:

  - a joint with one child turns that bone's rest direction, seen from its parent's frame, onto
    the predicted direction by the smallest rotation (it adds no twist of its own);
  - a joint with several children follows the twist rule of ``BvhRig.twist``: its primary child
    exactly (pelvis: the spine; thorax: the neck), and about that bone the turn that best
    aligns the rest line between two side children (right -> left hip; right -> left shoulder)
    with the predicted line (``Rotation.align_vectors`` with weights [inf, 1]);
  - a leaf (feet, head, wrists) has no bone to aim: zero rotation.

  The side children (hips, shoulders) also carry ``Xposition Yposition Zposition``: their place
  in their parent's frame on that frame. One rotation cannot put every child on its rest offset
  when the angle between sibling bones changes over time; with these channels forward
  kinematics of the file gives ``rescaled_joints`` exactly (to the written decimals).
* Root: ``Xposition Yposition Zposition`` follow the root trajectory when one is given (your own
  video: the estimated one; Human3.6M: the ground truth), else stay at the origin.

Needs only numpy and scipy (no torch), so that other environments (Blender's) can import it.
"""
import re
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from common.core.atomic import atomic_output
from common.core.errors import UserError
from common.core.units import CM_PER_M

CAMERA_TO_BVH = np.diag([1.0, -1.0, -1.0])     # x right, y down, z forward -> x right, y up, z backward
EULER_ORDER = 'ZXY'                             # intrinsic, as the channel order below
ROTATION_CHANNELS = 'Zrotation Xrotation Yrotation'
POSITION_CHANNELS = 'Xposition Yposition Zposition'
DECIMALS = 6                                    # of every number written (cm, degrees)
DEGREES_PER_TURN = 360.0
END_SITE_CM = 10.0                              # length of the end sites, the leaves' tails in Blender
MIN_BONE_CM = 1e-4                              # a predicted bone shorter than this has no direction
PARALLEL_SINE = 1e-9                            # below: two directions taken as parallel or opposite

# Directions in the BVH frame, for a person facing +z.
LEFT, RIGHT, UP, DOWN, FORWARD = (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, 1.0)


@dataclass(frozen=True)
class BvhRig:
    """How one skeleton is written, by joint name.

    rest_directions: non-root joint -> unit direction, BVH frame, of the bone from its parent to
        it in the rest pose.
    twist: joint with several children -> (primary child, (side child a, side child b)): the bone
        to the primary child is matched exactly and the line a -> b sets the turn about it.
    end_sites: leaf joint -> direction of its End Site (``END_SITE_CM`` long).
    """
    rest_directions: dict
    twist: dict
    end_sites: dict


H36M_RIG = BvhRig(
    rest_directions={'RHip': RIGHT, 'RKnee': DOWN, 'RFoot': DOWN, 'LHip': LEFT, 'LKnee': DOWN, 'LFoot': DOWN,
                     'Spine': UP, 'Thorax': UP, 'Neck/Nose': UP, 'Head': UP,
                     'LShoulder': LEFT, 'LElbow': LEFT, 'LWrist': LEFT,
                     'RShoulder': RIGHT, 'RElbow': RIGHT, 'RWrist': RIGHT},
    twist={'Hip': ('Spine', ('RHip', 'LHip')), 'Thorax': ('Neck/Nose', ('RShoulder', 'LShoulder'))},
    end_sites={'RFoot': FORWARD, 'LFoot': FORWARD, 'Head': UP, 'LWrist': LEFT, 'RWrist': RIGHT},
)
RIGS = {'h36m': H36M_RIG}


def bvh_name(joint_name: str) -> str:
    """'Neck/Nose' -> 'Neck_Nose': BVH readers split on spaces and some refuse punctuation."""
    return re.sub(r'\W', '_', joint_name)


def camera_to_bvh(points_m: np.ndarray) -> np.ndarray:
    """(..., 3) metres, camera frame -> (..., 3) float64 centimetres, BVH frame (Y up)."""
    return np.asarray(points_m, np.float64) @ CAMERA_TO_BVH.T * CM_PER_M


def bone_vectors(joints: np.ndarray, parents) -> np.ndarray:
    """(N, J, 3) joints -> (N, J, 3): each joint minus its parent, zero for the root."""
    parent_of = np.array([max(p, 0) for p in parents])
    vectors = joints - joints[:, parent_of]
    vectors[:, [j for j, p in enumerate(parents) if p < 0]] = 0.0
    return vectors


def median_bone_lengths(joints: np.ndarray, parents) -> np.ndarray:
    """(N, J, 3) -> (J,): the median over frames of every bone's length (0 for the root), same unit."""
    return np.median(np.linalg.norm(bone_vectors(joints, parents), axis=-1), axis=0)


def rescaled_joints(joints: np.ndarray, parents, root_positions: np.ndarray) -> np.ndarray:
    """The motion the BVH holds: (N, J, 3) joints -> (N, J, 3), every bone along its predicted
    direction at its median length (``median_bone_lengths``), hanging from its rescaled parent; the
    root at ``root_positions`` (N, 3). Any unit and frame; parents must precede their children."""
    vectors = bone_vectors(joints, parents)
    lengths = np.linalg.norm(vectors, axis=-1, keepdims=True)
    bones = np.divide(vectors, lengths, out=np.zeros_like(vectors), where=lengths > 0)
    bones *= np.median(lengths, axis=0)
    out = np.empty_like(vectors)
    for joint, parent in enumerate(parents):
        out[:, joint] = root_positions if parent < 0 else out[:, parent] + bones[:, joint]
    return out


def _children(parents) -> list:
    return [[c for c, p in enumerate(parents) if p == j] for j in range(len(parents))]


def _aims(joint: int, children: list, skeleton, rig: BvhRig) -> tuple:
    """(pairs, sides): the (from, to) joint pairs whose lines ``joint``'s rotation aligns, the exact
    one first, and the children placed by position channels (those of a twist rule but the primary)."""
    name = skeleton.joint_names[joint]
    if name in rig.twist:
        index = {n: j for j, n in enumerate(skeleton.joint_names)}
        primary_name, (side_a, side_b) = rig.twist[name]
        primary = index[primary_name]
        return ([(joint, primary), (index[side_a], index[side_b])],
                [child for child in children[joint] if child != primary])
    if len(children[joint]) > 1:
        raise ValueError(f'BVH rig: joint {name} has several children and no twist rule')
    return [(joint, child) for child in children[joint]], []


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _turns_about(axes: np.ndarray, sources: np.ndarray, targets: np.ndarray) -> Rotation:
    """(N) rotations about the unit ``axes`` (N, 3) taking the part of ``sources`` (N, 3) across the
    axis onto the direction of that of ``targets``; no turn where either part vanishes."""
    across_source = sources - np.sum(sources * axes, axis=-1, keepdims=True) * axes
    across_target = targets - np.sum(targets * axes, axis=-1, keepdims=True) * axes
    angle = np.arctan2(np.sum(np.cross(across_source, across_target) * axes, axis=-1),
                       np.sum(across_source * across_target, axis=-1))
    return Rotation.from_rotvec(axes * angle[:, None])


def _smallest_rotations(rest: np.ndarray, predicted: np.ndarray) -> Rotation:
    """(N) smallest rotations taking the direction ``rest`` (3,) onto those of ``predicted`` (N, 3);
    a half turn about an axis across ``rest`` where they are opposite."""
    rest, target = _unit(rest), _unit(predicted)
    across = np.cross(rest, np.eye(3)[np.argmin(np.abs(rest))])
    axes = np.cross(rest, target)
    axes = np.where(np.linalg.norm(axes, axis=-1, keepdims=True) > PARALLEL_SINE, axes, across)
    return _turns_about(_unit(axes), np.broadcast_to(rest, target.shape), target)


def _aligning_rotations(predicted: np.ndarray, rest: np.ndarray) -> Rotation:
    """(N) rotations taking the rest vectors onto the predicted ones: scipy's
    ``Rotation.align_vectors(predicted[n], rest, weights=[inf, 1])`` on every frame n, vectorised
    (one call per frame and joint took 10 s for 3,000 frames; the test compares the two).

    predicted: (N, K, 3), in the parent joint's frame; rest: (K, 3). K = 1: the smallest rotation;
    K = 2: the smallest rotation for the first vector, then the turn about it that best aligns the
    second (the "align-constrain" solution of Wahba's problem with an infinite first weight)."""
    rotations = _smallest_rotations(rest[0], predicted[:, 0])
    if len(rest) == 1:
        return rotations
    return _turns_about(_unit(predicted[:, 0]), rotations.apply(rest[1]), predicted[:, 1]) * rotations


def aim_bones(targets: np.ndarray, skeleton, rig: BvhRig, offsets: np.ndarray):
    """Local rotations and translations whose forward kinematics on ``offsets`` gives ``targets``.

    targets: (N, J, 3), BVH frame, bones at the offsets' lengths (``rescaled_joints``);
    offsets: (J, 3), the rest offsets, same unit. Returns (rotations, translations): a list of J
    ``Rotation`` (N) relative to the parent, and {joint: (N, 3) position in its parent's frame}
    for the root (its position) and the side children of ``rig.twist``.
    """
    num_frames, num_joints = targets.shape[:2]
    assert all(parent < joint for joint, parent in enumerate(skeleton.parents)), 'parents must precede children'
    children = _children(skeleton.parents)
    global_rotations, rotations, translations = [], [], {skeleton.root: targets[:, skeleton.root]}
    for joint, parent in enumerate(skeleton.parents):          # parents precede their children
        parent_rotation = global_rotations[parent] if parent >= 0 else Rotation.identity(num_frames)
        pairs, sides = _aims(joint, children, skeleton, rig)
        if pairs:
            # Rest places seen from this joint: itself at 0, its children at their offsets.
            rest_places = np.where(np.arange(num_joints)[:, None] == joint, 0.0, offsets)
            to_parent_frame = parent_rotation.inv()
            predicted = np.stack([to_parent_frame.apply(targets[:, b] - targets[:, a]) for a, b in pairs], axis=1)
            rotations.append(_aligning_rotations(predicted, np.stack([rest_places[b] - rest_places[a]
                                                                      for a, b in pairs])))
        else:
            rotations.append(Rotation.identity(num_frames))
        global_rotations.append(parent_rotation * rotations[-1])
        for side in sides:
            translations[side] = global_rotations[joint].inv().apply(targets[:, side] - targets[:, joint])
    return rotations, translations


def euler_channels(rotations: Rotation) -> np.ndarray:
    """(N) rotations -> (N, 3) degrees, BVH's Zrotation, Xrotation, Yrotation, unwrapped over frames."""
    with warnings.catch_warnings():
        # At gimbal lock scipy sets the third angle to 0; the three angles still give the rotation.
        warnings.filterwarnings('ignore', 'Gimbal lock')
        angles = rotations.as_euler(EULER_ORDER, degrees=True)
    return np.unwrap(angles, period=DEGREES_PER_TURN, axis=0)


def _numbers(vector) -> str:
    return ' '.join(f'{v:.{DECIMALS}f}' for v in vector)


def hierarchy_text(skeleton, rig: BvhRig, offsets: np.ndarray, translated) -> tuple:
    """The HIERARCHY section and the joints in the order of its channels (depth first)."""
    children = _children(skeleton.parents)
    lines, order = ['HIERARCHY'], []

    def write_joint(joint: int, depth: int):
        pad, name = '\t' * depth, skeleton.joint_names[joint]
        channels = ([POSITION_CHANNELS] if joint in translated else []) + [ROTATION_CHANNELS]
        count = 3 * len(channels)
        lines.extend([f'{pad}{"ROOT" if depth == 0 else "JOINT"} {bvh_name(name)}', f'{pad}{{',
                      f'{pad}\tOFFSET {_numbers(offsets[joint])}', f'{pad}\tCHANNELS {count} {" ".join(channels)}'])
        order.append(joint)
        for child in children[joint]:
            write_joint(child, depth + 1)
        if not children[joint]:
            end = END_SITE_CM * np.asarray(rig.end_sites[name])
            lines.extend([f'{pad}\tEnd Site', f'{pad}\t{{', f'{pad}\t\tOFFSET {_numbers(end)}', f'{pad}\t}}'])
        lines.append(f'{pad}}}')

    write_joint(skeleton.root, 0)
    return '\n'.join(lines) + '\n', order


def rest_offsets(lengths: np.ndarray, skeleton, rig: BvhRig) -> np.ndarray:
    """(J,) bone lengths -> (J, 3) OFFSETs of the T-pose, same unit (the root's is 0)."""
    return np.array([np.zeros(3) if parent < 0 else length * np.asarray(rig.rest_directions[name])
                     for name, parent, length in zip(skeleton.joint_names, skeleton.parents, lengths)])


def _check_bones(path, joints: np.ndarray, skeleton) -> None:
    """A ``UserError`` naming the first frame where a predicted bone has no length (no direction)."""
    lengths = np.linalg.norm(bone_vectors(joints, skeleton.parents), axis=-1)
    lengths[:, skeleton.root] = np.inf
    frame, joint = np.unravel_index(np.argmin(lengths), lengths.shape)
    if lengths[frame, joint] < MIN_BONE_CM:
        parent = skeleton.joint_names[skeleton.parents[joint]]
        raise UserError(f'{path}: frame {frame}: the predicted {skeleton.joint_names[joint]} lies on {parent}; '
                        'a BVH bone needs a direction')


def write_bvh(path, poses: np.ndarray, skeleton, fps: float, trajectory=None, trajectory_source: str = '') -> str:
    """Write ``poses`` (N, J, 3) metres, camera frame, root-relative, as a BVH animation (module docstring).

    trajectory: (N, 3) metres, camera frame, the root's position (``trajectory_source`` says where
    it comes from, for the log line), or None: the root stays at the origin. Returns what was
    written, for the log line.
    """
    if skeleton.name not in RIGS:
        raise ValueError(f'no BVH rig for the {skeleton.name} skeleton; known: {", ".join(RIGS)}')
    rig = RIGS[skeleton.name]
    joints = camera_to_bvh(poses)
    _check_bones(path, joints, skeleton)
    root = camera_to_bvh(trajectory) if trajectory is not None else np.zeros((len(joints), 3))
    targets = rescaled_joints(joints, skeleton.parents, root)
    offsets = rest_offsets(median_bone_lengths(joints, skeleton.parents), skeleton, rig)
    rotations, translations = aim_bones(targets, skeleton, rig, offsets)
    hierarchy, order = hierarchy_text(skeleton, rig, offsets, translations)
    motion = np.concatenate([np.concatenate(([translations[j]] if j in translations else []) +
                                            [euler_channels(rotations[j])], axis=1) for j in order], axis=1)
    with atomic_output(path) as f:
        f.write(f'{hierarchy}MOTION\nFrames: {len(motion)}\nFrame Time: {1.0 / fps:.{DECIMALS + 2}f}\n'.encode())
        np.savetxt(f, motion, fmt=f'%.{DECIMALS}f')
    moved = np.linalg.norm(targets - root[:, None] - joints, axis=-1)
    where = (f'root moving along the {trajectory_source or "given"} trajectory' if trajectory is not None else
             'root fixed at the origin (no trajectory)')
    return (f'BVH animation, {len(motion)} frames at {fps:g} fps, {skeleton.num_joints} joints '
            f'({skeleton.name} hierarchy, root {bvh_name(skeleton.joint_names[skeleton.root])}), centimetres, '
            f'Y up (camera y and z negated), T-pose rest with each bone at its median predicted length '
            f'(joints moved by up to {moved.max():.1f} cm, mean {moved.mean():.1f} cm), {where}')

"""A written BVH read back with bvhio (a maintained BVH library, independent of our exporter)."""
import bvhio
import numpy as np

from common.data.skeleton import H36M_17

BVH_NAMES = [name.replace('/', '_') for name in H36M_17.joint_names]


def forward_kinematics_cm(path) -> np.ndarray:
    """(frames, 17, 3) world positions of the joints, by bvhio, in H36M_17 order."""
    root = bvhio.readAsHierarchy(str(path))
    frames = []
    for frame in range(root.getKeyframeRange()[1] + 1):
        positions = {joint.Name: np.array(joint.PositionWorld) for joint, _, _ in root.loadPose(frame).layout()}
        frames.append([positions[name] for name in BVH_NAMES])
    return np.array(frames)

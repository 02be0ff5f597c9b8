"""A predicted-looking motion for the BVH tests and what forward kinematics of its BVH must give.

numpy and the synthetic body only (no torch, no h5py): Blender's environment imports it too.
"""
import numpy as np

from common.data.skeleton import H36M_17, H36M_KEPT_JOINTS
from common.synthetic.body import pose_world, random_body
from common.synthetic.motion import ACTIONS

FRAMES = 30
FPS = 50.0
CAMERA_DISTANCE_M = 4.0         # the camera stands this far behind the capture centre, level, looking along world +y
PREDICTION_NOISE_M = 0.01       # per frame and joint: predicted bones change length and direction
MM_PER_CM = 10.0


def predicted_motion(action: str = 'Greeting', seed: int = 0):
    """(poses (FRAMES, 17, 3) metres, camera frame, root-relative, trajectory (FRAMES, 3) metres,
    camera frame): a synthetic take seen by a level camera, joints jittered like a prediction."""
    rng = np.random.default_rng(seed)
    body = random_body(rng)
    channels = ACTIONS[action](rng, FRAMES, body)
    world = pose_world(body, channels.root_xy, channels.local_euler(), channels.wrist_target,
                       channels.elbow_pole)[:, list(H36M_KEPT_JOINTS)]
    # World x right, y forward, z up -> camera x right, y down, z forward.
    camera = np.stack([world[..., 0], -world[..., 2], world[..., 1] + CAMERA_DISTANCE_M], axis=-1)
    trajectory = camera[:, H36M_17.root]
    poses = camera - trajectory[:, None] + rng.normal(0.0, PREDICTION_NOISE_M, camera.shape)
    poses[:, H36M_17.root] = 0.0
    return poses, trajectory


def expected_joints_cm(poses: np.ndarray, trajectory=None) -> np.ndarray:
    """(N, 17, 3) centimetres, x right, y up, z towards the camera: every predicted bone scaled to
    its median length over frames along its predicted direction, hanging from its parent; the
    root at the trajectory (or the origin)."""
    flip = np.array([1.0, -1.0, -1.0]) * 100.0
    points = poses * flip
    expected = np.zeros_like(points)
    expected[:, H36M_17.root] = 0.0 if trajectory is None else trajectory * flip
    for joint, parent in enumerate(H36M_17.parents):
        if parent >= 0:
            bone = points[:, joint] - points[:, parent]
            length = np.linalg.norm(bone, axis=-1, keepdims=True)
            expected[:, joint] = expected[:, parent] + bone / length * np.median(length)
    return expected

"""Synthetic Human3.6M and MPI-INF-3DHP datasets, written in the exact layouts of the real files.

Researchers without the real datasets generate these files (``python -m common.synthetic``,
``common/synthetic/__main__.py``) and run every loader, the demo and the tests unchanged.
``generate_h36m_size`` writes the Human3.6M files at the real dataset's size (``h36m_size_plan``): its
seven subjects, 15 actions x 2 takes (S11 without ``Directions``, which the community's files drop),
take lengths within the real ones' range whose totals are the real 1,559,752 training (S1, S5, S6, S7,
S8) and 543,344 test (S9, S11) 2D poses over the four cameras. Takes are made one at a time and only
the arrays written are kept (about 0.8 GB), so scale runs need no licence.

Files (load with ``np.load(path, allow_pickle=True)``; dicts are stored as pickled 0-d arrays):

* ``data_3d_h36m.npz``: ``positions_3d`` -> {subject: {action: (N, 32, 3) float32}}, world frame
  (z up, floor z = 0), metres, the 32-joint motion-capture skeleton.
* ``data_2d_h36m_gt.npz``: ``positions_2d`` -> {subject: {action: [4 x (N, 17, 2) float32]}},
  pixels, exact projection (with lens distortion) of the 17 kept joints by the 4 cameras of
  ``common.data.h36m_cameras``; ``metadata`` -> layout name, joint count, left/right symmetry.
* ``data_2d_h36m_<detector>.npz``: the same with detector-like errors (pixel noise, temporally
  correlated jitter, outliers, brief left/right limb swaps); some cameras of some takes carry a
  few extra frames beyond the motion capture, as real detection files do. The same synthetic
  detections are also written as ``data_2d_h36m_cpn_ft_h36m_dbb.npz``, the name the README's
  commands use (they are not CPN detections).
* ``data_train_3dhp_ori.npz``: ``data`` -> {"S1 Seq1": [{camera: {'data_3d': (N, 17, 3),
  'data_2d': (N, 17, 2)}}]}, float32, millimetres in the camera frame (absolute, y down, z
  forward) and pixels of 2048 x 2048 images, pinhole projection.
* ``data_test_3dhp_ori.npz``: ``data`` -> {"TS1".."TS6": {'data_3d', 'data_2d', 'valid' (N,)
  float32 0/1}}, TS1-4 seen by the studio camera, TS5-6 by the outdoor camera of
  ``common.data.mpi_inf_3dhp.TEST_CAMERAS``, pinhole projection.

Motion comes from a kinematic body model (``synthetic_body``) driven by action scripts
(``synthetic_motion``). Everything is deterministic given the seed. World-to-camera conversion
and projection are implemented here on purpose independently of ``common.data.camera``, so that
tests can check the project's loaders against this generator.
"""
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation
from tqdm import tqdm

from common.core.atomic import atomic_output
from common.core.errors import UserError
from common.core.units import MM_PER_M
from common.data.h36m import ACTIONS as H36M_REAL_ACTIONS
from common.data.h36m_cameras import EXTRINSICS, INTRINSICS
from common.data.mpi_inf_3dhp import STUDIO_CAMERA, TEST_CAMERAS, TEST_SEQUENCES
from common.data.skeleton import H36M_17, H36M_KEPT_JOINTS
from common.synthetic.body import Body, pose_world, random_body
from common.synthetic.motion import ACTIONS, CAPTURE_CENTRE, FPS, STAND_INS, motion_script

H36M_SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8', 'S9', 'S11')
# Every action name a take can have: the scripted ones, then the stand-ins of --h36m-size (this
# order keys the random streams, so the scripted actions draw what they always drew).
TAKE_ACTIONS = (*ACTIONS, *STAND_INS)
H36M_NUM_CAMERAS = 4
H36M_METADATA = {'layout_name': 'h36m', 'num_joints': H36M_17.num_joints,
                 'keypoints_symmetry': [list(H36M_17.joints_left), list(H36M_17.joints_right)]}
DEFAULT_DETECTOR = 'synthetic_det'
# The README's commands (and main.py's -k default) name the real CPN detections; the synthetic
# detector file is written under that name too, so they run unchanged on the synthetic set.
README_DETECTOR = 'cpn_ft_h36m_dbb'
FILE_3D = 'data_3d_h36m.npz'
FILE_2D = 'data_2d_h36m_{}.npz'
FILE_3DHP_TRAIN = 'data_train_3dhp_ori.npz'
FILE_3DHP_TEST = 'data_test_3dhp_ori.npz'
MIN_FRAMES = 10
DETECTOR_NAME_PATTERN = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*')

# MPI-INF-3DHP joints (``skeleton.MPI_INF_3DHP_17`` order) taken from the 32-joint body.
MPI_FROM_H36M_32 = (15, 13, 25, 26, 27, 17, 18, 19, 1, 2, 3, 6, 7, 8, 0, 12, 14)
MPI_TRAIN_RESOLUTION = (2048, 2048)
MPI_TRAIN_FOCAL_PX = (1500.0, 40.0)        # mean, spread
MPI_TRAIN_CENTRE_SPREAD_PX = 15.0
MPI_CAMERA_SLOTS = 14                      # the studio's cameras stand on a ring, in id order
MPI_TRAIN_DISTANCE_M = (4.0, 5.0)
MPI_TRAIN_HEIGHT_M = (0.9, 2.2)
MPI_STUDIO_TEST_DISTANCE_M = (4.0, 4.8)
MPI_OUTDOOR_TEST_DISTANCE_M = (4.8, 5.4)
MPI_TEST_HEIGHT_M = (1.0, 1.5)
MPI_LOOK_AT_HEIGHT_M = 1.0
MPI_SEQUENCES_PER_SUBJECT = 2
MPI_TEST_ACTIONS = ('Walking', 'Greeting', 'Sitting', 'Directions', 'WalkDog', 'Phoning')
MPI_INVALID_FRACTION = (0.10, 0.20)
MPI_MAX_INVALID_RUNS = 3

# Detector-like errors (pixels, frames).
DETECTOR_WHITE_PX = (1.5, 3.0)
DETECTOR_JITTER_PX = (2.0, 4.0)
DETECTOR_JITTER_FRAMES = 4.0               # correlation time of the jitter (gaussian sigma)
DETECTOR_HARD_JOINTS = (3, 6, 10, 13, 16)  # feet, head, wrists: noisier
DETECTOR_HARD_FACTOR = 1.5
DETECTOR_OUTLIER_RATE = 0.005
DETECTOR_OUTLIER_PX = (20.0, 80.0)
DETECTOR_SWAPS_PER_SECOND = 0.08
DETECTOR_SWAP_FRAMES = (2, 8)
DETECTOR_LIMB_PAIRS = (((1, 2, 3), (4, 5, 6)), ((14, 15, 16), (11, 12, 13)), ((16,), (13,)), ((3,), (6,)))
DETECTOR_EXTRA_TAKE_RATE = 0.3
DETECTOR_MAX_EXTRA_FRAMES = 10

# Human3.6M at its real size (--h36m-size), facts of the community's files (SPEC 2).
H36M_REAL_TAKES = 2                                   # per action: "Walking" and "Walking 1"
H36M_DROPPED_TAKES = (('S11', 'Directions'),)         # its video is corrupt: the community's files drop it
H36M_TRAIN_SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8')
H36M_TEST_SUBJECTS = ('S9', 'S11')
H36M_REAL_POSES = {'training': 1_559_752, 'test': 543_344}      # 2D poses over the four cameras
H36M_REAL_TAKE_FRAMES = (994, 6349)                   # the shortest and the longest real take
H36M_TAKE_FRAMES_SPREAD = 0.4                         # log-normal spread of the take lengths before fitting
H36M_FIT_ROUNDS = 100

# Independent random streams: changing one part of the data never shifts another.
STREAM_H36M_BODY, STREAM_H36M_TAKE, STREAM_DETECTOR, STREAM_MPI_BODY, STREAM_MPI_MOTION, \
    STREAM_MPI_CAMERA, STREAM_MPI_VALID, STREAM_H36M_LENGTHS = range(8)


@dataclass(frozen=True)
class SizePreset:
    """How much data to make. frames: (min, max) frames per take / 3DHP sequence."""
    takes: int
    frames: tuple
    mpi_subjects: int
    mpi_cameras: tuple


SIZES = {
    'demo': SizePreset(takes=2, frames=(300, 400), mpi_subjects=2, mpi_cameras=(0, 2, 4, 7)),
    'full': SizePreset(takes=3, frames=(1200, 2000), mpi_subjects=8, mpi_cameras=(0, 1, 2, 4, 5, 6, 7, 8)),
}


# ----------------------------------------------------------------------------- cameras

@dataclass(frozen=True)
class PinholeCamera:
    """A calibrated camera. X_cam = rotation @ (X_world - position); camera x right, y down, z forward.

    rotation: (3, 3) world -> camera; position: (3,) metres, world; focal, center: (2,) pixels;
    radial (3,), tangential (2,): distortion (VideoPose3D's model; zero for pinhole cameras);
    resolution: (width, height) pixels.
    """
    rotation: np.ndarray
    position: np.ndarray
    focal: np.ndarray
    center: np.ndarray
    resolution: tuple
    radial: np.ndarray = field(default_factory=lambda: np.zeros(3))
    tangential: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """(..., 3) world -> (..., 3) camera frame, same unit as ``position`` (metres)."""
        return (points_world - self.position) @ self.rotation.T

    def project(self, points_camera: np.ndarray) -> np.ndarray:
        """(..., 3) camera frame -> (..., 2) pixels, with distortion.

        xn = X/Z clamped to [-1, 1]; r2 = |xn|^2;
        xd = xn (1 + k1 r2 + k2 r2^2 + k3 r2^3 + p . xn) + p r2; pixel = f xd + c.
        """
        xn = np.clip(points_camera[..., :2] / points_camera[..., 2:], -1.0, 1.0)
        r2 = np.sum(xn ** 2, axis=-1, keepdims=True)
        k1, k2, k3 = self.radial
        radial = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3
        tangential = (xn @ self.tangential)[..., None]
        return self.focal * (xn * (radial + tangential) + self.tangential * r2) + self.center

    def project_linear(self, points_camera: np.ndarray) -> np.ndarray:
        """(..., 3) camera frame -> (..., 2) pixels, pinhole (no distortion, no clamping)."""
        return self.focal * points_camera[..., :2] / points_camera[..., 2:] + self.center

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """(..., 2) pixels -> normalised image coordinates: u / w * 2 - 1, v / w * 2 - h / w."""
        w, h = self.resolution
        return pixels / w * 2 - np.array([1.0, h / w])


def h36m_camera(subject: str, index: int) -> PinholeCamera:
    """Camera ``index`` (0..3) of a Human3.6M subject, from the published calibration."""
    intrinsics, extrinsics = INTRINSICS[index], EXTRINSICS[subject][index]
    w, x, y, z = extrinsics['orientation']               # camera orientation in the world
    orientation = Rotation.from_quat([x, y, z, w])         # scipy wants (x, y, z, w)
    return PinholeCamera(rotation=orientation.inv().as_matrix(),
                         position=np.array(extrinsics['translation']) / MM_PER_M,
                         focal=np.array(intrinsics['focal_length']), center=np.array(intrinsics['center']),
                         resolution=(intrinsics['res_w'], intrinsics['res_h']),
                         radial=np.array(intrinsics['radial_distortion']),
                         tangential=np.array(intrinsics['tangential_distortion']))


def _look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(3, 3) world -> camera rotation of a level camera at ``position`` looking at ``target`` (z up)."""
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def _ring_camera(azimuth, distance_m, height_m, focal, center, resolution) -> PinholeCamera:
    centre = np.array([*CAPTURE_CENTRE, 0.0])
    position = centre + np.array([distance_m * np.cos(azimuth), distance_m * np.sin(azimuth), height_m])
    target = centre + np.array([0.0, 0.0, MPI_LOOK_AT_HEIGHT_M])
    return PinholeCamera(rotation=_look_at(position, target), position=position, focal=np.asarray(focal, float),
                         center=np.asarray(center, float), resolution=tuple(resolution))


def mpi_train_cameras(seed: int, camera_ids) -> dict:
    """{camera id: PinholeCamera} of the synthetic 3DHP studio: a ring of cameras around the capture area."""
    rng = np.random.default_rng([seed, STREAM_MPI_CAMERA])
    cameras = {}
    w, h = MPI_TRAIN_RESOLUTION
    for cam in range(MPI_CAMERA_SLOTS):      # draw all slots so that a camera does not depend on the selection
        azimuth = 2 * np.pi * cam / MPI_CAMERA_SLOTS + rng.normal(0, 0.05)
        focal = rng.normal(MPI_TRAIN_FOCAL_PX[0], MPI_TRAIN_FOCAL_PX[1]) * np.array([1.0, 1.0 + rng.normal(0, 0.002)])
        center = np.array([w / 2, h / 2]) + rng.normal(0, MPI_TRAIN_CENTRE_SPREAD_PX, 2)
        cameras[cam] = _ring_camera(azimuth, rng.uniform(*MPI_TRAIN_DISTANCE_M),
                                    rng.uniform(*MPI_TRAIN_HEIGHT_M), focal, center, (w, h))
    return {cam: cameras[cam] for cam in camera_ids}


def mpi_test_camera(seed: int, sequence: str) -> PinholeCamera:
    """The pinhole camera of a synthetic 3DHP test sequence; intrinsics from ``TEST_CAMERAS``."""
    rng = np.random.default_rng([seed, STREAM_MPI_CAMERA, TEST_SEQUENCES.index(sequence) + 1])
    sensor = TEST_CAMERAS[sequence]
    size = np.array(sensor.resolution, float)
    px_per_mm = size / np.array(sensor.sensor_mm)
    focal = sensor.focal_mm * px_per_mm
    center = np.array(sensor.offset_mm) * px_per_mm + size / 2
    distance = rng.uniform(*(MPI_STUDIO_TEST_DISTANCE_M if sensor is STUDIO_CAMERA else MPI_OUTDOOR_TEST_DISTANCE_M))
    return _ring_camera(rng.uniform(0, 2 * np.pi), distance, rng.uniform(*MPI_TEST_HEIGHT_M),
                        focal, center, sensor.resolution)


# ----------------------------------------------------------------------------- detections

def detector_keypoints(rng, keypoints_px: np.ndarray) -> np.ndarray:
    """(F, 17, 2) exact pixels -> detector-like pixels: white noise, correlated jitter, outliers, limb swaps."""
    frames, joints, _ = keypoints_px.shape
    joint_scale = np.ones((joints, 1))
    joint_scale[list(DETECTOR_HARD_JOINTS)] = DETECTOR_HARD_FACTOR
    white = rng.uniform(*DETECTOR_WHITE_PX) * rng.standard_normal(keypoints_px.shape)
    jitter = gaussian_filter1d(rng.standard_normal(keypoints_px.shape), DETECTOR_JITTER_FRAMES, axis=0)
    jitter *= rng.uniform(*DETECTOR_JITTER_PX) / jitter.std()
    noisy = keypoints_px + joint_scale * (white + jitter)
    outliers = rng.random((frames, joints)) < DETECTOR_OUTLIER_RATE
    angle = rng.uniform(0, 2 * np.pi, outliers.sum())
    radius = rng.uniform(*DETECTOR_OUTLIER_PX, outliers.sum())
    noisy[outliers] += radius[:, None] * np.stack([np.cos(angle), np.sin(angle)], axis=-1)
    for _ in range(rng.poisson(DETECTOR_SWAPS_PER_SECOND * frames / FPS)):
        first, second = DETECTOR_LIMB_PAIRS[rng.integers(len(DETECTOR_LIMB_PAIRS))]
        start = rng.integers(frames)
        span = slice(start, start + rng.integers(*DETECTOR_SWAP_FRAMES, endpoint=True))
        noisy[span, list(first) + list(second)] = noisy[span, list(second) + list(first)]
    return noisy


# ----------------------------------------------------------------------------- in-memory result

@dataclass
class H36MView:
    """One take seen by one camera, computed from the float32 world positions written to the file.

    positions_3d: (N, 17, 3) float64 metres, camera frame, root-relative (joint 0 exactly 0);
    trajectory: (N, 3) float64 metres, camera frame, the root joint's position;
    keypoints_px: (N, 17, 2) float32 pixels, the array written to the GT 2D file;
    detections_px: (N + extra, 17, 2) float32 pixels, the array written to the detector file;
    camera: the camera, its ``normalize`` maps pixels to normalised image coordinates.
    """
    positions_3d: np.ndarray
    trajectory: np.ndarray
    keypoints_px: np.ndarray
    detections_px: np.ndarray
    camera: PinholeCamera

    @property
    def keypoints_norm(self) -> np.ndarray:
        """(N, 17, 2) float64 normalised image coordinates of the GT keypoints."""
        return self.camera.normalize(self.keypoints_px.astype(np.float64))


@dataclass
class H36MTake:
    """world_32: (N, 32, 3) float32 metres, world frame (the array written); views: 4 ``H36MView``."""
    world_32: np.ndarray
    views: list


@dataclass
class SyntheticData:
    """Everything generated, in memory.

    h36m: {subject: {action: H36MTake}}; bodies: {subject: Body};
    mpi_train: {"S1 Seq1": {camera id: {'data_3d': (N, 17, 3) float32 mm camera frame,
    'data_2d': (N, 17, 2) float32 px}}} (the written arrays; the file wraps each dict in a list);
    mpi_train_cameras: {camera id: PinholeCamera}; mpi_test: {"TS1": {'data_3d', 'data_2d',
    'valid' (N,) float32}}; mpi_test_cameras: {"TS1": PinholeCamera};
    files: {file name: path} of what was written (empty when nothing was written);
    h36m_frames: {subject: {take: frames}} of ``--h36m-size`` (``h36m_size_plan``; ``h36m`` is then empty).
    """
    seed: int
    detector_name: str
    h36m: dict
    bodies: dict
    mpi_train: dict = field(default_factory=dict)
    mpi_train_cameras: dict = field(default_factory=dict)
    mpi_test: dict = field(default_factory=dict)
    mpi_test_cameras: dict = field(default_factory=dict)
    files: dict = field(default_factory=dict)
    h36m_frames: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- generation

def _take_frames(rng, preset: SizePreset, frames) -> int:
    return int(frames) if frames is not None else int(rng.integers(preset.frames[0], preset.frames[1], endpoint=True))


def _animate(rng, action: str, frames: int, body: Body) -> np.ndarray:
    """(frames, 32, 3) float32 world positions, metres, of ``body`` performing ``action``
    (``motion.motion_script``: its script, or its stand-in's)."""
    channels = motion_script(action)(rng, frames, body)
    world = pose_world(body, channels.root_xy, channels.local_euler(), channels.wrist_target, channels.elbow_pole)
    return world.astype(np.float32)


def action_name(action: str, take: int) -> str:
    """Take names as in Human3.6M: "Walking", "Walking 1", "Walking 2", ..."""
    return action if take == 0 else f'{action} {take}'


def build_h36m_take(seed: int, subject: str, body: Body, action: str, take: int,
                    preset: SizePreset, frames=None) -> H36MTake:
    """One Human3.6M take: motion, its 4 camera views, GT and detector keypoints. action: one of
    ``TAKE_ACTIONS``."""
    s, a = H36M_SUBJECTS.index(subject), TAKE_ACTIONS.index(action)
    rng = np.random.default_rng([seed, STREAM_H36M_TAKE, s, a, take])
    det_rng = np.random.default_rng([seed, STREAM_DETECTOR, s, a, take])
    n = _take_frames(rng, preset, frames)
    extra = np.zeros(H36M_NUM_CAMERAS, dtype=int)
    if det_rng.random() < DETECTOR_EXTRA_TAKE_RATE:
        extra = det_rng.integers(0, DETECTOR_MAX_EXTRA_FRAMES, H36M_NUM_CAMERAS, endpoint=True)
        extra[det_rng.integers(H36M_NUM_CAMERAS)] = det_rng.integers(1, DETECTOR_MAX_EXTRA_FRAMES, endpoint=True)
    world = _animate(rng, action, n + extra.max(), body)
    views = []
    for index in range(H36M_NUM_CAMERAS):
        camera = h36m_camera(subject, index)
        joints_cam = camera.to_camera(world[:, list(H36M_KEPT_JOINTS)].astype(np.float64))
        pixels = camera.project(joints_cam)
        root = joints_cam[:n, :1]
        views.append(H36MView(positions_3d=joints_cam[:n] - root, trajectory=root[:, 0],
                              keypoints_px=pixels[:n].astype(np.float32),
                              detections_px=detector_keypoints(det_rng, pixels[:n + extra[index]]).astype(np.float32),
                              camera=camera))
    return H36MTake(world_32=world[:n], views=views)


def _valid_mask(rng, n: int) -> np.ndarray:
    """(n,) float32 0/1: a few contiguous runs of invalid frames covering 10-20 % of the sequence."""
    runs = int(rng.integers(1, MPI_MAX_INVALID_RUNS, endpoint=True))
    invalid = max(1, int(round(rng.uniform(*MPI_INVALID_FRACTION) * n)))
    runs = min(runs, invalid)
    run_lengths = rng.multinomial(invalid - runs, np.full(runs, 1 / runs)) + 1      # each run >= 1 frame
    gap_lengths = rng.multinomial(n - invalid, rng.dirichlet(np.ones(len(run_lengths) + 1)))
    lengths = np.empty(2 * len(run_lengths) + 1, dtype=int)
    lengths[0::2], lengths[1::2] = gap_lengths, run_lengths
    values = np.arange(len(lengths)) % 2 == 0
    return np.repeat(values, lengths).astype(np.float32)


def _mpi_view(camera: PinholeCamera, world: np.ndarray) -> dict:
    """{'data_3d': (N, 17, 3) float32 mm camera frame, 'data_2d': (N, 17, 2) float32 px, pinhole}."""
    joints_mm = (camera.to_camera(world[:, list(MPI_FROM_H36M_32)].astype(np.float64)) * MM_PER_M).astype(np.float32)
    pixels = camera.project_linear(joints_mm.astype(np.float64))
    return {'data_3d': joints_mm, 'data_2d': pixels.astype(np.float32)}


def build_mpi(seed: int, preset: SizePreset, frames=None):
    """Synthetic MPI-INF-3DHP: (train, train cameras, test, test cameras), see ``SyntheticData``."""
    actions = list(ACTIONS)
    train, test, test_cameras = {}, {}, {}
    train_cameras = mpi_train_cameras(seed, preset.mpi_cameras)
    for subject in range(1, preset.mpi_subjects + 1):
        body = random_body(np.random.default_rng([seed, STREAM_MPI_BODY, subject]))
        for sequence in range(1, MPI_SEQUENCES_PER_SUBJECT + 1):
            rng = np.random.default_rng([seed, STREAM_MPI_MOTION, subject, sequence])
            action = actions[(2 * subject + sequence) % len(actions)]
            world = _animate(rng, action, _take_frames(rng, preset, frames), body)
            train[f'S{subject} Seq{sequence}'] = {cam: _mpi_view(camera, world)
                                                  for cam, camera in train_cameras.items()}
    for index, sequence in enumerate(TEST_SEQUENCES):
        body = random_body(np.random.default_rng([seed, STREAM_MPI_BODY, 0, index]))    # subject 0: test set
        rng = np.random.default_rng([seed, STREAM_MPI_MOTION, 0, index])
        world = _animate(rng, MPI_TEST_ACTIONS[index], _take_frames(rng, preset, frames), body)
        test_cameras[sequence] = mpi_test_camera(seed, sequence)
        test[sequence] = _mpi_view(test_cameras[sequence], world)
        test[sequence]['valid'] = _valid_mask(np.random.default_rng([seed, STREAM_MPI_VALID, index]), len(world))
    return train, train_cameras, test, test_cameras


def build(seed=0, size='demo', frames=None, takes=None, detector_name=DEFAULT_DETECTOR,
          with_3dhp=True) -> SyntheticData:
    """Generate the datasets in memory (nothing written). Arguments as ``generate``."""
    preset = _checked_preset(seed, size, frames, takes, detector_name)
    takes = preset.takes if takes is None else int(takes)
    bodies = {subject: random_body(np.random.default_rng([seed, STREAM_H36M_BODY, s]))
              for s, subject in enumerate(H36M_SUBJECTS)}
    h36m = {subject: {action_name(action, take):
                      build_h36m_take(seed, subject, bodies[subject], action, take, preset, frames)
                      for action in ACTIONS for take in range(takes)}
            for subject in H36M_SUBJECTS}
    data = SyntheticData(seed=seed, detector_name=detector_name, h36m=h36m, bodies=bodies)
    if with_3dhp:
        data.mpi_train, data.mpi_train_cameras, data.mpi_test, data.mpi_test_cameras = build_mpi(seed, preset, frames)
    return data


def _fit_lengths(raw: np.ndarray, total: int, low: int, high: int) -> np.ndarray:
    """(n,) int lengths proportional to ``raw`` as far as the bounds allow, each in [low, high],
    summing to exactly ``total`` (which must lie within [n low, n high])."""
    lengths = raw.astype(np.float64)
    for _ in range(H36M_FIT_ROUNDS):                      # scale the free ones, clip, repeat
        lengths = np.clip(lengths * total / lengths.sum(), low, high)
    lengths = np.floor(lengths).astype(np.int64)
    shortfall = total - int(lengths.sum())
    order = np.argsort(lengths)                           # add the remaining frames to the shortest
    while shortfall > 0:
        room = order[lengths[order] < high][:shortfall]
        lengths[room] += 1
        shortfall -= len(room)
    return lengths


def h36m_size_plan(seed: int = 0) -> dict:
    """{subject: {take name: frames}} of Human3.6M at its real size (``--h36m-size``).

    The real subjects; the 15 real actions x ``H36M_REAL_TAKES`` takes, named as in the files
    ("Walking", "Walking 1"), without ``H36M_DROPPED_TAKES``; take lengths drawn log-normal, then
    fitted into the real range ``H36M_REAL_TAKE_FRAMES`` so that training (S1, S5, S6, S7, S8) and
    test (S9, S11) takes sum to ``H36M_REAL_POSES`` / 4 frames each (every take has four cameras).
    """
    rng = np.random.default_rng([seed, STREAM_H36M_LENGTHS])
    plan = {}
    for split, subjects in (('training', H36M_TRAIN_SUBJECTS), ('test', H36M_TEST_SUBJECTS)):
        takes = [(subject, action_name(action, take)) for subject in subjects for action in H36M_REAL_ACTIONS
                 for take in range(H36M_REAL_TAKES) if (subject, action_name(action, take)) not in H36M_DROPPED_TAKES]
        raw = rng.lognormal(0.0, H36M_TAKE_FRAMES_SPREAD, len(takes))
        lengths = _fit_lengths(raw, H36M_REAL_POSES[split] // H36M_NUM_CAMERAS, *H36M_REAL_TAKE_FRAMES)
        for (subject, name), frames in zip(takes, lengths):
            plan.setdefault(subject, {})[name] = int(frames)
    return plan


def _take_action(name: str) -> tuple:
    """'Walking 1' -> ('Walking', 1); 'Walking' -> ('Walking', 0) (``action_name``'s inverse)."""
    action, _, take = name.partition(' ')
    return action, int(take or 0)


def build_h36m_arrays(seed: int, plan: dict, show_progress: bool = True) -> dict:
    """The Human3.6M arrays of a take plan (``h36m_size_plan``), made take by take, keeping only
    what the files hold: {'world': {subject: {take: (N, 32, 3) float32}}, 'gt': {subject: {take:
    [4 x (N, 17, 2) float32]}}, 'detections': {subject: {take: [4 x (N + extra, 17, 2) float32]}}}."""
    bodies = {subject: random_body(np.random.default_rng([seed, STREAM_H36M_BODY, H36M_SUBJECTS.index(subject)]))
              for subject in plan}
    arrays = {'world': {}, 'gt': {}, 'detections': {}}
    takes = [(subject, name, frames) for subject, names in plan.items() for name, frames in names.items()]
    total = sum(frames for *_, frames in takes)
    with tqdm(total=total * H36M_NUM_CAMERAS, desc='Human3.6M takes', unit='pose', unit_scale=True,
              disable=not show_progress, leave=False) as progress:
        for subject, name, frames in takes:
            take = build_h36m_take(seed, subject, bodies[subject], *_take_action(name), SIZES['demo'], frames)
            arrays['world'].setdefault(subject, {})[name] = take.world_32
            arrays['gt'].setdefault(subject, {})[name] = [view.keypoints_px for view in take.views]
            arrays['detections'].setdefault(subject, {})[name] = [view.detections_px for view in take.views]
            progress.update(frames * H36M_NUM_CAMERAS)
    return arrays


def _checked_preset(seed, size, frames, takes, detector_name) -> SizePreset:
    """The size preset, after checking every user-given argument."""
    if int(seed) < 0:
        raise UserError(f'--seed: expected a non-negative integer, got {seed}')
    if size not in SIZES:
        raise UserError(f'--size: expected one of {", ".join(SIZES)}, got {size!r}')
    if frames is not None and int(frames) < MIN_FRAMES:
        raise UserError(f'--frames: expected at least {MIN_FRAMES} frames per take, got {frames}')
    if takes is not None and int(takes) < 1:
        raise UserError(f'--takes: expected at least 1 take per action, got {takes}')
    if not DETECTOR_NAME_PATTERN.fullmatch(detector_name) or detector_name == 'gt':
        raise UserError(f'--detector-name: expected letters, digits, "_", "." or "-" (and not "gt"), '
                        f'got {detector_name!r}')
    return SIZES[size]


# ----------------------------------------------------------------------------- writing

def _write_npz(path: Path, **arrays):
    """np.savez_compressed through ``atomic_output``: never a half-written dataset file."""
    with atomic_output(path) as f:
        np.savez_compressed(f, **arrays)


def h36m_contents(world: dict, gt: dict, detections: dict) -> dict:
    """{file name: {key: value}} of the Human3.6M files but the detector's (``_write_files`` adds
    it): world {subject: {take: (N, 32, 3)}}, gt and detections {subject: {take: [4 x (N, 17, 2)]}}."""
    return {FILE_3D: {'positions_3d': world},
            FILE_2D.format('gt'): {'positions_2d': gt, 'metadata': H36M_METADATA},
            '': {'positions_2d': detections, 'metadata': H36M_METADATA}}


def _write_files(out_dir, contents: dict, detector_name: str, show_progress: bool = False) -> dict:
    """Write ``contents`` ({file name: {key: value}}; the entry named '' is the detector's file)
    into ``out_dir`` (created if needed); the detector's file is also copied to the README's
    detector name. Returns {file name: path}, in the order of ``contents``."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f'--out: {out_dir} exists and is not a folder')
    out_dir.mkdir(parents=True, exist_ok=True)
    detector_file = FILE_2D.format(detector_name)
    contents = {name or detector_file: arrays for name, arrays in contents.items()}
    copies = [FILE_2D.format(README_DETECTOR)] if detector_name != README_DETECTOR else []
    names = [*contents, *copies] if not copies else \
        [n for name in contents for n in ([name, *copies] if name == detector_file else [name])]
    files = {name: out_dir / name for name in names}
    # zlib compression releases the GIL: compress the files side by side.
    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool, \
            tqdm(total=len(contents), desc='compressing', unit='file', disable=not show_progress, leave=False) as bar:
        writing = [pool.submit(_write_npz, files[name], **arrays) for name, arrays in contents.items()]
        for written in writing:
            written.result()
            bar.update()
    for copy in copies:                 # the same bytes: copied, not compressed twice
        with open(files[detector_file], 'rb') as source, atomic_output(files[copy]) as target:
            shutil.copyfileobj(source, target)
    return files


def write(data: SyntheticData, out_dir) -> dict:
    """Write the files of ``data`` into ``out_dir`` (created if needed); returns {file name: path}."""
    views = {kind: {s: {a: [getattr(v, kind) for v in take.views] for a, take in actions.items()}
                    for s, actions in data.h36m.items()} for kind in ('keypoints_px', 'detections_px')}
    contents = h36m_contents({s: {a: take.world_32 for a, take in actions.items()} for s, actions in data.h36m.items()},
                             views['keypoints_px'], views['detections_px'])
    if data.mpi_train:
        contents[FILE_3DHP_TRAIN] = {'data': {seq: [views] for seq, views in data.mpi_train.items()}}
        contents[FILE_3DHP_TEST] = {'data': data.mpi_test}
    data.files = _write_files(out_dir, contents, data.detector_name)
    return data.files


def generate_h36m_size(out_dir, seed=0, size='demo', detector_name=DEFAULT_DETECTOR, with_3dhp=True,
                       show_progress=True) -> SyntheticData:
    """Write Human3.6M at its real size (``h36m_size_plan``) and, with ``with_3dhp``, the
    MPI-INF-3DHP files of the ``size`` preset into ``out_dir``. Takes are made one at a time and
    only the written arrays are kept; the returned ``SyntheticData`` holds the plan
    (``h36m_frames``) and the files, not the takes (``h36m`` is empty)."""
    _checked_preset(seed, size, None, None, detector_name)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f'--out: {out_dir} exists and is not a folder')
    plan = h36m_size_plan(seed)
    arrays = build_h36m_arrays(seed, plan, show_progress)
    contents = h36m_contents(arrays['world'], arrays['gt'], arrays['detections'])
    data = SyntheticData(seed=seed, detector_name=detector_name, h36m={}, bodies={}, h36m_frames=plan)
    if with_3dhp:
        data.mpi_train, data.mpi_train_cameras, data.mpi_test, data.mpi_test_cameras = build_mpi(seed, SIZES[size])
        contents[FILE_3DHP_TRAIN] = {'data': {seq: [views] for seq, views in data.mpi_train.items()}}
        contents[FILE_3DHP_TEST] = {'data': data.mpi_test}
    data.files = _write_files(out_dir, contents, detector_name, show_progress)
    return data


def generate(out_dir=None, seed=0, size='demo', frames=None, takes=None, detector_name=DEFAULT_DETECTOR,
             with_3dhp=True) -> SyntheticData:
    """Generate the synthetic datasets and write them into ``out_dir`` (skipped when None).

    seed: everything is a deterministic function of it. size: 'demo' or 'full' (``SIZES``).
    frames: frames per take / sequence (default: random within the preset's range); takes:
    takes per action (default: the preset's). detector_name: the detector file is
    ``data_2d_h36m_<detector_name>.npz``. with_3dhp: also make the MPI-INF-3DHP files.
    """
    data = build(seed=seed, size=size, frames=frames, takes=takes, detector_name=detector_name, with_3dhp=with_3dhp)
    if out_dir is not None:
        write(data, out_dir)
    return data


def h36m_size_summary(plan: dict) -> str:
    """The line saying what ``--h36m-size`` made: subjects, takes, frames, 2D poses per split."""
    takes = sum(len(names) for names in plan.values())
    lengths = [frames for names in plan.values() for frames in names.values()]
    poses = {split: sum(sum(plan.get(s, {}).values()) for s in subjects) * H36M_NUM_CAMERAS
             for split, subjects in (('training', H36M_TRAIN_SUBJECTS), ('test', H36M_TEST_SUBJECTS))}
    dropped = ', '.join(f'{s} {a}' for s, a in H36M_DROPPED_TAKES)
    return (f'--h36m-size: {len(plan)} subjects, {takes} takes ({len(H36M_REAL_ACTIONS)} actions x '
            f'{H36M_REAL_TAKES}, without {dropped} as the community\'s files), {min(lengths)}-{max(lengths)} '
            f'frames a take, x {H36M_NUM_CAMERAS} cameras: {poses["training"]:,} training ('
            f'{",".join(H36M_TRAIN_SUBJECTS)}) and {poses["test"]:,} test ({",".join(H36M_TEST_SUBJECTS)}) 2D poses, '
            'as the real dataset')


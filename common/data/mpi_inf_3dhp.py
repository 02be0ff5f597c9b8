"""MPI-INF-3DHP: test-camera facts, the official annotations, and the processed files as ``PoseDataset``.

Processed files (P-STMO layout, millimetres, camera frame, joint order ``MPI_INF_3DHP_17``):

* ``data_train_3dhp_ori.npz``: ``data`` -> "S1 Seq1" -> [ {camera: {``data_3d`` (N, 17, 3) mm,
  ``data_2d`` (N, 17, 2) px}} ] (a list holding one dict); images 2048 x 2048.
* ``data_test_3dhp_ori.npz``: ``data`` -> "TS1".."TS6" -> {``data_3d``, ``data_2d``, ``valid`` (N,)}.

The official test annotations ``TS*/annot_data.mat`` are MATLAB v7.3 files (HDF5), read with
h5py; HDF5 stores MATLAB arrays with their dimensions reversed, so ``annot3`` (3 x 17 x 1 x N in
MATLAB) arrives as (N, 1, 17, 3). ``convert_test_annotations`` builds the processed test file from them
(``python -m common.mpi_inf_3dhp convert-test ANNOT_ROOT OUT.npz``, ``common/mpi_inf_3dhp.py``); the training
file comes from the official training release (``common.data.mpi_inf_3dhp_release``, ``prepare-train``).
"""
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from common.core.errors import UserError
from common.core.units import MM_PER_M
from common.data.camera import intrinsic_vector, normalize_screen_coordinates, sensor_to_pixel_intrinsics
from common.data.dataset_files import check_array, dict_entry, load_archive, save_archive
from common.data.sequences import PoseDataset, Sequence
from common.data.skeleton import MPI_INF_3DHP_17

TEST_SEQUENCES = ('TS1', 'TS2', 'TS3', 'TS4', 'TS5', 'TS6')
ANNOTATION_FILE = 'annot_data.mat'
ANNOTATION_VARIABLES = ('annot2', 'annot3', 'univ_annot3', 'valid_frame', 'activity_annotation')


@dataclass(frozen=True)
class SensorCamera:
    """A test camera as published: intrinsics in millimetres on the sensor, image size in pixels."""
    focal_mm: float
    offset_mm: tuple       # principal point offset from the sensor centre (x, y)
    sensor_mm: tuple       # sensor width, height
    resolution: tuple      # image width, height


# TS1-TS4 were filmed in the studio (2048 x 2048), TS5-TS6 outdoors (1920 x 1080).
STUDIO_CAMERA = SensorCamera(7.32506, (-0.0322884, 0.0929296), (10.0, 10.0), (2048, 2048))
OUTDOOR_CAMERA = SensorCamera(8.770747185, (-0.104908645, 0.104899704), (10.0, 5.625), (1920, 1080))
TEST_CAMERAS = {'TS1': STUDIO_CAMERA, 'TS2': STUDIO_CAMERA, 'TS3': STUDIO_CAMERA, 'TS4': STUDIO_CAMERA,
                'TS5': OUTDOOR_CAMERA, 'TS6': OUTDOOR_CAMERA}


@dataclass
class TestAnnotation:
    """One official test sequence. Arrays are float64 as stored.

    annot2: (N, 17, 2) pixels; annot3: (N, 17, 3) millimetres, camera frame;
    univ_annot3: (N, 17, 3) millimetres, height-normalised skeleton; valid: (N,) bool;
    activity: (N,) int, activity class 1..7.
    """
    annot2: np.ndarray
    annot3: np.ndarray
    univ_annot3: np.ndarray
    valid: np.ndarray
    activity: np.ndarray

    @property
    def num_frames(self) -> int:
        return self.annot3.shape[0]


def read_annotation(path) -> TestAnnotation:
    """Read one official ``annot_data.mat`` (MATLAB v7.3 / HDF5)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f'{path}: not found; expected the official MPI-INF-3DHP test annotation '
                        f'(mpi_inf_3dhp_test_set/TS*/{ANNOTATION_FILE})')
    try:
        with h5py.File(path, 'r') as f:
            missing = [key for key in ANNOTATION_VARIABLES if key not in f]
            if missing:
                raise UserError(f'{path}: missing variable {", ".join(missing)}; expected '
                                f'{", ".join(ANNOTATION_VARIABLES)}')
            arrays = {key: np.array(f[key]) for key in ANNOTATION_VARIABLES}
    except (KeyError, OSError) as err:
        raise UserError(f'{path}: not a readable MATLAB v7.3 (HDF5) file, damaged or of another kind '
                        f'({err.args[0] if err.args else err})') from None
    n = arrays['annot3'].shape[0] if arrays['annot3'].ndim else 0
    try:
        annotation = TestAnnotation(
            annot2=arrays['annot2'].reshape(n, -1, 2),
            annot3=arrays['annot3'].reshape(n, -1, 3),
            univ_annot3=arrays['univ_annot3'].reshape(n, -1, 3),
            valid=arrays['valid_frame'].reshape(n) > 0,
            activity=arrays['activity_annotation'].reshape(n).astype(np.int64),
        )
    except ValueError:
        shapes = ', '.join(f'{key} {arrays[key].shape}' for key in ANNOTATION_VARIABLES)
        raise UserError(f'{path}: variables of different frame counts ({shapes}); expected N frames of each') from None
    check_scored_frames_finite(annotation, path)
    return annotation


def check_scored_frames_finite(annotation: TestAnnotation, path) -> None:
    """The scorer's ground truth, ``annot3`` on the valid frames, must be finite: a NaN there would
    make MPJPE, PCK and AUC NaN. A ``UserError`` naming the file, the frames and the first one."""
    finite = np.isfinite(annotation.annot3).all(axis=(1, 2))
    bad = np.flatnonzero(annotation.valid & ~finite)
    if bad.size:
        frames = f'{bad.size} valid frame' + ('s' if bad.size > 1 else '')
        raise UserError(f'{path}: annot3 holds NaN or infinite values on {frames}, the first frame {bad[0]} '
                        '(0-based); expected finite millimetres on every frame valid_frame marks')


def read_test_annotations(root, sequences=None) -> dict:
    """Read ``root/TS*/annot_data.mat`` for the given (default: all present) sequences -> {name: TestAnnotation}."""
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise UserError(f'{root}: a file, not a folder; expected the folder holding TS1..TS6/{ANNOTATION_FILE} '
                        '(the official mpi_inf_3dhp_test_set)')
    if not root.is_dir():
        raise UserError(f'{root}: annotation folder not found; expected a folder holding TS1..TS6/{ANNOTATION_FILE}')
    if sequences is None:
        sequences = [ts for ts in TEST_SEQUENCES if (root / ts).is_dir()]
        if not sequences:
            raise UserError(f'{root}: no TS1..TS6 folders found; expected the official mpi_inf_3dhp_test_set layout')
    return {ts: read_annotation(root / ts / ANNOTATION_FILE) for ts in sequences}


TRAIN_FILE = 'data_train_3dhp_ori.npz'
TEST_FILE = 'data_test_3dhp_ori.npz'
TRAIN_RESOLUTION = (2048, 2048)
# Most sequences were filmed at 25 fps; some training takes (S1 Seq2, S3, S5) and TS5/TS6 at 50.
FPS = 25.0
_HOW_TO_OBTAIN = ('build it from the official {release} with `python -m common.mpi_inf_3dhp {command}` '
                  '(docs/datasets.md), obtain the processed file distributed by P-STMO / D3DP, or generate a synthetic '
                  'dataset with `python -m common.synthetic --out {folder}`')


def sequence_intrinsics(sequence: str) -> np.ndarray:
    """(9,) float32 normalised LINEAR pinhole intrinsics of a test sequence (distortion zero).

    The published annotations ``annot2`` are the linear projection of ``annot3`` (SPEC section 2).
    """
    if sequence not in TEST_CAMERAS:
        raise UserError(f'unknown MPI-INF-3DHP test sequence {sequence!r}; '
                        f'expected one of {", ".join(TEST_SEQUENCES)}')
    camera = TEST_CAMERAS[sequence]
    focal, center = sensor_to_pixel_intrinsics(camera.focal_mm, camera.offset_mm, camera.sensor_mm,
                                               camera.resolution)
    return intrinsic_vector(focal, center, *camera.resolution)


def load_3dhp_train(path) -> PoseDataset:
    """Read ``data_train_3dhp_ori.npz``: one ``Sequence`` per (take "S1 Seq1", camera key), in file order.

    keypoints_2d (N, 17, 2) normalised with 2048 x 2048; positions_3d (N, 17, 3) metres, camera
    frame, root-relative at the pelvis (exactly 0); trajectory (N, 3) metres; action '' (3DHP has
    no action label); intrinsics None.
    """
    path = Path(path)
    how_to_obtain = _HOW_TO_OBTAIN.format(release='training release', command=f'prepare-train mpi_inf_3dhp --out '
                                          f'{path.parent}', folder=path.parent)
    takes = dict_entry(load_archive(path, how_to_obtain), 'data', path)
    sequences = []
    for take, entry in takes.items():
        for camera, views in _train_cameras(entry, f'{path}: data[{take}]').items():
            where = f'{path}: data[{take}][0][{camera}]'
            sequences.append(_sequence(take, camera, views, TRAIN_RESOLUTION, intrinsics=None, where=where))
    if not sequences:
        raise UserError(f'{path}: data holds no sequence')
    return _dataset(sequences)


def _train_cameras(entry, where: str) -> dict:
    """A training file's sequence entry -> its dict camera -> {data_3d, data_2d}.

    The community's file holds [cameras, fps] per sequence (its readers take item 0); files written
    before it, and the synthetic set, hold [cameras]. The frame rate is not used (training clips
    count frames).
    """
    if not (isinstance(entry, (list, tuple)) and len(entry) in (1, 2) and isinstance(entry[0], dict)
            and (len(entry) == 1 or np.isscalar(entry[1]))):
        found = type(entry).__name__ + (f' of {len(entry)} items' if isinstance(entry, (list, tuple)) else '')
        raise UserError(f'{where} should be a list [dict camera -> {{data_3d, data_2d}}] or [that dict, fps], '
                        f'found {found}')
    return entry[0]


def load_3dhp_test(path, sequences=None) -> PoseDataset:
    """Read ``data_test_3dhp_ori.npz``: one ``Sequence`` per test sequence ("TS1".."TS6"), all frames.

    sequences: names to keep (None: all in the file). As ``load_3dhp_train``, plus: valid (N,) bool,
    resolution and 2D normalisation per sequence (TS5/TS6 1920 x 1080), intrinsics the linear
    pinhole vector of ``sequence_intrinsics``; camera 0 (one camera per sequence).
    """
    path = Path(path)
    how_to_obtain = _HOW_TO_OBTAIN.format(release='test set', command=f'convert-test mpi_inf_3dhp_test_set {path}',
                                          folder=path.parent)
    recorded = dict_entry(load_archive(path, how_to_obtain), 'data', path)
    names = list(recorded) if sequences is None else list(sequences)
    missing = [name for name in names if name not in recorded]
    if missing:
        raise UserError(f'{path}: no test sequence {", ".join(missing)}; sequences found: {", ".join(recorded)}')
    loaded = []
    for name in names:
        where = f'{path}: data[{name}]'
        views = recorded[name]
        if name not in TEST_CAMERAS:
            raise UserError(f'{where}: unknown test sequence; expected one of {", ".join(TEST_SEQUENCES)}')
        sequence = _sequence(name, 0, views, TEST_CAMERAS[name].resolution, sequence_intrinsics(name), where)
        if 'valid' not in views:
            raise UserError(f'{where}: no key \'valid\'; keys found: {", ".join(views)}')
        sequence.valid = check_array(np.asarray(views['valid']), (sequence.num_frames,), f'{where}[valid]') != 0
        loaded.append(sequence)
    if not loaded:
        raise UserError(f'{path}: no test sequence selected' if recorded else f'{path}: data holds no sequence')
    return _dataset(loaded)


def _dataset(sequences: list) -> PoseDataset:
    return PoseDataset(name='mpi_inf_3dhp', skeleton=MPI_INF_3DHP_17,
                       keypoints_mirror=MPI_INF_3DHP_17.mirror_permutation(), fps=FPS, sequences=sequences)


def _sequence(subject: str, camera, views, resolution: tuple, intrinsics, where: str) -> Sequence:
    """A ``Sequence`` from {data_3d (N, 17, 3) mm, camera frame; data_2d (N, 17, 2) px}."""
    if not isinstance(views, dict) or 'data_3d' not in views or 'data_2d' not in views:
        found = ', '.join(map(str, views)) if isinstance(views, dict) else type(views).__name__
        raise UserError(f'{where}: expected a dict with data_3d and data_2d, found {found}')
    num_joints = MPI_INF_3DHP_17.num_joints
    positions = check_array(views['data_3d'], (None, num_joints, 3), f'{where}[data_3d]') / MM_PER_M
    pixels = check_array(views['data_2d'], (positions.shape[0], num_joints, 2), f'{where}[data_2d]')
    root = MPI_INF_3DHP_17.root
    w, h = resolution
    return Sequence(
        subject=subject, action='', camera=camera,
        keypoints_2d=normalize_screen_coordinates(pixels, w=w, h=h).astype(np.float32),
        positions_3d=(positions - positions[:, root:root + 1]).astype(np.float32),
        trajectory=positions[:, root].astype(np.float32),
        intrinsics=intrinsics,
        resolution=(w, h),
    )


def convert_test_annotations(annot_root, out_path, sequences=None) -> dict:
    """Build ``data_test_3dhp_ori.npz`` from the official ``annot_root/TS*/annot_data.mat``.

    data_3d = annot3 (N, 17, 3) mm, data_2d = annot2 (N, 17, 2) px, valid = valid_frame (N,)
    (1.0 / 0.0), all float32, every frame kept. sequences: names (None: every TS folder present).
    Written atomically. Returns {name: TestAnnotation} of what was converted.
    """
    if sequences is not None:
        unknown = [name for name in sequences if name not in TEST_SEQUENCES]
        if unknown:
            raise UserError(f'unknown test sequence {", ".join(unknown)}; '
                            f'expected some of {", ".join(TEST_SEQUENCES)}')
    annotations = read_test_annotations(annot_root, sequences)
    data = {}
    for name, annotation in annotations.items():
        expected = (annotation.num_frames, MPI_INF_3DHP_17.num_joints)
        if annotation.annot3.shape[:2] != expected or annotation.annot2.shape[:2] != expected:
            raise UserError(f'{Path(annot_root) / name / ANNOTATION_FILE}: expected {expected[1]} joints, found '
                            f'annot3 {annotation.annot3.shape}, annot2 {annotation.annot2.shape}')
        data[name] = {'data_3d': annotation.annot3.astype(np.float32),
                      'data_2d': annotation.annot2.astype(np.float32),
                      'valid': annotation.valid.astype(np.float32)}
    save_archive(out_path, data=data)
    return annotations


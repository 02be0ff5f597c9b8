"""MPI-INF-3DHP: test-camera facts and the official per-sequence annotation files.

The official test annotations ``TS*/annot_data.mat`` are MATLAB v7.3 files (HDF5), read with
h5py; HDF5 stores MATLAB arrays with their dimensions reversed, so ``annot3`` (3 x 17 x 1 x N in
MATLAB) arrives as (N, 1, 17, 3).
"""
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from common.errors import UserError

TEST_SEQUENCES = ('TS1', 'TS2', 'TS3', 'TS4', 'TS5', 'TS6')
ANNOTATION_FILE = 'annot_data.mat'


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
            arrays = {key: np.array(f[key]) for key in
                      ('annot2', 'annot3', 'univ_annot3', 'valid_frame', 'activity_annotation')}
    except KeyError as err:
        raise UserError(f'{path}: missing variable {err}; expected annot2, annot3, univ_annot3, '
                        'valid_frame, activity_annotation') from None
    except OSError as err:
        raise UserError(f'{path}: not a MATLAB v7.3 (HDF5) file ({err})') from None
    n = arrays['annot3'].shape[0]
    return TestAnnotation(
        annot2=arrays['annot2'].reshape(n, -1, 2),
        annot3=arrays['annot3'].reshape(n, -1, 3),
        univ_annot3=arrays['univ_annot3'].reshape(n, -1, 3),
        valid=arrays['valid_frame'].reshape(n) > 0,
        activity=arrays['activity_annotation'].reshape(n).astype(np.int64),
    )


def read_test_annotations(root, sequences=None) -> dict:
    """Read ``root/TS*/annot_data.mat`` for the given (default: all present) sequences -> {name: TestAnnotation}."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f'{root}: annotation folder not found; expected a folder holding TS1..TS6/{ANNOTATION_FILE}')
    if sequences is None:
        sequences = [ts for ts in TEST_SEQUENCES if (root / ts).is_dir()]
        if not sequences:
            raise UserError(f'{root}: no TS1..TS6 folders found; expected the official mpi_inf_3dhp_test_set layout')
    return {ts: read_annotation(root / ts / ANNOTATION_FILE) for ts in sequences}

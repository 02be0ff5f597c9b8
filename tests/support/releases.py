"""Tiny files in the exact formats of the official dataset releases, written here for tests.

* Human3.6M, official release: ``S1/MyPoseFeatures/D3_Positions/<take>.cdf`` with CDF variable ``Pose``
  (1, N, 96) millimetres, written with cdflib's own CDF writer; S1's files use the long action names
  (``TakingPhoto 1``, ``WalkingDog``).
* Human3.6M, preprocessed archive ``h36m.zip``: ``h36m/S1/MyPoses/3D_positions/<take>.h5`` with dataset
  ``3D_positions`` (96, N) millimetres, written with h5py.
* MPI-INF-3DHP training release: ``S1/Seq1/annot.mat`` (MATLAB v5, scipy) with cells over 14 cameras
  ``annot2`` N x 56 and ``annot3`` / ``univ_annot3`` N x 84, ``cameras`` 0..13 and ``frames``.
* MPI-INF-3DHP test set: ``TS*/annot_data.mat`` (MATLAB v7.3, HDF5) from our processed test file.
"""
import io
import zipfile
from pathlib import Path

import h5py
import numpy as np
import scipy.io
from cdflib.cdfwrite import CDF as CdfWriter

from common.data.h36m_release import RELEASE_TAKES, SUBJECTS, action_of

LONG_ACTION_NAMES = {'Photo': 'TakingPhoto', 'WalkDog': 'WalkingDog'}
LONG_NAMES_SUBJECTS = ('S1',)              # the official files of S1 use TakingPhoto / WalkingDog
H36M_CENTRE_MM = np.array([0.0, 0.0, 900.0])   # the capture volume's centre, world frame (z up)
MPI_CAMERAS = 14
MPI_JOINTS = 28
MPI_FOCAL_PX, MPI_CENTRE_PX, MPI_DEPTH_MM = 1500.0, 1024.0, 4000.0


def official_take_name(subject: str, take: str) -> str:
    """The file name (without suffix) the official release gives a take."""
    action = action_of(take)
    if subject in LONG_NAMES_SUBJECTS and action in LONG_ACTION_NAMES:
        return take.replace(action, LONG_ACTION_NAMES[action], 1)
    return take


def h36m_content(subjects=SUBJECTS, frames=6, seed=0, base=None) -> dict:
    """{subject: {take: (N, 32, 3) float64 world millimetres}} for every released take.

    base: optional {subject: {action: (M, 32, 3) metres}} (e.g. a synthetic data_3d_h36m.npz) whose
    poses are reused (the take's action, else the subject's first one); random poses around the
    capture centre otherwise.
    """
    rng = np.random.default_rng(seed)
    content = {}
    for subject in subjects:
        content[subject] = {}
        for take in RELEASE_TAKES[subject]:
            if base is not None:
                poses = base[subject].get(action_of(take), next(iter(base[subject].values())))
                content[subject][take] = np.asarray(poses, np.float64) * 1000.0
            else:
                content[subject][take] = H36M_CENTRE_MM + rng.normal(scale=300.0, size=(frames, 32, 3))
    return content


def write_cdf_take(path: Path, world_mm: np.ndarray) -> None:
    """One take as the official release stores it: CDF variable Pose, one record of (N, 96)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    values = np.asarray(world_mm, np.float64).reshape(1, len(world_mm), -1)
    writer = CdfWriter(path, delete=True)
    writer.write_var({'Variable': 'Pose', 'Data_Type': CdfWriter.CDF_DOUBLE, 'Num_Elements': 1, 'Rec_Vary': True,
                      'Dim_Sizes': list(values.shape[1:])}, var_data=values)
    writer.close()


def h5_take_bytes(world_mm: np.ndarray) -> bytes:
    """One take as h36m.zip stores it: dataset 3D_positions, (96, N)."""
    buffer = io.BytesIO()
    with h5py.File(buffer, 'w') as f:
        f['3D_positions'] = np.asarray(world_mm, np.float64).reshape(len(world_mm), -1).T
    return buffer.getvalue()


def write_h36m_source(root: Path, content: dict) -> Path:
    """The official release, extracted, at ``root``: S*/MyPoseFeatures/D3_Positions/<take>.cdf."""
    for subject, takes in content.items():
        for take, world_mm in takes.items():
            write_cdf_take(root / subject / 'MyPoseFeatures' / 'D3_Positions'
                           / f'{official_take_name(subject, take)}.cdf', world_mm)
    return root


def write_h36m_archive(zip_path: Path, content: dict) -> Path:
    """h36m.zip: h36m/S*/MyPoses/3D_positions/<take>.h5 (the community's names throughout)."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, 'w', compression=zipfile.ZIP_DEFLATED) as archive:
        for subject, takes in content.items():
            for take, world_mm in takes.items():
                archive.writestr(f'h36m/{subject}/MyPoses/3D_positions/{take}.h5', h5_take_bytes(world_mm))
    return zip_path


def mpi_sequence(frames=12, seed=0) -> dict:
    """One training sequence: annot3 (14 cells, N x 84 mm, camera frame) and annot2 (N x 56 px), pinhole."""
    rng = np.random.default_rng(seed)
    annot3, annot2 = [], []
    for _ in range(MPI_CAMERAS):
        points = rng.normal(scale=400.0, size=(frames, MPI_JOINTS, 3)) + [0.0, 0.0, MPI_DEPTH_MM]
        pixels = points[..., :2] / points[..., 2:] * MPI_FOCAL_PX + MPI_CENTRE_PX
        annot3.append(points.reshape(frames, -1))
        annot2.append(pixels.reshape(frames, -1))
    return {'annot3': annot3, 'annot2': annot2}


def _cells(arrays) -> np.ndarray:
    cells = np.empty((len(arrays), 1), dtype=object)
    for i, array in enumerate(arrays):
        cells[i, 0] = array
    return cells


def write_annot_mat(path: Path, sequence: dict) -> None:
    """``annot.mat`` of the training release (MATLAB v5)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = len(sequence['annot3'][0])
    scipy.io.savemat(path, {'annot2': _cells(sequence['annot2']), 'annot3': _cells(sequence['annot3']),
                            'univ_annot3': _cells([a * 0.9 for a in sequence['annot3']]),
                            'cameras': np.arange(MPI_CAMERAS)[None], 'frames': np.arange(frames)[:, None]})


def write_mpi_train_release(root: Path, frames=12, seed=0, skip=()) -> dict:
    """S1..S8/Seq1,Seq2/annot.mat at ``root``; returns {"S1 Seq1": sequence} (``mpi_sequence``)."""
    written = {}
    for subject in range(1, 9):
        for seq in (1, 2):
            name = f'S{subject} Seq{seq}'
            if name in skip:
                continue
            written[name] = mpi_sequence(frames, seed=seed + 2 * subject + seq)
            write_annot_mat(root / f'S{subject}' / f'Seq{seq}' / 'annot.mat', written[name])
    return written


def write_official_annotations(test_npz, folder):
    """TS*/annot_data.mat (HDF5, MATLAB's reversed dimensions) from a data_test_3dhp_ori.npz, so
    the synthetic test set can be scored like the official one (activity 1 everywhere)."""
    with np.load(test_npz, allow_pickle=True) as f:
        data = f['data'].item()
    for name, views in data.items():
        n = len(views['valid'])
        (folder / name).mkdir(parents=True)
        with h5py.File(folder / name / 'annot_data.mat', 'w') as mat:
            mat['annot2'] = np.asarray(views['data_2d'], np.float64).reshape(n, 1, 17, 2)
            mat['annot3'] = np.asarray(views['data_3d'], np.float64).reshape(n, 1, 17, 3)
            mat['univ_annot3'] = np.asarray(views['data_3d'], np.float64).reshape(n, 1, 17, 3)
            mat['valid_frame'] = np.asarray(views['valid'], np.float64).reshape(n, 1)
            mat['activity_annotation'] = np.ones((n, 1))
    return data

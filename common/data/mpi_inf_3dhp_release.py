"""MPI-INF-3DHP's official training release -> the processed training file ``main_3dhp.py`` reads.

The release (facts in docs/datasets.md): ``S1..S8/Seq1,Seq2/annot.mat``, MATLAB v5 files read with
scipy, holding per sequence one cell per camera (14 cameras, ids in ``cameras``): ``annot2`` N x 56
(28 joints x (x, y), pixels of 2048 x 2048 images), ``annot3`` N x 84 (28 joints x (x, y, z),
millimetres, the camera's frame, true scale), ``univ_annot3`` (the same rescaled to a universal body
height) and ``frames``.

``prepare_train`` writes it as the community's ``data_train_3dhp_ori.npz`` was made: ``annot3`` (true
scale, as FinePOSE and D3DP score; not ``univ_annot3``) and ``annot2`` of the 17 test joints
(``TEST_JOINTS_OF_28``) for the eight cameras ``TRAIN_CAMERAS``, the frames beyond each sequence's
video (``SEQUENCE_FRAMES``) dropped, float32: ``data`` -> "S1 Seq1" -> [{"0": {``data_3d`` (N, 17, 3)
mm, ``data_2d`` (N, 17, 2) px}, "1": ..., ...}, fps].
"""
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import scipy.io
from tqdm import tqdm

from common.core.atomic import check_writable
from common.core.errors import UserError
from common.data.dataset_files import check_finite, save_archive

ANNOTATION_FILE = 'annot.mat'
RELEASE_JOINTS = 28
# The 17 test joints among the release's 28 (0-based; 1-based in the MATLAB tools: 8 6 15 16 17 10 11 12
# 24 25 26 19 20 21 5 4 7), in ``skeleton.MPI_INF_3DHP_17`` order.
TEST_JOINTS_OF_28 = (7, 5, 14, 15, 16, 9, 10, 11, 23, 24, 25, 18, 19, 20, 4, 3, 6)
# The cameras VNect trained on and the community's processed file keeps (of 14: 0..13).
TRAIN_CAMERAS = (0, 1, 2, 4, 5, 6, 7, 8)
# (subject, sequence) -> (video frames, fps), from the release's mpii_get_sequence_info.m.
SEQUENCE_FRAMES = {
    ('S1', 'Seq1'): (6416, 25), ('S1', 'Seq2'): (12430, 50), ('S2', 'Seq1'): (6502, 25), ('S2', 'Seq2'): (6081, 25),
    ('S3', 'Seq1'): (12488, 50), ('S3', 'Seq2'): (12283, 50), ('S4', 'Seq1'): (6171, 25), ('S4', 'Seq2'): (6675, 25),
    ('S5', 'Seq1'): (12820, 50), ('S5', 'Seq2'): (12312, 50), ('S6', 'Seq1'): (6188, 25), ('S6', 'Seq2'): (6145, 25),
    ('S7', 'Seq1'): (6239, 25), ('S7', 'Seq2'): (6320, 25), ('S8', 'Seq1'): (6468, 25), ('S8', 'Seq2'): (6054, 25),
}
TEST_SET_FOLDERS = ('TS1', 'TS2', 'TS3', 'TS4', 'TS5', 'TS6')


def sequence_name(subject: str, sequence: str) -> str:
    """('S1', 'Seq1') -> 'S1 Seq1', the key of the processed file."""
    return f'{subject} {sequence}'


@dataclass
class TrainSequence:
    """One sequence as written: {camera id: (data_3d (N, 17, 3) float32 mm, data_2d (N, 17, 2) float32 px)}."""
    name: str
    views: dict
    released_frames: int            # frames in annot.mat
    fps: int                        # the video's frame rate (SEQUENCE_FRAMES)
    notes: list = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return len(next(iter(self.views.values()))[0])


def read_sequence(path, subject: str, sequence: str) -> TrainSequence:
    """Read one official training ``annot.mat`` and keep what the processed file holds; checked."""
    path = Path(path)
    try:
        if h5py.is_hdf5(path):
            raise NotImplementedError('MATLAB v7.3')
        mat = scipy.io.loadmat(path, variable_names=['annot2', 'annot3', 'cameras'])
    except NotImplementedError:
        raise UserError(f'{path}: a MATLAB v7.3 (HDF5) file; expected the official v5 {ANNOTATION_FILE} of the '
                        'training release') from None
    except (ValueError, TypeError, OSError, scipy.io.matlab.MatReadError) as err:
        raise UserError(f'{path}: not a readable MATLAB .mat file ({err})') from None
    missing = [key for key in ('annot2', 'annot3', 'cameras') if key not in mat]
    if missing:
        raise UserError(f'{path}: no variable {", ".join(missing)}; expected annot2, annot3 and cameras')
    cameras = [int(c) for c in np.asarray(mat['cameras']).ravel()]
    cells = {key: np.asarray(mat[key], dtype=object).ravel() for key in ('annot2', 'annot3')}
    if any(len(cell) != len(cameras) for cell in cells.values()):
        raise UserError(f'{path}: annot2 has {len(cells["annot2"])} cells, annot3 {len(cells["annot3"])}, cameras '
                        f'{len(cameras)} ids; expected one cell per camera')
    absent = [c for c in TRAIN_CAMERAS if c not in cameras]
    if absent:
        raise UserError(f'{path}: no camera {", ".join(map(str, absent))} in cameras ({cameras}); expected the '
                        f'training cameras {", ".join(map(str, TRAIN_CAMERAS))}')
    views, released = {}, None
    for camera in TRAIN_CAMERAS:
        index = cameras.index(camera)
        pixels = _joints(cells['annot2'][index], 2, f'{path}: annot2 of camera {camera}')
        positions = _joints(cells['annot3'][index], 3, f'{path}: annot3 of camera {camera}')
        if released is None:
            released = len(positions)
        if len(pixels) != released or len(positions) != released:
            raise UserError(f'{path}: camera {camera} has {len(pixels)} annot2 and {len(positions)} annot3 frames, '
                            f'camera {TRAIN_CAMERAS[0]} {released}; expected the same count everywhere')
        views[camera] = (positions, pixels)
    video_frames, fps = SEQUENCE_FRAMES[subject, sequence]
    result = TrainSequence(sequence_name(subject, sequence), {}, released, fps)
    if released > video_frames:
        result.notes.append(f'{result.name}: {released - video_frames} annotated frames beyond the video\'s '
                            f'{video_frames} dropped, as the community does')
    for camera, (positions, pixels) in views.items():
        where = f'{path}: camera {camera}'
        result.views[camera] = (check_finite(positions[:video_frames], f'{where} annot3').astype(np.float32),
                                check_finite(pixels[:video_frames], f'{where} annot2').astype(np.float32))
    return result


def _joints(cell, dims: int, where: str) -> np.ndarray:
    """A cell N x (28 * dims) -> (N, 17, dims) float64, the test joints."""
    array = np.asarray(cell)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number) or array.ndim != 2:
        raise UserError(f'{where}: expected a numeric N x {RELEASE_JOINTS * dims} matrix, found {array.dtype} '
                        f'{array.shape}')
    if array.shape[1] != RELEASE_JOINTS * dims or array.shape[0] == 0:
        raise UserError(f'{where}: shape {array.shape}, expected N x {RELEASE_JOINTS * dims} '
                        f'({RELEASE_JOINTS} joints x {dims}, N >= 1)')
    return array.reshape(len(array), RELEASE_JOINTS, dims)[:, list(TEST_JOINTS_OF_28)].astype(np.float64)


@dataclass
class PreparedTrain:
    sequences: list
    missing: list
    path: Path


def prepare_train(root, out_path, allow_missing=False, show_progress=True) -> PreparedTrain:
    """Read every ``root/S*/Seq*/annot.mat`` of the release, check it, then write ``out_path`` atomically.

    A missing sequence stops it before anything is written, unless ``allow_missing``.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f'{root}: not a folder; expected the official MPI-INF-3DHP training release '
                        f'(S1/Seq1/{ANNOTATION_FILE}, ...)')
    check_writable(Path(out_path).parent, '--out')
    found = {key: root / key[0] / key[1] / ANNOTATION_FILE for key in SEQUENCE_FRAMES}
    missing = [sequence_name(*key) for key, path in found.items() if not path.is_file()]
    if len(missing) == len(found):
        hint = (': it is the test set; build the test file with convert-test'
                if any((root / ts).is_dir() for ts in TEST_SET_FOLDERS) else '')
        raise UserError(f'{root}: no S1..S8/Seq1,Seq2/{ANNOTATION_FILE} found; expected the official MPI-INF-3DHP '
                        f'training release{hint}')
    if missing and not allow_missing:
        raise UserError(f'{root}: missing sequences ({len(missing)}): {", ".join(missing)}; nothing written: complete '
                        'the download, or pass --allow-missing to write the sequences that are there')
    todo = [(key, path) for key, path in found.items() if path.is_file()]
    sequences = []
    with tqdm(todo, desc='reading sequences', unit='sequence', disable=not show_progress, leave=False) as progress:
        for (subject, sequence), path in progress:
            sequences.append(read_sequence(path, subject, sequence))
    # [cameras, fps], as the community's file holds each sequence (readers take item 0)
    data = {s.name: [{str(camera): {'data_3d': positions, 'data_2d': pixels}
                      for camera, (positions, pixels) in s.views.items()}, s.fps] for s in sequences}
    save_archive(out_path, data=data)
    return PreparedTrain(sequences, missing, Path(out_path))


def train_summary(prepared: PreparedTrain) -> list:
    """The lines ``prepare-train`` prints: per sequence its frames, then the file and what is missing."""
    lines = []
    for s in prepared.sequences:
        lines += s.notes
        lines.append(f'{s.name}: {s.num_frames} frames x {len(s.views)} cameras')
    frames = sum(s.num_frames for s in prepared.sequences)
    complete = sum(video_frames for video_frames, _ in SEQUENCE_FRAMES.values())
    lines.append(f'wrote {prepared.path}: {len(prepared.sequences)} sequences, {frames} frames per camera '
                 f'(the complete release: {complete}), cameras {", ".join(map(str, TRAIN_CAMERAS))}, annot3 in mm')
    if prepared.missing:
        lines.append(f'missing, not written ({len(prepared.missing)}): {", ".join(prepared.missing)}')
    return lines

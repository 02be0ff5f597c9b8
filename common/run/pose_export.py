"""``--viz-export FILE``: the predicted poses of one sequence, in the format FILE's extension names.

``EXPORT_FORMATS`` maps each allowed extension to its writer; a format is added by adding a row.
A writer takes (path, poses (N, J, 3) metres, camera frame, root-relative, skeleton, frames per
second, trajectory (N, 3) metres, camera frame, or None, and where that trajectory comes from),
writes atomically and returns what it wrote, for the log line.

* ``.npy``: the (N, J, 3) array as it is; the trajectory is not in it.
* ``.bvh``: a BVH animation, centimetres, Y up, root moving along the trajectory (``common.run.bvh_export``).
"""
from pathlib import Path

import numpy as np

from common.core.atomic import atomic_output
from common.core.output_paths import check_output_file
from common.data.person_tracks import PERSON_ENTRY_SUFFIX, split_person_entry
from common.run.bvh_export import write_bvh

EXPORT_FLAG = '--viz-export'


def _write_npy(path, poses: np.ndarray, skeleton, fps: float, trajectory, trajectory_source: str) -> str:
    """The (N, J, 3) array as it is (NumPy's .npy)."""
    with atomic_output(path) as f:
        np.save(f, poses)
    return f'poses {poses.shape} {poses.dtype}, metres, camera frame, root-relative'


EXPORT_FORMATS = {'.npy': _write_npy, '.bvh': write_bvh}


def check_export_path(path) -> None:
    """Before any work: a ``UserError`` unless ``path`` ends in an ``EXPORT_FORMATS`` extension in a writable folder."""
    check_output_file(path, EXPORT_FLAG, EXPORT_FORMATS)


def person_export_path(path, entry: str) -> Path:
    """The export of one person of several: ('out/x.npy', 'dance.mp4_person2') -> 'out/x_person2.npy'
    (``entry`` a ``person_tracks.person_entry_name``)."""
    path = Path(path)
    _, number = split_person_entry(entry)
    return path.with_name(f'{path.stem}{PERSON_ENTRY_SUFFIX}{number}{path.suffix}')


def export_poses(path, poses: np.ndarray, skeleton, fps: float, trajectory=None, trajectory_source: str = '') -> str:
    """Write ``poses`` (N, J, 3) metres, camera frame, root-relative, in the format of ``path``'s extension
    (checked by ``check_export_path``); ``trajectory`` (N, 3) metres, camera frame: the root's
    positions for formats that hold them (from ``trajectory_source``: 'estimated', 'ground truth'),
    or None. Returns the log line."""
    description = EXPORT_FORMATS[Path(path).suffix.lower()](path, poses, skeleton, fps, trajectory, trajectory_source)
    return f'Wrote {path}: {description}'

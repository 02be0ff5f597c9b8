"""The community's dataset files: numpy ``.npz`` archives holding pickled dicts, read and checked for the user.

Every problem with a file (missing, not an archive, a key or shape that is not there, non-finite
numbers) becomes a one-line ``UserError`` naming the file and what was expected.
"""
import zipfile
from pathlib import Path

import numpy as np

from common.core.atomic import atomic_output
from common.core.errors import UserError


def load_archive(path, how_to_obtain: str) -> dict:
    """Open ``path`` (.npz) and return {key: array} for all its entries (object arrays allowed).

    how_to_obtain: appended to the "not found" message, e.g. "see data/README.md".
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f'{path}: not found; {how_to_obtain}')
    if not zipfile.is_zipfile(path):
        raise UserError(f'{path}: not a readable .npz archive (not a zip file)')
    try:
        with np.load(path, allow_pickle=True) as archive:
            return {key: archive[key] for key in archive.files}
    except Exception as err:  # zlib.error, TypeError, ... from a damaged file: the file's problem, not a bug
        detail = next(iter(str(err).splitlines()), '')
        raise UserError(f'{path}: not a readable .npz archive ({type(err).__name__}: {detail})') from None


def dict_entry(entries: dict, key: str, path) -> dict:
    """The dict stored under ``key`` of an archive loaded with ``load_archive``."""
    if key not in entries:
        raise UserError(f'{path}: no key {key!r}; keys found: {", ".join(sorted(entries)) or "none"}')
    value = entries[key]
    if isinstance(value, np.ndarray) and value.dtype == object and value.shape == ():
        value = value.item()
    if not isinstance(value, dict):
        raise UserError(f'{path}: {key!r} should hold a dict, found {type(value).__name__}')
    return value


def check_array(array, shape: tuple, where: str) -> np.ndarray:
    """``check_shape`` then ``check_finite``: a numeric, finite array of the given shape -> float64."""
    return check_finite(check_shape(array, shape, where), where)


def check_shape(array, shape: tuple, where: str) -> np.ndarray:
    """Check that ``array`` is numeric, has the given shape (None: any size) and at least one frame.

    where: names the file and entry in the message, e.g. "data/x.npz: positions_2d[S1][Walking][0]".
    Returns the array as float64.
    """
    if not isinstance(array, np.ndarray) or not np.issubdtype(array.dtype, np.number):
        raise UserError(f'{where}: expected a numeric array of shape {_shape_text(shape)}, '
                        f'found {type(array).__name__}')
    if array.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, array.shape)):
        raise UserError(f'{where}: expected shape {_shape_text(shape)}, found {array.shape}')
    if array.shape[0] == 0:
        raise UserError(f'{where}: expected at least one frame, found shape {array.shape}')
    return array.astype(np.float64, copy=False)


def check_finite(array: np.ndarray, where: str) -> np.ndarray:
    """Raise a ``UserError`` naming the first frame (index along axis 0) holding NaN or inf."""
    finite = np.isfinite(array).reshape(array.shape[0], -1).all(axis=1)
    if not finite.all():
        raise UserError(f'{where}: NaN or inf values, first in frame {int(np.argmin(finite))}')
    return array


def _shape_text(shape: tuple) -> str:
    sizes = ['N' if s is None else str(s) for s in shape]
    return f'({sizes[0]},)' if len(sizes) == 1 else '(' + ', '.join(sizes) + ')'


def save_archive(path, **entries) -> Path:
    """Write entries to a compressed ``.npz`` atomically (temporary file in the same folder, then rename).

    dicts are stored as pickled object entries, as the community's files do. Returns the path.
    """
    path = Path(path)
    with atomic_output(path) as f:
        np.savez_compressed(f, **entries)
    return path

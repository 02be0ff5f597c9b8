"""Atomic file writes: a crash or a full disk never leaves a truncated output behind."""
import os
import secrets
from contextlib import contextmanager
from pathlib import Path

NEW_FILE_MODE = 0o666   # minus the umask, as for any file the user creates


@contextmanager
def atomic_output(path):
    """Yield an open binary file; when the block succeeds it replaces ``path`` in one rename.

    The temporary file lives in the destination folder (same filesystem, so the rename is
    atomic), gets the usual permissions (``tempfile.mkstemp`` would restrict them to the owner)
    and is removed if the block fails. Creates the folder if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.{secrets.token_hex(8)}.tmp')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, NEW_FILE_MODE)
    try:
        with os.fdopen(fd, 'wb') as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


@contextmanager
def atomic_path(path):
    """Yield a temporary file name for writers that open files themselves (the GIF and MP4
    writers of ``common.visualization``); when the block succeeds the file replaces ``path`` in one rename.

    The name keeps ``path``'s suffix, so writers that choose the format by extension still do.
    Creates the folder if needed; a failed block leaves no temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.stem}.{secrets.token_hex(8)}.tmp{path.suffix}')
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path, data: bytes) -> None:
    with atomic_output(path) as f:
        f.write(data)


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode('utf-8'))

"""Atomic file writes: a crash or a full disk never leaves a truncated output behind.

A failed write (read-only folder, full disk) is a one-line ``UserError`` naming the file and the
OS error; the file already there is untouched. Temporary files are named ``.<name>.<16 hex>.tmp``
(``atomic_output``) or ``.<stem>.<16 hex>.tmp<suffix>`` (``atomic_path``), the name or stem cut
short where the whole would exceed the file system's longest name (``name_limit``, 255 bytes on
common file systems), so that any name legal for the file is legal for its temporary file too
(``check_name_length`` refuses a name that is too long itself, before the work). A process killed
while writing leaves a temporary file behind, which ``remove_stale_temporaries`` deletes on the next run.
"""
import os
import re
import secrets
import time
from contextlib import contextmanager
from pathlib import Path

from common.core.errors import UserError

NEW_FILE_MODE = 0o666   # minus the umask, as for any file the user creates
TOKEN_BYTES = 8
TEMPORARY_NAME = re.compile(r'\..+\.[0-9a-f]{%d}\.tmp(\.[A-Za-z0-9]+)?' % (2 * TOKEN_BYTES))
# The longest file name (bytes) where the file system does not say: Linux's and macOS's NAME_MAX,
# and what ext4, XFS, Btrfs, APFS, NTFS and FAT's long names allow.
DEFAULT_NAME_MAX = 255
# A temporary file being written is modified continuously; one untouched this long was abandoned
# (its writer was killed), not left by a save still in progress in another process.
STALE_TEMPORARY_AGE_S = 60.0


def _os_error(err: BaseException):
    """The OSError behind ``err`` (torch.save reports a failed write as a RuntimeError whose
    context is the OSError), or None."""
    while err is not None and not isinstance(err, OSError):
        err = err.__cause__ or err.__context__
    return err


def file_in_the_way(folder: Path):
    """The regular file standing where ``folder`` or one of its parents should be, or None."""
    existing = next((p for p in [folder, *folder.parents] if os.path.exists(p)), None)
    return existing if existing is not None and not existing.is_dir() else None


def write_failure(path, err: OSError) -> UserError:
    blocking = file_in_the_way(Path(path).parent)
    reason = f'{blocking} is a file, not a folder' if blocking is not None else err.strerror or err
    return UserError(f'cannot write {path}: {reason}')


def name_limit(folder) -> int:
    """The longest file name, in bytes, of the file system holding ``folder`` (or its nearest existing
    parent): ``pathconf``'s ``PC_NAME_MAX`` where the platform has it, else ``DEFAULT_NAME_MAX``."""
    existing = next((p for p in [Path(folder), *Path(folder).parents] if os.path.isdir(p)), Path('.'))
    try:
        limit = os.pathconf(existing, 'PC_NAME_MAX')
    except (AttributeError, ValueError, OSError):
        return DEFAULT_NAME_MAX
    return limit if limit > 0 else DEFAULT_NAME_MAX          # -1: the file system sets no limit


def name_bytes(name: str) -> int:
    """The length of a file name as the file system counts it."""
    return len(os.fsencode(name))


def check_name_length(path, flag: str, remedy: str = 'choose a shorter name') -> Path:
    """A ``UserError`` naming ``flag`` (and saying ``remedy``) when ``path``'s file name is longer than
    its file system allows."""
    path = Path(path)
    limit = name_limit(path.parent)
    if name_bytes(path.name) > limit:
        raise UserError(f'{flag} {path}: the file name is {name_bytes(path.name)} bytes long, longer than the file '
                        f'system allows ({limit}); {remedy}')
    return path


def _temporary(path: Path, suffix: str = '') -> Path:
    """A fresh name beside ``path`` (``TEMPORARY_NAME``): its name (or, with ``suffix``, its stem) cut
    short as needed to stay within ``name_limit``."""
    token = secrets.token_hex(TOKEN_BYTES)
    head = path.stem if suffix else path.name
    room = name_limit(path.parent) - name_bytes(f'..{token}.tmp{suffix}')
    while len(head) > 1 and name_bytes(head) > room:
        head = head[:-1]
    return path.with_name(f'.{head}.{token}.tmp{suffix}')


def _remove_quietly(tmp: Path) -> None:
    """Remove a temporary file after a failure without ever raising over that failure: where the
    write failed because the folder cannot hold files (a path under a regular file, a read-only
    file system), removing fails as well, and hid the one-line write error behind a traceback."""
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


@contextmanager
def _replacing(path: Path, suffix: str):
    """Yield a fresh temporary name beside ``path``; when the block succeeds that file replaces
    ``path`` in one rename. A failed block removes it, and an OS error behind the failure becomes
    ``write_failure``'s one line."""
    tmp = _temporary(path, suffix)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except BaseException as err:
        _remove_quietly(tmp)
        failure = _os_error(err)
        if failure is not None:
            raise write_failure(path, failure) from None
        raise


@contextmanager
def atomic_output(path):
    """Yield an open binary file; when the block succeeds it replaces ``path`` in one rename.

    The temporary file lives in the destination folder (same filesystem, so the rename is
    atomic), gets the usual permissions (``tempfile.mkstemp`` would restrict them to the owner)
    and is removed if the block fails. Creates the folder if needed.
    """
    path = Path(path)
    with _replacing(path, '') as tmp:
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, NEW_FILE_MODE), 'wb') as f:
            yield f


@contextmanager
def atomic_path(path):
    """Yield a temporary file name for writers that open files themselves (the GIF and MP4
    writers of ``common.run.visualization``); when the block succeeds the file replaces ``path`` in one rename.

    The name keeps ``path``'s suffix, so writers that choose the format by extension still do.
    Creates the folder if needed; a failed block leaves no temporary file.
    """
    path = Path(path)
    with _replacing(path, path.suffix) as tmp:
        yield tmp


def write_bytes_atomic(path, data: bytes) -> None:
    with atomic_output(path) as f:
        f.write(data)


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode('utf-8'))


def remove_stale_temporaries(folder, older_than_s: float = STALE_TEMPORARY_AGE_S) -> list:
    """Delete our abandoned temporary files in ``folder`` (names matching ``TEMPORARY_NAME``,
    untouched for ``older_than_s`` seconds); returns the removed paths. Nothing else is touched."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now, removed = time.time(), []
    for path in sorted(folder.iterdir()):
        if TEMPORARY_NAME.fullmatch(path.name) and path.is_file() and now - path.stat().st_mtime > older_than_s:
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def missing_folders(folder) -> list:
    """``folder`` and those of its parents that do not exist yet, deepest first: what creating it adds."""
    folder = Path(folder)
    return [p for p in [folder, *folder.parents] if not os.path.lexists(p)]


def remove_empty_folders(folders) -> None:
    """Remove those of ``folders`` (deepest first, as ``missing_folders`` lists them) that are empty, so
    that a refused command leaves no folder it created behind; a folder holding anything stays."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            pass


def check_writable(folder, flag: str) -> Path:
    """Create ``folder`` if needed and make sure a file can be written in it, before any work;
    a ``UserError`` naming ``flag``, the folder and the OS error otherwise (or the file that stands
    where the folder or one of its parents should be)."""
    folder = Path(folder)
    blocking = file_in_the_way(folder)
    if blocking is not None:
        what = f'{folder} is a file' if blocking == folder else f'{folder}: {blocking} is a file'
        raise UserError(f'{flag} {what}, expected a folder')
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = _temporary(folder / 'write_test')
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, NEW_FILE_MODE))
        probe.unlink()
    except OSError as err:
        raise UserError(f'{flag} {folder}: cannot write there ({err.strerror or err})') from None
    return folder

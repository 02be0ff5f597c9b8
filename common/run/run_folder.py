"""The ``-c`` folder of a training run: one run per folder, never mixed.

A new training run (no ``-r``) refuses a folder that already holds checkpoints of an earlier run
(``last_epoch.bin``, ``best_epoch.bin``, ``epoch_N.bin``): the user continues that run with
``-r last_epoch.bin`` or starts over with ``--overwrite``, which first deletes the earlier run's
files of ours (those checkpoints, their evaluation tables, the 3DHP exports and score tables,
``training_curves.png``, the TensorBoard event files) and nothing else.

A training run (new, ``-r`` or ``--overwrite``) holds ``FolderLock`` on its folder from before
those checks to its end, so a second one started beside it stops at once, naming the first.
"""
import os
import re
import socket
import time
from pathlib import Path

try:
    import fcntl
except ImportError:          # Windows: no advisory file locks in Python's standard library
    fcntl = None

from common.core.errors import UserError
from common.run.training import BEST_CHECKPOINT, LAST_CHECKPOINT

RUN_STEMS = rf'({re.escape(Path(LAST_CHECKPOINT).stem)}|{re.escape(Path(BEST_CHECKPOINT).stem)}|epoch_\d+)'
CHECKPOINT_NAME = re.compile(RUN_STEMS + r'\.bin')
# Files an evaluation of those checkpoints writes (report.result_file_stem; main_3dhp's exports and
# the official scorer's tables), and the training curves.
RESULT_NAMES = [
    re.compile(RUN_STEMS + r'_H\d+_K\d+(_[\w.,+=-]*)?\.(csv|json)'),
    re.compile(r'inference_data_[PJ]_(Agg|Best)(_smooth\d+)?\.mat'),
    re.compile(r'mpii_3dhp_evaluation_(sequencewise|activitywise)_\w+_t\d+\.csv'),
    re.compile(r'training_curves\.png'),
]
TENSORBOARD_FOLDER = 'tensorboard'
LOCK_FILE = '.finepose.lock'
TENSORBOARD_EVENTS = re.compile(r'events\.out\.tfevents\..+')


def earlier_checkpoints(folder) -> list:
    """Our checkpoints in ``folder`` (sorted paths)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if CHECKPOINT_NAME.fullmatch(p.name) and p.is_file())


def run_files(folder) -> list:
    """Every file of ours a training run and its evaluations leave in ``folder``."""
    folder = Path(folder)
    files = earlier_checkpoints(folder)
    files += sorted(p for p in folder.iterdir() if p.is_file() and any(r.fullmatch(p.name) for r in RESULT_NAMES))
    events = folder / TENSORBOARD_FOLDER
    if events.is_dir():
        files += sorted(p for p in events.iterdir() if p.is_file() and TENSORBOARD_EVENTS.fullmatch(p.name))
    return files


def refuse_used_folder(folder, resuming: bool, overwrite: bool) -> list:
    """For a new run (not ``resuming``): the earlier run's checkpoints in ``folder``, to delete with
    ``delete_earlier_run`` when ``overwrite``; without it, they are a ``UserError`` naming them and
    the two ways forward, raised before anything in the folder changes."""
    found = [] if resuming else earlier_checkpoints(folder)
    if found and not overwrite:
        raise UserError(f'-c {folder} already holds checkpoints of an earlier run ({", ".join(p.name for p in found)}); '
                        f'continue that run with -r {LAST_CHECKPOINT}, or start over with --overwrite (deletes its '
                        'checkpoints and result files), or choose another -c')
    return found


def delete_earlier_run(folder) -> list:
    """Delete the files of ours an earlier run left in ``folder`` (``run_files``); returns them."""
    removed = run_files(folder)
    for path in removed:
        path.unlink()
    return removed


def _lock_write_failure(folder: Path, err: OSError) -> UserError:
    return UserError(f'-c {folder}: cannot write {LOCK_FILE}, the lock that keeps a second run out '
                     f'({err.strerror or err}); free some space or choose another -c')


class FolderLock:
    """The advisory lock (``fcntl.flock``) of a ``-c`` folder on its ``LOCK_FILE``, which also
    says who holds it (pid, host, start time, command). The operating system releases the lock
    when its process ends, however it ends: a killed run never blocks the next one. The file
    itself stays (deleting it could let two runs lock two different files), except in a folder
    it alone occupies (a run refused before its work): ``release`` deletes it there while still
    holding the lock, so that the folder is left as the run found it.

    ``acquire`` raises a ``UserError`` naming the holder when another process holds it. Where
    the file system or the platform offers no such lock, the run goes on unguarded and ``note``
    says so in one line.
    """

    def __init__(self, fd, note=None, path=None):
        self._fd = fd
        self.note = note
        self._path = path

    @classmethod
    def acquire(cls, folder, command: str) -> 'FolderLock':
        folder = Path(folder)
        if fcntl is None:
            return cls(None, f'-c {folder}: not locked against a second run (no advisory locks on this platform)')
        try:
            fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise _lock_write_failure(folder, err) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode('utf-8', 'replace').strip() or 'a process that is starting'
            os.close(fd)
            raise UserError(f'-c {folder} is in use by another training run ({holder}); wait for it to end, '
                            'or choose another -c') from None
        except OSError as err:          # e.g. ENOLCK on a network file system without locks
            os.close(fd)
            return cls(None, f'-c {folder}: not locked against a second run ({err.strerror or err})')
        started = time.strftime('%Y-%m-%d %H:%M:%S')
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f'pid {os.getpid()} on {socket.gethostname()}, since {started}: {command}'.encode(), 0)
        except OSError as err:          # a full disk: creating the empty file needed no space, its line does
            os.close(fd)
            raise _lock_write_failure(folder, err) from None
        return cls(fd, path=folder / LOCK_FILE)

    def release(self) -> None:
        """Release the lock (closing the file does), the holder's line erased first; the file is
        deleted first when it is all the folder holds."""
        if self._fd is None:
            return
        try:
            if os.listdir(self._path.parent) == [LOCK_FILE]:
                self._path.unlink()
            else:
                os.ftruncate(self._fd, 0)
        except OSError:         # the folder was removed meanwhile: nothing to tidy; the lock goes on closing
            pass
        finally:
            os.close(self._fd)
            self._fd = None

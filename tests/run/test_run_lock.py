"""One training run per -c folder at a time, with real processes: a second run into a held folder
stops in one line naming the holder; Ctrl-C ends the holder in one line (exit 130) with whole
files, and so does SIGTERM (exit 143); a run killed with SIGKILL leaves no lock behind; a full
disk when the lock is written is one line."""
import errno
import os
import re
import signal
import socket
import subprocess
import sys

import pytest

import main as h36m_main
from common.core.errors import UserError
from common.run.checkpoints import read_checkpoint
from common.run.run_folder import LOCK_FILE, FolderLock
from support.runs import DATA_FLAGS, REPO_ROOT, TINY_RUN_FLAGS

ENV = {'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin', 'PYTHONPATH': str(REPO_ROOT)}
# Four steps an epoch, no validation: each epoch is a fraction of a second; the run ends only if
# the test fails to stop it.
LONG_RUN = ['-b', '20', '--no-eval', '--nolog', '-e', '400']
# The line of a stopped training run: epoch, step, the checkpoint kept, its epoch, the -c to resume.
INTERRUPTED_LINE = re.compile(r'interrupted at epoch (\d+) (step \d+|after its last step); (.+) holds epoch (\d+); '
                              r'resume with -c (.+) -r last_epoch\.bin\n')


def _start_training(folder, dataset):
    """main.py training in its own process; returns it once it has printed its second epoch's line
    (so last_epoch.bin holds epoch 1 at least: an epoch's line comes before its checkpoints)."""
    process = subprocess.Popen([sys.executable, '-u', 'main.py', '--data-dir', str(dataset), '-c', str(folder),
                                *DATA_FLAGS, *TINY_RUN_FLAGS, *LONG_RUN], cwd=REPO_ROOT, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stdout:
        if line.startswith('[2] time'):
            return process
    process.wait()
    pytest.fail(f'the training process ended before its second epoch: {process.stderr.read()[-2000:]}')


def _acquire_and_release(folder):
    FolderLock.acquire(folder, 'test').release()


def test_second_run_is_refused_and_ctrl_c_ends_the_first_cleanly(tiny_dataset, tmp_path, capsys):
    first = _start_training(tmp_path, tiny_dataset)
    try:
        with pytest.raises(SystemExit) as exit_info:        # side by side, as -r last_epoch.bin
            h36m_main.main(['--data-dir', str(tiny_dataset), '-c', str(tmp_path), *DATA_FLAGS, *TINY_RUN_FLAGS,
                            '-r', 'last_epoch.bin', '-e', '3', '--no-eval'])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.count('\n') == 1 and err.startswith(
            f'error: -c {tmp_path} is in use by another training run (pid {first.pid} on {socket.gethostname()}, since ')
        assert f'main.py --data-dir {tiny_dataset} -c {tmp_path} ' in err and '-e 400); wait for it to end' in err
        first.send_signal(signal.SIGINT)
        _, stderr = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 130, stderr
    line = INTERRUPTED_LINE.fullmatch(stderr)
    assert line, stderr
    assert line[3] == str(tmp_path / 'last_epoch.bin') and line[5] == str(tmp_path)
    assert int(line[4]) == int(line[1]) - 1 == read_checkpoint(tmp_path / 'last_epoch.bin')['epoch']
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith('.tmp')]
    assert (tmp_path / LOCK_FILE).read_text() == ''            # released: the holder's line erased
    _acquire_and_release(tmp_path)


def test_sigterm_ends_training_as_ctrl_c_does(tiny_dataset, tmp_path):
    """What a scheduler (SLURM at its time limit, a preemption) or a plain kill sends ended the run
    without a word; now the same line as Ctrl-C, what is kept and how to resume, exit 143, and the
    run resumes from the epoch it names."""
    folder = tmp_path / 'run folder'
    process = _start_training(folder, tiny_dataset)
    try:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    line = INTERRUPTED_LINE.fullmatch(stderr)
    assert line and line[3] == str(folder / 'last_epoch.bin') and line[5] == f"'{folder}'", stderr
    assert int(line[4]) == int(line[1]) - 1 == read_checkpoint(folder / 'last_epoch.bin')['epoch']
    assert not [p.name for p in folder.iterdir() if p.name.endswith('.tmp')]


def test_a_full_disk_when_writing_the_lock_is_one_line(tiny_dataset, tmp_path, capsys, monkeypatch):
    """Creating the empty lock file needs no space (the write check passes too), writing the
    holder's line into it does: that was an OSError traceback."""
    import common.run.run_folder as run_folder

    def full_disk(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(run_folder.os, 'pwrite', full_disk)
    with pytest.raises(SystemExit) as exit_info:
        h36m_main.main(['--data-dir', str(tiny_dataset), '-c', str(tmp_path), *DATA_FLAGS, *TINY_RUN_FLAGS, '-e', '1'])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (f'error: -c {tmp_path}: cannot write .finepose.lock, the lock that keeps a '
                                       'second run out (No space left on device); free some space or choose another '
                                       '-c\n')
    monkeypatch.undo()
    _acquire_and_release(tmp_path)          # the lock was given up


def test_a_killed_holder_leaves_no_lock(tmp_path):
    holder = subprocess.Popen([sys.executable, '-c', 'import sys, time\n'
                               'from common.run.run_folder import FolderLock\n'
                               'FolderLock.acquire(sys.argv[1], "python holder.py")\n'
                               'print("held", flush=True)\ntime.sleep(120)', str(tmp_path)],
                              cwd=REPO_ROOT, env=ENV, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == 'held\n'
        with pytest.raises(UserError, match=rf'is in use by another training run \(pid {holder.pid} on .*: '
                                            r'python holder\.py\); wait for it to end, or choose another -c$'):
            _acquire_and_release(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert holder.returncode == -signal.SIGKILL
    assert (tmp_path / LOCK_FILE).read_text().startswith(f'pid {holder.pid} ')    # its line stays; the lock went
    _acquire_and_release(tmp_path)


def test_without_advisory_locks_the_run_says_so(tmp_path, monkeypatch):
    import common.run.run_folder as run_folder
    monkeypatch.setattr(run_folder, 'fcntl', None)
    lock = FolderLock.acquire(tmp_path, 'x')
    assert lock.note == f'-c {tmp_path}: not locked against a second run (no advisory locks on this platform)'
    lock.release()
    assert not os.path.exists(tmp_path / LOCK_FILE)

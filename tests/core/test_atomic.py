"""Atomic writes fail in one line: under a regular file or on a read-only file system the clean-up
of the temporary file never raises over the write error (results, exports, renders, checkpoints)."""
import errno
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from common.core import atomic
from common.core.errors import UserError
from common.core.output_paths import check_output_file
from common.run.checkpoints import atomic_torch_save


def _write_result(path):
    atomic.write_text_atomic(path, 'action,mpjpe\n')


def _write_export(path):
    with atomic.atomic_output(path) as f:
        np.save(f, np.zeros((2, 17, 3), np.float32))


def _write_render(path):
    with atomic.atomic_path(path) as tmp:
        Path(tmp).write_bytes(b'GIF89a')


def _write_checkpoint(path):
    atomic_torch_save({'weights': torch.zeros(3)}, path)


WRITERS = [_write_result, _write_export, _write_render, _write_checkpoint]


@pytest.mark.parametrize('write', WRITERS)
def test_a_path_under_a_regular_file_is_one_line(tmp_path, write):
    blocker = tmp_path / 'a_file'
    blocker.write_text('keep')
    with pytest.raises(UserError) as error:
        write(blocker / 'x.bin')
    assert str(error.value) == f'cannot write {blocker / "x.bin"}: {blocker} is a file, not a folder'
    assert blocker.read_text() == 'keep' and os.listdir(tmp_path) == ['a_file']


def _read_only(*args, **kwargs):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS))


@pytest.mark.parametrize('write', WRITERS)
@pytest.mark.parametrize('failing', ['create', 'rename'])
def test_a_read_only_file_system_is_one_line(tmp_path, monkeypatch, write, failing):
    """Tests may run as root, where chmod stops no write: the file system's refusal is simulated,
    for the temporary file's creation or the final rename, and for the clean-up's unlink alike."""
    path = tmp_path / 'x.bin'
    if failing == 'create':
        monkeypatch.setattr(atomic.os, 'open', _read_only)
        monkeypatch.setattr(Path, 'write_bytes', _read_only)        # the render writer opens by name
        monkeypatch.setattr(torch, 'save', lambda obj, f: _read_only())
    else:
        monkeypatch.setattr(atomic.os, 'replace', _read_only)
    real_unlink = Path.unlink
    unlinked = []

    def unlink_refused(self, missing_ok=False):
        unlinked.append(self)
        if failing == 'rename':
            real_unlink(self, missing_ok)             # the written temporary file still goes
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))
    monkeypatch.setattr(Path, 'unlink', unlink_refused)
    with pytest.raises(UserError) as error:
        write(path)
    assert str(error.value) == f'cannot write {path}: Read-only file system'
    assert len(unlinked) == 1 and os.listdir(tmp_path) == []


def test_check_writable_names_the_file_in_the_way(tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    with pytest.raises(UserError) as error:
        atomic.check_writable(blocker, '-c')
    assert str(error.value) == f'-c {blocker} is a file, expected a folder'
    with pytest.raises(UserError) as error:
        atomic.check_writable(blocker / 'run' / 'deeper', '-c')
    assert str(error.value) == f'-c {blocker / "run" / "deeper"}: {blocker} is a file, expected a folder'
    assert atomic.check_writable(tmp_path / 'new' / 'run', '-c').is_dir()


LONGEST = 255           # NAME_MAX of the file systems tests run on (ext4, XFS, Btrfs, tmpfs, overlayfs, APFS)


@pytest.mark.parametrize('write', WRITERS)
@pytest.mark.parametrize('suffix', ['.bin', '.gif', 'é.gif'])
def test_a_name_of_the_longest_legal_length_is_written_and_its_leftover_recognised(tmp_path, monkeypatch, write,
                                                                                   suffix):
    """A temporary name added 22 bytes to the final one: a long legal name failed with 'File name
    too long' (an export after sampling, a result table after the whole evaluation). Now the name
    within the temporary one is cut short; a killed writer's leftover is still ours to clean up."""
    assert atomic.name_limit(tmp_path) == LONGEST
    name = 'ü' * ((LONGEST - len(suffix.encode())) // 2) + suffix          # two bytes a character
    name = 'x' * (LONGEST - len(name.encode())) + name
    path = tmp_path / name
    assert len(name.encode()) == LONGEST
    write(path)
    assert os.listdir(tmp_path) == [name]
    temporaries = []
    real_replace = atomic.os.replace

    def killed_before_the_rename(source, target):
        temporaries.append(Path(source))
        raise KeyboardInterrupt
    monkeypatch.setattr(atomic.os, 'replace', killed_before_the_rename)
    monkeypatch.setattr(atomic, '_remove_quietly', lambda tmp: None)       # as if killed: the leftover stays
    with pytest.raises(KeyboardInterrupt):
        write(path)
    monkeypatch.setattr(atomic.os, 'replace', real_replace)
    leftover, = temporaries
    assert leftover.is_file() and len(os.fsencode(leftover.name)) <= LONGEST
    assert leftover.name.startswith('.x') and leftover.name.endswith('.tmp' + (Path(name).suffix
                                                                                 if write is _write_render else ''))
    assert atomic.remove_stale_temporaries(tmp_path, older_than_s=-1) == [leftover]
    assert os.listdir(tmp_path) == [name]


def test_a_name_longer_than_the_file_system_allows_is_refused_first(tmp_path):
    path = tmp_path / ('x' * LONGEST + '.npy')
    with pytest.raises(UserError) as error:
        check_output_file(path, '--viz-export', ('.npy',))
    assert str(error.value) == (f'--viz-export {path}: the file name is 259 bytes long, longer than the file system '
                                'allows (255); choose a shorter name')
    assert os.listdir(tmp_path) == []


def test_missing_folders_are_removed_again_only_while_empty(tmp_path):
    created = atomic.missing_folders(tmp_path / 'a' / 'b' / 'c')
    assert created == [tmp_path / 'a' / 'b' / 'c', tmp_path / 'a' / 'b', tmp_path / 'a']
    (tmp_path / 'a' / 'b' / 'c').mkdir(parents=True)
    (tmp_path / 'a' / 'kept.txt').write_text('')
    atomic.remove_empty_folders(created)
    assert sorted(p.name for p in (tmp_path / 'a').iterdir()) == ['kept.txt']

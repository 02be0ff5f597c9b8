"""Output files checked before the work that fills them: a known extension, a name the file system
takes, and a folder that takes files.

A long run (sampling, detection, scoring) must not end in a write error that could have been seen
at its start: each command checks its output names with ``check_output_file`` first.
"""
from pathlib import Path

from common.core.atomic import check_name_length, check_writable, file_in_the_way
from common.core.errors import UserError


def suffix_list(suffixes) -> str:
    """'.gif, .mp4 or .png' of a table or sequence of suffixes."""
    suffixes = list(suffixes)
    return suffixes[0] if len(suffixes) == 1 else f'{", ".join(suffixes[:-1])} or {suffixes[-1]}'


def check_output_file(path, flag: str, suffixes=None) -> Path:
    """Raise a one-line ``UserError`` naming ``flag`` unless ``path`` can be written later.

    suffixes: the allowed extensions, lower case with the dot (a tuple, or a table keyed by them);
    None: any. A name longer than the file system allows is refused (``check_name_length``). The
    folder is created if needed and a file is written and removed there
    (``common.core.atomic.check_writable``); a path that is a folder is refused.
    """
    path = Path(path)
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise UserError(f'{flag} {path}: expected a file name ending in {suffix_list(suffixes)}')
    check_name_length(path, flag)
    if path.is_dir():
        raise UserError(f'{flag} {path}: is a folder; expected a file name')
    blocking = file_in_the_way(path.parent)
    if blocking is not None:
        raise UserError(f'{flag} {path}: {blocking} is a file, expected a folder')
    check_writable(path.parent, flag)
    return path

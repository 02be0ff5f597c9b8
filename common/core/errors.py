"""User-facing errors, Ctrl-C and SIGTERM.

A ``UserError`` is a mistake in the user's input (a missing file, a wrong key, a bad flag).
Entry points print its message on one line and exit with ``EXIT_USER_ERROR``, without a
traceback; anything else is a bug and keeps its traceback. Ctrl-C (``KeyboardInterrupt``, or an
``Interrupted`` that says what was kept) is one line too, with the shell's ``EXIT_INTERRUPTED``.
SIGTERM (a cluster scheduler's time limit or preemption, a plain ``kill``) is handled as Ctrl-C
(``Terminated``, raised where the program is): the same line, and ``EXIT_TERMINATED``.
"""
import contextlib
import io
import os
import signal
import sys
import threading
from contextlib import contextmanager

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130        # 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C
EXIT_TERMINATED = 128 + signal.SIGTERM      # 143: what a shell reports for a command ended by SIGTERM
INTERRUPTED_LINE = 'interrupted ({}); no file is left half-written'


class UserError(Exception):
    """A one-line, actionable message about bad input: names the file, key or flag and what was expected.

    ``silent``: the same error is said by torchrun's rank 0 (``said_by_rank_zero``); this process exits quietly.
    """
    silent = False


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as Ctrl-C's ``KeyboardInterrupt`` is, so that every handler of Ctrl-C (the
    training's line saying what was kept, the atomic writes' cleanup) handles it too."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM, with the one line that says where, what was kept and how to continue (an
    empty message prints nothing: the other processes of a torchrun run leave the saying to rank 0).

    ``exit_code``: ``EXIT_TERMINATED`` after SIGTERM, else ``EXIT_INTERRUPTED`` (``interruption_exit_code``).
    """

    def __init__(self, message: str = '', exit_code: int = EXIT_INTERRUPTED):
        super().__init__(message)
        self.exit_code = exit_code


def interruption_exit_code(err: KeyboardInterrupt) -> int:
    return EXIT_TERMINATED if isinstance(err, Terminated) else EXIT_INTERRUPTED


def _raise_terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)        # a second SIGTERM ends the process at once
    raise Terminated()


@contextmanager
def _sigterm_as_ctrl_c():
    """SIGTERM raises ``Terminated`` inside the block (only the main thread can take signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def is_secondary_rank(environ=os.environ) -> bool:
    """A torchrun process other than rank 0 (torchrun sets ``WORLD_SIZE`` and ``RANK`` in each
    process it starts; ``common.run.devices`` reads them alike)."""
    try:
        return int(environ.get('WORLD_SIZE', '1')) > 1 and int(environ.get('RANK', '0')) != 0
    except ValueError:
        return False


@contextmanager
def said_by_rank_zero():
    """Errors of the block that every torchrun process meets alike (bad flags: all parse the same
    command line) are said once: by rank 0. The other processes print nothing (argparse's usage
    and error lines included) and exit with the same code."""
    if not is_secondary_rank():
        yield
        return
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    except UserError as err:
        err.silent = True
        raise


@contextmanager
def exit_on_user_error():
    """Turn a ``UserError`` raised inside the block into ``error: <message>`` on stderr and exit 2,
    Ctrl-C into ``Interrupted``'s line (or 'interrupted (Ctrl-C)') and exit 130, and SIGTERM, for
    the block's duration, into the same line and exit 143. Every file is written atomically
    (``common.core.atomic``), so an interrupted run leaves none half-written."""
    try:
        with _sigterm_as_ctrl_c():
            yield
    except UserError as err:
        if not err.silent:
            print(f'error: {err}', file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except Interrupted as err:
        if str(err):
            print(err, file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt as err:
        print(INTERRUPTED_LINE.format('SIGTERM' if isinstance(err, Terminated) else 'Ctrl-C'), file=sys.stderr)
        sys.exit(interruption_exit_code(err))

"""User-facing errors, and Ctrl-C.

A ``UserError`` is a mistake in the user's input (a missing file, a wrong key, a bad flag).
Entry points print its message on one line and exit with ``EXIT_USER_ERROR``, without a
traceback; anything else is a bug and keeps its traceback. Ctrl-C (``KeyboardInterrupt``, or an
``Interrupted`` that says what was kept) is one line too, with the shell's ``EXIT_INTERRUPTED``.
"""
import sys
from contextlib import contextmanager

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130        # 128 + SIGINT: what a shell reports for a command stopped by Ctrl-C


class UserError(Exception):
    """A one-line, actionable message about bad input: names the file, key or flag and what was expected."""


class Interrupted(Exception):
    """Ctrl-C, with the one line that says where, what was kept and how to continue (an empty
    message prints nothing: the other processes of a torchrun run leave the saying to rank 0)."""


@contextmanager
def exit_on_user_error():
    """Turn a ``UserError`` raised inside the block into ``error: <message>`` on stderr and exit 2,
    and Ctrl-C into ``Interrupted``'s line (or 'interrupted') and exit 130. Every file is written
    atomically (``common.core.atomic``), so an interrupted run leaves none half-written."""
    try:
        yield
    except UserError as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except (Interrupted, KeyboardInterrupt) as err:
        message = str(err) if isinstance(err, Interrupted) else 'interrupted (Ctrl-C); no file is left half-written'
        if message:
            print(message, file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)

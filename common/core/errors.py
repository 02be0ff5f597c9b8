"""User-facing errors.

A ``UserError`` is a mistake in the user's input (a missing file, a wrong key, a bad flag).
Entry points print its message on one line and exit with ``EXIT_USER_ERROR``, without a
traceback; anything else is a bug and keeps its traceback.
"""
import sys
from contextlib import contextmanager

EXIT_USER_ERROR = 2


class UserError(Exception):
    """A one-line, actionable message about bad input: names the file, key or flag and what was expected."""


@contextmanager
def exit_on_user_error():
    """Turn a ``UserError`` raised inside the block into ``error: <message>`` on stderr and exit 2."""
    try:
        yield
    except UserError as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)

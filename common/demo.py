"""``python -m common.demo``: runs ``common.run.demo`` as the main module."""
import runpy

from common.core.errors import exit_on_user_error

if __name__ == '__main__':
    with exit_on_user_error():          # Ctrl-C while the modules load: one line, exit 130
        runpy.run_module('common.run.demo', run_name='__main__', alter_sys=True)

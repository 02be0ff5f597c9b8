"""``python -m common.synthetic``: runs ``common.synthetic.writer`` as the main module."""
import runpy

from common.core.errors import exit_on_user_error

with exit_on_user_error():          # Ctrl-C while the modules load: one line, exit 130
    runpy.run_module('common.synthetic.writer', run_name='__main__', alter_sys=True)

"""``python -m common.keypoints``: runs ``common.data.keypoints`` as the main module."""
import runpy

from common.core.errors import exit_on_user_error

if __name__ == '__main__':
    with exit_on_user_error():          # Ctrl-C while the modules load: one line, exit 130
        runpy.run_module('common.data.keypoints', run_name='__main__', alter_sys=True)

"""``python -m common.mpi_inf_3dhp``: runs ``common.data.mpi_inf_3dhp`` as the main module."""
import runpy

from common.core.errors import exit_on_user_error

if __name__ == '__main__':
    with exit_on_user_error():          # Ctrl-C while the modules load: one line, exit 130
        runpy.run_module('common.data.mpi_inf_3dhp', run_name='__main__', alter_sys=True)

"""``python -m common.mpi_inf_3dhp``: runs ``common.data.mpi_inf_3dhp`` as the main module."""
import runpy

if __name__ == '__main__':
    runpy.run_module('common.data.mpi_inf_3dhp', run_name='__main__', alter_sys=True)

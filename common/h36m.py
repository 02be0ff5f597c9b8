"""``python -m common.h36m``: runs ``common.data.h36m_release`` as the main module."""
import runpy

if __name__ == '__main__':
    runpy.run_module('common.data.h36m_release', run_name='__main__', alter_sys=True)

"""``python -m common.demo``: runs ``common.run.demo`` as the main module."""
import runpy

if __name__ == '__main__':
    runpy.run_module('common.run.demo', run_name='__main__', alter_sys=True)

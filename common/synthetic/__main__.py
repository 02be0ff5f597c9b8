"""``python -m common.synthetic``: runs ``common.synthetic.writer`` as the main module."""
import runpy

runpy.run_module('common.synthetic.writer', run_name='__main__', alter_sys=True)

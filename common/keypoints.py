"""``python -m common.keypoints``: runs ``common.data.keypoints`` as the main module."""
import runpy

if __name__ == '__main__':
    runpy.run_module('common.data.keypoints', run_name='__main__', alter_sys=True)

"""FinePOSE: fine-grained prompt-driven 3D human pose estimation with diffusion models.

The library is layered: core, data, synthetic, model, evaluation, run, each importing only from the
ones before it. The ``python -m`` commands are the modules directly in ``common/`` (``python -m
common.keypoints`` is ``common/keypoints.py``) and a layer's ``__main__.py`` (``python -m
common.synthetic``; it imports as its layer does). A command holds its command line (its argparse
parser, the checks of its flags) and ``main()``, run under ``if __name__ == '__main__'``. No layer
module has such a block, nor builds an argparse parser except ``common/run/arguments.py`` (the flags of
``main.py`` and ``main_3dhp.py``); nothing in ``common/`` imports those two scripts or a command
(``tests/project/test_layout.py`` checks these rules).

Importing the package (before torch) lets PyTorch's CPU allocator back tensors of 2 MB and
more with transparent huge pages (``THP_MEM_ALLOC_ENABLE``, read once at torch's first
allocation). A 243-frame activation is 34 MB; with 4 KB pages every such tensor costs ~8,000
page faults, which made CPU sampling ~20% slower. Results are unchanged; set the variable to 0
to opt out.
"""
import os

os.environ.setdefault('THP_MEM_ALLOC_ENABLE', '1')

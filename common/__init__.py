"""FinePOSE: fine-grained prompt-driven 3D human pose estimation with diffusion models.

Importing the package (before torch) lets PyTorch's CPU allocator back tensors of 2 MB and
more with transparent huge pages (``THP_MEM_ALLOC_ENABLE``, read once at torch's first
allocation). A 243-frame activation is 34 MB; with 4 KB pages every such tensor costs ~8,000
page faults, which made CPU sampling ~20% slower. Results are unchanged; set the variable to 0
to opt out.
"""
import os

os.environ.setdefault('THP_MEM_ALLOC_ENABLE', '1')

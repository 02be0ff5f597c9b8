"""The synthetic Human3.6M / MPI-INF-3DHP datasets in the real files' layouts: bodies, motions, writer;
``python -m common.synthetic`` writes them.

May import: common.core, common.data and itself.
"""

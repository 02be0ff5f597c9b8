"""Data on disk and in memory: Human3.6M and MPI-INF-3DHP files, cameras, skeletons, sequences,
training clips, custom 2D keypoints (formats, tracks, detector) and video files.

May import: common.core and itself.
"""

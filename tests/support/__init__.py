"""Helpers that test files share (imported as ``support.X``; pytest.ini puts ``tests/`` on the path).

* ``runs``: the repository root and the flags of tiny end-to-end runs of the entry points.
* ``models``: tiny model configurations and how two trainings' weight updates are compared.
* ``checkpoint_damage``: a saved checkpoint damaged as a bad disk would.
* ``bvh``: a predicted-looking motion and what forward kinematics of its BVH must give (numpy only).
* ``bvh_reading``: a written BVH read back with bvhio.
* ``releases``: tiny files in the formats of the official dataset releases.
* ``keypoint_files``: detector keypoints written in a format's own joint order and results layout.

The pytest fixtures stay in ``tests/conftest.py``; a test file never imports another test file.
"""

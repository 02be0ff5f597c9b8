"""Blender's own BVH importer reads ``--viz-export``'s .bvh: the armature follows the prediction within 1 mm.

Blender as a Python module (``bpy`` from PyPI, Python 3.11) gets its own environment, without
torch; the exporter and the motion need only numpy and scipy. Skipped where bpy is absent:

    python3.11 -m venv venv-bpy && venv-bpy/bin/pip install bpy numpy scipy pytest
    venv-bpy/bin/python -m pytest -q --noconftest tests/run/test_bvh_blender.py
"""
import numpy as np
import pytest

from common.data.skeleton import H36M_17
from common.run.bvh_export import bvh_name, write_bvh
from support.bvh import FPS, FRAMES, expected_joints_cm, predicted_motion

bpy = pytest.importorskip('bpy')

FRAMES_CHECKED = (0, 9, 17, 29)
FIRST_BLENDER_FRAME = 1
M_PER_CM = 0.01                 # the importer's global_scale: one Blender unit per metre
MM_PER_M = 1000.0
# The importer's axis conversion for axis_forward='-Z', axis_up='Y' (its defaults): Blender is Z up.
BLENDER_FROM_BVH = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
TOLERANCE_MM = 1.0


def test_blender_poses_the_armature_on_the_predicted_joints(tmp_path):
    poses, trajectory = predicted_motion()
    path = tmp_path / 'greeting.bvh'
    write_bvh(path, poses, H36M_17, FPS, trajectory, 'estimated')
    bpy.ops.wm.read_factory_settings(use_empty=True)
    assert bpy.ops.import_anim.bvh(filepath=str(path), global_scale=M_PER_CM, frame_start=FIRST_BLENDER_FRAME,
                                   update_scene_fps=True, rotate_mode='NATIVE', axis_forward='-Z',
                                   axis_up='Y') == {'FINISHED'}
    scene = bpy.context.scene
    armature, = (o for o in scene.objects if o.type == 'ARMATURE')
    names = [bvh_name(name) for name in H36M_17.joint_names]
    assert [bone.name for bone in armature.pose.bones] == names
    assert scene.render.fps / scene.render.fps_base == FPS
    assert tuple(armature.animation_data.action.frame_range) == (FIRST_BLENDER_FRAME, FIRST_BLENDER_FRAME + FRAMES - 1)
    expected_m = expected_joints_cm(poses, trajectory) @ BLENDER_FROM_BVH.T * M_PER_CM
    for frame in FRAMES_CHECKED:
        scene.frame_set(FIRST_BLENDER_FRAME + frame)
        heads = np.array([list(armature.matrix_world @ armature.pose.bones[name].head) for name in names])
        error_mm = np.linalg.norm(heads - expected_m[frame], axis=-1) * MM_PER_M
        assert error_mm.max() < TOLERANCE_MM, (frame, error_mm.max())

"""``--viz-export NAME.bvh``: the BVH read back with bvhio (a maintained BVH library) reproduces the prediction.

Forward kinematics of the file must put every joint within 1 mm of the prediction with each bone
at its median length (``support.bvh.expected_joints_cm``, written independently of the
exporter), on every frame; the header, the rest pose, the channels and the twist rule are
checked against known values.
"""
import re

import bvhio
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from common.core.errors import UserError
from common.data.skeleton import H36M_17
from common.run import bvh_export
from common.run.pose_export import check_export_path, export_poses
from support.bvh import FPS, FRAMES, MM_PER_CM, expected_joints_cm, predicted_motion
from support.bvh_reading import BVH_NAMES, forward_kinematics_cm
from support.runs import REPO_ROOT

TOLERANCE_MM = 1.0
TRANSLATED = {'Hip', 'RHip', 'LHip', 'LShoulder', 'RShoulder'}      # root and the side children of the twist rule


def bvh_joints(path) -> dict:
    """{name: (parent name or None, bvhio BvhJoint)} in the file's (depth-first) order."""
    joints = {}

    def visit(joint, parent):
        joints[joint.Name] = (parent, joint)
        for child in joint.Children:
            visit(child, joint.Name)
    visit(bvhio.readAsBvh(str(path)).Root, None)
    return joints


def motion_by_joint(path) -> dict:
    """{name: (frames, channels) array}: the MOTION numbers split by joint, in the file's channel order."""
    text = path.read_text()
    rows = np.loadtxt(text[text.index('Frame Time:'):].splitlines()[1:], ndmin=2)
    split, start = {}, 0
    for name, (_, joint) in bvh_joints(path).items():
        split[name], start = rows[:, start:start + len(joint.Channels)], start + len(joint.Channels)
    assert start == rows.shape[1]
    return split


@pytest.mark.parametrize('with_trajectory', [True, False])
def test_forward_kinematics_of_the_file_is_the_rescaled_prediction(tmp_path, with_trajectory):
    poses, trajectory = predicted_motion()
    trajectory = trajectory if with_trajectory else None
    path = tmp_path / 'greeting.bvh'
    line = export_poses(path, poses, H36M_17, FPS, trajectory, 'estimated')
    expected = expected_joints_cm(poses, trajectory)
    error_mm = np.linalg.norm(forward_kinematics_cm(path) - expected, axis=-1) * MM_PER_CM
    assert error_mm.shape == (FRAMES, 17) and error_mm.max() < TOLERANCE_MM, error_mm.max()
    # The rescaling is real: the jittered prediction itself is centimetres away from it.
    raw = poses * [1, -1, -1] * 100 + expected[:, :1]
    assert np.linalg.norm(raw - expected, axis=-1).max() > 2.0
    moved = re.search(r'joints moved by up to ([\d.]+) cm', line)
    assert moved and float(moved.group(1)) == pytest.approx(np.linalg.norm(raw - expected, axis=-1).max(), abs=0.05)
    where = 'root moving along the estimated trajectory' if with_trajectory else 'root fixed at the origin'
    assert line.startswith(f'Wrote {path}: BVH animation, {FRAMES} frames at 50 fps, 17 joints') and where in line
    assert 'centimetres, Y up' in line


def test_header_hierarchy_channels_and_rest_pose(tmp_path):
    poses, trajectory = predicted_motion('Walking', seed=1)
    path = tmp_path / 'walking.bvh'
    bvh_export.write_bvh(path, poses, H36M_17, 25.0, trajectory)
    container = bvhio.readAsBvh(str(path))
    assert container.FrameCount == FRAMES and container.FrameTime == pytest.approx(1 / 25.0, abs=1e-9)
    joints = bvh_joints(path)
    assert list(joints) == BVH_NAMES                   # depth first, in H36M_17's order
    assert [joints[n][0] for n in BVH_NAMES] == [None if p < 0 else BVH_NAMES[p] for p in H36M_17.parents]
    for name, (_, joint) in joints.items():
        rotations = ['Zrotation', 'Xrotation', 'Yrotation']
        assert joint.Channels == (['Xposition', 'Yposition', 'Zposition'] if name in TRANSLATED else []) + rotations
    assert {name: m.shape for name, m in motion_by_joint(path).items()} == {
        name: (FRAMES, 6 if name in TRANSLATED else 3) for name in BVH_NAMES}
    # T-pose offsets, centimetres: bones at their median predicted length, legs down, left arm to +x.
    length = np.median(np.linalg.norm(poses[:, 2] - poses[:, 1], axis=-1)) * 100
    np.testing.assert_allclose(np.array(joints['RKnee'][1].Offset), [0, -length, 0], atol=1e-5)
    length = np.median(np.linalg.norm(poses[:, 12] - poses[:, 11], axis=-1)) * 100
    np.testing.assert_allclose(np.array(joints['LElbow'][1].Offset), [length, 0, 0], atol=1e-5)
    assert np.array(joints['Hip'][1].Offset).tolist() == [0, 0, 0]


def _rest_pose_cm(lengths_cm) -> np.ndarray:
    """(17, 3) the T-pose of the rig with these bone lengths, BVH frame, root at 0."""
    rest = np.zeros((17, 3))
    for joint, parent in enumerate(H36M_17.parents):
        if parent >= 0:
            direction = bvh_export.H36M_RIG.rest_directions[H36M_17.joint_names[joint]]
            rest[joint] = rest[parent] + lengths_cm[joint] * np.asarray(direction)
    return rest


def test_the_rest_pose_turned_about_the_vertical_is_one_root_rotation(tmp_path):
    """Known values: every local rotation zero but the root's Yrotation, the hips at their offsets."""
    lengths = np.linspace(8.0, 40.0, 17)
    yaw = np.linspace(-170.0, 170.0, 5)
    turns = Rotation.from_euler('y', np.repeat(yaw, 17)[:, None], degrees=True)
    bvh = turns.apply(np.tile(_rest_pose_cm(lengths), (5, 1)))
    poses_m = bvh.reshape(5, 17, 3) * [1, -1, -1] / 100
    path = tmp_path / 'rest.bvh'
    bvh_export.write_bvh(path, poses_m, H36M_17, 10.0)
    motion, joints = motion_by_joint(path), bvh_joints(path)
    np.testing.assert_allclose(motion['Hip'], np.stack([0 * yaw, 0 * yaw, 0 * yaw, 0 * yaw, 0 * yaw, yaw], 1),
                               atol=1e-5)                                # at the origin, turned about y only
    for name in BVH_NAMES[1:]:
        channels = motion[name]
        np.testing.assert_allclose(channels[:, -3:], 0, atol=1e-5)       # no local rotation
        if name in TRANSLATED:                                          # placed exactly at the rest offset
            np.testing.assert_allclose(channels[:, :3], np.tile(joints[name][1].Offset, (5, 1)), atol=1e-5)
    assert joints['RHip'][1].Offset[0] == pytest.approx(-lengths[1], abs=1e-6)


def test_twist_rule_follows_the_hips_when_the_spine_stays_vertical(tmp_path):
    """The pelvis's turn about the spine comes from the right -> left hip line: a pose whose hips
    alone turn by 30 degrees about the vertical gives the root a 30-degree Yrotation."""
    rest = _rest_pose_cm(np.full(17, 20.0))
    turned = rest.copy()
    turned[[1, 2, 3, 4, 5, 6]] = Rotation.from_euler('y', 30, degrees=True).apply(rest[[1, 2, 3, 4, 5, 6]])
    path = tmp_path / 'twist.bvh'
    bvh_export.write_bvh(path, turned[None] * [1, -1, -1] / 100, H36M_17, 10.0)
    np.testing.assert_allclose(motion_by_joint(path)['Hip'][0, 3:], [0, 0, 30], atol=1e-5)


def test_vectorised_alignment_is_scipys_align_vectors():
    rng = np.random.default_rng(0)
    predicted, rest = rng.normal(size=(50, 2, 3)), rng.normal(size=(2, 3))
    for count in (1, 2):
        ours = bvh_export._aligning_rotations(predicted[:, :count], rest[:count])
        scipy_ = Rotation.concatenate([Rotation.align_vectors(frame, rest[:count], [np.inf, 1][:count])[0]
                                       for frame in predicted[:, :count]])
        assert (ours.inv() * scipy_).magnitude().max() < 1e-9
    # Degenerate frames: the primary bone reversed, or the side line along it: still exact.
    predicted[0, 0], predicted[1, 1] = -2 * rest[0], 3 * predicted[1, 0]
    aligned = bvh_export._aligning_rotations(predicted[:2], rest).apply(rest[0])
    np.testing.assert_allclose(aligned / np.linalg.norm(rest[0]),
                               predicted[:2, 0] / np.linalg.norm(predicted[:2, 0], axis=-1, keepdims=True), atol=1e-9)


def test_the_rig_covers_the_skeleton():
    rig, children = bvh_export.H36M_RIG, bvh_export._children(H36M_17.parents)
    names = H36M_17.joint_names
    assert set(rig.rest_directions) == {n for n, p in zip(names, H36M_17.parents) if p >= 0}
    assert set(rig.end_sites) == {names[j] for j in range(17) if not children[j]}
    assert set(rig.twist) == {names[j] for j in range(17) if len(children[j]) > 1}
    np.testing.assert_allclose(np.linalg.norm(list(rig.rest_directions.values()), axis=-1), 1.0)


def test_bad_paths_and_degenerate_poses_are_one_line_errors(tmp_path):
    with pytest.raises(UserError, match=r'^--viz-export .*dance\.txt: expected a file name ending in \.npy or \.bvh$'):
        check_export_path(tmp_path / 'dance.txt')
    (tmp_path / 'a_file').write_text('')
    with pytest.raises(UserError, match=r'^--viz-export .*a_file is a file, expected a folder$'):
        check_export_path(tmp_path / 'a_file' / 'dance.bvh')
    poses, _ = predicted_motion()
    with pytest.raises(UserError, match=r'^cannot write .*dance\.bvh: .*a_file is a file, not a folder$'):
        bvh_export.write_bvh(tmp_path / 'a_file' / 'dance.bvh', poses, H36M_17, FPS)
    poses[7, 10] = poses[7, 9]
    with pytest.raises(UserError, match=r'dance\.bvh: frame 7: the predicted Head lies on Neck/Nose'):
        bvh_export.write_bvh(tmp_path / 'dance.bvh', poses, H36M_17, FPS)
    assert list(tmp_path.iterdir()) == [tmp_path / 'a_file']


def test_the_readme_says_what_forward_kinematics_reproduces():
    """The README said the file's forward kinematics 'is the prediction' within 1 mm; that holds for
    the prediction rescaled to the median bone lengths (the test above), while against the raw
    prediction joints move by up to the largest shift the export prints (centimetres)."""
    pages = [REPO_ROOT / 'README.md', *sorted((REPO_ROOT / 'docs').glob('*.md'))]
    claims = [' '.join(item.split()) for page in pages for item in page.read_text().split('\n* ')
              if "the file's forward kinematics" in item]
    assert len(claims) == 1, claims
    assert 'reproduces the prediction rescaled to those median bone lengths (tests: within 1 mm' in claims[0]
    assert 'against the raw prediction, joints move by up to the largest shift the log line prints' in claims[0]

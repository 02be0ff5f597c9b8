"""Human3.6M loader: round trip on small files written here in the VideoPose3D layout, and every bad input."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from common.core.errors import UserError
from common.data.h36m import load_h36m
from common.data.h36m_cameras import EXTRINSICS, INTRINSICS
from common.data.skeleton import H36M_KEPT_JOINTS

NUM_FRAMES = 10
EXTRA_2D_FRAMES = 3          # camera 2 of every action has this many more 2D frames than 3D
SYMMETRY = [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]
EXPECTED_MIRROR = [0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13]


def _rotation(extrinsics) -> Rotation:
    """Camera orientation in the world; the published quaternion is (w, x, y, z), scipy wants (x, y, z, w)."""
    w, x, y, z = extrinsics['orientation']
    return Rotation.from_quat([x, y, z, w])


def _centre_m(extrinsics) -> np.ndarray:
    return np.asarray(extrinsics['translation']) / 1000


def _world_from_camera0(subject, points_cam0):
    extrinsics = EXTRINSICS[subject][0]
    flat = points_cam0.reshape(-1, 3)
    return (_rotation(extrinsics).apply(flat) + _centre_m(extrinsics)).reshape(points_cam0.shape)


def _camera_from_world(subject, camera, world):
    extrinsics = EXTRINSICS[subject][camera]
    flat = world.reshape(-1, 3) - _centre_m(extrinsics)
    return _rotation(extrinsics).inv().apply(flat).reshape(world.shape)


def make_h36m_content(seed=0):
    """Known content: {subject: {action: (N, 32, 3) world metres}}, 2D pixels per camera, and the camera-0 poses."""
    rng = np.random.default_rng(seed)
    positions_3d, positions_2d, camera0 = {}, {}, {}
    for subject, actions in (('S9', ('Walking 1', 'Sitting')), ('S11', ('Walking',))):
        positions_3d[subject], positions_2d[subject] = {}, {}
        for action in actions:
            in_camera0 = rng.normal(scale=0.4, size=(NUM_FRAMES, 32, 3)) + [0.2, 0.1, 5.0]
            camera0[subject, action] = in_camera0
            positions_3d[subject][action] = _world_from_camera0(subject, in_camera0).astype(np.float32)
            positions_2d[subject][action] = [
                rng.uniform(0, 1000, size=(NUM_FRAMES + (EXTRA_2D_FRAMES if cam == 2 else 0), 17, 2)).astype(np.float32)
                for cam in range(4)]
    # A subject without published extrinsics (and without 2D) is skipped, not an error.
    positions_3d['S2'] = {'Walking': rng.normal(size=(NUM_FRAMES, 32, 3)).astype(np.float32)}
    metadata = {'layout_name': 'h36m', 'num_joints': 17, 'keypoints_symmetry': SYMMETRY}
    return positions_3d, positions_2d, metadata, camera0


def write_h36m(folder, positions_3d, positions_2d, metadata, keypoints='cpn_ft_h36m_dbb'):
    np.savez_compressed(folder / 'data_3d_h36m.npz', positions_3d=positions_3d)
    np.savez_compressed(folder / f'data_2d_h36m_{keypoints}.npz', positions_2d=positions_2d, metadata=metadata)


@pytest.fixture
def h36m_files(tmp_path):
    positions_3d, positions_2d, metadata, camera0 = make_h36m_content()
    write_h36m(tmp_path, positions_3d, positions_2d, metadata)
    return tmp_path, positions_3d, positions_2d, camera0


def test_round_trip_camera_frames_trajectory_and_root(h36m_files):
    folder, positions_3d, _, camera0 = h36m_files
    dataset = load_h36m(folder)
    assert dataset.name == 'h36m' and dataset.fps == 50
    assert [(s.subject, s.action, s.camera) for s in dataset.sequences] == [
        (subject, action, cam) for subject, action in (('S9', 'Walking 1'), ('S9', 'Sitting'), ('S11', 'Walking'))
        for cam in range(4)]
    kept = list(H36M_KEPT_JOINTS)
    for seq in dataset.sequences:
        assert seq.positions_3d.dtype == np.float32 and seq.positions_3d.shape == (NUM_FRAMES, 17, 3)
        assert seq.trajectory.shape == (NUM_FRAMES, 3) and seq.keypoints_2d.shape == (NUM_FRAMES, 17, 2)
        assert np.all(seq.positions_3d[:, 0] == 0)
        expected = _camera_from_world(seq.subject, seq.camera, positions_3d[seq.subject][seq.action][:, kept])
        np.testing.assert_allclose(seq.trajectory, expected[:, 0], atol=2e-5)
        np.testing.assert_allclose(seq.positions_3d, expected - expected[:, :1], atol=2e-5)
        if seq.camera == 0:   # the poses the world file was built from
            np.testing.assert_allclose(seq.trajectory, camera0[seq.subject, seq.action][:, 0], atol=2e-5)


def test_keypoints_normalised_trimmed_and_intrinsics(h36m_files):
    folder, _, positions_2d, _ = h36m_files
    dataset = load_h36m(folder)
    by_key = {(s.subject, s.action, s.camera): s for s in dataset.sequences}
    # Camera 0 is 1000 x 1002 pixels: u / 500 - 1, v / 500 - 1.002.
    seq = by_key['S9', 'Walking 1', 0]
    pixels = positions_2d['S9']['Walking 1'][0]
    np.testing.assert_allclose(seq.keypoints_2d[..., 0], pixels[..., 0] / 500 - 1, atol=1e-6)
    np.testing.assert_allclose(seq.keypoints_2d[..., 1], pixels[..., 1] / 500 - 1.002, atol=1e-6)
    assert seq.resolution == (1000, 1002)
    # Camera 2 had 3 more 2D frames: dropped from the end.
    trimmed = by_key['S11', 'Walking', 2]
    np.testing.assert_allclose(trimmed.keypoints_2d[:, :, 0],
                               positions_2d['S11']['Walking'][2][:NUM_FRAMES, :, 0] / 500 - 1, atol=1e-6)
    cam = INTRINSICS[0]
    expected = [cam['focal_length'][0] / 500, cam['focal_length'][1] / 500,
                cam['center'][0] / 500 - 1, cam['center'][1] / 500 - 1.002,
                *cam['radial_distortion'], *cam['tangential_distortion']]
    np.testing.assert_allclose(seq.intrinsics, expected, rtol=1e-6)
    assert seq.intrinsics.dtype == np.float32
    assert dataset.keypoints_mirror.tolist() == EXPECTED_MIRROR


def test_select_by_subject_and_action_prefix(h36m_files):
    dataset = load_h36m(h36m_files[0])
    assert {s.subject for s in dataset.select(subjects=['S11'])} == {'S11'}
    assert len(dataset.select(subjects=['S9', 'S11'], actions=['Walk'])) == 8
    assert {s.action for s in dataset.select(actions=['Sitting'])} == {'Sitting'}
    assert len(dataset.select()) == 12
    with pytest.raises(UserError, match=r'unknown subject S7; available: S9, S11'):
        dataset.select(subjects=['S7'])
    with pytest.raises(UserError, match=r"'Phoning'.*actions: Walking"):
        dataset.select(subjects=['S11'], actions=['Phoning'])


def _one_line_error(call, match):
    with pytest.raises(UserError, match=match) as err:
        call()
    assert '\n' not in str(err.value)


def test_missing_files_say_how_to_obtain_them(tmp_path):
    _one_line_error(lambda: load_h36m(tmp_path), r'data_3d_h36m\.npz: not found;.*data/README\.md.*'
                                                r'python -m common\.synthetic --out ')
    positions_3d, positions_2d, metadata, _ = make_h36m_content()
    write_h36m(tmp_path, positions_3d, positions_2d, metadata, keypoints='gt')
    _one_line_error(lambda: load_h36m(tmp_path), r'data_2d_h36m_cpn_ft_h36m_dbb\.npz: not found;.*found in .*: gt\)')


def test_missing_keys_list_the_keys_found(tmp_path):
    positions_3d, positions_2d, metadata, _ = make_h36m_content()
    np.savez_compressed(tmp_path / 'data_3d_h36m.npz', poses=positions_3d)
    _one_line_error(lambda: load_h36m(tmp_path), r"data_3d_h36m\.npz: no key 'positions_3d'; keys found: poses")
    write_h36m(tmp_path, positions_3d, positions_2d, metadata)
    np.savez_compressed(tmp_path / 'data_2d_h36m_x.npz', metadata=metadata)
    _one_line_error(lambda: load_h36m(tmp_path, 'x'), r"no key 'positions_2d'; keys found: metadata")
    np.savez_compressed(tmp_path / 'data_2d_h36m_x.npz', positions_2d=positions_2d)
    _one_line_error(lambda: load_h36m(tmp_path, 'x'), r"no key 'metadata'; keys found: positions_2d")
    (tmp_path / 'data_2d_h36m_x.npz').write_text('not an archive')
    _one_line_error(lambda: load_h36m(tmp_path, 'x'), r'data_2d_h36m_x\.npz: not a readable \.npz archive')


def _drop_subject(p3, p2, meta):
    del p2['S11']


def _drop_action(p3, p2, meta):
    del p2['S9']['Sitting']


def _three_cameras(p3, p2, meta):
    p2['S9']['Sitting'] = p2['S9']['Sitting'][:3]


def _sixteen_2d_joints(p3, p2, meta):
    p2['S9']['Sitting'][1] = p2['S9']['Sitting'][1][:, :16]


def _metadata_joints(p3, p2, meta):
    meta['num_joints'] = 16


def _bad_symmetry(p3, p2, meta):
    meta['keypoints_symmetry'] = [[4, 5], [1]]


def _seventeen_3d_joints(p3, p2, meta):
    p3['S9']['Sitting'] = p3['S9']['Sitting'][:, :17]


def _nan_2d(p3, p2, meta):
    p2['S9']['Sitting'][1][4, 7, 0] = np.nan


def _inf_3d(p3, p2, meta):
    p3['S11']['Walking'][6, 3, 2] = np.inf


def _short_2d(p3, p2, meta):
    p2['S11']['Walking'][3] = p2['S11']['Walking'][3][:8]


@pytest.mark.parametrize('corrupt, message', [
    (_drop_subject, r'data_2d_h36m_cpn_ft_h36m_dbb\.npz: subject S11 of data_3d_h36m\.npz is missing from '
                    r'positions_2d; subjects found: S9'),
    (_drop_action, r"action 'Sitting' of subject S9 is missing from positions_2d"),
    (_three_cameras, r'positions_2d\[S9\]\[Sitting\]: expected a list of 4 arrays \(one per camera\), found 3'),
    (_sixteen_2d_joints, r'positions_2d\[S9\]\[Sitting\]\[1\]: expected shape \(N, 17, 2\), found \(10, 16, 2\)'),
    (_metadata_joints, r'metadata num_joints is 16, expected 17'),
    (_bad_symmetry, r'metadata keypoints_symmetry is \[\[4, 5\], \[1\]\]; expected \[left joints, right joints\]'),
    (_seventeen_3d_joints, r'data_3d_h36m\.npz: positions_3d\[S9\]\[Sitting\]: expected shape \(N, 32, 3\), '
                           r'found \(10, 17, 3\)'),
    (_nan_2d, r'positions_2d\[S9\]\[Sitting\]\[1\]: NaN or inf values, first in frame 4'),
    (_inf_3d, r'positions_3d\[S11\]\[Walking\]: NaN or inf values, first in frame 6'),
    (_short_2d, r'positions_2d\[S11\]\[Walking\]\[3\]: 2D keypoints have 8 frames, fewer than the 10 frames'),
])
def test_bad_input_is_a_one_line_user_error(tmp_path, corrupt, message):
    positions_3d, positions_2d, metadata, _ = make_h36m_content()
    corrupt(positions_3d, positions_2d, metadata)
    write_h36m(tmp_path, positions_3d, positions_2d, metadata)
    _one_line_error(lambda: load_h36m(tmp_path), message)


def test_non_finite_2d_beyond_the_3d_length_is_trimmed_away(tmp_path):
    positions_3d, positions_2d, metadata, _ = make_h36m_content()
    positions_2d['S9']['Sitting'][2][NUM_FRAMES + 1] = np.nan
    write_h36m(tmp_path, positions_3d, positions_2d, metadata)
    assert np.isfinite(load_h36m(tmp_path).sequences[6].keypoints_2d).all()

"""Human3.6M in the VideoPose3D layout -> a ``PoseDataset`` of camera-frame sequences.

Files (in ``data_dir``, see docs/datasets.md; ``common.data.h36m_release`` writes them from the official release):

* ``data_3d_h36m.npz``: ``positions_3d`` -> subject -> action -> (N, 32, 3) world positions, metres.
* ``data_2d_h36m_<keypoints>.npz``: ``positions_2d`` -> subject -> action -> list of one (M, 17, 2)
  pixel array per camera (M >= N; the extra frames are dropped), and ``metadata`` ->
  {``layout_name``, ``num_joints``, ``keypoints_symmetry``: [left joints, right joints]}.

Each (subject, action) gives one ``Sequence`` per camera: the 17-joint pose moved into the
camera's frame, split into the root trajectory and root-relative positions.
"""
from pathlib import Path

import numpy as np

from common.core.errors import UserError
from common.core.units import MM_PER_M
from common.data.camera import intrinsic_vector, normalize_screen_coordinates, world_to_camera
from common.data.dataset_files import check_array, check_finite, check_shape, dict_entry, load_archive
from common.data.h36m_cameras import EXTRINSICS, INTRINSICS
from common.data.sequences import PoseDataset, Sequence
from common.data.skeleton import H36M_17, reduce_h36m_32_to_17

FPS = 50.0
MOCAP_JOINTS = 32
ACTIONS = ('Directions', 'Discussion', 'Eating', 'Greeting', 'Phoning', 'Photo', 'Posing', 'Purchases', 'Sitting',
           'SittingDown', 'Smoking', 'Waiting', 'WalkDog', 'Walking', 'WalkTogether')
POSITIONS_3D_FILE = 'data_3d_h36m.npz'
KEYPOINTS_FILE_PREFIX = 'data_2d_h36m_'


def keypoints_file_name(keypoints: str) -> str:
    """'cpn_ft_h36m_dbb' -> 'data_2d_h36m_cpn_ft_h36m_dbb.npz'."""
    return f'{KEYPOINTS_FILE_PREFIX}{keypoints}.npz'


def load_h36m(data_dir, keypoints: str = 'cpn_ft_h36m_dbb') -> PoseDataset:
    """Read ``data_3d_h36m.npz`` and ``data_2d_h36m_<keypoints>.npz`` from ``data_dir``.

    Returns one ``Sequence`` per (subject with known cameras, action, camera 0..3), in file order:
    keypoints_2d (N, 17, 2) normalised with the camera's resolution; positions_3d (N, 17, 3),
    metres, camera frame, root-relative (root exactly 0); trajectory (N, 3) metres, camera frame;
    intrinsics (9,) with distortion; camera = index into ``h36m_cameras.INTRINSICS``.
    Subjects without published extrinsics (``h36m_cameras.EXTRINSICS``) are skipped.
    Any inconsistency of the files raises a ``UserError``.
    """
    data_dir = Path(data_dir)
    how_to_obtain = ('build it from the official release with `python -m common.h36m prepare --from-source PATH '
                     f'--out {data_dir}` (or --from-archive h36m.zip; see docs/datasets.md and data/README.md) or '
                     f'generate a synthetic dataset with `python -m common.synthetic --out {data_dir}`')
    path_3d = data_dir / POSITIONS_3D_FILE
    path_2d = data_dir / keypoints_file_name(keypoints)
    positions_3d = dict_entry(load_archive(path_3d, how_to_obtain), 'positions_3d', path_3d)
    if not path_2d.is_file():
        available = sorted(p.name[len(KEYPOINTS_FILE_PREFIX):-len('.npz')]
                           for p in data_dir.glob(keypoints_file_name('*')))
        how_to_obtain += f' (2D keypoints found in {data_dir}: {", ".join(available) or "none"})'
    entries_2d = load_archive(path_2d, how_to_obtain)
    positions_2d = dict_entry(entries_2d, 'positions_2d', path_2d)
    keypoints_mirror = keypoints_mirror_from_metadata(dict_entry(entries_2d, 'metadata', path_2d), path_2d)

    sequences = []
    for subject, actions in positions_3d.items():
        if subject not in EXTRINSICS:
            continue
        if subject not in positions_2d:
            raise UserError(f'{path_2d}: subject {subject} of {path_3d.name} is missing from positions_2d; '
                            f'subjects found: {", ".join(map(str, positions_2d))}')
        if not isinstance(actions, dict) or not isinstance(positions_2d[subject], dict):
            raise UserError(f'{path_3d} / {path_2d}: subject {subject} should map action names to arrays')
        for action in list(actions):
            if action not in positions_2d[subject]:
                raise UserError(f'{path_2d}: action {action!r} of subject {subject} is missing from '
                                f'positions_2d (it is in {path_3d.name})')
            where_3d = f'{path_3d}: positions_3d[{subject}][{action}]'
            where_2d = f'{path_2d}: positions_2d[{subject}][{action}]'
            # Each take's file arrays are let go once converted: at Human3.6M's size the files' 0.5 GB
            # are then never held beside the 0.74 GB of sequences.
            world_32 = check_array(actions.pop(action), (None, MOCAP_JOINTS, 3), where_3d)
            sequences.extend(_camera_sequences(subject, action, world_32, positions_2d[subject].pop(action), where_2d))
    if not sequences:
        raise UserError(f'{path_3d}: no subject with known cameras; expected some of {", ".join(EXTRINSICS)}')
    return PoseDataset(name='h36m', skeleton=H36M_17, keypoints_mirror=keypoints_mirror, fps=FPS,
                       sequences=sequences)


def _camera_sequences(subject: str, action: str, world_32: np.ndarray, views_2d, where_2d: str) -> list:
    """One ``Sequence`` per camera. world_32: (N, 32, 3) metres, world frame; views_2d: list of (M, 17, 2) px."""
    cameras = EXTRINSICS[subject]
    if not isinstance(views_2d, (list, tuple)) or len(views_2d) != len(cameras):
        found = len(views_2d) if isinstance(views_2d, (list, tuple)) else type(views_2d).__name__
        raise UserError(f'{where_2d}: expected a list of {len(cameras)} arrays (one per camera), found {found}')
    world = reduce_h36m_32_to_17(world_32)
    num_frames = world.shape[0]
    root = H36M_17.root
    sequences = []
    for camera_index, (intrinsics, extrinsics, view) in enumerate(zip(INTRINSICS, cameras, views_2d)):
        where = f'{where_2d}[{camera_index}]'
        pixels = check_shape(view, (None, H36M_17.num_joints, 2), where)
        if pixels.shape[0] < num_frames:
            raise UserError(f'{where}: 2D keypoints have {pixels.shape[0]} frames, fewer than the '
                            f'{num_frames} frames of the 3D poses')
        pixels = check_finite(pixels[:num_frames], where)
        w, h = intrinsics['res_w'], intrinsics['res_h']
        in_camera = world_to_camera(world, R=np.asarray(extrinsics['orientation'], np.float64),
                                    t=np.asarray(extrinsics['translation'], np.float64) / MM_PER_M)
        trajectory = in_camera[:, root]
        sequences.append(Sequence(
            subject=subject, action=action, camera=camera_index,
            keypoints_2d=normalize_screen_coordinates(pixels, w=w, h=h).astype(np.float32),
            positions_3d=(in_camera - in_camera[:, root:root + 1]).astype(np.float32),
            trajectory=trajectory.astype(np.float32),
            intrinsics=intrinsic_vector(intrinsics['focal_length'], intrinsics['center'], w, h,
                                        intrinsics['radial_distortion'], intrinsics['tangential_distortion']),
            resolution=(w, h),
        ))
    return sequences


def keypoints_mirror_from_metadata(metadata: dict, path) -> np.ndarray:
    """(17,) mirror permutation of the 2D keypoints from ``metadata['keypoints_symmetry']``."""
    num_joints = metadata.get('num_joints')
    if num_joints != H36M_17.num_joints:
        raise UserError(f'{path}: metadata num_joints is {num_joints}, expected {H36M_17.num_joints} '
                        f'(the {H36M_17.name} 17-joint layout)')
    symmetry = metadata.get('keypoints_symmetry')
    try:
        left, right = (np.asarray(side, dtype=np.int64).reshape(-1) for side in symmetry)
    except (TypeError, ValueError):
        left = right = None
    valid = (left is not None and len(left) == len(right)
             and np.all((0 <= left) & (left < num_joints)) and np.all((0 <= right) & (right < num_joints))
             and len(set(left.tolist()) | set(right.tolist())) == 2 * len(left))
    if not valid:
        raise UserError(f'{path}: metadata keypoints_symmetry is {symmetry!r}; expected [left joints, right '
                        f'joints], two equally long lists of distinct joint indices below {num_joints}')
    mirror = np.arange(num_joints)
    mirror[left] = right
    mirror[right] = left
    return mirror

"""Human3.6M's releases -> the VideoPose3D files ``main.py`` reads: what ``python -m common.h36m prepare``
(``common/h36m.py``) runs.

Two releases are read (facts in docs/datasets.md):

* the official release, extracted (``--from-source``): ``S1/MyPoseFeatures/D3_Positions/<take>.cdf``,
  CDF variable ``Pose`` (1, N, 96): N frames of 32 joints x (x, y, z), millimetres, world frame
  (read with cdflib);
* the widely used preprocessed archive ``h36m.zip`` (``--from-archive``: the zip, the folder it
  extracts to, or that folder's ``h36m/``): ``h36m/S1/MyPoses/3D_positions/<take>.h5``, HDF5 dataset
  ``3D_positions`` (96, N), the same joints, order and unit (read with h5py).

Both give the two files VideoPose3D's ``prepare_data_h36m.py`` writes, with its keys and dtypes:
``data_3d_h36m.npz`` (``positions_3d``: subject -> take -> (N, 32, 3) float32, world frame, metres)
and ``data_2d_h36m_gt.npz`` (``positions_2d``: subject -> take -> 4 x (N, 17, 2) float32 pixels, the
take's 17 joints projected into its four cameras with ``h36m_cameras``, distortion included;
``metadata``). Take names are the community's: ``TakingPhoto`` -> ``Photo`` and ``WalkingDog`` ->
``WalkDog`` (S1's official files use the long names), S11 ``Directions`` is dropped (its video is
corrupt). Every take is checked against the release's list (``RELEASE_TAKES``) and read and checked
before anything is written.
"""
import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm import tqdm

from common.core.atomic import atomic_output, check_writable
from common.core.errors import UserError
from common.core.units import MM_PER_M
from common.data.camera import image_coordinates, intrinsic_vector, project_to_2d, world_to_camera
from common.data.dataset_files import check_finite
from common.data.h36m import ACTIONS, MOCAP_JOINTS, POSITIONS_3D_FILE, keypoints_file_name
from common.data.h36m_cameras import EXTRINSICS, INTRINSICS
from common.data.skeleton import H36M_17, reduce_h36m_32_to_17

SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8', 'S9', 'S11')
TRAIN_SUBJECTS = ('S1', 'S5', 'S6', 'S7', 'S8')
TAKES_PER_ACTION = 2
GT_KEYPOINTS = 'gt'
METADATA = {'layout_name': 'h36m', 'num_joints': H36M_17.num_joints,
            'keypoints_symmetry': [list(H36M_17.joints_left), list(H36M_17.joints_right)]}
# The community's action names for the official files' long ones.
RENAMED_ACTIONS = {'TakingPhoto': 'Photo', 'WalkingDog': 'WalkDog'}
# Takes the community leaves out, and why.
DROPPED_TAKES = {('S11', 'Directions'): 'its video is corrupt; the community drops it'}
# Each subject has two takes of every action, '<action> 1' and '<action>', except these.
_OTHER_TAKES = {
    'S1': ('Eating 2', 'Eating', 'Sitting 1', 'Sitting 2', 'SittingDown 2', 'SittingDown'),
    'S5': ('Directions 1', 'Directions 2', 'Discussion 2', 'Discussion 3', 'Greeting 1', 'Greeting 2',
           'Photo', 'Photo 2', 'Waiting 1', 'Waiting 2'),
    'S6': ('Eating 1', 'Eating 2', 'Posing 2', 'Posing', 'Sitting 1', 'Sitting 2', 'Waiting 3', 'Waiting'),
    'S7': ('Phoning 2', 'Phoning', 'Waiting 1', 'Waiting 2', 'Walking 1', 'Walking 2'),
    'S8': ('WalkTogether 1', 'WalkTogether 2'),
    'S9': ('Discussion 1', 'Discussion 2'),
    'S11': ('Discussion 1', 'Discussion 2', 'Greeting 2', 'Greeting', 'Phoning 3', 'Phoning 2', 'Smoking 2',
            'Smoking'),
}


def _release_takes(subject: str) -> tuple:
    other = _OTHER_TAKES.get(subject, ())
    return tuple(take for action in ACTIONS
                 for take in ([t for t in other if action_of(t) == action] or [f'{action} 1', action]))


def action_of(take: str) -> str:
    """'Walking 1' -> 'Walking'."""
    return take.split(' ')[0]


# The 30 takes (15 actions x 2) of each subject, named as the community names them.
RELEASE_TAKES = {subject: _release_takes(subject) for subject in SUBJECTS}
assert all(len(takes) == len(ACTIONS) * TAKES_PER_ACTION == len(set(takes)) for takes in RELEASE_TAKES.values())
# 2D poses over the four cameras in the complete release, as VideoPose3D's files hold them.
COMPLETE_2D_POSES = {TRAIN_SUBJECTS: '1.56 M', ('S9', 'S11'): '0.54 M'}


def canonical_take(name: str) -> str:
    """A take's released name -> the community's ('TakingPhoto 1' -> 'Photo 1')."""
    action, _, number = name.partition(' ')
    action = RENAMED_ACTIONS.get(action, action)
    return f'{action} {number}' if number else action


@dataclass(frozen=True)
class ReleaseFormat:
    """Where one release keeps its takes and how a take file is read."""
    flag: str
    folder: str               # below the subject folder
    suffix: str
    variable: str
    shape: str                # the variable's shape, as messages write it

    def take_pattern(self) -> re.Pattern:
        """Matches '<anything>/S1/<folder>/<take><suffix>' with groups subject and take."""
        return re.compile(rf'(?:^|.*/)(S\d+)/{re.escape(self.folder)}/([^/]+){re.escape(self.suffix)}$')


SOURCE = ReleaseFormat('--from-source', 'MyPoseFeatures/D3_Positions', '.cdf', 'Pose', '(1, N, 96)')
ARCHIVE = ReleaseFormat('--from-archive', 'MyPoses/3D_positions', '.h5', '3D_positions', '(96, N)')
ARCHIVE_TOP_FOLDER = 'h36m'


@dataclass(frozen=True)
class TakeFile:
    """One take of the release: its subject, its name as released, and where it is."""
    subject: str
    name: str
    release: ReleaseFormat
    path: Path                         # the file, or the zip holding it
    member: str = ''                   # the name inside the zip

    @property
    def where(self) -> str:
        return f'{self.path}:{self.member}' if self.member else str(self.path)


# ----------------------------------------------------------------------------- finding the takes

def find_takes(path, release: ReleaseFormat) -> list:
    """Every take file of ``release`` at ``path``, as ``TakeFile``s (in no particular order)."""
    path = Path(path)
    expected = (f'expected the official Human3.6M release extracted (S1/{SOURCE.folder}/Directions 1.cdf, ...)'
                if release is SOURCE else
                f'expected h36m.zip, the folder it extracts to, or that folder\'s {ARCHIVE_TOP_FOLDER}/ '
                f'({ARCHIVE_TOP_FOLDER}/S1/{ARCHIVE.folder}/Directions 1.h5, ...)')
    if not path.exists():
        raise UserError(f'{release.flag} {path}: not found; {expected}')
    if path.is_file():
        if release is ARCHIVE and zipfile.is_zipfile(path):
            takes = _zip_takes(path)
        else:
            raise UserError(f'{release.flag} {path}: a file, not a folder' +
                            (' nor a zip archive' if release is ARCHIVE else '') + f'; {expected}')
    else:
        pattern = release.take_pattern()
        takes = [TakeFile(m.group(1), m.group(2), release, file) for file in sorted(path.rglob(f'*{release.suffix}'))
                 if (m := pattern.match(file.relative_to(path).as_posix()))]
    if not takes:
        other = ARCHIVE if release is SOURCE else SOURCE
        hint = (f'; it holds the other release\'s files ({other.folder}/*{other.suffix}): use {other.flag}'
                if path.is_dir() and any(other.take_pattern().match(f.relative_to(path).as_posix())
                                         for f in path.rglob(f'*{other.suffix}')) else '')
        raise UserError(f'{release.flag} {path}: no S*/{release.folder}/*{release.suffix} found; {expected}{hint}')
    return takes


def _zip_takes(path: Path) -> list:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise UserError(f'{ARCHIVE.flag} {path}: not a readable zip archive ({err})') from None
    pattern = ARCHIVE.take_pattern()
    return [TakeFile(m.group(1), m.group(2), ARCHIVE, path, name) for name in names if (m := pattern.match(name))]


@dataclass
class TakeCheck:
    """The takes found for the selected subjects, compared with the release's list.

    takes: {subject: {community name: TakeFile}} of the takes to write; missing, unexpected,
    dropped: 'S1 Walking 1' descriptions; skipped_subjects: subjects found but not prepared.
    """
    takes: dict
    missing: list
    unexpected: list
    dropped: list
    skipped_subjects: list


def check_takes(found: list, subjects) -> TakeCheck:
    """Compare the takes found with ``RELEASE_TAKES`` for ``subjects``; two files of one take are an error."""
    takes = {subject: {} for subject in subjects}
    skipped = sorted({take.subject for take in found} - set(subjects), key=_subject_number)
    for take in found:
        if take.subject not in takes:
            continue
        name = canonical_take(take.name)
        if name in takes[take.subject]:
            raise UserError(f'{take.subject} {name}: two files, {takes[take.subject][name].where} and {take.where}; '
                            'expected one per take')
        takes[take.subject][name] = take
    missing, unexpected, dropped = [], [], []
    for subject in subjects:
        released = RELEASE_TAKES[subject]
        for name in released:
            if (subject, name) in DROPPED_TAKES:
                if takes[subject].pop(name, None) is not None:
                    dropped.append(f'{subject} {name}: not written ({DROPPED_TAKES[subject, name]})')
            elif name not in takes[subject]:
                missing.append(f'{subject} {name}')
        unexpected += [f'{subject} {name} ({take.where})' for name, take in takes[subject].items()
                       if name not in released]
        takes[subject] = dict(sorted(takes[subject].items(), key=lambda item: _release_order(subject, item[0])))
    return TakeCheck(takes, missing, unexpected, dropped, skipped)


def _subject_number(subject: str) -> int:
    return int(subject[1:])


def _release_order(subject: str, name: str):
    released = RELEASE_TAKES[subject]
    return (released.index(name), '') if name in released else (len(released), name)


# ----------------------------------------------------------------------------- reading the takes

def read_take(take: TakeFile) -> np.ndarray:
    """(N, 32, 3) float64 world positions in millimetres from one take file; checked."""
    release = take.release
    values = _read_h5(take) if release is ARCHIVE else _read_cdf(take)
    values_per_frame = MOCAP_JOINTS * 3
    per_frame_axis = -1 if release is SOURCE else 0
    dimensions = (2, 3) if release is SOURCE else (2,)         # CDF: (1, N, 96) as released, (N, 96) as records
    if (not np.issubdtype(values.dtype, np.number) or values.ndim not in dimensions
            or values.shape[per_frame_axis] != values_per_frame):
        raise UserError(f'{take.where}: {release.variable} has shape {values.shape}; expected {release.shape}, '
                        f'{values_per_frame} values ({MOCAP_JOINTS} joints x 3) per frame')
    frames = values.reshape(-1, values_per_frame) if release is SOURCE else values.T
    if frames.shape[0] == 0:
        raise UserError(f'{take.where}: {release.variable} holds no frame')
    return check_finite(frames.reshape(-1, MOCAP_JOINTS, 3).astype(np.float64), f'{take.where}: {release.variable}')


def _read_cdf(take: TakeFile) -> np.ndarray:
    import cdflib      # only --from-source needs it
    try:
        cdf = cdflib.CDF(take.path)
        variables = cdf.cdf_info().zVariables + cdf.cdf_info().rVariables
    except (OSError, ValueError, KeyError, IndexError) as err:
        raise UserError(f'{take.where}: not a readable CDF file ({err})') from None
    if SOURCE.variable not in variables:
        raise UserError(f'{take.where}: no variable {SOURCE.variable!r}; variables found: '
                        f'{", ".join(variables) or "none"}')
    return np.asarray(cdf.varget(SOURCE.variable))


def _read_h5(take: TakeFile) -> np.ndarray:
    try:
        if take.member:
            with zipfile.ZipFile(take.path) as archive:
                source = io.BytesIO(archive.read(take.member))
        else:
            source = take.path
        with h5py.File(source, 'r') as f:
            if ARCHIVE.variable not in f:
                raise UserError(f'{take.where}: no dataset {ARCHIVE.variable!r}; found: {", ".join(f) or "none"}')
            return np.asarray(f[ARCHIVE.variable])
    except (OSError, zipfile.BadZipFile) as err:
        raise UserError(f'{take.where}: not a readable HDF5 file ({err})') from None


# ----------------------------------------------------------------------------- the 2D ground truth

def project_take(subject: str, world_m: np.ndarray) -> list:
    """(N, 32, 3) world metres -> one (N, 17, 2) float32 pixel array per camera of ``subject``.

    The 17 joints in each camera's frame, projected with its intrinsics and distortion
    (``camera.project_to_2d``), as VideoPose3D made ``data_2d_h36m_gt.npz``.
    """
    world = reduce_h36m_32_to_17(world_m.astype(np.float64))
    views = []
    for intrinsics, extrinsics in zip(INTRINSICS, EXTRINSICS[subject]):
        in_camera = world_to_camera(world, R=np.asarray(extrinsics['orientation'], np.float64),
                                    t=np.asarray(extrinsics['translation'], np.float64) / MM_PER_M)
        w, h = intrinsics['res_w'], intrinsics['res_h']
        camera = intrinsic_vector(intrinsics['focal_length'], intrinsics['center'], w, h,
                                  intrinsics['radial_distortion'], intrinsics['tangential_distortion'])
        normalised = project_to_2d(torch.from_numpy(in_camera), torch.from_numpy(camera.astype(np.float64))[None])
        views.append(image_coordinates(normalised.numpy(), w=w, h=h).astype(np.float32))
    return views


# ----------------------------------------------------------------------------- prepare

@dataclass
class Prepared:
    """What ``prepare`` wrote: {subject: {take: (N, 32, 3) float32 metres}} and the take check."""
    positions_3d: dict
    check: TakeCheck
    files: tuple
    replaced: bool = False          # the files were there before


def prepare(path, release: ReleaseFormat, out_dir, subjects=SUBJECTS, allow_missing=False,
            show_progress=True) -> Prepared:
    """Read, check and convert the release at ``path``; write both files into ``out_dir`` atomically.

    Nothing is written unless every selected take was read and checked; a missing or unexpected
    take stops it (``allow_missing``: write the takes that are there, unexpected ones of a known
    action included).
    """
    out_dir = check_writable(out_dir, '--out')
    check = check_takes(find_takes(path, release), subjects)
    for subject, takes in check.takes.items():
        unknown = [f'{subject} {name}' for name in takes if action_of(name) not in ACTIONS]
        if unknown:
            raise UserError(f'unexpected takes of no Human3.6M action: {", ".join(unknown)} '
                            f'(actions: {", ".join(ACTIONS)}); remove them from {path}')
    if (check.missing or check.unexpected) and not allow_missing:
        problems = ([f'missing takes ({len(check.missing)}): {", ".join(check.missing)}'] if check.missing else []) + \
                   ([f'unexpected takes: {", ".join(check.unexpected)}'] if check.unexpected else [])
        raise UserError(f'{path}: {"; ".join(problems)}; the release has {len(ACTIONS) * TAKES_PER_ACTION} takes '
                        'per subject (docs/datasets.md lists them); nothing written: complete the download, or pass '
                        '--allow-missing to write the takes that are there')
    todo = [take for takes in check.takes.values() for take in takes.items()]
    if not todo:
        raise UserError(f'{path}: no take of {", ".join(subjects)} found; nothing written')
    positions_3d = {subject: {} for subject, takes in check.takes.items() if takes}
    positions_2d = {subject: {} for subject in positions_3d}
    with tqdm(todo, desc='reading takes', unit='take', disable=not show_progress, leave=False) as progress:
        for name, take in progress:
            world = (read_take(take) / MM_PER_M).astype(np.float32)
            positions_3d[take.subject][name] = world
            positions_2d[take.subject][name] = project_take(take.subject, world)
    files = (out_dir / POSITIONS_3D_FILE, out_dir / keypoints_file_name(GT_KEYPOINTS))
    replaced = any(file.exists() for file in files)
    with atomic_output(files[0]) as file_3d, atomic_output(files[1]) as file_2d:
        np.savez_compressed(file_3d, positions_3d=positions_3d)
        np.savez_compressed(file_2d, positions_2d=positions_2d, metadata=METADATA)
    return Prepared(positions_3d, check, files, replaced)


def summary(prepared: Prepared) -> list:
    """The lines ``prepare`` prints: per subject its takes and frames, then the files and what is left out."""
    lines, poses = [], {}
    num_cameras = len(INTRINSICS)
    for subject, takes in prepared.positions_3d.items():
        frames = sum(len(world) for world in takes.values())
        poses[subject] = frames * num_cameras
        lines.append(f'{subject}: {len(takes)} takes, {frames} frames ({poses[subject]} 2D poses over '
                     f'{num_cameras} cameras)')
    lines += prepared.check.dropped
    if prepared.check.skipped_subjects:
        lines.append(f'not prepared: {", ".join(prepared.check.skipped_subjects)} (found, not selected)')
    complete = '; '.join(f'{",".join(group)} {sum(poses.get(s, 0) for s in group)}, the complete release about {total}'
                         for group, total in COMPLETE_2D_POSES.items() if set(group) <= set(poses))
    takes = sum(len(t) for t in prepared.positions_3d.values())
    replacing = ' (replacing the files there)' if prepared.replaced else ''
    lines.append(f'wrote {prepared.files[0]} and {prepared.files[1]}{replacing}: {", ".join(poses)}, {takes} takes, '
                 f'{sum(poses.values())} 2D poses' + (f' ({complete})' if complete else ''))
    if prepared.check.missing:
        lines.append(f'missing, not written ({len(prepared.check.missing)}): {", ".join(prepared.check.missing)}')
    if prepared.check.unexpected:
        lines.append(f'unexpected, written: {", ".join(prepared.check.unexpected)}')
    return lines


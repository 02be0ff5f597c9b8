"""Your own video's 2D keypoints, in VideoPose3D's custom layout -> ``Sequence``s without ground truth.

File ``data_2d_custom_<name>.npz`` (what VideoPose3D's ``prepare_data_2d_custom.py`` writes):

* ``positions_2d``: video name -> ``{'custom': [array (N, 17, 2)]}`` (VideoPose3D), or a plain list
  ``[array (N, 17, 2), ...]``, or one array (N, 17, 2); pixels, Human3.6M 17-joint order
  (``skeleton.H36M_17``). Each array of a list is one view ("camera") of the video. Entries named
  ``VIDEO_person1``, ``VIDEO_person2``, ... (``person_tracks.person_entry_name``, written by
  ``python -m common.keypoints convert --person all``) are the people of video VIDEO: each is
  predicted as its own video, and ``select_video`` picks them together.
* ``metadata``: ``video_metadata``: video name -> ``{'w': width, 'h': height}`` in pixels, optionally
  ``'fps'`` (it may also be a key of the archive next to ``metadata``), and the keypoint layout
  ``layout_name``, ``num_joints`` (17), ``keypoints_symmetry`` ([left joints, right joints]); the
  layout fields may be left out, and when present must describe the Human3.6M order.

No camera calibration comes with such a video. The camera is assumed to be a pinhole with its
principal point at the image centre and a focal length given in pixels (default: the image width);
only the J-Agg aggregation uses it (``common.evaluation.inference``).
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.core.errors import UserError
from common.core.units import MAX_FPS
from common.data.camera import intrinsic_vector, normalize_screen_coordinates
from common.data.dataset_files import check_finite, check_shape, dict_entry, load_archive
from common.data.h36m import keypoints_mirror_from_metadata
from common.data.person_tracks import split_person_entry
from common.data.sequences import PoseDataset, Sequence
from common.data.skeleton import H36M_17

CUSTOM_FILE_PREFIX = 'data_2d_custom_'
VIDEOPOSE3D_VIEW_KEY = 'custom'          # positions_2d[video]['custom'] = [array], as VideoPose3D writes
DEFAULT_VIDEO_FPS = 30.0                 # frame rate of the renderings when video_metadata has no 'fps'
COCO_LAYOUT_NAME = 'coco'


def custom_file_name(name: str) -> str:
    """'myvideos' -> 'data_2d_custom_myvideos.npz'."""
    return f'{CUSTOM_FILE_PREFIX}{name}.npz'


@dataclass
class CustomKeypoints:
    """The videos of one custom file.

    dataset: a ``PoseDataset`` named 'custom' with one ``Sequence`` per (video, view): subject = the
    video name, action = '' (no label), camera = view index, keypoints_2d (N, 17, 2) normalised,
    positions_3d and trajectory None, intrinsics (9,) of the assumed camera, resolution (w, h) px.
    frame_rates: video name -> frames per second; focal_lengths: video name -> assumed focal length, px.
    """
    path: Path
    dataset: PoseDataset
    frame_rates: dict
    focal_lengths: dict

    def video_names(self) -> list:
        return self.dataset.subjects()

    def videos(self) -> dict:
        """{video: its entry names}: an entry named ``VIDEO_personk`` belongs to VIDEO (person k, the
        entries in person order), any other entry is a video of its own."""
        names, people, videos = self.video_names(), {}, {}
        for name in names:
            split = split_person_entry(name)
            video, number = (name, 0) if split is None or split[0] in names else split
            people.setdefault(video, []).append((number, name))
        for video, numbered in people.items():
            videos[video] = [name for _, name in sorted(numbered)]
        return videos

    def select_video(self, video, view: int = 0) -> list:
        """The sequences of ``--viz-subject video``: the entry named ``video``, or every person of video
        ``video`` (``videos``), person 1 first; video None: the file's only video."""
        videos = self.videos()
        if video is None:
            if len(videos) > 1:
                raise UserError(f'{self.path}: holds {len(videos)} videos; choose one with --viz-subject NAME '
                                f'(videos: {_describe(videos)})')
            video = next(iter(videos))
        if video not in videos and video not in self.video_names():
            raise UserError(f'--viz-subject {video}: no such video in {self.path}; videos: {_describe(videos)}')
        return [self.select(name, view) for name in videos.get(video, [video])]

    def select(self, video, view: int = 0) -> Sequence:
        """The sequence of one video and view; video None picks the only video of the file."""
        names = self.video_names()
        if video is None:
            if len(names) > 1:
                raise UserError(f'{self.path}: holds {len(names)} videos; choose one with --viz-subject NAME '
                                f'(videos: {", ".join(names)})')
            video = names[0]
        if video not in names:
            raise UserError(f'--viz-subject {video}: no such video in {self.path}; videos: {", ".join(names)}')
        views = [s for s in self.dataset.sequences if s.subject == video]
        if not 0 <= view < len(views):
            raise UserError(f'--viz-camera {view}: video {video} of {self.path} has {len(views)} keypoint '
                            f'array(s); expected an index below {len(views)}')
        return views[view]


def _describe(videos: dict) -> str:
    """'walk.mp4, dance.mp4 (2 people: dance.mp4_person1, dance.mp4_person2)' of ``CustomKeypoints.videos``."""
    return ', '.join(video if names == [video] else f'{video} ({len(names)} people: {", ".join(names)})'
                     for video, names in videos.items())


def load_custom_keypoints(data_dir, name: str, focal_length_px=None) -> CustomKeypoints:
    """Read ``data_2d_custom_<name>.npz`` from ``data_dir``; every problem is a one-line ``UserError``.

    focal_length_px: focal length of the assumed camera in pixels (None: each video's width).
    """
    data_dir = Path(data_dir)
    path = data_dir / custom_file_name(name)
    if not path.is_file():
        available = sorted(p.name[len(CUSTOM_FILE_PREFIX):-len('.npz')] for p in data_dir.glob(custom_file_name('*')))
        raise UserError(f'{path}: not found; write it with python -m common.keypoints convert or detect (see '
                        f'docs/your-own-video.md); custom files in {data_dir}: {", ".join(available) or "none"}')
    entries = load_archive(path, 'see docs/your-own-video.md')
    positions_2d = dict_entry(entries, 'positions_2d', path)
    if 'metadata' not in entries:
        raise UserError(f'{path}: no key \'metadata\'; expected the keypoint layout (num_joints 17, '
                        'keypoints_symmetry) and video_metadata with each video\'s w and h, as VideoPose3D writes')
    metadata = dict_entry(entries, 'metadata', path)
    keypoints_mirror = _check_layout(metadata, path)
    video_metadata = _video_metadata(entries, metadata, path)
    if not positions_2d:
        raise UserError(f'{path}: positions_2d holds no video')

    sequences, frame_rates, focal_lengths = [], {}, {}
    for video, value in positions_2d.items():
        video = str(video)
        width, height, fps = _video_size(video_metadata, video, path)
        focal = float(width if focal_length_px is None else focal_length_px)
        intrinsics = intrinsic_vector((focal, focal), (width / 2, height / 2), width, height)
        frame_rates[video], focal_lengths[video] = fps, focal
        for view, (where, pixels) in enumerate(_views(value, f'{path}: positions_2d[{video!r}]')):
            pixels = check_finite(check_shape(pixels, (None, H36M_17.num_joints, 2), where), where)
            sequences.append(Sequence(
                subject=video, action='', camera=view,
                keypoints_2d=normalize_screen_coordinates(pixels, w=width, h=height).astype(np.float32),
                intrinsics=intrinsics, resolution=(width, height)))
    dataset = PoseDataset(name='custom', skeleton=H36M_17, keypoints_mirror=keypoints_mirror,
                          fps=DEFAULT_VIDEO_FPS, sequences=sequences)
    return CustomKeypoints(path=path, dataset=dataset, frame_rates=frame_rates, focal_lengths=focal_lengths)


def _check_layout(metadata: dict, path) -> np.ndarray:
    """The (17,) keypoint mirror permutation, after checking that the layout fields (each optional)
    describe the Human3.6M 17-joint order."""
    if metadata.get('layout_name') == COCO_LAYOUT_NAME:
        raise UserError(f'{path}: keypoints in the COCO layout (metadata layout_name \'coco\'); FinePOSE expects '
                        'the Human3.6M 17-joint order (see skeleton.H36M_17); convert them with python -m common.keypoints '
                        'convert --from coco')
    expected = H36M_17.mirror_permutation()
    if 'keypoints_symmetry' not in metadata and 'num_joints' not in metadata:
        return expected
    given = dict(metadata)
    given.setdefault('num_joints', H36M_17.num_joints)
    given.setdefault('keypoints_symmetry', [list(H36M_17.joints_left), list(H36M_17.joints_right)])
    if not np.array_equal(keypoints_mirror_from_metadata(given, path), expected):
        raise UserError(f'{path}: metadata keypoints_symmetry {given["keypoints_symmetry"]} is not the Human3.6M '
                        f'17-joint layout ({[list(H36M_17.joints_left), list(H36M_17.joints_right)]}); reorder your '
                        'keypoints to it')
    return expected


def _video_metadata(entries: dict, metadata: dict, path) -> dict:
    """{video: {'w', 'h'[, 'fps']}} from metadata['video_metadata'] or the archive's 'video_metadata'."""
    if 'video_metadata' in metadata:
        value = metadata['video_metadata']
    elif 'video_metadata' in entries:
        value = dict_entry(entries, 'video_metadata', path)
    else:
        raise UserError(f'{path}: metadata has no video_metadata; expected video name -> {{\'w\': width, '
                        '\'h\': height} in pixels for every video')
    if not isinstance(value, dict):
        raise UserError(f'{path}: video_metadata should hold a dict video name -> {{\'w\', \'h\'}}, '
                        f'found {type(value).__name__}')
    return value


def _video_size(video_metadata: dict, video: str, path):
    """(width px, height px, fps) of one video."""
    info = video_metadata.get(video)
    if not isinstance(info, dict):
        raise UserError(f'{path}: video_metadata has no entry for video {video!r}; expected '
                        f'{{\'w\': width, \'h\': height}} in pixels')
    try:
        width, height = int(info['w']), int(info['h'])
        fps = float(info.get('fps', DEFAULT_VIDEO_FPS))
    except (KeyError, TypeError, ValueError, OverflowError):
        raise UserError(f'{path}: video_metadata[{video!r}] is {info!r}; expected {{\'w\': width, \'h\': height}} '
                        'in pixels (and optionally \'fps\')') from None
    if width < 1 or height < 1 or not 0 < fps <= MAX_FPS:
        raise UserError(f'{path}: video_metadata[{video!r}] is {info!r}; expected a positive width, height and an '
                        f'fps above 0 and at most {MAX_FPS:g}')
    return width, height, fps


def _views(value, where: str) -> list:
    """[(where, pixel array)] of one video's entry: {'custom': [arrays]}, [arrays] or one array."""
    if isinstance(value, dict):
        if VIDEOPOSE3D_VIEW_KEY in value:
            key = VIDEOPOSE3D_VIEW_KEY
        elif len(value) == 1:
            key = next(iter(value))
        else:
            raise UserError(f'{where}: expected {{\'custom\': [array (N, 17, 2)]}}, found keys '
                            f'{", ".join(map(repr, value))}')
        where, value = f'{where}[{key!r}]', value[key]
    if isinstance(value, np.ndarray):
        if value.dtype != object and value.ndim != 4:
            return [(where, value)]
        value = list(value)            # an object array or a stack of views: one entry per view
    if not isinstance(value, (list, tuple)) or not value:
        raise UserError(f'{where}: expected a list of arrays (N, 17, 2) in pixels, found '
                        f'{type(value).__name__ if not isinstance(value, (list, tuple)) else "an empty list"}')
    return [(f'{where}[{view}]', array) for view, array in enumerate(value)]

"""Readers of detectors' keypoint files -> (layout, frames of ``Detection``s), pixels.

Every malformed file (not found, not JSON/.npy, missing keys, wrong joint count, empty) is a
one-line ``UserError`` naming the file and what was expected.

* coco: a COCO keypoint results JSON (list of ``{image_id, keypoints: [x, y, score] * 17, score}``,
  or a COCO annotation file's dict with ``annotations``), or a ``(N, 17, 2|3)`` ``.npy``.
* halpe: AlphaPose's ``alphapose-results.json`` (the same list, 17, 26 or 136 joints, ``idx`` = track id).
* openpose: a folder of per-frame ``*.json`` files (``people[].pose_keypoints_2d``, BODY_25 or
  BODY_18; ``person_id`` is -1 unless OpenPose's tracking was on).
* mediapipe: ``(N, 33, 3|4)`` ``.npy`` of BlazePose landmarks x, y, z[, visibility], normalised
  to [0, 1] of the image (MediaPipe's output) or pixels.
* h36m: ``(N, 17, 2|3)`` ``.npy`` already in the Human3.6M order.

Frames: every reader keeps the file's own numbering (``image_id``, the number in an OpenPose file's
name, an array's row); ``common.data.frame_numbering`` places the entries on the video's frames.
A NaN or infinite value of a joint is kept as a joint without coordinates (``Detection``).
"""
import json
from pathlib import Path

import numpy as np

from common.core.errors import UserError
from common.data.frame_numbering import NumberedEntries
from common.data.keypoint_formats import expected_joint_counts, layout_for
from common.data.keypoint_tracks import Detection

FORMATS = ('coco', 'halpe', 'openpose', 'mediapipe', 'h36m')
MEDIAPIPE_COORDINATES = ('normalised', 'pixels')


def read_keypoints(file_format: str, path, video_size=None, mediapipe_coordinates='normalised'):
    """(layout, ``NumberedEntries``) of ``path``: each entry a list of ``Detection``s in pixels.

    video_size: (width, height) px, needed to turn MediaPipe's normalised coordinates into pixels.
    """
    path = Path(path)
    if not path.exists():
        raise UserError(f'{path}: not found')
    if file_format == 'openpose':
        return _read_openpose(path)
    if path.suffix.lower() == '.npy':
        if file_format == 'halpe':
            raise UserError(f'{path}: expected AlphaPose\'s results JSON for --from halpe')
        return _read_array(file_format, path, video_size, mediapipe_coordinates)
    if file_format not in ('coco', 'halpe'):
        raise UserError(f'{path}: expected a .npy file for --from {file_format}')
    return _read_results_json(file_format, path)


def _load_json(path: Path):
    if path.is_dir():
        raise UserError(f'{path}: is a folder; expected a JSON file')
    try:
        return json.loads(path.read_text(encoding='utf-8'))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f'{path}: not a readable JSON file ({err})') from None


def _keypoints(values, file_format: str, where: str):
    """(layout, (K, 3) array) of a flat [x, y, score] * K list."""
    try:
        flat = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        flat = None
    layout = None if flat is None or flat.ndim != 1 or flat.size % 3 else layout_for(file_format, flat.size // 3)
    if layout is None:
        found = 'not a list of numbers' if flat is None or flat.ndim != 1 else f'{flat.size} values'
        raise UserError(f'{where}: expected [x, y, score] * ({expected_joint_counts(file_format)}) joints of the '
                        f'{file_format} format, found {found}')
    return layout, flat.reshape(-1, 3)[:layout.num_joints]


def _read_results_json(file_format: str, path: Path):
    results = _load_json(path)
    confidence_from_visibility = isinstance(results, dict) and 'annotations' in results
    if confidence_from_visibility:
        results = results['annotations']
    if not isinstance(results, list) or not results:
        raise UserError(f'{path}: expected a non-empty JSON list of {{image_id, keypoints, score}} (one per person '
                        f'and image), found {"an empty list" if results == [] else type(results).__name__}')
    detections, layouts = {}, set()
    for number, result in enumerate(results):
        where = f'{path}: entry {number}'
        if not isinstance(result, dict) or 'image_id' not in result or 'keypoints' not in result:
            raise UserError(f'{where}: expected a dict with keys image_id and keypoints'
                            + (f', found keys {", ".join(map(str, result))}' if isinstance(result, dict) else ''))
        layout, keypoints = _keypoints(result['keypoints'], file_format, f'{where}: keypoints')
        if confidence_from_visibility:          # COCO annotations: visibility 0 = not labelled, 1/2 = labelled
            keypoints[:, 2] = keypoints[:, 2] > 0
        layouts.add(layout.name)
        image_id = result['image_id']
        if isinstance(image_id, float) and image_id.is_integer():
            image_id = int(image_id)                  # 12.0 is frame 12, not the last number of '12.0'
        image_id = image_id if isinstance(image_id, (int, str)) and not isinstance(image_id, bool) else str(image_id)
        detections.setdefault(image_id, []).append(
            Detection(keypoints, _number(result.get('score'), where), _track_id(result.get('idx'), where)))
    if len(layouts) > 1:
        raise UserError(f'{path}: entries mix joint layouts ({", ".join(sorted(layouts))}); expected one')
    return layout, NumberedEntries(detections, 'image_id')


def _number(value, where):
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f'{where}: expected a number, found {value!r}')
    return float(value)


def _track_id(value, where):
    """AlphaPose's idx (an int, a float or a one-element list) -> int or None."""
    value = _number(value, where)
    return None if value is None else int(value)


def _read_openpose(folder: Path):
    if not folder.is_dir():
        raise UserError(f'{folder}: expected a folder of OpenPose per-frame JSON files (--write_json)')
    files = sorted(folder.glob('*.json'))
    if not files:
        raise UserError(f'{folder}: no .json files; expected OpenPose\'s per-frame files (people[].pose_keypoints_2d)')
    frames, layouts = {}, set()
    for path in files:
        content = _load_json(path)
        if not isinstance(content, dict) or not isinstance(content.get('people'), list):
            raise UserError(f'{path}: expected a dict with a list \'people\' (OpenPose\'s --write_json format)')
        detections = []
        for number, person in enumerate(content['people']):
            where = f'{path}: people[{number}]'
            if not isinstance(person, dict) or 'pose_keypoints_2d' not in person:
                raise UserError(f'{where}: no key \'pose_keypoints_2d\'')
            layout, keypoints = _keypoints(person['pose_keypoints_2d'], 'openpose', f'{where}.pose_keypoints_2d')
            layouts.add(layout.name)
            track = _track_id(person.get('person_id'), where)
            detections.append(Detection(keypoints, track_id=None if track is None or track < 0 else track))
        frames[path.stem] = detections
    numbered = NumberedEntries(frames, 'file')
    if not layouts:
        return layout_for('openpose', 25), numbered
    if len(layouts) > 1:
        raise UserError(f'{folder}: files mix joint layouts ({", ".join(sorted(layouts))}); expected one')
    return layout, numbered


def _read_array(file_format: str, path: Path, video_size, coordinates: str):
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UserError(f'{path}: not a readable .npy array ({err})') from None
    counts = expected_joint_counts(file_format)
    channels = '3|4' if file_format == 'mediapipe' else '2|3'
    expected = f'expected a numeric array (N, {counts}, {channels})'
    if not np.issubdtype(array.dtype, np.number) or array.ndim != 3:
        raise UserError(f'{path}: {expected}, found {array.dtype} {array.shape}')
    layout = layout_for(file_format, array.shape[1])
    if layout is None or str(array.shape[2]) not in channels.split('|'):
        raise UserError(f'{path}: {expected}, found {array.shape}')
    if array.shape[0] == 0:
        raise UserError(f'{path}: {expected}, found no frame {array.shape}')
    array = array.astype(np.float64)
    if file_format == 'mediapipe':        # x, y, z[, visibility]: z is relative depth, not used
        confidence = array[..., 3] if array.shape[2] == 4 else np.ones(array.shape[:2])
        xy = array[..., :2]
        if coordinates == 'normalised':
            if video_size is None:
                raise UserError(f'{path}: normalised MediaPipe landmarks need --video-size W H (pixels)')
            xy = xy * np.asarray(video_size, dtype=np.float64)
        array = np.concatenate([xy, confidence[..., None]], axis=-1)
    elif array.shape[2] == 2:
        array = np.concatenate([array, np.ones(array.shape[:2] + (1,))], axis=-1)
    frames = {row: [] if not np.isfinite(frame[:, :2]).any() else [Detection(frame)] for row, frame in enumerate(array)}
    return layout, NumberedEntries(frames, 'row')

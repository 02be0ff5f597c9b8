"""Your video's 2D keypoints -> the custom file ``main.py -d custom -k NAME`` reads: the steps of
``python -m common.keypoints`` (``common/keypoints.py``, its command line).

``convert_detections`` follows one person through the video's frames and fills gaps
(``common.data.keypoint_tracks``), ``convert_people`` every person, one entry each
(``common.data.person_tracks``: VIDEO_person1, VIDEO_person2, ...); both convert the joints to the
Human3.6M 17-joint order (``common.data.keypoint_formats``, where the rules for joints a format lacks
are written down) and print what was filled, and how. ``save_custom_keypoints`` writes the custom file
(VideoPose3D's layout, ``common.data.custom_data``).

This module imports only numpy and scipy, so that ``python -m common.keypoints detect`` runs in the
separate environment MediaPipe needs (it pins numpy < 2), without torch.
"""
from pathlib import Path

import numpy as np

from common.core.errors import UserError
from common.data.dataset_files import save_archive
from common.data.frame_numbering import VideoFrames
from common.data.keypoint_tracks import AUTO_PERSON, fill_gaps, follow_person
from common.data.person_tracks import person_entry_name, track_people
from common.data.skeleton import H36M_17

CUSTOM_FILE_PREFIX = 'data_2d_custom_'    # as common.data.custom_data (not imported: it needs torch)
VIEW_KEY = 'custom'


def convert_detections(layout, placed: VideoFrames, person, min_confidence: float, source: str) -> np.ndarray:
    """Frames of ``Detection``s in ``layout`` on the video's frames (``frame_numbering.place_on_video``)
    -> (N, 17, 2) pixels, Human3.6M order, frame i = video frame i; prints what was done."""
    joints = layout.used_joints()
    frames = placed.frames
    track = follow_person(frames, layout.num_joints, person, min_confidence, joints, source)
    following = ('the most confident person, then the nearest to the previous box' if person == AUTO_PERSON
                 else f'tracker id {person}')
    print(f'{source}: {len(frames)} frames of {layout.name} keypoints; {track.frames_without_people} frames with '
          f'0 people, {track.frames_with_several} with several; following {following}')
    print(f'Frame numbering: {placed.numbering}')
    filled = fill_gaps(track, min_confidence, joints, layout.joint_names, source)
    print(f'Frames without the person, filled: {filled.frames_before} before the first detection (its pose held), '
          f'{filled.frames_after} after the last (its pose held), {filled.frames_between} in between (linear '
          'interpolation in time)')
    print(f'Joint positions filled in time (interpolated, ends held): {_joints_filled(filled, min_confidence)}')
    _warn_never_confident(filled, layout, min_confidence)
    return layout.to_h36m(filled.keypoints)


def _joints_filled(filled, min_confidence: float) -> str:
    return (f'{filled.joints_below_confidence} below confidence {min_confidence:g} (--min-confidence), '
            f'{filled.joints_missing} without coordinates (NaN or infinite in the file)')


def _warn_never_confident(filled, layout, min_confidence: float, whose: str = '') -> None:
    if filled.never_confident:
        names = ', '.join(layout.joint_names[j] for j in filled.never_confident)
        print(f'Warning: {whose}{names} below confidence {min_confidence:g} in every frame: kept as detected')


def convert_people(layout, placed: VideoFrames, video: str, min_confidence: float, max_gap: int,
                   min_track_frames: int, source: str) -> dict:
    """Every person of the frames of ``Detection``s placed on the video (``common.data.person_tracks``)
    -> {'VIDEO_personk': (N, 17, 2) pixels, Human3.6M order, frame i = video frame i}, person 1 first;
    prints one line per person (frames detected / filled) and what was dropped."""
    joints = layout.used_joints()
    people = track_people(placed.frames, layout.num_joints, min_confidence, joints, max_gap, min_track_frames)
    print(f'{source}: {len(placed.frames)} frames of {layout.name} keypoints; {people.frames_without_people} frames '
          f'with 0 people, {people.frames_with_several} with several; following every person (--person all)')
    print(f'Frame numbering: {placed.numbering}')
    if people.not_started:
        print(f'Detections without a joint of confidence >= {min_confidence:g} (--min-confidence), which continued '
              f'no track and started none: {people.not_started}')
    if not people.found:
        confident = (f' with a joint of confidence >= {min_confidence:g} (--min-confidence)' if people.not_started
                     else '')
        raise UserError(f'--person all: {source} has no person{confident} in any frame; nothing written')
    dropped = (f'; dropped, as detected in fewer than {min_track_frames} frames (--min-track-frames): '
               f'{len(people.dropped)}, detected in {", ".join(map(str, people.dropped))} frames'
               if people.dropped else '')
    print(f'Tracks found: {people.found} (matched frame to frame, kept through gaps of up to {max_gap} frames, '
          f'--max-gap){dropped}')
    if not people.tracks:
        raise UserError(f'--person all: no track of {source} is detected in --min-track-frames {min_track_frames} '
                        f'frames (tracks found: {people.found}, the longest detected in {max(people.dropped)} frames); '
                        f'lower it, e.g. --min-track-frames {max(people.dropped)}; nothing written')
    usable = []
    for track in people.tracks:                 # a track without some joint anywhere is dropped, said so
        first = int(np.flatnonzero(track.present)[0])
        try:
            usable.append((track, fill_gaps(track, min_confidence, joints, layout.joint_names,
                                            f'{source}: the person first detected in frame {first}')))
        except UserError as err:
            print(f'Dropped: {err}')
    if not usable:
        raise UserError(f'--person all: every track of {source} was dropped (see above); nothing written')
    entries = {}
    for number, (track, filled) in enumerate(usable, start=1):
        name = person_entry_name(video, number)
        missing = filled.frames_before + filled.frames_after + filled.frames_between
        print(f'{name}: detected in {int(track.present.sum())} of {len(track.present)} frames, filled in {missing} '
              f'({filled.frames_before} before the first detection and {filled.frames_after} after the last: pose '
              f'held; {filled.frames_between} in between: interpolated); joint positions filled: '
              f'{_joints_filled(filled, min_confidence)}')
        _warn_never_confident(filled, layout, min_confidence, f'{name}: ')
        entries[name] = layout.to_h36m(filled.keypoints)
    return entries


def save_custom_keypoints(path, entries: dict, width: int, height: int, fps: float) -> Path:
    """Write one video's keypoints in VideoPose3D's custom layout (``common.data.custom_data``).

    entries: {name: (N, 17, 2) pixels}: the video's name, or each person's (``person_entry_name``);
    they share the video's width, height and frame rate.
    """
    video_metadata = {'w': int(width), 'h': int(height), 'fps': float(fps)}
    metadata = {'layout_name': 'h36m', 'num_joints': H36M_17.num_joints,
                'keypoints_symmetry': [list(H36M_17.joints_left), list(H36M_17.joints_right)],
                'video_metadata': {name: dict(video_metadata) for name in entries}}
    positions_2d = {name: {VIEW_KEY: [keypoints.astype(np.float32)]} for name, keypoints in entries.items()}
    return save_archive(path, positions_2d=positions_2d, metadata=metadata)


def custom_name(out) -> str:
    """'data/data_2d_custom_dance.npz' -> 'dance' (the -k NAME of main.py); a UserError for other names."""
    name = Path(out).name
    if not (name.startswith(CUSTOM_FILE_PREFIX) and name.endswith('.npz') and len(name) > len(CUSTOM_FILE_PREFIX) + 4):
        raise UserError(f'--out {out}: expected a file named {CUSTOM_FILE_PREFIX}NAME.npz (main.py -d custom -k NAME '
                        'reads it)')
    return name[len(CUSTOM_FILE_PREFIX):-len('.npz')]


"""Every person of a video: identities kept from frame to frame by one global matching per frame.

``track_people`` goes through the frames of ``Detection``s placed on the video
(``common.data.frame_numbering``) in order and keeps one track per person. In each frame:

1. the open tracks are those missing for at most ``max_gap`` frames in a row before this frame
   (``--max-gap``): a person who vanishes behind someone for that long and comes back keeps their track;
2. an (open track, detection) pair costs the mean distance between the keypoints of the track's last
   detection and the detection's, over the used joints confident (>= ``min_confidence``) in both
   (located in both where none is), divided by the larger side of the track's last box: 0.1 = a
   tenth of the person's size. The last detection, not a prediction: a track is matched where it was
   last seen;
3. the pairs are chosen together, with the least total cost (``scipy.optimize.linear_sum_assignment``),
   so that two people close to each other are not both given to the nearest track; a pair costing
   more than ``MAX_MATCH_COST`` is no match (the gate, applied before matching: a far pair must not
   push a near one out of the least total): a detection that far from every open track is another person;
4. a detection left unmatched starts a new track when one of its used joints is confident (one
   without any only continues tracks, as ``keypoint_tracks.follow_person`` starts only from one).

After the last frame, tracks detected in fewer than ``min_track_frames`` frames are dropped
(``--min-track-frames``); the others are numbered from 1 by first appearance (first frame, then left
to right by box centre) and become ``keypoint_tracks.Track``s, which ``keypoint_tracks.fill_gaps``
fills like one followed person's, so frame i of every track is frame i of the video. A custom file
names person k of video VIDEO ``VIDEO_personk`` (``person_entry_name``).
"""
import re
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from common.data.keypoint_tracks import Detection, Track

ALL_PEOPLE = 'all'
DEFAULT_MAX_GAP = 10             # frames: a third of a second at 30 fps, a person walking behind another
DEFAULT_MIN_TRACK_FRAMES = 10    # shorter tracks are mostly false detections or people passing the edge
MAX_MATCH_COST = 1.0             # mean keypoint distance / box size beyond which a detection is another person
UNMATCHABLE_COST = 1e6           # a pair beyond the gate, or without a joint located in both
MIN_BOX_SIZE_PX = 1.0            # a box of one joint has size 0; distances are divided by at least this
PERSON_ENTRY_SUFFIX = '_person'
_PERSON_ENTRY = re.compile(rf'(.+){PERSON_ENTRY_SUFFIX}([1-9][0-9]*)', re.DOTALL)


def person_entry_name(video: str, number: int) -> str:
    """('dance.mp4', 2) -> 'dance.mp4_person2': person ``number`` (from 1) of ``video`` in a custom file."""
    return f'{video}{PERSON_ENTRY_SUFFIX}{number}'


def split_person_entry(name: str):
    """'dance.mp4_person2' -> ('dance.mp4', 2); None for a name ``person_entry_name`` does not make."""
    found = _PERSON_ENTRY.fullmatch(name)
    return None if found is None else (found[1], int(found[2]))


@dataclass
class _Tracked:
    """One person while tracking: the frames where detected (increasing) and the detections there."""
    frames: list = field(default_factory=list)
    detections: list = field(default_factory=list)

    def add(self, frame: int, detection: Detection):
        self.frames.append(frame)
        self.detections.append(detection)


@dataclass
class People:
    """``track_people``'s result.

    tracks: the kept ``Track``s, person 1 first (numbered by first appearance); dropped: the number of
    detected frames of each track dropped as shorter than ``min_track_frames``; not_started: detections
    without a confident used joint that continued no track (and started none); how many frames had
    0 / several people.
    """
    tracks: list
    dropped: list
    not_started: int
    frames_without_people: int
    frames_with_several: int

    @property
    def found(self) -> int:
        return len(self.tracks) + len(self.dropped)


def match_costs(last: list, detections: list, min_confidence: float, joints) -> np.ndarray:
    """(T, D) cost of giving each of ``detections`` to the track whose last detection is ``last[t]``
    (module docstring, step 2); ``UNMATCHABLE_COST`` where no used joint is located in both and beyond
    the gate, so that the matching first makes as many pairs within the gate as it can."""
    previous = np.stack([d.keypoints[joints] for d in last])[:, None]          # (T, 1, J, 3) px, px, score
    current = np.stack([d.keypoints[joints] for d in detections])[None]        # (1, D, J, 3)
    located = np.isfinite(previous[..., 0]) & np.isfinite(current[..., 0])     # (T, D, J)
    confident = located & (previous[..., 2] >= min_confidence) & (current[..., 2] >= min_confidence)
    compared = np.where(confident.any(axis=-1, keepdims=True), confident, located)
    distances = np.linalg.norm(previous[..., :2] - current[..., :2], axis=-1)   # NaN where either lacks the joint
    counts = compared.sum(axis=-1)
    mean_distance = np.where(compared, distances, 0.0).sum(axis=-1) / np.maximum(counts, 1)
    sizes = np.array([np.ptp(d.box(min_confidence, joints), axis=0).max() for d in last])
    costs = mean_distance / np.maximum(sizes, MIN_BOX_SIZE_PX)[:, None]
    return np.where((counts > 0) & (costs <= MAX_MATCH_COST), costs, UNMATCHABLE_COST)


def track_people(frames: list, num_joints: int, min_confidence: float, joints, max_gap: int,
                 min_track_frames: int) -> People:
    """Every person through the video (module docstring).

    frames: N lists of ``Detection``s with (K, 3) keypoints, frame i = video frame i, in any order
    within a frame; joints: indices of the used joints (costs, boxes); detections without coordinates
    for any of them count as nobody. Each kept ``Track`` has keypoints (N, num_joints, 3), NaN where
    the person is absent, and ``present`` (N,).
    """
    frames = [[d for d in detections if d.located(joints)] for detections in frames]
    tracks, not_started = [], 0
    for index, detections in enumerate(frames):
        open_tracks = [t for t in tracks if index - t.frames[-1] - 1 <= max_gap]
        unmatched = list(range(len(detections)))
        if open_tracks and detections:
            costs = match_costs([t.detections[-1] for t in open_tracks], detections, min_confidence, joints)
            for row, column in zip(*linear_sum_assignment(costs)):
                if costs[row, column] < UNMATCHABLE_COST:
                    open_tracks[row].add(index, detections[column])
                    unmatched.remove(column)
        for column in sorted(unmatched, key=lambda c: detections[c].box_centre(min_confidence, joints)[0]):
            if np.any(detections[column].keypoints[joints, 2] >= min_confidence):
                tracks.append(_Tracked([index], [detections[column]]))
            else:
                not_started += 1
    counts = [len(d) for d in frames]
    without, several = sum(c == 0 for c in counts), sum(c > 1 for c in counts)
    kept = [_as_track(t, len(frames), num_joints, without, several)
            for t in tracks if len(t.frames) >= min_track_frames]
    dropped = [len(t.frames) for t in tracks if len(t.frames) < min_track_frames]
    return People(kept, dropped, not_started, without, several)


def _as_track(tracked: _Tracked, num_frames: int, num_joints: int, without: int, several: int) -> Track:
    """The person on all ``num_frames`` frames: keypoints (N, K, 3), NaN where not detected."""
    keypoints = np.full((num_frames, num_joints, 3), np.nan)
    keypoints[tracked.frames] = np.stack([d.keypoints for d in tracked.detections])
    present = np.zeros(num_frames, dtype=bool)
    present[tracked.frames] = True
    return Track(keypoints, present, frames_without_people=without, frames_with_several=several)

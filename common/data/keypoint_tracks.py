"""One person's keypoints through a video: choose the person per frame, then fill the gaps in time.

A file read by ``common.data.keypoint_readers`` and placed on the video's frames by
``common.data.frame_numbering`` is a list of frames, each a list of ``Detection``s. ``follow_person``
picks one detection per frame (or none); ``fill_gaps`` fills, joint by joint, the frames without the
person, joints below the confidence threshold and joints without coordinates (NaN in the file):

* between two frames where the joint is known: linear interpolation in time;
* before the first and after the last such frame: that frame's value held. So the frames before the
  person's first detection show the first detected pose, those after the last detection the last one.
"""
from dataclasses import dataclass

import numpy as np

from common.core.errors import UserError

AUTO_PERSON = 'auto'
DEFAULT_MIN_CONFIDENCE = 0.3   # detectors' scores are in [0, 1]; below 0.3 a joint is usually a guess


@dataclass
class Detection:
    """One person in one frame.

    keypoints: (K, 3) pixels x, y and a confidence in [0, 1] (1 where the format has none); a joint
    with a NaN or infinite value in the file has no coordinates: x, y NaN, confidence 0;
    score: the detector's person score (None: the mean confidence); track_id: the format's tracker id or None.
    """
    keypoints: np.ndarray
    score: float = None
    track_id: int = None

    def __post_init__(self):
        self.keypoints = np.array(self.keypoints, dtype=np.float64)
        missing = ~np.isfinite(self.keypoints).all(axis=-1)
        self.keypoints[missing] = (np.nan, np.nan, 0.0)

    def person_score(self) -> float:
        return float(np.mean(self.keypoints[:, 2]) if self.score is None else self.score)

    def located(self, joints) -> bool:
        """Whether any of the used ``joints`` has coordinates."""
        return bool(np.isfinite(self.keypoints[joints, 0]).any())

    def box(self, min_confidence: float, joints) -> np.ndarray:
        """(2, 2) pixels: the lowest (x, y) and the highest (x, y) of the box around the confident used
        joints (all located used joints if none is confident); the detection must be ``located``."""
        points = self.keypoints[joints]
        points = points[np.isfinite(points[:, 0])]
        confident = points[points[:, 2] >= min_confidence]
        points = confident if len(confident) else points
        return np.stack([points[:, :2].min(axis=0), points[:, :2].max(axis=0)])

    def box_centre(self, min_confidence: float, joints) -> np.ndarray:
        """(2,) pixels: the centre of ``box``."""
        return self.box(min_confidence, joints).mean(axis=0)


@dataclass
class Track:
    """The followed person: keypoints (N, K, 3) (NaN where absent or without coordinates), present (N,) bool:
    the person was detected; how many frames had 0 / several people."""
    keypoints: np.ndarray
    present: np.ndarray
    frames_without_people: int
    frames_with_several: int


def follow_person(frames: list, num_joints: int, person, min_confidence: float, joints, source: str) -> Track:
    """Pick one ``Detection`` per frame.

    frames: N lists of detections with (K, 3) keypoints, frame i = video frame i; person: ``AUTO_PERSON``
    (the highest person score in the first frame that has anyone with a joint at ``min_confidence``,
    then in each frame the detection whose box centre is nearest to the last chosen one) or a tracker
    id (int); joints: indices of the joints that matter (boxes, usability). Detections without
    coordinates for any of them count as nobody.
    """
    keypoints = np.full((len(frames), num_joints, 3), np.nan)
    present = np.zeros(len(frames), dtype=bool)
    frames = [[d for d in detections if d.located(joints)] for detections in frames]
    previous = None
    for index, detections in enumerate(frames):
        if person != AUTO_PERSON:
            chosen = next((d for d in detections if d.track_id == person), None)
        elif previous is None:
            usable = [d for d in detections if np.any(d.keypoints[joints, 2] >= min_confidence)]
            chosen = max(usable, key=Detection.person_score, default=None)
        else:
            chosen = min(detections, default=None, key=lambda d: np.linalg.norm(
                d.box_centre(min_confidence, joints) - previous))
        if chosen is not None:
            keypoints[index] = chosen.keypoints
            present[index] = True
            previous = chosen.box_centre(min_confidence, joints)
    if person != AUTO_PERSON and not present.any():
        ids = sorted({d.track_id for detections in frames for d in detections if d.track_id is not None})
        found = (f'ids found: {", ".join(map(str, ids))}' if ids else 'the files have no tracker ids (OpenPose '
                 'writes person_id -1 unless its tracking is on); use --person auto')
        raise UserError(f'{source}: no person with tracker id {person} (--person); {found}')
    counts = [len(detections) for detections in frames]
    return Track(keypoints, present, sum(c == 0 for c in counts), sum(c > 1 for c in counts))


@dataclass
class FilledKeypoints:
    """keypoints (N, K, 2) with every used joint filled, and counts of what was filled (module docstring).

    Frames without the person: ``frames_before`` its first detection and ``frames_after`` its last
    (held), ``frames_between`` (interpolated). Joint positions in frames with the person:
    ``joints_below_confidence`` (below the threshold) and ``joints_missing`` (no coordinates in the file).
    """
    keypoints: np.ndarray
    frames_before: int
    frames_after: int
    frames_between: int
    joints_below_confidence: int
    joints_missing: int
    never_confident: list         # joint indices below the threshold in every frame: kept as detected


def fill_gaps(track: Track, min_confidence: float, joints, joint_names, source: str) -> FilledKeypoints:
    """Fill the used ``joints`` of ``track`` in time wherever they are absent, without coordinates or
    below ``min_confidence`` (module docstring: interpolated between known frames, held at the ends).

    A joint never confident keeps its detected values (filled only where it has none); a video
    where the person never has a confident joint, or a used joint never has coordinates (named by
    ``joint_names``), is a ``UserError``.
    """
    keypoints, present = track.keypoints, track.present
    located = present[:, None] & np.isfinite(keypoints[..., 0])
    confident = located & (np.nan_to_num(keypoints[..., 2], nan=-1.0) >= min_confidence)
    if not confident[:, joints].any():
        raise UserError(f'{source}: no usable frame: no person with a keypoint of confidence >= {min_confidence} '
                        '(--min-confidence) in any frame')
    nowhere = [joint_names[j] for j in joints if not located[:, j].any()]
    if nowhere:
        raise UserError(f'{source}: {", ".join(nowhere)} without coordinates (NaN) in every frame of the person; '
                        'expected each joint located at least once')
    frames = np.arange(len(keypoints))
    filled = np.zeros(keypoints.shape[:2] + (2,))
    never_confident, below_confidence, missing = [], 0, 0
    for joint in joints:
        known = confident[:, joint]
        if not known.any():
            known = located[:, joint]
            never_confident.append(int(joint))
        below_confidence += int(np.sum(located[:, joint] & ~known))
        missing += int(np.sum(present & ~located[:, joint]))
        for axis in range(2):
            filled[:, joint, axis] = np.interp(frames, frames[known], keypoints[known, joint, axis])
    with_person = np.flatnonzero(present)
    first, last = with_person[0], with_person[-1]
    return FilledKeypoints(
        filled, frames_before=int(first), frames_after=int(len(present) - 1 - last),
        frames_between=int(np.sum(~present[first:last + 1])),
        joints_below_confidence=below_confidence, joints_missing=missing, never_confident=never_confident)

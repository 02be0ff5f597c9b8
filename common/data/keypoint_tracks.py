"""One person's keypoints through a video: choose the person per frame, then fill the gaps in time.

A file read by ``common.data.keypoint_readers`` is a list of frames, each a list of ``Detection``s.
``follow_person`` picks one detection per frame (or none); ``fill_gaps`` replaces joints below the
confidence threshold and frames without the person by linear interpolation in time, holding the
first and last usable values at the ends.
"""
from dataclasses import dataclass

import numpy as np

from common.core.errors import UserError

AUTO_PERSON = 'auto'
DEFAULT_MIN_CONFIDENCE = 0.3   # detectors' scores are in [0, 1]; below 0.3 a joint is usually a guess


@dataclass
class Detection:
    """One person in one frame.

    keypoints: (K, 3) pixels x, y and a confidence in [0, 1] (1 where the format has none);
    score: the detector's person score (None: the mean confidence); track_id: the format's tracker id or None.
    """
    keypoints: np.ndarray
    score: float = None
    track_id: int = None

    def person_score(self) -> float:
        return float(np.mean(self.keypoints[:, 2]) if self.score is None else self.score)

    def box_centre(self, min_confidence: float, joints) -> np.ndarray:
        """(2,) centre of the box around the confident used joints (all used joints if none is confident)."""
        points = self.keypoints[joints]
        confident = points[points[:, 2] >= min_confidence]
        points = confident if len(confident) else points
        return (points[:, :2].min(axis=0) + points[:, :2].max(axis=0)) / 2


@dataclass
class Track:
    """The followed person: keypoints (N, K, 3) (NaN where absent), and how many frames had 0 / several people."""
    keypoints: np.ndarray
    frames_without_people: int
    frames_with_several: int


def follow_person(frames: list, num_joints: int, person, min_confidence: float, joints, source: str) -> Track:
    """Pick one ``Detection`` per frame.

    frames: N lists of detections with (K, 3) keypoints; person: ``AUTO_PERSON`` (the highest person
    score in the first frame that has anyone with a joint at ``min_confidence``, then in each frame
    the detection whose box centre is nearest to the last chosen one) or a tracker id (int);
    joints: indices of the joints that matter (boxes, usability).
    """
    keypoints = np.full((len(frames), num_joints, 3), np.nan)
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
            previous = chosen.box_centre(min_confidence, joints)
    if person != AUTO_PERSON and not np.isfinite(keypoints).any():
        ids = sorted({d.track_id for detections in frames for d in detections if d.track_id is not None})
        found = (f'ids found: {", ".join(map(str, ids))}' if ids else 'the files have no tracker ids (OpenPose '
                 'writes person_id -1 unless its tracking is on); use --person auto')
        raise UserError(f'{source}: no person with tracker id {person} (--person); {found}')
    counts = [len(detections) for detections in frames]
    return Track(keypoints, sum(c == 0 for c in counts), sum(c > 1 for c in counts))


@dataclass
class FilledKeypoints:
    """keypoints (N, K, 2) with every used joint filled; counts of what was filled."""
    keypoints: np.ndarray
    frames_missing: int           # frames without the person
    joints_filled: int            # (frame, joint) positions below the threshold in frames with the person
    never_confident: list         # joint indices below the threshold in every frame: kept as detected


def fill_gaps(keypoints: np.ndarray, min_confidence: float, joints, source: str) -> FilledKeypoints:
    """Linear interpolation in time of the used ``joints`` wherever they are absent or below ``min_confidence``.

    keypoints: (N, K, 3) x, y px and confidence, NaN in frames without the person. Each joint is
    interpolated from the frames where it is confident (before the first and after the last such
    frame its value is held); a joint never confident keeps its detected values (interpolated only
    over frames without the person). A video where the person never has a confident joint is a
    ``UserError``.
    """
    present = np.isfinite(keypoints).all(axis=2).all(axis=1)
    confident = present[:, None] & (np.nan_to_num(keypoints[..., 2], nan=-1.0) >= min_confidence)
    if not confident[:, joints].any():
        raise UserError(f'{source}: no usable frame: no person with a keypoint of confidence >= {min_confidence} '
                        '(--min-confidence) in any frame')
    frames = np.arange(len(keypoints))
    filled = np.zeros(keypoints.shape[:2] + (2,))
    joints_filled, never_confident = 0, []
    for joint in joints:
        known = confident[:, joint]
        if not known.any():
            known = present
            never_confident.append(int(joint))
        else:
            joints_filled += int(np.sum(present & ~known))
        for axis in range(2):
            filled[:, joint, axis] = np.interp(frames, frames[known], keypoints[known, joint, axis])
    return FilledKeypoints(filled, int(np.sum(~present)), joints_filled, never_confident)

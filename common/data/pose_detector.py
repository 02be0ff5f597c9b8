"""An offline 2D pose detector: MediaPipe's legacy pose solution (BlazePose, 33 landmarks) on the CPU.

``mediapipe==0.10.21`` ships the person detector and the "full" landmark model inside its wheel, so
nothing is downloaded. It pins numpy < 2, so it lives in its own environment (docs/your-own-video.md;
``requirements-detector.txt``); this module needs only numpy, mediapipe and PyAV.
MediaPipe tracks one person: after the first detection it follows the landmarks from frame to frame.
"""
import numpy as np

from common.core.errors import UserError
from common.data.frame_numbering import NumberedEntries
from common.data.keypoint_formats import BLAZEPOSE
from common.data.keypoint_tracks import Detection

INSTALL_HINT = ('python3 -m venv venv-detector && venv-detector/bin/pip install -r requirements-detector.txt, then '
                'run venv-detector/bin/python -m common.keypoints detect ... (see docs/your-own-video.md)')
MODEL_COMPLEXITY = 1                 # the "full" landmark model, the one shipped in the wheel
MIN_DETECTION_CONFIDENCE = 0.5       # MediaPipe's default for the person detector


def _pose_solution():
    try:
        from mediapipe.python.solutions import pose
    except ImportError:
        raise UserError(f'detect needs MediaPipe, which is not installed here; install it in its own environment: '
                        f'{INSTALL_HINT}') from None
    return pose


def detect_landmarks(frames, static_images: bool = False) -> list:
    """BlazePose landmarks of each (H, W, 3) uint8 RGB frame: a list of (33, 4) arrays x, y (normalised to
    [0, 1] of the width and height), z (relative depth), visibility; None where no person was found.

    static_images: detect the person in every frame anew instead of tracking it (for unrelated photos).
    """
    pose = _pose_solution()
    landmarks = []
    with pose.Pose(static_image_mode=static_images, model_complexity=MODEL_COMPLEXITY,
                   min_detection_confidence=MIN_DETECTION_CONFIDENCE) as solution:
        for frame in frames:
            found = solution.process(np.ascontiguousarray(frame)).pose_landmarks
            landmarks.append(None if found is None else np.array(
                [(p.x, p.y, p.z, p.visibility) for p in found.landmark], dtype=np.float64))
    return landmarks


def detect_video(path):
    """(layout, ``NumberedEntries`` of every decoded frame: a list of ``Detection``s in pixels, empty where
    nobody was found; (width, height, fps)) of a video FFmpeg reads."""
    _pose_solution()                                  # fail before decoding anything
    from common.data.video_io import read_frames, video_info
    width, height, fps = video_info(path, flag='detect')
    size = np.array([width, height], dtype=np.float64)
    frames = {}
    for index, landmarks in enumerate(detect_landmarks(read_frames(path, flag='detect'))):
        frames[index] = [] if landmarks is None else [Detection(
            np.column_stack([landmarks[:, :2] * size, landmarks[:, 3]]))]
    if not frames:
        raise UserError(f'detect {path}: no frame could be decoded')
    return BLAZEPOSE, NumberedEntries(frames, 'decoded frame'), (width, height, fps)

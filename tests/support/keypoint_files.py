"""Detector keypoints written in a format's own joint order and in a detector's results layout.

Known Human3.6M-order keypoints go in; the joint names are each format's own (its documentation's),
mapped to ours independently of ``common.data.keypoint_formats``.
"""
import numpy as np

# Our joint names -> Human3.6M-17 index.
H36M_INDEX = {'pelvis': 0, 'right_hip': 1, 'right_knee': 2, 'right_ankle': 3, 'left_hip': 4, 'left_knee': 5,
              'left_ankle': 6, 'spine': 7, 'thorax': 8, 'nose': 9, 'head_top': 10, 'left_shoulder': 11,
              'left_elbow': 12, 'left_wrist': 13, 'right_shoulder': 14, 'right_elbow': 15, 'right_wrist': 16}
# COCO's 17 keypoints in its own order and names.
COCO_NAMES = ['nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
              'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee',
              'right_knee', 'left_ankle', 'right_ankle']


def in_format(truth, names, rename=None, confidence=0.9):
    """(N, K, 3) x, y, confidence in a format's order; joints Human3.6M lacks get made-up positions."""
    rng = np.random.default_rng(len(names))
    out = np.empty((truth.shape[0], len(names), 3))
    for k, name in enumerate(names):
        ours = (rename or {}).get(name, name)
        out[:, k, :2] = truth[:, H36M_INDEX[ours]] if ours in H36M_INDEX else \
            truth[:, H36M_INDEX['nose']] + rng.uniform(-30, 30, 2)
    out[..., 2] = confidence
    return out


def detector_results(keypoints, image_ids, score=0.9, idx=None):
    """A detector's results list (COCO's results layout): one entry per (N, K, 3) frame of ``keypoints``."""
    return [{'image_id': i, 'category_id': 1, 'keypoints': k.ravel().tolist(), 'score': score,
             **({} if idx is None else {'idx': idx})} for i, k in zip(image_ids, keypoints)]

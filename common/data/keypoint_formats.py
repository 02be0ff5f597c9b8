"""2D keypoint layouts of common detectors and their conversion to the Human3.6M 17-joint order.

Every format is a list of joint names in the order of its files, and one table: each of the 17
Human3.6M joints (``skeleton.H36M_17``) is a weighted sum of the format's joints, so converting is
one matrix product ``(17, K) @ (N, K, 2)``. All formats name joints by the *person's* side (the
left shoulder of a person facing the camera appears on the image's right), as Human3.6M does, so
left maps to left: COCO-17, Halpe-26 (AlphaPose), OpenPose BODY_25 and BODY_18 (its "L"/"R"
prefixes) and MediaPipe BlazePose (``left_*``, documented as the person's left; only MediaPipe's
*hand* handedness assumes a mirrored selfie image, and that is not used here).

Joints copied (exactly, where the format has them): hips, knees, ankles (Human3.6M's "Foot" is
the ankle), shoulders, elbows, wrists; Human3.6M's "Neck/Nose" joint is the nose. Joints built
from others, in this order, each with the reason:

* pelvis (Hip, the root) = the format's mid-hip point when it has one (Halpe ``hip``, BODY_25
  ``MidHip``), else the midpoint of the two hips: Human3.6M's root lies between the hip joints.
* thorax = the format's neck when it has one (Halpe ``neck``, OpenPose ``Neck``: both annotated
  at the base of the neck), else the midpoint of the shoulders: Human3.6M's thorax joint is the
  base of the neck, between the shoulders.
* spine = midpoint of pelvis and thorax: Human3.6M's spine joint sits on the torso's axis about
  halfway between them.
* head (top of the head) = Halpe's ``head`` when present; otherwise nose + (nose - thorax), i.e.
  the nose reflected above itself: in Human3.6M's skeleton the thorax -> nose and nose -> head-top
  bones have about the same length (~11.5 cm), so the top of the head lies about as far beyond
  the nose as the nose lies beyond the thorax. It follows the nose when the head turns, so it is
  the least reliable of the built joints.
"""
from dataclasses import dataclass

import numpy as np

from common.data.skeleton import H36M_17

_SIDES = ('left', 'right')
_LIMB_JOINTS = ('hip', 'knee', 'ankle', 'shoulder', 'elbow', 'wrist')

COCO_17 = ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
           'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee',
           'right_knee', 'left_ankle', 'right_ankle')
# AlphaPose's Halpe-26: COCO-17 then head top, neck, mid-hip and the feet (Halpe-136 starts with the same 26).
HALPE_26 = COCO_17 + ('head', 'neck', 'hip', 'left_big_toe', 'right_big_toe', 'left_small_toe',
                      'right_small_toe', 'left_heel', 'right_heel')
# OpenPose BODY_25 (Nose, Neck, RShoulder, ..., MidHip, ..., RHeel) and the older BODY_18 (COCO model).
OPENPOSE_BODY_25 = ('nose', 'neck', 'right_shoulder', 'right_elbow', 'right_wrist', 'left_shoulder',
                    'left_elbow', 'left_wrist', 'mid_hip', 'right_hip', 'right_knee', 'right_ankle', 'left_hip',
                    'left_knee', 'left_ankle', 'right_eye', 'left_eye', 'right_ear', 'left_ear',
                    'left_big_toe', 'left_small_toe', 'left_heel', 'right_big_toe', 'right_small_toe',
                    'right_heel')
OPENPOSE_BODY_18 = tuple(n for n in OPENPOSE_BODY_25 if n != 'mid_hip')[:18]
MEDIAPIPE_33 = ('nose', 'left_eye_inner', 'left_eye', 'left_eye_outer', 'right_eye_inner', 'right_eye',
                'right_eye_outer', 'left_ear', 'right_ear', 'mouth_left', 'mouth_right', 'left_shoulder',
                'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_pinky',
                'right_pinky', 'left_index', 'right_index', 'left_thumb', 'right_thumb', 'left_hip',
                'right_hip', 'left_knee', 'right_knee', 'left_ankle', 'right_ankle', 'left_heel', 'right_heel',
                'left_foot_index', 'right_foot_index')
# Our own order, under the names used above (``skeleton.H36M_17`` names them Hip, RHip, ...).
H36M_NAMES = ('pelvis', 'right_hip', 'right_knee', 'right_ankle', 'left_hip', 'left_knee', 'left_ankle',
              'spine', 'thorax', 'nose', 'head', 'left_shoulder', 'left_elbow', 'left_wrist', 'right_shoulder',
              'right_elbow', 'right_wrist')
assert len(H36M_NAMES) == H36M_17.num_joints


@dataclass(frozen=True)
class KeypointLayout:
    """A detector's joint order and its conversion to Human3.6M-17.

    name: e.g. 'COCO-17'; joint_names: (K,) in file order; weights: (17, K) float, row j = how
    Human3.6M joint j is made from the K joints (one 1.0 for a copied joint).
    """
    name: str
    joint_names: tuple
    weights: np.ndarray

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def used_joints(self) -> np.ndarray:
        """Indices of the format's joints that enter the conversion."""
        return np.flatnonzero(np.any(self.weights != 0, axis=0))

    def to_h36m(self, keypoints: np.ndarray) -> np.ndarray:
        """(N, K, 2) keypoints in this layout -> (N, 17, 2), same units."""
        return np.einsum('jk,nkc->njc', self.weights, keypoints)


def _layout(name: str, joint_names: tuple) -> KeypointLayout:
    """Build the (17, K) table of ``joint_names`` with the rules of the module docstring."""
    index = {joint: k for k, joint in enumerate(joint_names)}

    def mean(*joints):
        return {joint: 1.0 / len(joints) for joint in joints}

    def combine(*terms):                      # (factor, {joint: weight}) pairs -> {joint: summed weight}
        rule = {}
        for factor, part in terms:
            for joint, weight in part.items():
                rule[joint] = rule.get(joint, 0.0) + factor * weight
        return rule

    rules = {f'{side}_{joint}': {f'{side}_{joint}': 1.0} for side in _SIDES for joint in _LIMB_JOINTS}
    rules['nose'] = {'nose': 1.0}
    rules['pelvis'] = {'mid_hip': 1.0} if 'mid_hip' in index else ({'hip': 1.0} if 'hip' in index
                                                                    else mean('left_hip', 'right_hip'))
    rules['thorax'] = {'neck': 1.0} if 'neck' in index else mean('left_shoulder', 'right_shoulder')
    rules['spine'] = combine((0.5, rules['pelvis']), (0.5, rules['thorax']))
    rules['head'] = {'head': 1.0} if 'head' in index else combine((2.0, rules['nose']), (-1.0, rules['thorax']))
    weights = np.zeros((len(H36M_NAMES), len(joint_names)))
    for row, joint in enumerate(H36M_NAMES):
        for source, weight in rules[joint].items():
            weights[row, index[source]] = weight
    return KeypointLayout(name, joint_names, weights)


COCO = _layout('COCO-17', COCO_17)
HALPE = _layout('Halpe-26', HALPE_26)
BODY_25 = _layout('OpenPose BODY_25', OPENPOSE_BODY_25)
BODY_18 = _layout('OpenPose BODY_18', OPENPOSE_BODY_18)
BLAZEPOSE = _layout('MediaPipe BlazePose-33', MEDIAPIPE_33)
H36M = KeypointLayout('Human3.6M-17', H36M_NAMES, np.eye(len(H36M_NAMES)))

# Per --from format: the layouts its files may hold, by joint count.
LAYOUTS_BY_FORMAT = {
    'coco': {17: COCO},
    'halpe': {17: COCO, 26: HALPE, 136: HALPE},       # Halpe-136: the first 26 are Halpe-26's body joints
    'openpose': {25: BODY_25, 18: BODY_18},
    'mediapipe': {33: BLAZEPOSE},
    'h36m': {17: H36M},
}


def layout_for(file_format: str, num_joints: int):
    """The layout of a ``file_format`` file with ``num_joints`` joints, or None if it has none."""
    return LAYOUTS_BY_FORMAT[file_format].get(num_joints)


def expected_joint_counts(file_format: str) -> str:
    """'17 or 26 or 136' for messages."""
    return ' or '.join(str(n) for n in LAYOUTS_BY_FORMAT[file_format])

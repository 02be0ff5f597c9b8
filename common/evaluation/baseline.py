"""The baseline line of every evaluation table: the training set's mean pose, predicted at every frame.

A model that has learnt anything beats this constant prediction; one that does not predicts
something close to it (at best the mean pose itself). Every table prints it as one extra line,
``mean training pose``, counted on the same frames by the same rule as the four settings
(``protocol.Counting``; the window-frame weights of ``protocol.frame_weights`` carried over to
the sequence's frames). A constant pose is left as it is by ``--smooth`` (a Savitzky-Golay filter
reproduces constants), and its MPJVE is the ground truth's own velocity over the same frame pairs.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from common.evaluation import metrics

MEAN_POSE_LABEL = 'mean training pose'


@dataclass(frozen=True)
class MeanPose:
    """The baseline's pose, or why there is none.

    pose: (J, 3) float64, metres, camera frame, root-relative (``generators.training_mean_pose``),
    or None when absent; source: where the pose comes from, or why it is absent, in words.
    """
    pose: Optional[np.ndarray]
    source: str

    @property
    def present(self) -> bool:
        return self.pose is not None


def mean_pose_sums(pose, target, frame_weights, valid, root: int, protocols=(1,)) -> tuple:
    """One sequence's baseline sums, as ``protocol.SequenceResult.sums`` holds the settings'.

    pose: (J, 3) metres; target: (N, J, 3) metres, root-relative ground truth; frame_weights: (N,)
    the weight of each frame (``protocol.sequence_frame_weights``); valid: (N,) bool or None.
    Returns ({protocol: (1,) float64 metres x counted frames, metrics.VELOCITY: (1,) float64 metres
    x counted pairs}, counted pairs), in float64 throughout.
    """
    target = torch.as_tensor(np.asarray(target, np.float64))
    constant = torch.as_tensor(np.asarray(pose, np.float64)).clone()
    constant[root] = 0                                                   # as the settings' poses (``zero_root``)
    track = constant.expand(target.shape[0], 1, *constant.shape)        # (N, 1, J, 3): one "step"
    weights = torch.as_tensor(np.asarray(frame_weights, np.float64))[:, None]
    sums = {protocol: (metrics.protocol_joint_errors(track, target[:, None], protocol).mean(dim=-1) * weights)
            .sum(dim=0).numpy() for protocol in protocols}
    velocity, pairs = metrics.velocity_error_sums(track, target, valid)
    sums[metrics.VELOCITY] = velocity.numpy()
    return sums, pairs

"""Pose error metrics, and the four ways of scoring H hypotheses (P-Best, J-Best, P-Agg, J-Agg).

Single-pose metrics take (..., J, 3) arrays in any unit (metres in the pipeline) and return the
error in that unit:

* MPJPE (Protocol #1): mean Euclidean joint distance.
* P-MPJPE (Protocol #2): MPJPE after aligning each pose to the target with the optimal
  similarity transform (rotation, uniform scale, translation; reflections excluded).
* N-MPJPE: MPJPE after the optimal uniform scale only.
* MPJVE: MPJPE of the frame-to-frame differences (velocity).

Multi-hypothesis scoring works on ``hyps`` (B, K, H, F, J, 3) = B clips, K DDIM steps,
H hypotheses, root-relative camera-frame poses, against ``target`` (B, F, J, 3):

* P-Best (uses ground truth): the hypothesis with the lowest mean error over a batch of clips,
  per step. Which clips form a batch is the evaluation's counting rule (``p_best_index``):
  ``--protocol original`` takes the original FinePOSE's evaluation batches (``-b`` consecutive
  windows of one sequence, so at ``-b 1024`` one hypothesis for a whole sequence), ``--protocol
  per-frame`` one batch per clip (the number then does not depend on ``-b``).
* J-Best (uses ground truth): per frame and joint, the hypothesis closest to the target.
* P-Agg: the mean of the hypotheses.
* J-Agg (JPMA, joint-wise pose multi-hypothesis aggregation): per frame and joint, the
  hypothesis whose reprojection (pose + ground-truth root trajectory, camera intrinsics with
  distortion) is closest to the input 2D keypoint. It uses no ground-truth pose, but the
  ground-truth root trajectory and camera, as the paper does.

J-Best, P-Agg and J-Agg are per frame (``setting_errors``); P-Best is chosen from every
hypothesis's per-frame errors once its batch is known (``p_best_index``, ``pick_hypotheses``):
one path for both counting rules, the grouping its only parameter.
"""
from dataclasses import dataclass

import torch

from common.data.camera import project_to_2d

SETTINGS = ('P-Best', 'J-Best', 'P-Agg', 'J-Agg')
# What each setting takes from the ground truth besides the 2D input (the tables' ``ground_truth_used``).
GT_NONE, GT_ORACLE, GT_ROOT_CAMERA = 'no', 'gt_3d_pose (oracle)', 'gt_root_camera'
GROUND_TRUTH_USED = {'P-Best': GT_ORACLE, 'J-Best': GT_ORACLE, 'P-Agg': GT_NONE, 'J-Agg': GT_ROOT_CAMERA}
# Result tables key errors by (setting, metric): metric 1 or 2 (Protocol #1 or #2), or VELOCITY (MPJVE).
VELOCITY = 'MPJVE'
_EPS = 1e-12


def lowest(values, dim: int):
    """The index of the lowest value along ``dim`` (the first of equal ones, NaN counting as lowest,
    as ``argmin``). ``min``'s indices: on a CPU 4x faster than ``argmin`` along a dimension that is
    not the last (20 ms -> 5 ms for the hypotheses of a 4-window, H=20, K=10 batch)."""
    return values.min(dim=dim).indices


def joint_errors(pred, target):
    """(..., J, 3) x (..., J, 3) (broadcastable) -> (..., J) Euclidean distances."""
    return torch.linalg.vector_norm(pred - target, dim=-1)


def mpjpe(pred, target):
    """Protocol #1: mean per-joint position error over every joint of every pose."""
    return joint_errors(pred, target).mean()


def procrustes_align(pred, target):
    """Align every pose of ``pred`` to ``target`` with a similarity transform (batched).

    pred, target: (..., J, 3) (target broadcastable to pred). Returns aligned pred, same shape
    and dtype. Solves min_{s,R,t} |s R p + t - x|^2 per pose with R a proper rotation
    (Umeyama): the SVD of the cross-covariance, the last singular vector flipped when needed.
    """
    dtype = pred.dtype
    target = torch.broadcast_to(target, pred.shape).double()
    pred = pred.double()
    mu_p, mu_t = pred.mean(dim=-2, keepdim=True), target.mean(dim=-2, keepdim=True)
    p0, t0 = pred - mu_p, target - mu_t
    covariance = p0.transpose(-1, -2) @ t0                         # (..., 3, 3)
    u, s, vh = torch.linalg.svd(covariance)
    sign = torch.sign(torch.linalg.det(u @ vh))
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    d = torch.ones_like(s)
    d[..., -1] = sign
    rotation = (u * d[..., None, :]) @ vh                          # row-vector convention: p0 @ R
    scale = (s * d).sum(dim=-1) / (p0.square().sum(dim=(-1, -2)) + _EPS)
    aligned = scale[..., None, None] * (p0 @ rotation) + mu_t
    return aligned.to(dtype)


def p_mpjpe(pred, target):
    """Protocol #2: MPJPE after similarity Procrustes alignment of each pose."""
    return mpjpe(procrustes_align(pred, target), torch.broadcast_to(target, pred.shape))


def n_mpjpe(pred, target):
    """MPJPE after the optimal uniform scale of each pose: s = <target, pred> / <pred, pred>."""
    scale = (target * pred).sum(dim=(-1, -2), keepdim=True) / (pred.square().sum(dim=(-1, -2), keepdim=True) + _EPS)
    return mpjpe(scale * pred, target)


def mean_velocity_error(pred, target, dim: int = -3):
    """MPJVE: MPJPE of first differences along the frame dimension ``dim`` of (..., F, J, 3)."""
    return mpjpe(torch.diff(pred, dim=dim), torch.diff(target, dim=dim))


def velocity_error_sums(poses, target, valid=None):
    """MPJVE's sum over one sequence's consecutive frame pairs, and how many pairs it counts.

    poses: (N, *, J, 3) one pose per frame (e.g. (N, K, J, 3): K DDIM steps); target: (N, J, 3),
    same unit; valid: (N,) bool or None (every frame valid). A pair (t, t + 1) counts when both of
    its frames are valid; its error is the mean over joints of
    ||(poses[t+1] - poses[t]) - (target[t+1] - target[t])||. Returns (sums (*) float64, pairs int):
    MPJVE = sums / pairs.
    """
    target = torch.as_tensor(target)
    target = target.reshape((target.shape[0],) + (1,) * (poses.ndim - target.ndim) + tuple(target.shape[1:]))
    pair_errors = joint_errors(torch.diff(poses, dim=0), torch.diff(target, dim=0)).mean(dim=-1).double()  # (N-1, *)
    if valid is None:
        return pair_errors.sum(dim=0), pair_errors.shape[0]
    valid = torch.as_tensor(valid, dtype=torch.bool)
    counted = valid[1:] & valid[:-1]                                                           # (N-1,)
    return pair_errors[counted].sum(dim=0), int(counted.sum())


def _gather_hypotheses(hyps, index):
    """hyps (B, K, H, F, J, 3), index (B, K, F, J) -> (B, K, F, J, 3): hypothesis index[...] per joint."""
    idx = index[:, :, None, :, :, None].expand(-1, -1, 1, -1, -1, 3)
    return torch.gather(hyps, 2, idx).squeeze(2)


def p_agg(hyps):
    """P-Agg: mean over hypotheses, (B, K, H, F, J, 3) -> (B, K, F, J, 3). No ground truth."""
    return hyps.mean(dim=2)


def p_best_index(frame_errors, windows_per_batch=1, weights=None):
    """P-Best's choice: per batch of consecutive clips and per step, the hypothesis with the lowest
    (weighted) mean error over every frame of the batch's clips.

    frame_errors: (W, K, H, F) every hypothesis's per-frame error (mean over joints) of W
    consecutive clips (windows of one sequence); windows_per_batch: clips per batch (the last
    batch may be shorter), None for one batch of all W; weights: (W, F) per-frame weights (None:
    every frame 1). Returns (W, K) int64: the hypothesis chosen for each clip's batch (ties: the
    lowest index).
    """
    w = frame_errors.shape[0]
    if weights is not None:
        frame_errors = frame_errors * torch.as_tensor(weights, dtype=frame_errors.dtype)[:, None, None, :]
    per_clip = frame_errors.sum(dim=-1)                                                  # (W, K, H)
    batch = torch.arange(w) // (windows_per_batch or max(w, 1))
    totals = per_clip.new_zeros((int(batch[-1]) + 1, *per_clip.shape[1:]))
    return lowest(totals.index_add_(0, batch, per_clip), -1)[batch]


def pick_hypotheses(values, index):
    """values (B, K, H, ...) of every hypothesis, index (B, K) -> (B, K, ...): the chosen hypothesis's."""
    index = index.view(index.shape + (1,) * (values.ndim - 2))
    return torch.take_along_dim(values, index, dim=2).squeeze(2)


def p_best_select(hyps, target):
    """P-Best per clip (uses ground truth): per clip and step the hypothesis with the lowest MPJPE.
    Returns (poses (B, K, F, J, 3), index (B, K))."""
    index = p_best_index(joint_errors(hyps, target[:, None, None]).mean(dim=-1))
    return pick_hypotheses(hyps, index), index


def j_best_select(hyps, target):
    """J-Best (uses ground truth): per frame and joint the hypothesis closest to the target.
    Returns (poses (B, K, F, J, 3), index (B, K, F, J))."""
    index = lowest(joint_errors(hyps, target[:, None, None]), 2)
    return _gather_hypotheses(hyps, index), index


def jpma_index(hyps, keypoints_2d, trajectory, intrinsics, project=project_to_2d):
    """J-Agg's (JPMA's) choice, (B, K, F, J): per frame and joint the hypothesis whose reprojection
    is closest to the input 2D keypoint. Arguments as ``jpma_select``."""
    b, k, h, f, j, _ = hyps.shape
    absolute = hyps + trajectory[:, None, None, :, None, :]
    cameras = intrinsics[:, None, None, :].expand(b, k, h, -1)
    projected = project(absolute.reshape(b * k * h, f, j, 3), cameras.reshape(b * k * h, -1)).view(b, k, h, f, j, 2)
    return lowest(torch.linalg.vector_norm(projected - keypoints_2d[:, None, None], dim=-1), 2)


def jpma_select(hyps, keypoints_2d, trajectory, intrinsics, project=project_to_2d):
    """J-Agg (JPMA): per frame and joint the hypothesis whose reprojection is closest to the
    input 2D keypoint.

    keypoints_2d: (B, F, J, 2) normalised image coordinates (the plain, unflipped input);
    trajectory: (B, F, 3) ground-truth root position, camera frame, same unit as hyps;
    intrinsics: (B, 9) normalised camera intrinsics. Returns (poses (B, K, F, J, 3),
    index (B, K, F, J)).
    """
    index = jpma_index(hyps, keypoints_2d, trajectory, intrinsics, project)
    return _gather_hypotheses(hyps, index), index


@dataclass
class SettingChoices:
    """What J-Best, P-Agg and J-Agg take from a batch of hypotheses, computed once and shared by
    their poses and by their errors under every protocol (the JPMA reprojection is the costly part).

    hyps: (B, K, H, F, J, 3); target: (B, F, J, 3); joint_errors_p1: (B, K, H, F, J) every
    hypothesis joint's Protocol 1 error; jpma_index: (B, K, F, J); mean_pose: (B, K, F, J, 3);
    j_best_p1: the lowest of ``joint_errors_p1`` over the hypotheses, (values, indices) (B, K, F, J).
    """
    hyps: torch.Tensor
    target: torch.Tensor
    joint_errors_p1: torch.Tensor
    jpma_index: torch.Tensor
    mean_pose: torch.Tensor
    j_best_p1: tuple

    @classmethod
    def of(cls, hyps, target, keypoints_2d, trajectory, intrinsics, project=project_to_2d):
        """Arguments as ``jpma_select`` (``target`` (B, F, J, 3) the ground truth)."""
        errors_p1 = hypothesis_joint_errors(hyps, target, 1)
        return cls(hyps, target, errors_p1, jpma_index(hyps, keypoints_2d, trajectory, intrinsics, project),
                   p_agg(hyps), tuple(errors_p1.min(dim=2)))

    def poses(self) -> dict:
        """{setting: (B, K, F, J, 3)} of J-Best (per joint the hypothesis with the lowest Protocol 1
        error), P-Agg and J-Agg (P-Best: ``p_best_index``)."""
        return {'J-Best': _gather_hypotheses(self.hyps, self.j_best_p1[1]),
                'P-Agg': self.mean_pose,
                'J-Agg': _gather_hypotheses(self.hyps, self.jpma_index)}

    def errors(self, protocol: int = 1):
        """Per-frame errors (mean over joints, the input's unit) for ``protocol`` 1 or 2: as ``setting_errors``."""
        per_joint = self.joint_errors_p1 if protocol == 1 else hypothesis_joint_errors(self.hyps, self.target, protocol)
        mean_errors = protocol_joint_errors(self.mean_pose, self.target[:, None], protocol)
        best = self.j_best_p1[0] if protocol == 1 else per_joint.amin(dim=2)
        return per_joint.mean(dim=-1), {
            'J-Best': best.mean(dim=-1),
            'P-Agg': mean_errors.mean(dim=-1),
            'J-Agg': torch.take_along_dim(per_joint, self.jpma_index[:, :, None], dim=2).squeeze(2).mean(dim=-1),
        }


def setting_poses(hyps, target, keypoints_2d, trajectory, intrinsics, project=project_to_2d) -> dict:
    """{setting: (B, K, F, J, 3)} poses of J-Best, P-Agg and J-Agg (per frame; P-Best: ``p_best_index``)."""
    return SettingChoices.of(hyps, target, keypoints_2d, trajectory, intrinsics, project).poses()


def aggregate_poses(hyps, target, keypoints_2d, trajectory, intrinsics, project=project_to_2d) -> dict:
    """{setting: (B, K, F, J, 3)} poses of the four settings, P-Best per clip (P-Best and J-Best use ``target``)."""
    return {'P-Best': p_best_select(hyps, target)[0],
            **setting_poses(hyps, target, keypoints_2d, trajectory, intrinsics, project)}


def protocol_joint_errors(pred, target, protocol: int = 1):
    """(..., J, 3) x (..., J, 3) (target broadcastable) -> (..., J): Protocol 1 the Euclidean
    distance, Protocol 2 the distance after aligning each pose to the target (``procrustes_align``)."""
    if protocol == 1:
        return joint_errors(pred, target)
    if protocol != 2:
        raise ValueError(f'protocol must be 1 or 2, got {protocol}')
    return joint_errors(procrustes_align(pred, target), target)


def hypothesis_joint_errors(hyps, target, protocol: int = 1):
    """(B, K, H, F, J) error of every joint of every hypothesis against target (B, F, J, 3), by
    ``protocol_joint_errors`` (Protocol 2 aligns each hypothesis's pose frame by frame, as the reference does)."""
    return protocol_joint_errors(hyps, target[:, None, None], protocol)


def setting_errors(hyps, target, keypoints_2d, trajectory, intrinsics, protocol: int = 1, project=project_to_2d):
    """Per-frame errors (mean over joints, the input's unit) for ``protocol`` 1 or 2.

    Returns (hypothesis_errors (B, K, H, F): every hypothesis's, from which P-Best is picked
    (``p_best_index`` over the caller's batches, then ``pick_hypotheses``); {setting: (B, K, F)}
    for J-Best (lowest error per joint), P-Agg (the mean pose; under Protocol 2 aligned itself)
    and J-Agg (the error at the JPMA index, chosen from 2D reprojections)).
    """
    return SettingChoices.of(hyps, target, keypoints_2d, trajectory, intrinsics, project).errors(protocol)


def multi_hypothesis_errors(hyps, target, keypoints_2d, trajectory, intrinsics, protocol: int = 1,
                            project=project_to_2d) -> dict:
    """{setting: (B, K, F)} per-frame errors (mean over joints) of the four settings, P-Best per
    clip; same unit as the input. See ``setting_errors``."""
    hypothesis_errors, errors = setting_errors(hyps, target, keypoints_2d, trajectory, intrinsics, protocol, project)
    return {'P-Best': pick_hypotheses(hypothesis_errors, p_best_index(hypothesis_errors)), **errors}

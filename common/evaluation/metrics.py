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

* P-Best (uses ground truth): per clip and step, the hypothesis with the lowest MPJPE over
  all its frames. The reference picks one hypothesis per evaluation batch of several clips;
  picking per clip makes the number independent of the batch size.
* J-Best (uses ground truth): per frame and joint, the hypothesis closest to the target.
* P-Agg: the mean of the hypotheses.
* J-Agg (JPMA, joint-wise pose multi-hypothesis aggregation): per frame and joint, the
  hypothesis whose reprojection (pose + ground-truth root trajectory, camera intrinsics with
  distortion) is closest to the input 2D keypoint. It uses no ground-truth pose, but the
  ground-truth root trajectory and camera, as the paper does.
"""
import torch

from common.data.camera import project_to_2d

SETTINGS = ('P-Best', 'J-Best', 'P-Agg', 'J-Agg')
# What each setting takes from the ground truth besides the 2D input (the tables' ``ground_truth_used``).
GT_NONE, GT_ORACLE, GT_ROOT_CAMERA = 'no', 'gt_3d_pose (oracle)', 'gt_root_camera'
GROUND_TRUTH_USED = {'P-Best': GT_ORACLE, 'J-Best': GT_ORACLE, 'P-Agg': GT_NONE, 'J-Agg': GT_ROOT_CAMERA}
_EPS = 1e-12


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


def _gather_hypotheses(hyps, index):
    """hyps (B, K, H, F, J, 3), index (B, K, F, J) -> (B, K, F, J, 3): hypothesis index[...] per joint."""
    idx = index[:, :, None, :, :, None].expand(-1, -1, 1, -1, -1, 3)
    return torch.gather(hyps, 2, idx).squeeze(2)


def p_agg(hyps):
    """P-Agg: mean over hypotheses, (B, K, H, F, J, 3) -> (B, K, F, J, 3). No ground truth."""
    return hyps.mean(dim=2)


def p_best_select(hyps, target):
    """P-Best (uses ground truth): per clip and step the hypothesis with the lowest MPJPE.
    Returns (poses (B, K, F, J, 3), index (B, K))."""
    per_hypothesis = joint_errors(hyps, target[:, None, None]).mean(dim=(-1, -2))     # (B, K, H)
    index = per_hypothesis.argmin(dim=2)
    b, k = index.shape
    poses = hyps[torch.arange(b)[:, None], torch.arange(k)[None, :], index]
    return poses, index


def j_best_select(hyps, target):
    """J-Best (uses ground truth): per frame and joint the hypothesis closest to the target.
    Returns (poses (B, K, F, J, 3), index (B, K, F, J))."""
    index = joint_errors(hyps, target[:, None, None]).argmin(dim=2)
    return _gather_hypotheses(hyps, index), index


def jpma_select(hyps, keypoints_2d, trajectory, intrinsics, project=project_to_2d):
    """J-Agg (JPMA): per frame and joint the hypothesis whose reprojection is closest to the
    input 2D keypoint.

    keypoints_2d: (B, F, J, 2) normalised image coordinates (the plain, unflipped input);
    trajectory: (B, F, 3) ground-truth root position, camera frame, same unit as hyps;
    intrinsics: (B, 9) normalised camera intrinsics. Returns (poses (B, K, F, J, 3),
    index (B, K, F, J)).
    """
    b, k, h, f, j, _ = hyps.shape
    absolute = hyps + trajectory[:, None, None, :, None, :]
    cameras = intrinsics[:, None, None, :].expand(b, k, h, -1)
    projected = project(absolute.reshape(b * k * h, f, j, 3), cameras.reshape(b * k * h, -1)).view(b, k, h, f, j, 2)
    index = torch.linalg.vector_norm(projected - keypoints_2d[:, None, None], dim=-1).argmin(dim=2)
    return _gather_hypotheses(hyps, index), index


def aggregate_poses(hyps, target, keypoints_2d, trajectory, intrinsics, project=project_to_2d) -> dict:
    """{setting: (B, K, F, J, 3)} poses of the four settings (P-Best and J-Best use ``target``)."""
    return {
        'P-Best': p_best_select(hyps, target)[0],
        'J-Best': j_best_select(hyps, target)[0],
        'P-Agg': p_agg(hyps),
        'J-Agg': jpma_select(hyps, keypoints_2d, trajectory, intrinsics, project)[0],
    }


def multi_hypothesis_errors(hyps, target, keypoints_2d, trajectory, intrinsics, protocol: int = 1,
                            project=project_to_2d) -> dict:
    """{setting: (B, K, F)} per-frame errors (mean over joints), same unit as the input.

    Protocol 1: MPJPE of each setting's pose. Protocol 2 follows the reference: every
    hypothesis is Procrustes-aligned to the target frame by frame, then P-Best takes the
    hypothesis with the lowest mean aligned error, J-Best the lowest aligned error per joint,
    J-Agg the aligned errors at the JPMA (2D-based) index, and P-Agg the aligned mean pose.
    """
    if protocol == 1:
        poses = aggregate_poses(hyps, target, keypoints_2d, trajectory, intrinsics, project)
        return {s: joint_errors(p, target[:, None]).mean(dim=-1) for s, p in poses.items()}
    if protocol != 2:
        raise ValueError(f'protocol must be 1 or 2, got {protocol}')
    aligned = joint_errors(procrustes_align(hyps, target[:, None, None]), target[:, None, None])   # (B, K, H, F, J)
    best = aligned.mean(dim=(-1, -2)).argmin(dim=2)                                                 # (B, K)
    _, jpma_index = jpma_select(hyps, keypoints_2d, trajectory, intrinsics, project)
    mean_pose = p_agg(hyps)
    return {
        'P-Best': torch.take_along_dim(aligned, best[:, :, None, None, None], dim=2).squeeze(2).mean(dim=-1),
        'J-Best': aligned.min(dim=2).values.mean(dim=-1),
        'P-Agg': joint_errors(procrustes_align(mean_pose, target[:, None]), target[:, None]).mean(dim=-1),
        'J-Agg': torch.take_along_dim(aligned, jpma_index[:, :, None], dim=2).squeeze(2).mean(dim=-1),
    }

"""Prediction without an evaluation protocol: one 3D pose for every frame of a sequence.

Used for your own video's keypoints (``main.py -d custom``) and for ``--render`` / ``--viz-export``
of one Human3.6M (or synthetic) sequence. Per sequence:

1. cut the 2D keypoints into windows of F frames (``generators.make_windows``: a sequence shorter
   than F is edge-padded, a longer one covered by consecutive windows, the last aligned to its end)
   and sample H hypotheses with K DDIM steps (``PoseDiffusion.ddim_sample``, seeded per window);
2. keep the last step's hypotheses and stitch the windows back (``stitch_windows``: every frame
   predicted exactly once) -> (N, H, J, 3), root joint zeroed;
3. aggregate them: P-Agg (their mean) or J-Agg (JPMA: per frame and joint, the hypothesis whose
   reprojection lands closest to the input 2D keypoint).

JPMA needs the camera and the root joint's position in it. A Human3.6M sequence has both (the
ground-truth trajectory and the calibrated camera, as in the paper's evaluation). For your own
video the camera is assumed (``custom_data``: pinhole, principal point at the image centre,
``--focal-length``) and the root trajectory is estimated by ``estimate_root_trajectory`` from
the P-Agg poses: one fixed root depth for the whole video, and the root's x, y per frame.
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from common.data.generators import make_windows, stitch_windows
from common.evaluation import metrics
from common.evaluation.protocol import HypothesisSampler, SamplingSettings, action_tokens_for, sampling_seeds, zero_root

AGGREGATION_NAMES = {'p-agg': 'P-Agg', 'j-agg': 'J-Agg'}
MIN_ROOT_DEPTH_M = 0.5          # the estimated root depth never comes closer to the camera than this
TRAJECTORY_GROUND_TRUTH = 'ground truth'
TRAJECTORY_ESTIMATED = 'estimated'


@dataclass
class Prediction:
    """One sequence's result.

    poses_3d: (N, J, 3) float32, metres, camera frame, root-relative (root joint exactly 0): the
        aggregated pose of every frame.
    trajectory: (N, 3) float32, metres, camera frame: the root position J-Agg reprojected with
        (the ground truth when the sequence has one, else ``estimate_root_trajectory``).
    trajectory_source: ``TRAJECTORY_GROUND_TRUTH`` or ``TRAJECTORY_ESTIMATED``.
    median_root_depth: metres, for an estimated trajectory: ``median_root_depth`` before the
        ``MIN_ROOT_DEPTH_M`` floor (below it, the trajectory sits at the floor); None otherwise.
    """
    poses_3d: np.ndarray
    trajectory: np.ndarray
    trajectory_source: str
    median_root_depth: Optional[float] = None

    @property
    def root_depth_clamped(self) -> bool:
        return self.median_root_depth is not None and not self.median_root_depth >= MIN_ROOT_DEPTH_M

    @property
    def num_frames(self) -> int:
        return self.poses_3d.shape[0]


def _camera_terms(poses_3d, keypoints_2d, intrinsics):
    """(poses (N, J, 3) float64, focal (2,), offset (N, J, 2) = keypoints - centre), normalised units."""
    focal, centre = np.asarray(intrinsics[:2], np.float64), np.asarray(intrinsics[2:4], np.float64)
    return np.asarray(poses_3d, np.float64), focal, np.asarray(keypoints_2d, np.float64) - centre


def median_root_depth(poses_3d: np.ndarray, keypoints_2d: np.ndarray, intrinsics: np.ndarray) -> float:
    """The root depth (metres) that best places root-relative poses onto their 2D keypoints: the
    median over frames of each frame's least-squares depth (see ``estimate_root_trajectory``).

    poses_3d: (N, J, 3) metres, camera frame, root-relative; keypoints_2d: (N, J, 2) normalised
    image coordinates; intrinsics: (9,) normalised (focal (2), centre (2); distortion ignored).
    """
    poses, focal, offset = _camera_terms(poses_3d, keypoints_2d, intrinsics)
    n, j, _ = poses.shape
    system = np.zeros((n, j, 2, 3))
    system[..., 0, 0], system[..., 1, 1] = focal[0], focal[1]
    system[..., 2] = -offset
    rhs = offset * poses[..., 2:] - focal * poses[..., :2]                            # (N, J, 2)
    per_frame = np.linalg.pinv(system.reshape(n, 2 * j, 3)) @ rhs.reshape(n, 2 * j, 1)  # (N, 3, 1)
    return float(np.median(per_frame[:, 2, 0]))


def estimate_root_trajectory(poses_3d: np.ndarray, keypoints_2d: np.ndarray, intrinsics: np.ndarray,
                             min_depth: float = MIN_ROOT_DEPTH_M, depth: Optional[float] = None) -> np.ndarray:
    """Root positions that place root-relative poses where they reproject onto the 2D keypoints.

    poses_3d, keypoints_2d, intrinsics: as in ``median_root_depth``. Returns (N, 3) float64 metres,
    camera frame, every frame at the same depth Z.

    For a pinhole camera, joint j at root T = (X, Y, Z) projects to u_j = f (X + x_j) / (Z + z_j) + c,
    which is linear in T: f X - (u_j - c) Z = (u_j - c) z_j - f x_j (same for y). Per frame the
    2J equations are solved by least squares; the fixed depth is the median of the per-frame depths
    (``median_root_depth``, or ``depth`` when given; at least ``min_depth``), robust to detector
    noise; then, at that depth, each frame's X and Y are the least-squares solutions
    X = mean_j((u_j - c)(Z + z_j) / f - x_j).
    """
    poses, focal, offset = _camera_terms(poses_3d, keypoints_2d, intrinsics)
    if depth is None:
        depth = median_root_depth(poses_3d, keypoints_2d, intrinsics)
    depth = max(depth, min_depth)
    root_xy = (offset * (depth + poses[..., 2:]) / focal - poses[..., :2]).mean(axis=1)  # (N, 2)
    return np.concatenate([root_xy, np.full((poses.shape[0], 1), depth)], axis=1)


def sample_last_step(sampler, keypoints_2d: np.ndarray, num_frames: int, action_tokens, settings: SamplingSettings,
                     device, sequence_key, root: int, progress=None) -> torch.Tensor:
    """(N, J, 2) normalised keypoints -> (N, H, J, 3) float32 hypotheses of the last DDIM step, on the CPU.

    Metres, camera frame, root joint zeroed. action_tokens: (1, 77). Each window's noise is seeded
    from (settings.seed, sequence_key (``Sequence.key``; a video's name for your own video), window),
    as in ``evaluation``: any batch size, and any other videos loaded with it, give the same.
    """
    windows = torch.from_numpy(make_windows(np.asarray(keypoints_2d, np.float32), num_frames))
    chunks = []
    for begin in range(0, len(windows), settings.batch_size):
        clips = windows[begin:begin + settings.batch_size].to(device)
        seeds = sampling_seeds(settings.seed, sequence_key, range(begin, begin + len(clips)))
        hypotheses = sampler(clips, action_tokens.expand(len(clips), -1).to(device), seeds)  # (B, K, H, F, J, 3)
        chunks.append(zero_root(hypotheses[:, -1].float().cpu(), root))                    # (B, H, F, J, 3)
        if progress is not None:
            progress.update(len(clips))
    return stitch_windows(torch.cat(chunks).transpose(1, 2), keypoints_2d.shape[0])       # (N, H, J, 3)


def aggregate(hypotheses: torch.Tensor, aggregation: str, keypoints_2d=None, trajectory=None, intrinsics=None):
    """(N, H, J, 3) hypotheses -> (N, J, 3) poses by 'p-agg' or 'j-agg'.

    J-Agg needs keypoints_2d (N, J, 2) normalised, trajectory (N, 3) in the hypotheses' unit and
    intrinsics (9,) normalised (with distortion).
    """
    stacked = hypotheses.permute(1, 0, 2, 3)[None, None]          # (1, 1, H, N, J, 3): metrics' layout
    if aggregation == 'p-agg':
        return metrics.p_agg(stacked)[0, 0]
    if aggregation != 'j-agg':
        raise ValueError(f'aggregation must be one of {", ".join(AGGREGATION_NAMES)}, got {aggregation!r}')
    one_clip = [torch.as_tensor(np.asarray(array), dtype=hypotheses.dtype)[None]
                for array in (keypoints_2d, trajectory, intrinsics)]
    poses, _ = metrics.jpma_select(stacked, *one_clip)
    return poses[0, 0]


def predict_sequence(sampler, sequence, num_frames: int, root: int, settings: SamplingSettings, device,
                     action_label: str, aggregation: str, progress=None) -> Prediction:
    """Predict every frame of one ``Sequence`` (see the module docstring)."""
    hypotheses = sample_last_step(sampler, sequence.keypoints_2d, num_frames, action_tokens_for([action_label]),
                                  settings, device, sequence.key, root, progress)
    mean_pose = aggregate(hypotheses, 'p-agg')
    median_depth = None
    if sequence.trajectory is not None:
        trajectory, source = np.asarray(sequence.trajectory, np.float64), TRAJECTORY_GROUND_TRUTH
    else:
        median_depth = median_root_depth(mean_pose.numpy(), sequence.keypoints_2d, sequence.intrinsics)
        trajectory = estimate_root_trajectory(mean_pose.numpy(), sequence.keypoints_2d, sequence.intrinsics,
                                              depth=median_depth)
        source = TRAJECTORY_ESTIMATED
    poses = mean_pose if aggregation == 'p-agg' else aggregate(
        hypotheses, aggregation, sequence.keypoints_2d, trajectory, sequence.intrinsics)
    return Prediction(poses_3d=poses.numpy().astype(np.float32), trajectory=trajectory.astype(np.float32),
                      trajectory_source=source, median_root_depth=median_depth)


def predict(model, sequences, runtime, settings: SamplingSettings, action_labels, aggregation: str, root: int,
            show_progress: bool = True) -> list:
    """One ``Prediction`` per ``Sequence`` of ``sequences`` (in one process; several GPUs of
    ``runtime.gpu_ids`` share each sampling batch through DataParallel).

    action_labels: the action word of each sequence's prompt ('' for none).
    """
    sampler = HypothesisSampler(model, settings)
    if runtime.gpu_ids:
        sampler = nn.DataParallel(sampler, device_ids=runtime.gpu_ids)
    num_frames = model.denoiser.num_frames
    was_training = model.training
    model.eval()
    total = sum(-(-s.num_frames // num_frames) for s in sequences)
    with tqdm(total=total, desc='predicting', unit='clip', disable=not show_progress, leave=False) as progress:
        predictions = [predict_sequence(sampler, sequence, num_frames, root, settings, runtime.device,
                                        label, aggregation, progress)
                       for sequence, label in zip(sequences, action_labels)]
    model.train(was_training)
    return predictions

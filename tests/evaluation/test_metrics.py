"""Metrics against independent computations and hand-built hypotheses with known answers."""
import numpy as np
import pytest
import torch
from scipy.linalg import orthogonal_procrustes
from scipy.spatial.transform import Rotation

from common.data.camera import intrinsic_vector, project_to_2d
from common.evaluation import metrics


def test_mpjpe_hand_example():
    pred = torch.tensor([[[3.0, 4.0, 0.0], [0.0, 0.0, 0.0]]])
    target = torch.zeros(1, 2, 3)
    assert metrics.mpjpe(pred, target).item() == pytest.approx(2.5)       # (5 + 0) / 2


def _scipy_p_mpjpe(pred, target):
    """Independent: scipy's orthogonal Procrustes on centred poses, optimal scale, no reflections."""
    errors = []
    for p, t in zip(pred, target):
        p0, t0 = p - p.mean(0), t - t.mean(0)
        rotation, _ = orthogonal_procrustes(p0, t0)
        if np.linalg.det(rotation) < 0:            # scipy allows reflections; exclude them as the metric does
            u, s, vt = np.linalg.svd(p0.T @ t0)
            d = np.diag([1, 1, np.sign(np.linalg.det(u @ vt))])
            rotation = u @ d @ vt
        scale = np.trace((p0 @ rotation).T @ t0) / np.sum(p0 ** 2)
        errors.append(np.linalg.norm(scale * p0 @ rotation - t0, axis=-1).mean())
    return np.mean(errors)


def test_p_mpjpe_matches_scipy_procrustes():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(20, 17, 3))
    pred = target + rng.normal(scale=0.3, size=target.shape)
    expected = _scipy_p_mpjpe(pred, target)
    got = metrics.p_mpjpe(torch.from_numpy(pred), torch.from_numpy(target)).item()
    assert got == pytest.approx(expected, rel=1e-9)
    assert got < metrics.mpjpe(torch.from_numpy(pred), torch.from_numpy(target)).item()


def test_p_mpjpe_removes_similarity_transforms_but_not_reflections():
    rng = np.random.default_rng(1)
    target = rng.normal(size=(5, 17, 3))
    rotation = Rotation.random(random_state=3).as_matrix()
    transformed = 2.5 * target @ rotation.T + np.array([1.0, -2.0, 0.5])
    assert metrics.p_mpjpe(torch.from_numpy(transformed), torch.from_numpy(target)).item() < 1e-10
    mirrored = target * np.array([-1.0, 1.0, 1.0])
    assert metrics.p_mpjpe(torch.from_numpy(mirrored), torch.from_numpy(target)).item() > 0.1


def test_degenerate_poses_give_no_nan():
    pred = torch.zeros(2, 17, 3)
    target = torch.randn(2, 17, 3)
    assert torch.isfinite(metrics.procrustes_align(pred, target)).all()
    assert torch.isfinite(metrics.n_mpjpe(pred, target))


def test_n_mpjpe_closed_form():
    target = torch.randn(3, 17, 3, dtype=torch.float64)
    assert metrics.n_mpjpe(0.5 * target, target).item() < 1e-12
    pred = torch.randn(3, 17, 3, dtype=torch.float64)
    s = (target * pred).sum(dim=(1, 2)) / (pred * pred).sum(dim=(1, 2))
    expected = torch.stack([(s[i] * pred[i] - target[i]).norm(dim=-1).mean() for i in range(3)]).mean()
    assert metrics.n_mpjpe(pred, target).item() == pytest.approx(expected.item())


def test_velocity_error_hand_example():
    target = torch.zeros(3, 1, 3)                         # (F, J, 3), at rest
    pred = torch.tensor([[[0.0, 0, 0]], [[1.0, 0, 0]], [[1.0, 0, 0]]])
    # velocities of pred: (1,0,0) then (0,0,0) -> mean error 0.5
    assert metrics.mean_velocity_error(pred, target, dim=0).item() == pytest.approx(0.5)


def _hand_built():
    """1 clip, 2 steps, 3 hypotheses, 2 frames, 4 joints, target all zeros.

    Step 0: hypothesis 2 is best overall (all joints at 0.1), but hypothesis 0 is exact at
    joint 3 (and 1.0 elsewhere); hypothesis 1 is 0.5 everywhere.
    Step 1: the same with hypotheses 0 and 2 swapped.
    """
    target = torch.zeros(1, 2, 4, 3)
    h = torch.zeros(1, 2, 3, 2, 4, 3)
    h[0, 0, 0, :, :, 0] = torch.tensor([1.0, 1.0, 1.0, 0.0])
    h[0, 0, 1, :, :, 0] = 0.5
    h[0, 0, 2, :, :, 0] = 0.1
    h[0, 1] = h[0, 0, [2, 1, 0]]
    return h, target


def test_p_best_and_j_best_pick_known_hypotheses():
    hyps, target = _hand_built()
    _, p_index = metrics.p_best_select(hyps, target)
    assert p_index.tolist() == [[2, 0]]
    _, j_index = metrics.j_best_select(hyps, target)
    assert j_index[0, 0].tolist() == [[2, 2, 2, 0]] * 2
    assert j_index[0, 1].tolist() == [[0, 0, 0, 2]] * 2
    errors = metrics.multi_hypothesis_errors(hyps, target, torch.zeros(1, 2, 4, 2), torch.zeros(1, 2, 3),
                                             torch.zeros(1, 9), protocol=1, project=lambda x, c: x[..., :2])
    torch.testing.assert_close(errors['P-Best'], torch.full((1, 2, 2), 0.1))
    torch.testing.assert_close(errors['J-Best'], torch.full((1, 2, 2), 0.075))      # (0.1 * 3 + 0) / 4
    # P-Agg: mean pose x = (1 + 0.5 + 0.1) / 3 on joints 0-2, (0 + 0.5 + 0.1) / 3 on joint 3
    torch.testing.assert_close(errors['P-Agg'], torch.full((1, 2, 2), (1.6 / 3 * 3 + 0.6 / 3) / 4))


def test_p_best_is_per_clip():
    hyps, target = _hand_built()
    other = hyps.clone()
    other[0, :, 1] = 0.0                           # in a second clip hypothesis 1 is perfect
    both = torch.cat([hyps, other])
    _, index = metrics.p_best_select(both, torch.cat([target, target]))
    assert index.tolist() == [[2, 0], [1, 1]]


def test_jpma_picks_the_hypothesis_whose_reprojection_hits_the_keypoint():
    cam = torch.from_numpy(intrinsic_vector([1000.0, 1000.0], [500.0, 500.0], 1000, 1000))[None]
    trajectory = torch.tensor([[[0.0, 0.0, 5.0]]]).expand(1, 2, 3).contiguous()
    rng = torch.Generator().manual_seed(0)
    hyps = torch.randn(1, 1, 4, 2, 17, 3, generator=rng) * 0.1
    hyps[..., 0, :] = 0                                               # root joint at the trajectory
    chosen = torch.randint(0, 4, (2, 17), generator=rng)
    # The 2D input is the reprojection of the chosen hypothesis at every (frame, joint).
    pose = hyps[0, 0][chosen, torch.arange(2)[:, None], torch.arange(17)]   # (F, J, 3)
    keypoints = project_to_2d((pose + trajectory[0, :, None])[None], cam)
    poses, index = metrics.jpma_select(hyps, keypoints, trajectory, cam)
    torch.testing.assert_close(poses[0, 0], pose)
    # The root is identical in all hypotheses: any index is right there; elsewhere it is the chosen one.
    assert (index[0, 0][:, 1:] == chosen[:, 1:]).all()
    errors = metrics.multi_hypothesis_errors(hyps, pose[None], keypoints, trajectory, cam, protocol=1)
    assert errors['J-Agg'].abs().max() < 1e-7


def _loop_protocol2(hyps, target, jpma_index):
    """Slow, independent Protocol #2 of the four settings (per clip and step)."""
    b, k, h, f, j, _ = hyps.shape
    out = {s: np.zeros((b, k, f)) for s in metrics.SETTINGS}
    for bi in range(b):
        for ki in range(k):
            aligned = np.zeros((h, f, j))
            for hi in range(h):
                for fi in range(f):
                    p, t = hyps[bi, ki, hi, fi].numpy(), target[bi, fi].numpy()
                    p0, t0 = p - p.mean(0), t - t.mean(0)
                    u, s, vt = np.linalg.svd(p0.T @ t0)
                    d = np.diag([1, 1, np.sign(np.linalg.det(u @ vt))])
                    r = u @ d @ vt
                    scale = np.trace(np.diag(s) @ d) / np.sum(p0 ** 2)
                    aligned[hi, fi] = np.linalg.norm(scale * p0 @ r + t.mean(0) - t, axis=-1)
            best = aligned.mean(axis=(1, 2)).argmin()
            out['P-Best'][bi, ki] = aligned[best].mean(-1)
            out['J-Best'][bi, ki] = aligned.min(0).mean(-1)
            out['J-Agg'][bi, ki] = np.take_along_axis(aligned, jpma_index[bi, ki][None].numpy(), 0)[0].mean(-1)
            mean = hyps[bi, ki].mean(0).numpy()
            for fi in range(f):
                p, t = mean[fi], target[bi, fi].numpy()
                p0, t0 = p - p.mean(0), t - t.mean(0)
                u, s, vt = np.linalg.svd(p0.T @ t0)
                d = np.diag([1, 1, np.sign(np.linalg.det(u @ vt))])
                scale = np.trace(np.diag(s) @ d) / np.sum(p0 ** 2)
                out['P-Agg'][bi, ki, fi] = np.linalg.norm(scale * p0 @ (u @ d @ vt) + t.mean(0) - t, axis=-1).mean()
    return out


def test_protocol2_matches_loop_implementation():
    g = torch.Generator().manual_seed(5)
    hyps = torch.randn(2, 2, 3, 4, 17, 3, generator=g, dtype=torch.float64) * 0.2
    target = torch.randn(2, 4, 17, 3, generator=g, dtype=torch.float64) * 0.2
    keypoints = torch.randn(2, 4, 17, 2, generator=g, dtype=torch.float64) * 0.1
    trajectory = torch.tensor([0.0, 0.0, 5.0], dtype=torch.float64).expand(2, 4, 3)
    cam = torch.from_numpy(intrinsic_vector([1000.0, 1000.0], [500.0, 500.0], 1000, 1000)).double().expand(2, 9)
    got = metrics.multi_hypothesis_errors(hyps, target, keypoints, trajectory, cam, protocol=2)
    _, jpma_index = metrics.jpma_select(hyps, keypoints, trajectory, cam)
    expected = _loop_protocol2(hyps, target, jpma_index)
    for setting in metrics.SETTINGS:
        np.testing.assert_allclose(got[setting].numpy(), expected[setting], rtol=1e-9, atol=1e-12, err_msg=setting)


def test_aggregate_poses_shapes():
    hyps = torch.randn(2, 3, 5, 7, 17, 3)
    cam = torch.from_numpy(intrinsic_vector([1000.0, 1000.0], [500.0, 500.0], 1000, 1000)).expand(2, 9)
    poses = metrics.aggregate_poses(hyps, torch.randn(2, 7, 17, 3), torch.randn(2, 7, 17, 2),
                                    torch.tensor([0.0, 0, 5]).expand(2, 7, 3), cam)
    assert set(poses) == set(metrics.SETTINGS)
    assert all(p.shape == (2, 3, 7, 17, 3) for p in poses.values())
    assert metrics.GROUND_TRUTH_USED == {'P-Best': 'gt_3d_pose (oracle)', 'J-Best': 'gt_3d_pose (oracle)',
                                         'P-Agg': 'no', 'J-Agg': 'gt_root_camera'}

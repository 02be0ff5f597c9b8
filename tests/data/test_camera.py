"""Camera maths against independent formulas and round trips."""
import json

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from common.data import camera
from common.data import h36m_cameras


def _random_camera_points(rng, n=50):
    xy = rng.uniform(-1.5, 1.5, size=(n, 2))
    z = rng.uniform(3.0, 7.0, size=(n, 1))
    return np.concatenate([xy, z], axis=1)


def test_projection_with_distortion_matches_explicit_formula():
    rng = np.random.default_rng(0)
    pts = _random_camera_points(rng)
    intr = h36m_cameras.INTRINSICS[1]
    w, h = intr['res_w'], intr['res_h']
    cam = camera.intrinsic_vector(intr['focal_length'], intr['center'], w, h,
                                  intr['radial_distortion'], intr['tangential_distortion'])
    got = camera.project_to_2d(torch.from_numpy(pts[None]).float(), torch.from_numpy(cam[None]))[0].numpy()

    k1, k2, k3 = intr['radial_distortion']
    p1, p2 = intr['tangential_distortion']
    fx, fy = intr['focal_length']
    cx, cy = intr['center']
    for (X, Y, Z), (u_norm, v_norm) in zip(pts, got):
        x, y = np.clip(X / Z, -1, 1), np.clip(Y / Z, -1, 1)
        r2 = x * x + y * y
        scale = 1 + k1 * r2 + k2 * r2 ** 2 + k3 * r2 ** 3 + p1 * x + p2 * y
        u_px = fx * (x * scale + p1 * r2) + cx
        v_px = fy * (y * scale + p2 * r2) + cy
        assert u_norm == pytest.approx(u_px / w * 2 - 1, abs=2e-6)
        assert v_norm == pytest.approx(v_px / w * 2 - h / w, abs=2e-6)


def test_linear_projection_is_pinhole():
    rng = np.random.default_rng(1)
    pts = _random_camera_points(rng) * np.array([0.3, 0.3, 1.0])
    cam = camera.intrinsic_vector([1500.0, 1490.0], [1010.0, 1030.0], 2048, 2048)
    got = camera.project_to_2d_linear(torch.from_numpy(pts[None]).float(), torch.from_numpy(cam[None]))[0].numpy()
    px = camera.image_coordinates(got.astype(np.float64), 2048, 2048)
    expected = np.stack([1500.0 * pts[:, 0] / pts[:, 2] + 1010.0, 1490.0 * pts[:, 1] / pts[:, 2] + 1030.0], axis=1)
    np.testing.assert_allclose(px, expected, atol=2e-3)


def test_zero_distortion_equals_linear_projection():
    rng = np.random.default_rng(2)
    pts = torch.from_numpy(_random_camera_points(rng)[None]).float()
    cam = torch.from_numpy(camera.intrinsic_vector([1100.0, 1100.0], [500.0, 500.0], 1000, 1000)[None])
    torch.testing.assert_close(camera.project_to_2d(pts, cam), camera.project_to_2d_linear(pts, cam))


def test_world_camera_round_trip_and_scipy_rotation():
    rng = np.random.default_rng(3)
    world = rng.normal(size=(20, 17, 3))
    ext = h36m_cameras.EXTRINSICS['S9'][2]
    R = np.array(ext['orientation'])
    t = np.array(ext['translation']) / 1000.0
    cam_pts = camera.world_to_camera(world, R, t)
    np.testing.assert_allclose(camera.camera_to_world(cam_pts, R, t), world, atol=2e-6)  # published quaternions are float32, not exactly unit
    # Independent: scipy's rotation (quaternion in x, y, z, w order) of the world offset.
    rot = Rotation.from_quat([R[1], R[2], R[3], R[0]])
    np.testing.assert_allclose(cam_pts, rot.inv().apply((world - t).reshape(-1, 3)).reshape(world.shape), atol=2e-6)


def test_normalisation_round_trip():
    rng = np.random.default_rng(4)
    px = rng.uniform(0, 1000, size=(30, 17, 2)).astype(np.float32)
    norm = camera.normalize_screen_coordinates(px, 1000, 1002)
    assert norm[..., 0].min() >= -1 and norm[..., 0].max() <= 1
    np.testing.assert_allclose(camera.image_coordinates(norm, 1000, 1002), px, atol=1e-3)


def test_flipped_intrinsics_project_mirrored_points():
    rng = np.random.default_rng(5)
    pts = _random_camera_points(rng)
    intr = h36m_cameras.INTRINSICS[0]
    cam = camera.intrinsic_vector(intr['focal_length'], intr['center'], intr['res_w'], intr['res_h'],
                                  intr['radial_distortion'], intr['tangential_distortion'])
    mirrored = pts * np.array([-1.0, 1.0, 1.0])
    a = camera.project_to_2d(torch.from_numpy(pts[None]), torch.from_numpy(cam[None]).double())[0].numpy()
    b = camera.project_to_2d(torch.from_numpy(mirrored[None]), torch.from_numpy(camera.flip_intrinsics(cam)[None]).double())[0].numpy()
    np.testing.assert_allclose(b, a * np.array([-1.0, 1.0]), atol=1e-6)


def test_sensor_intrinsics_ts5():
    focal, center = camera.sensor_to_pixel_intrinsics(8.770747185, (-0.104908645, 0.104899704), (10, 5.625), (1920, 1080))
    np.testing.assert_allclose(focal, [8.770747185 * 192.0, 8.770747185 * 192.0])
    np.testing.assert_allclose(center, [-0.104908645 * 192 + 960, 0.104899704 * 192 + 540])


def test_camera_facts_match_published_file(shared_dir):
    published = json.loads((shared_dir / 'data' / 'h36m_cameras.json').read_text())
    assert published['intrinsic_params'] == h36m_cameras.INTRINSICS
    for subject, cams in published['extrinsic_params'].items():
        if cams[0]:
            assert h36m_cameras.EXTRINSICS[subject] == cams
        else:
            assert subject not in h36m_cameras.EXTRINSICS


def test_qrot_known_rotations_scalar_first():
    quarter_turn_z = np.array([np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)])          # (w, x, y, z)
    np.testing.assert_allclose(camera.qrot(quarter_turn_z, np.array([[1.0, 0, 0], [0, 0, 2.0]])),
                               [[0, 1.0, 0], [0, 0, 2.0]], atol=1e-12)
    half_turn_x = np.array([0, 1.0, 0, 0])
    per_vector = np.stack([quarter_turn_z, half_turn_x])                               # (2, 4) against (2, 3)
    np.testing.assert_allclose(camera.qrot(per_vector, np.array([[0, 1.0, 0], [0, 1.0, 1.0]])),
                               [[-1.0, 0, 0], [0, -1.0, -1.0]], atol=1e-12)
    assert camera.qrot(quarter_turn_z.astype(np.float32), np.zeros((0, 17, 3), np.float32)).shape == (0, 17, 3)

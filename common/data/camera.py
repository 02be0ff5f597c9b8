"""Camera maths: pixel normalisation, world <-> camera frames, projection.

Conventions (VideoPose3D's, used by every model of this family):

* Normalised image coordinates map the image width to [-1, 1] and keep the aspect ratio:
  ``u_norm = u / w * 2 - 1``, ``v_norm = v / w * 2 - h / w`` (pixels -> unitless).
* Extrinsics: a unit quaternion ``R`` = (w, x, y, z) giving the camera orientation in the world
  frame and the camera centre ``t`` in world coordinates (same unit as the points).
  ``X_cam = R^-1 (X_world - t)``.
* Intrinsic vector (9,): ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]`` with focal length and
  principal point in normalised image units (``f / (w / 2)``, normalised centre), radial
  (k) and tangential (p) distortion coefficients.
"""
import numpy as np
import torch
from scipy.spatial.transform import Rotation

INTRINSIC_SIZE = 9
# Index of the principal point's x and of the first tangential coefficient: the entries that
# change sign when an image is mirrored horizontally.
_CX, _P1 = 2, 7


def normalize_screen_coordinates(x: np.ndarray, w: int, h: int) -> np.ndarray:
    """(..., 2) pixels -> normalised image coordinates (x in [-1, 1])."""
    assert x.shape[-1] == 2, x.shape
    return x / w * 2 - np.array([1, h / w], dtype=x.dtype)


def image_coordinates(x: np.ndarray, w: int, h: int) -> np.ndarray:
    """(..., 2) normalised image coordinates -> pixels; inverse of ``normalize_screen_coordinates``."""
    assert x.shape[-1] == 2, x.shape
    return (x + np.array([1, h / w], dtype=x.dtype)) * w / 2


def qinverse(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions (w, x, y, z) -> their inverses (conjugates)."""
    return q * np.array([1, -1, -1, -1], dtype=q.dtype)


# Position of each (w, x, y, z) component in scipy's scalar-last (x, y, z, w) order.
_SCALAR_LAST = [1, 2, 3, 0]


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by quaternions q (4,) or (..., 4) (w, x, y, z).

    scipy's ``Rotation`` does the work (it normalises q, so the slightly non-unit float32
    quaternions of the published cameras give a pure rotation). Returns v's shape in the
    common dtype of q and v.
    """
    q, v = np.asarray(q), np.asarray(v)
    if q.ndim > 1:
        q = np.broadcast_to(q, v.shape[:-1] + (4,)).reshape(-1, 4)
    rotated = Rotation.from_quat(q[..., _SCALAR_LAST]).apply(v.reshape(-1, 3))
    return rotated.reshape(v.shape).astype(np.result_type(q, v), copy=False)


def world_to_camera(x: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(..., 3) world points -> camera frame. R: (4,) orientation quaternion, t: (3,) camera centre."""
    R = np.asarray(R, dtype=x.dtype)
    t = np.asarray(t, dtype=x.dtype)
    return qrot(qinverse(R), x - t)


def camera_to_world(x: np.ndarray, R: np.ndarray, t) -> np.ndarray:
    """(..., 3) camera-frame points -> world frame; inverse of ``world_to_camera``."""
    R = np.asarray(R, dtype=x.dtype)
    return qrot(R, x) + np.asarray(t, dtype=x.dtype)


def intrinsic_vector(focal_px, center_px, w: int, h: int, radial=(0, 0, 0), tangential=(0, 0)) -> np.ndarray:
    """Pixel intrinsics -> the normalised (9,) float32 vector used by ``project_to_2d``."""
    focal = np.asarray(focal_px, dtype=np.float64) / w * 2
    center = normalize_screen_coordinates(np.asarray(center_px, dtype=np.float64), w, h)
    return np.concatenate([focal, center, np.asarray(radial, np.float64),
                           np.asarray(tangential, np.float64)]).astype(np.float32)


def flip_intrinsics(cam: np.ndarray) -> np.ndarray:
    """Intrinsics of the horizontally mirrored image: negate cx and p1. cam: (..., 9)."""
    out = np.array(cam, copy=True)
    out[..., _CX] *= -1
    out[..., _P1] *= -1
    return out


def _split_intrinsics(camera_params: torch.Tensor, ndim: int):
    assert camera_params.shape[-1] == INTRINSIC_SIZE, camera_params.shape
    # Broadcast (..., 9) against points (..., J, 3): one camera per pose.
    cam = camera_params.reshape(camera_params.shape[:-1] + (1,) * (ndim - camera_params.ndim) + (INTRINSIC_SIZE,))
    return cam[..., :2], cam[..., 2:4], cam[..., 4:7], cam[..., 7:9]


def project_to_2d(x: torch.Tensor, camera_params: torch.Tensor) -> torch.Tensor:
    """Project camera-frame points with radial and tangential distortion.

    x: (N, *, 3) camera frame, any unit (z > 0). camera_params: (N, 9) normalised intrinsics.
    Returns (N, *, 2) normalised image coordinates. With a = (X/Z, Y/Z) clamped to [-1, 1]
    (points far outside the field of view) and r2 = |a|^2:
    ``a_d = a (1 + k1 r2 + k2 r2^2 + k3 r2^3 + p . a) + p r2``, projected as ``f a_d + c``
    (the Human3.6M files' simplified Brown-Conrady model).
    """
    focal, centre, radial_k, tangential_p = _split_intrinsics(camera_params, x.ndim)
    a = (x[..., :2] / x[..., 2:]).clamp(-1, 1)
    r2 = a.square().sum(dim=-1, keepdim=True)
    k1, k2, k3 = radial_k.split(1, dim=-1)
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))                   # Horner form of the polynomial
    tangential = (tangential_p * a).sum(dim=-1, keepdim=True)
    distorted = a * (radial + tangential) + tangential_p * r2
    return focal * distorted + centre


def project_to_2d_linear(x: torch.Tensor, camera_params: torch.Tensor) -> torch.Tensor:
    """Pinhole projection ignoring distortion. Shapes as ``project_to_2d``."""
    f, c, _, _ = _split_intrinsics(camera_params, x.ndim)
    xn = torch.clamp(x[..., :2] / x[..., 2:], min=-1, max=1)
    return f * xn + c


def sensor_to_pixel_intrinsics(focal_mm: float, offset_mm, sensor_mm, size_px):
    """Intrinsics given on the sensor in millimetres -> pixels (MPI-INF-3DHP test cameras).

    focal_mm: focal length; offset_mm: (2,) principal point offset from the sensor centre;
    sensor_mm: (2,) sensor width, height; size_px: (2,) image width, height.
    Returns (focal_px (2,), center_px (2,)): ``f_px = f_mm * size / sensor`` per axis and
    ``c_px = offset_mm * size / sensor + size / 2``.
    """
    scale = np.asarray(size_px, np.float64) / np.asarray(sensor_mm, np.float64)
    focal = focal_mm * scale
    center = np.asarray(offset_mm, np.float64) * scale + np.asarray(size_px, np.float64) / 2
    return focal, center

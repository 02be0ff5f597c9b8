"""The unit of data every loader produces and every generator consumes: one video seen by one camera."""
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class Sequence:
    """One take of one subject seen by one camera.

    keypoints_2d: (N, J, 2) float32, normalised image coordinates (see ``camera.normalize_screen_coordinates``).
    positions_3d: (N, J, 3) float32, metres, camera frame, root-relative (root joint exactly 0), or None
        when no ground truth exists (in-the-wild input).
    trajectory:   (N, 3) float32, metres, camera frame: the root joint's absolute position, or None.
    intrinsics:   (9,) float32 normalised intrinsic vector (``camera.intrinsic_vector``), or None.
    valid:        (N,) bool, frames with valid annotation (MPI-INF-3DHP test set), or None (all valid).
    subject, action: names as in the source file ("S9", "Walking 1"; "TS1", ""); camera: index or key.
    resolution: (width, height) in pixels of the camera's images.
    """
    subject: str
    action: str
    camera: object
    keypoints_2d: np.ndarray
    positions_3d: Optional[np.ndarray] = None
    trajectory: Optional[np.ndarray] = None
    intrinsics: Optional[np.ndarray] = None
    valid: Optional[np.ndarray] = None
    resolution: tuple = (0, 0)

    @property
    def num_frames(self) -> int:
        return self.keypoints_2d.shape[0]

    @property
    def action_label(self) -> str:
        """The action word fed to the prompts: the take number is dropped ("Walking 1" -> "Walking")."""
        return self.action.split(' ')[0] if self.action else ''

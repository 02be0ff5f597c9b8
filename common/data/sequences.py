"""What loaders produce and generators consume: ``Sequence`` (one video seen by one camera) and
``PoseDataset`` (all sequences of a dataset with its skeleton, mirror permutation and frame rate)."""
from dataclasses import dataclass
from typing import Optional

import numpy as np

from common.core.errors import UserError
from common.data.skeleton import Skeleton


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
    def key(self) -> tuple:
        """(subject, action, camera) as strings (the same for numpy or Python values): names the
        sequence whatever else is loaded with it (keys its sampling noise, ``evaluation.sampling_seeds``)."""
        return (str(self.subject), str(self.action), str(self.camera))

    @property
    def action_label(self) -> str:
        """The action word fed to the prompts: the take number is dropped ("Walking 1" -> "Walking")."""
        return self.action.split(' ')[0] if self.action else ''


@dataclass
class PoseDataset:
    """All sequences of one dataset, with what generators and models need to know about it.

    name: 'h36m' or 'mpi_inf_3dhp'; skeleton: the 3D joint layout (``common.data.skeleton``);
    keypoints_mirror: (J,) int mirror permutation of the 2D keypoints (``skeleton.flip_horizontal``);
    fps: frames per second of the videos; sequences: every (subject, action, camera) ``Sequence``.
    """
    name: str
    skeleton: Skeleton
    keypoints_mirror: np.ndarray
    fps: float
    sequences: list

    def subjects(self) -> list:
        """Subject names in the order they first appear."""
        return list(dict.fromkeys(seq.subject for seq in self.sequences))

    def select(self, subjects=None, actions=None, subjects_flag: str = '') -> list:
        """The sequences of the given subjects whose action starts with one of the given prefixes.

        subjects: list of names (None: all); actions: list of action prefixes, e.g. ['Walk', 'Sitting']
        (None: all), as the ``-a`` flag of VideoPose3D. An unknown subject or a prefix that matches
        no sequence of the chosen subjects is a ``UserError`` naming ``subjects_flag`` or ``-a``.
        """
        available = self.subjects()
        if subjects is not None:
            unknown = [s for s in subjects if s not in available]
            if unknown:
                raise UserError(f'{subjects_flag or self.name}: unknown subject {", ".join(unknown)}; '
                                f'available: {", ".join(available)}')
            chosen = set(subjects)
            sequences = [seq for seq in self.sequences if seq.subject in chosen]
        else:
            sequences = list(self.sequences)
        if actions is None:
            return sequences
        prefixes = tuple(actions)
        unmatched = [p for p in prefixes if not any(seq.action.startswith(p) for seq in sequences)]
        if unmatched:
            known = sorted({seq.action_label for seq in sequences})
            raise UserError(f'-a: no sequence of the chosen subjects ({subjects_flag or self.name}) has an action '
                            f'starting with {", ".join(repr(p) for p in unmatched)}; actions: {", ".join(known)}')
        return [seq for seq in sequences if seq.action.startswith(prefixes)]

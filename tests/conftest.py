"""Shared pytest fixtures (importable helpers live in ``tests/support/``).

``shared_dir`` points at the workplace's ``../shared`` folder (published facts and the real
MPI-INF-3DHP TS5/TS6 annotations); tests that need it skip cleanly when it is absent.
Override with the FINEPOSE_SHARED environment variable.
"""
import os
from pathlib import Path

import pytest
import torch

from support.runs import REPO_ROOT, TINY_DATA_FRAMES

# Unit tests use tiny models, where a second thread costs more in synchronisation than it gains,
# and where any other load on the machine turns OpenMP's spinning threads into a 5-20x slowdown.
torch.set_num_threads(1)


def _shared_path() -> Path:
    return Path(os.environ.get('FINEPOSE_SHARED', REPO_ROOT.parent / 'shared'))


@pytest.fixture(scope='session')
def shared_dir() -> Path:
    path = _shared_path()
    if not path.is_dir():
        pytest.skip(f'shared data folder not found at {path}')
    return path


@pytest.fixture(scope='session')
def mpi_inf_3dhp_annotations(shared_dir) -> Path:
    """Folder holding the real TS5/TS6 ``annot_data.mat`` files (skips if absent)."""
    path = shared_dir / 'data' / 'mpi_inf_3dhp'
    if not all((path / ts / 'annot_data.mat').is_file() for ts in ('TS5', 'TS6')):
        pytest.skip(f'real MPI-INF-3DHP TS5/TS6 annotations not found under {path}')
    return path


@pytest.fixture(scope='session')
def tiny_dataset(tmp_path_factory) -> Path:
    """A folder with tiny synthetic Human3.6M and MPI-INF-3DHP files in the real layouts
    (one take of 40 frames per action; detector keypoints named ``synthetic_det``)."""
    from common.synthetic import writer as synthetic
    out = tmp_path_factory.mktemp('tiny_dataset')
    synthetic.generate(out, seed=5, frames=TINY_DATA_FRAMES, takes=1)
    return out

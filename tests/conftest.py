"""Shared test fixtures.

``shared_dir`` points at the workplace's ``../shared`` folder (published facts and the real
MPI-INF-3DHP TS5/TS6 annotations); tests that need it skip cleanly when it is absent.
Override with the FINEPOSE_SHARED environment variable.
"""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


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

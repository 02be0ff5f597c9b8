"""Reading the official MPI-INF-3DHP test annotations (real TS5/TS6 files; skipped if absent)."""
import numpy as np
import pytest

from common.core.errors import UserError
from common.data.mpi_inf_3dhp import read_test_annotations


def test_real_ts5_ts6_frame_counts(mpi_inf_3dhp_annotations):
    annots = read_test_annotations(mpi_inf_3dhp_annotations, ['TS5', 'TS6'])
    assert annots['TS5'].num_frames == 320 and annots['TS6'].num_frames == 492
    assert annots['TS5'].valid.sum() == 276 and annots['TS6'].valid.sum() == 392
    for a in annots.values():
        assert a.annot3.shape == (a.num_frames, 17, 3) and a.annot2.shape == (a.num_frames, 17, 2)
        assert set(np.unique(a.activity)) <= set(range(1, 8))
        # Camera frame in millimetres: people stand metres in front of the camera.
        assert np.median(a.annot3[a.valid, :, 2]) > 1000


def test_missing_annotation_file_is_a_user_error(tmp_path):
    (tmp_path / 'TS1').mkdir()
    with pytest.raises(UserError, match=r'TS1/annot_data\.mat: not found'):
        read_test_annotations(tmp_path)
    with pytest.raises(UserError, match='annotation folder not found'):
        read_test_annotations(tmp_path / 'nope')
    with pytest.raises(UserError, match='no TS1..TS6 folders'):
        read_test_annotations(tmp_path / 'TS1')


def test_damaged_real_annotation_is_a_one_line_error(mpi_inf_3dhp_annotations, tmp_path):
    """A truncated copy and copies with flipped bytes in the compressed arrays of the real TS5."""
    original = (mpi_inf_3dhp_annotations / 'TS5' / 'annot_data.mat').read_bytes()
    (tmp_path / 'TS5').mkdir()
    damaged = tmp_path / 'TS5' / 'annot_data.mat'
    flipped = bytearray(original)
    for offset in range(len(original) // 2, len(original), len(original) // 40):
        flipped[offset] ^= 0xFF
    for content in (original[:len(original) // 2], bytes(flipped)):
        damaged.write_bytes(content)
        with pytest.raises(UserError, match=r'TS5/annot_data\.mat: not a readable MATLAB v7\.3 \(HDF5\) file, damaged'):
            read_test_annotations(tmp_path, ['TS5'])

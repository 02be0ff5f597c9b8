"""MP4 through PyAV's bundled FFmpeg: write -> read round trip, scaling, skipping, odd sizes, bad files."""
import numpy as np
import pytest

from common.core.errors import UserError
from common.data.video_io import Mp4Writer, read_frames, video_frame_count, video_info
from common.run.visualization import video_frames

FRAMES = 7


def _write(path, width, height, fps=12.5):
    """Frames of uniform grey value 30 * index, so each decoded frame can be recognised."""
    with Mp4Writer(path, fps) as writer:
        for index in range(FRAMES):
            writer.write(np.full((height, width, 3), 30 * index, np.uint8))
    return writer.frames_written


def test_mp4_round_trip_keeps_frame_count_size_and_content(tmp_path):
    path = tmp_path / 'clip.mp4'
    assert _write(path, 64, 48) == FRAMES
    assert video_info(path) == (64, 48, 12.5) and video_frame_count(path) == FRAMES
    frames = list(read_frames(path))
    assert len(frames) == FRAMES and all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    np.testing.assert_allclose([f.mean() for f in frames], [30 * i for i in range(FRAMES)], atol=3)


def test_background_frames_are_skipped_and_scaled(tmp_path):
    path = tmp_path / 'clip.mp4'
    _write(path, 64, 48)
    frames = list(video_frames(path, 2, (32, 24)))
    assert [f.shape for f in frames] == [(24, 32, 3)] * (FRAMES - 2)
    assert abs(frames[0].mean() - 60) < 3
    with pytest.raises(UserError, match=rf'--viz-skip {FRAMES}: .*clip\.mp4 has only {FRAMES} frames'):
        video_frames(path, FRAMES, (32, 24))


def test_odd_sizes_are_padded_to_even(tmp_path):
    path = tmp_path / 'odd.mp4'
    _write(path, 33, 21)
    width, height, _ = video_info(path)
    assert (width, height) == (34, 22)
    assert len(list(read_frames(path))) == FRAMES


def test_unreadable_file_is_a_user_error(tmp_path):
    path = tmp_path / 'broken.mp4'
    path.write_bytes(b'not a video')
    with pytest.raises(UserError, match=r'--viz-video .*broken\.mp4: FFmpeg cannot read this file'):
        video_frames(path, 0, (10, 10))

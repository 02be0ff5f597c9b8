"""Video files through PyAV (``av``), whose wheels bundle FFmpeg: no system ffmpeg is needed.

``read_frames`` decodes anything FFmpeg reads (MP4, MOV, AVI, WebM, GIF, ...) one frame at a time;
``Mp4Writer`` encodes RGB frames as H.264 MP4. ``video_info`` gives a video's size and frame rate,
``video_frame_count`` its number of frames.
"""
import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from common.core.errors import UserError

MP4_CODEC = 'libx264'
MP4_PIXEL_FORMAT = 'yuv420p'     # what players expect; needs even width and height
KBPS = 1000


def _open(path, flag: str):
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as err:
        raise UserError(f'{flag} {path}: FFmpeg cannot read this file ({err})') from None


def video_info(path, flag: str = 'video'):
    """(width px, height px, frames per second) of the first video stream of ``path``."""
    with _open(path, flag) as container:
        stream = _video_stream(container, path, flag)
        rate = stream.average_rate or stream.guessed_rate
        return stream.codec_context.width, stream.codec_context.height, float(rate) if rate else None


def video_frame_count(path, flag: str = 'video') -> int:
    """The number of frames of the first video stream of ``path``: the container's count where it
    keeps one (MP4, MOV, ...), else its packets counted (demuxed, not decoded)."""
    with _open(path, flag) as container:
        stream = _video_stream(container, path, flag)
        if stream.frames > 0:
            return stream.frames
        try:
            return sum(1 for packet in container.demux(stream) if packet.size)
        except av.error.FFmpegError as err:
            raise UserError(f'{flag} {path}: FFmpeg cannot read this file ({err})') from None


def _video_stream(container, path, flag: str):
    if not container.streams.video:
        raise UserError(f'{flag} {path}: no video stream')
    return container.streams.video[0]


def read_frames(path, skip: int = 0, resolution=None, flag: str = 'video'):
    """An iterator of (H, W, 3) uint8 RGB frames of ``path`` from frame ``skip`` on.

    resolution: (width, height) px to scale every frame to, or None (the video's own size).
    The file is opened (and a bad file reported as a ``UserError``) when this is called; frames are
    decoded as they are consumed, never the whole video in memory.
    """
    path = Path(path)
    container = _open(path, flag)
    _video_stream(container, path, flag)
    return _decoded(container, skip, resolution)


def _decoded(container, skip: int, resolution):
    width, height = resolution if resolution is not None else (None, None)
    with container:
        for frame in itertools.islice(container.decode(video=0), skip, None):
            yield frame.to_ndarray(format='rgb24', width=width, height=height)


class Mp4Writer:
    """Write (H, W, 3) uint8 RGB frames to an H.264 MP4: ``with Mp4Writer(path, fps) as w: w.write(frame)``.

    The first frame fixes the size; odd widths or heights are padded by one black pixel (yuv420p
    needs even sizes). bitrate_kbps: None lets the encoder choose (constant quality).
    """

    def __init__(self, path, fps: float, bitrate_kbps=None):
        self.path, self.fps, self.bitrate_kbps = Path(path), fps, bitrate_kbps
        self.container = self.stream = None
        self.frames_written = 0

    def __enter__(self):
        self.container = av.open(str(self.path), mode='w', format='mp4')
        return self

    def write(self, frame: np.ndarray):
        if self.stream is None:
            self.stream = self.container.add_stream(MP4_CODEC, rate=Fraction(self.fps).limit_denominator(1001))
            self.stream.height, self.stream.width = (size + size % 2 for size in frame.shape[:2])
            self.stream.pix_fmt = MP4_PIXEL_FORMAT
            if self.bitrate_kbps is not None:
                self.stream.bit_rate = int(self.bitrate_kbps * KBPS)
        padded = np.zeros((self.stream.height, self.stream.width, 3), np.uint8)
        padded[:frame.shape[0], :frame.shape[1]] = frame
        self.container.mux(self.stream.encode(av.VideoFrame.from_ndarray(padded, format='rgb24')))
        self.frames_written += 1

    def __exit__(self, *exc):
        if self.stream is not None:
            self.container.mux(self.stream.encode())        # flush the encoder's delayed frames
        self.container.close()
        return False

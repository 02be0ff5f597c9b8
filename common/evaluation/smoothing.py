"""Optional temporal smoothing of predicted pose tracks (``--smooth WINDOW``; never on by default).

A Savitzky-Golay filter (``scipy.signal.savgol_filter``, polynomial order ``SAVGOL_POLYORDER``)
along time, applied to one sequence's per-frame poses at a time, never across sequences: each
frame becomes the value at that frame of the least-squares quadratic through the WINDOW frames
centred on it (at the ends, the quadratic through the first or last WINDOW frames). Motion that
is a polynomial of order <= 2 in time (standing still, constant velocity, constant
acceleration) passes unchanged; frame-to-frame jitter is damped.

A sequence shorter than WINDOW frames is smoothed with the largest odd window that fits it;
a sequence of fewer than ``MIN_SMOOTH_FRAMES`` frames cannot be smoothed (the quadratic needs
three frames) and is refused.
"""
from typing import Optional

import numpy as np
from scipy.signal import savgol_filter

from common.core.errors import UserError

SAVGOL_POLYORDER = 2
MIN_SMOOTH_FRAMES = SAVGOL_POLYORDER + 1
SMOOTH_FLAG = '--smooth'


def fitting_window(window: int, num_frames: int) -> int:
    """The largest odd window of at most ``window`` and at most ``num_frames`` frames."""
    fit = min(window, num_frames)
    return fit if fit % 2 else fit - 1


def smooth_track(poses, window: int, axis: int = 0) -> np.ndarray:
    """Smooth one sequence's poses along time.

    poses: (N, ..., J, 3) (time along ``axis``), any unit; window: odd number of frames, used as
    ``fitting_window`` allows for N frames (N >= ``MIN_SMOOTH_FRAMES``). Returns float64, same shape and unit.
    """
    poses = np.asarray(poses, np.float64)
    return savgol_filter(poses, fitting_window(window, poses.shape[axis]), SAVGOL_POLYORDER, axis=axis, mode='interp')


def check_smoothable(window: int, lengths: dict) -> Optional[str]:
    """Before any model work: can every sequence be smoothed with ``window``?

    lengths: {name: number of frames} of the sequences to smooth. A sequence of fewer than
    ``MIN_SMOOTH_FRAMES`` frames is a ``UserError`` (one line); returns the one line that names the
    sequences shorter than ``window`` and the window each gets, or None when all are long enough.
    """
    short = {name: n for name, n in lengths.items() if n < MIN_SMOOTH_FRAMES}
    if short:
        name, frames = next(iter(short.items()))
        more = f' (and {len(short) - 1} more)' if len(short) > 1 else ''
        frames_word = 'frame' if frames == 1 else 'frames'
        raise UserError(f'{SMOOTH_FLAG} {window}: {name} has {frames} {frames_word}{more}; smoothing (polynomial '
                        f'order {SAVGOL_POLYORDER}) needs at least {MIN_SMOOTH_FRAMES}; drop {SMOOTH_FLAG}')
    clamped = {name: n for name, n in lengths.items() if n < window}
    if not clamped:
        return None
    listed = ', '.join(f'{name} ({n} frames): {fitting_window(window, n)}' for name, n in list(clamped.items())[:3])
    more = f', and {len(clamped) - 3} more' if len(clamped) > 3 else ''
    return (f'{SMOOTH_FLAG} {window}: {len(clamped)} of {len(lengths)} sequences are shorter than {window} frames and '
            f'are smoothed with the largest odd window that fits: {listed}{more}')


def smoothing_words(window: Optional[int]) -> str:
    """What a run says about smoothing (``window`` None: none), in one line."""
    if window is None:
        return f'Poses not smoothed ({SMOOTH_FLAG} not given).'
    return (f'Poses smoothed ({SMOOTH_FLAG} {window}): Savitzky-Golay filter along time within each sequence, '
            f'window {window} frames (or the largest odd window that fits a shorter sequence), polynomial order '
            f'{SAVGOL_POLYORDER}.')

"""How many clips a training step takes, from ``-b`` and ``-s`` as the original reads them.

The original FinePOSE (after VideoPose3D and D3DP) reads ``-b`` in frames (default 1024) and
divides it by ``-s`` (default 243, whatever ``-f`` is): a step takes ``-b // -s`` clips, 4 by
default. ``-s`` changes only that count; the clips are always ``-f`` frames long.

The rule here:

* ``-s`` given: ``-b`` is read in frames, as the original reads it (default 1024), and a step
  takes ``-b // -s`` clips: ``-f 27 -s 27`` trains 37 clips a step, ``-f 27 -s 243`` 4,
  ``-s 243 -b 2048`` 8. Fewer frames than one ``-s`` is an error.
* no ``-s``: ``-b`` counts clips (default 4, the original's 1024 // 243). A ``-b`` of 243 or
  more is refused with what to type (``-s 243 -b 1024``): the original reads it as frames, one
  or more clips of its default ``-s 243``, and no sane batch has that many clips. Below 243 the
  original trains on 0 clips and fails, so no command it runs is read differently here.

Evaluation is not concerned: there ``-b`` counts windows per sampling batch, as in the original.
"""
from dataclasses import dataclass

from common.core.errors import UserError

ORIGINAL_BATCH_FRAMES = 1024
ORIGINAL_STRIDE = 243
CLIPS_PER_BATCH = ORIGINAL_BATCH_FRAMES // ORIGINAL_STRIDE      # 4
FRAMES_NOT_CLIPS = ORIGINAL_STRIDE      # without -s, a -b this large is the original's frames


@dataclass(frozen=True)
class TrainingBatch:
    """clips: clips per training step (the global batch); description: how that was read from
    the flags, for the log ('37 clips a step (-b 1024 frames / -s 27, as the original)')."""
    clips: int
    description: str


def training_batch(batch_size: int, stride, batch_given: bool) -> TrainingBatch:
    """The training batch of ``-b batch_size`` (``batch_given``: written on the command line)
    and ``-s stride`` (None when not given); an unreadable combination is a ``UserError``."""
    if stride is not None:
        frames = batch_size if batch_given else ORIGINAL_BATCH_FRAMES
        clips = frames // stride
        if clips < 1:
            raise UserError(f'-s {stride} -b {frames}: with -s, -b counts frames (as in the original), and {frames} '
                            f'frames make no clip of {stride}; pass -b {stride} or more (frames), or drop -s and '
                            'give -b in clips')
        return TrainingBatch(clips, f'{_clips(clips)} a step (-b {frames} frames / -s {stride}, as the original)')
    if batch_size >= FRAMES_NOT_CLIPS:
        raise UserError(f'-b {batch_size}: without -s, -b counts clips, and {batch_size} clips a step is the original\'s '
                        f'frames; type -s {ORIGINAL_STRIDE} -b {batch_size} for the original\'s '
                        f'{_clips(batch_size // ORIGINAL_STRIDE)} a step, or -b N for N clips')
    if not batch_given:
        return TrainingBatch(batch_size, f'{_clips(batch_size)} a step (the original\'s default: -b '
                                         f'{ORIGINAL_BATCH_FRAMES} frames / -s {ORIGINAL_STRIDE})')
    return TrainingBatch(batch_size, f'{_clips(batch_size)} a step (-b {batch_size})')


def epoch_shortfall(batch: TrainingBatch, clips_in_epoch: int):
    """The warning line when a step asks for more clips than an epoch holds (every step then
    trains on the whole epoch), else None."""
    if batch.clips <= clips_in_epoch:
        return None
    return (f'Warning: {batch.description} is more than the {_clips(clips_in_epoch)} an epoch holds: each epoch is '
            'one step of all of them')


def _clips(n: int) -> str:
    return f'{n} clip' if n == 1 else f'{n} clips'

"""A detector's frame numbers -> the video's frames: frame i of a keypoint file is frame i of its video.

Detector files number their frames: JSON results by ``image_id`` (an int, or the last number in a
file name such as ``frame_000012.jpg``), OpenPose by the number in each file's name, arrays by their
rows, the bundled detector by the decoded frames. ``place_on_video`` puts each numbered entry on its
frame:

* the number ``first_frame`` (``--first-frame``, default 0) is the video's first frame, whether or
  not anyone was detected there: detections that start late leave the first frames without people,
  they never shift the frames that follow; numbers without an entry are frames without people;
* with the video's frame count known, the list has exactly that many frames (frames after the last
  entry are frames without people) and a number beyond the video is an error (a file of another
  video, or another numbering); without it, the list ends at the largest number.

Ids that are no frame numbers (names without a number, or the same number twice) are only put in
order (natural order of the names), as are, without a video, numbers spread more than
``MAX_FRAME_SPREAD`` times wider than their count (COCO's own image ids of unrelated images; a late
start does not count, only the spread from the lowest to the highest number); the summary says so,
and with a video their count must be the video's.

Each frame's entry is kept as given (a list of people), so one person's track and several people's
tracks are built from the same frames. Frames without people are filled later, by the rule of
``common.data.keypoint_tracks.fill_gaps``.
"""
import re
from dataclasses import dataclass

from common.core.errors import UserError

MAX_FRAME_SPREAD = 10
_NUMBER = re.compile(r'\d+')
_NUMBER_OR_TEXT = re.compile(r'(\d+)')


@dataclass
class NumberedEntries:
    """A file's entries by their own numbering.

    by_id: {id: entry}, id an int frame number or a name holding one (its last number); entry:
    the list of people detected in that frame (whatever a person is to the caller). id_kind: what the ids are, for messages
    ('image_id', 'file', 'row', 'decoded frame').
    """
    by_id: dict
    id_kind: str


@dataclass
class VideoFrames:
    """Entries placed on the video's frames.

    frames: N entries, frame i = video frame i (an empty list where the file has no entry);
    numbering: how the ids became frames, one phrase for the summary.
    """
    frames: list
    numbering: str


def frame_number(image_id):
    """An int id as it is; a name's last number ('frame_000012.jpg' -> 12); None when it has none."""
    if isinstance(image_id, int):
        return image_id
    found = _NUMBER.findall(str(image_id))
    return int(found[-1]) if found else None


def _natural_key(image_id):
    return [int(part) if part.isdigit() else part for part in _NUMBER_OR_TEXT.split(str(image_id))]


def place_on_video(entries: NumberedEntries, source: str, num_frames=None, video: str = None,
                   first_frame: int = 0) -> VideoFrames:
    """The file's entries on the video's frames (see the module docstring).

    num_frames: the video's frame count, or None (unknown: the frames end at the largest number);
    video: its name for messages; first_frame: the number of the video's first frame in the file's
    numbering. A frame the file does not name gets an empty list (nobody detected).
    """
    ids = list(entries.by_id)
    if not ids:
        raise UserError(f'{source}: no frame found')
    numbers = [frame_number(i) for i in ids]
    kind = entries.id_kind
    if None in numbers or len(set(numbers)) < len(numbers):
        why = 'without a number' if None in numbers else 'with the same number'
        return _in_order(entries, source, num_frames, video, first_frame, f'{kind}s {why}')
    lowest, highest = min(numbers), max(numbers)
    if lowest < first_frame:
        raise UserError(f'{source}: {kind} {ids[numbers.index(lowest)]!r} is frame {lowest}, before --first-frame '
                        f'{first_frame} (the number of the video\'s first frame)')
    if num_frames is None and highest - lowest + 1 > MAX_FRAME_SPREAD * len(numbers):
        return _in_order(entries, source, None, video, first_frame,
                         f'{len(numbers)} {kind}s spread over {lowest}..{highest}, no frame numbers')
    if num_frames is not None and highest - first_frame >= num_frames:
        one_based = ' (numbered from 1? pass --first-frame 1)' if highest - first_frame == num_frames else ''
        raise UserError(f'{source}: {kind} {ids[numbers.index(highest)]!r} names frame {highest - first_frame}, beyond '
                        f'the {num_frames} frames of {video} (frames 0..{num_frames - 1}; --first-frame {first_frame} '
                        f'is its first){one_based}; are they from this video?')
    length = num_frames if num_frames is not None else highest - first_frame + 1
    frames = [[] for _ in range(length)]
    for image_id, number in zip(ids, numbers):
        frames[number - first_frame] = entries.by_id[image_id]
    start = f'{kind} {first_frame} is frame 0' + (' (--first-frame)' if first_frame else '')
    end = (f'{length} frames of {video}' if num_frames is not None else
           f'{length} frames, to the last {kind} (--video would give the video\'s own frame count)')
    return VideoFrames(frames, f'{start}; {end}')


def _in_order(entries: NumberedEntries, source: str, num_frames, video: str, first_frame: int, why: str) -> VideoFrames:
    """The entries one frame each, in the natural order of their ids (ids that are no frame numbers)."""
    if first_frame:
        raise UserError(f'--first-frame {first_frame}: {source} has {why}; it applies to frame numbers only')
    ids = sorted(entries.by_id, key=_natural_key)
    if num_frames is not None and len(ids) != num_frames:
        raise UserError(f'{source}: {why}, so its {len(ids)} entries cannot be placed on the {num_frames} frames of '
                        f'{video}; name each frame by its number (0 = the first frame)')
    frames = [entries.by_id[i] for i in ids]
    return VideoFrames(frames, f'{why}: frames in {entries.id_kind} order, frame 0 = {ids[0]!r}')

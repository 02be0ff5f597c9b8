"""Your video's 2D keypoints -> ``data/data_2d_custom_NAME.npz``, the file ``main.py -d custom -k NAME`` reads.

    python -m common.keypoints convert --from {coco,halpe,openpose,mediapipe,h36m} INPUT \\
        --out data/data_2d_custom_NAME.npz (--video VIDEO | --video-size W H [--fps F])
        [--person auto|ID|all [--max-gap N] [--min-track-frames N]] [--min-confidence C] [--first-frame N]
    python -m common.keypoints detect VIDEO --out data/data_2d_custom_NAME.npz [--person auto]

``convert`` reads a detector's file (``common.data.keypoint_readers``), places its frames on the
video's (``common.data.frame_numbering``: frame i of the file is frame i of the video, with exactly
the video's frame count when the video is given), follows one person through the video and fills
gaps (``common.data.keypoint_tracks``), or with ``--person all`` every person, one entry each
(``common.data.person_tracks``: VIDEO_person1, VIDEO_person2, ...), converts the joints to the Human3.6M 17-joint order
(``common.data.keypoint_formats``, where the rules for joints a format lacks are written down) and
writes the custom file (VideoPose3D's layout, ``common.data.custom_data``); ``common.data.keypoints`` holds
these steps. ``detect`` runs MediaPipe's BlazePose on every frame of the video first
(``common.data.pose_detector``; optional, see requirements-detector.txt). Both print what was filled, and how.

This command imports only numpy and scipy (and PyAV for ``detect``), so that ``detect`` runs in the
separate environment MediaPipe needs (it pins numpy < 2), without torch.
"""
import argparse
from pathlib import Path

from common.core.errors import UserError, exit_on_user_error

with exit_on_user_error():          # Ctrl-C while the modules load: one line, exit 130
    from common.core.output_paths import check_output_file
    from common.core.units import MAX_FPS
    from common.data.frame_numbering import place_on_video
    from common.data.keypoint_readers import FORMATS, MEDIAPIPE_COORDINATES, read_keypoints
    from common.data.keypoint_tracks import AUTO_PERSON, DEFAULT_MIN_CONFIDENCE
    from common.data.keypoints import convert_detections, convert_people, custom_name, save_custom_keypoints
    from common.data.person_tracks import ALL_PEOPLE, DEFAULT_MAX_GAP, DEFAULT_MIN_TRACK_FRAMES

DEFAULT_FPS = 30.0
MULTI_PERSON_FORMATS = ('coco', 'halpe', 'openpose')     # the formats that hold several people per frame


def _person(value: str):
    if value in (AUTO_PERSON, ALL_PEOPLE):
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto', 'all' or a tracker id (an integer), "
                                         f"found {value!r}") from None


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='python -m common.keypoints', description=__doc__.split('\n')[0])
    commands = parser.add_subparsers(dest='command', required=True)
    convert = commands.add_parser('convert', help="convert a detector's keypoint file")
    convert.add_argument('--from', dest='file_format', required=True, choices=FORMATS,
                         help='the file\'s format (see docs/your-own-video.md)')
    convert.add_argument('input', metavar='INPUT', help='the file (a folder for openpose)')
    convert.add_argument('--video', default=None, metavar='VIDEO',
                         help='the video the keypoints come from: its width, height, frame rate and file name are used')
    convert.add_argument('--video-size', type=int, nargs=2, metavar=('W', 'H'),
                         help='width and height of the video in pixels (without --video; no keypoint format '
                              'stores them)')
    convert.add_argument('--mediapipe-coordinates', choices=MEDIAPIPE_COORDINATES, default='normalised',
                         help='--from mediapipe: landmarks normalised to [0, 1] (MediaPipe\'s output, default) '
                              'or pixels')
    convert.add_argument('--first-frame', type=int, default=0, metavar='N',
                         help="the number of the video's first frame in INPUT's numbering (image_id, the number in "
                              "a file name, a .npy row; default: 0; 1 for frames extracted with ffmpeg's %%d)")
    convert.add_argument('--max-gap', type=int, default=None, metavar='N',
                         help=f'--person all: a person missing for up to N frames in a row keeps their track '
                              f'(default: {DEFAULT_MAX_GAP})')
    convert.add_argument('--min-track-frames', type=int, default=None, metavar='N',
                         help=f'--person all: people detected in fewer than N frames are dropped, and counted '
                              f'(default: {DEFAULT_MIN_TRACK_FRAMES})')
    detect = commands.add_parser('detect', help='find the keypoints in a video with MediaPipe (optional install)')
    detect.add_argument('input', metavar='VIDEO', help='any video FFmpeg reads (a still image works too)')
    for command in (convert, detect):
        command.add_argument('--out', required=True, metavar='data/data_2d_custom_NAME.npz', help='the file to write')
        command.add_argument('--fps', type=float, default=None, metavar='F',
                             help='frame rate of the renderings (default: the video\'s, else 30)')
        command.add_argument('--person', type=_person, default=AUTO_PERSON, metavar='auto|ID|all',
                             help="'auto' (default): the most confident person, then the nearest to the previous "
                                  "frame's box; ID: the format's tracker id (halpe idx, openpose person_id); 'all': "
                                  "every person, one entry each, VIDEO_person1, VIDEO_person2, ... (convert --from "
                                  f"{', '.join(MULTI_PERSON_FORMATS)})")
        command.add_argument('--min-confidence', type=float, default=DEFAULT_MIN_CONFIDENCE, metavar='C',
                             help='joints below this score are interpolated in time '
                                  f'(default: {DEFAULT_MIN_CONFIDENCE})')
        command.add_argument('--video-name', default=None, metavar='NAME',
                             help='the video\'s key in the file, --viz-subject of main.py (default: the file name of '
                                  '--video, else of INPUT)')
    args = parser.parse_args(argv)
    _check_args(args)
    return args


def _check_args(args):
    custom_name(args.out)
    if args.fps is not None and not 0 < args.fps <= MAX_FPS:
        raise UserError(f'--fps {args.fps:g}: expected a frame rate above 0 and at most {MAX_FPS:g} frames per second')
    if not 0.0 <= args.min_confidence <= 1.0:
        raise UserError(f'--min-confidence {args.min_confidence}: expected a score in [0, 1]')
    if getattr(args, 'video_size', None) is not None and min(args.video_size) < 1:
        raise UserError(f'--video-size {" ".join(map(str, args.video_size))}: expected a positive width and height')
    if getattr(args, 'first_frame', 0) < 0:
        raise UserError(f'--first-frame {args.first_frame}: expected a frame number >= 0')
    _check_people_args(args)


def _check_people_args(args):
    """--person all: only where a file holds several people per frame; --max-gap and --min-track-frames
    only with it (then given their defaults)."""
    takes = f'--person all takes convert --from {", ".join(MULTI_PERSON_FORMATS)}'
    if args.person == ALL_PEOPLE and args.command == 'detect':
        raise UserError(f'--person all: detect (MediaPipe) finds one person per frame; {takes}')
    if args.person == ALL_PEOPLE and args.file_format not in MULTI_PERSON_FORMATS:
        raise UserError(f'--person all: --from {args.file_format} files hold one person per frame; {takes}')
    tracking = {'--max-gap': getattr(args, 'max_gap', None),
                '--min-track-frames': getattr(args, 'min_track_frames', None)}
    if args.person != ALL_PEOPLE:
        given = [flag for flag, value in tracking.items() if value is not None]
        if given:
            raise UserError(f'{", ".join(given)}: used only with --person all, which is not given')
        return
    args.max_gap = DEFAULT_MAX_GAP if args.max_gap is None else args.max_gap
    args.min_track_frames = DEFAULT_MIN_TRACK_FRAMES if args.min_track_frames is None else args.min_track_frames
    if args.max_gap < 0:
        raise UserError(f'--max-gap {args.max_gap}: expected a number of frames >= 0')
    if args.min_track_frames < 1:
        raise UserError(f'--min-track-frames {args.min_track_frames}: expected a number of frames >= 1')


def _convert(args, name: str):
    """(entries {name: (N, 17, 2) px}, (width, height) px, fps) of a detector's file; ``name``: the video's
    entry name, or with --person all the prefix of each person's."""
    fps, num_frames = args.fps, None
    if args.video is not None:
        from common.data.video_io import video_frame_count, video_info
        width, height, video_fps = video_info(args.video, flag='--video')
        num_frames = video_frame_count(args.video, flag='--video')
        args.video_size = args.video_size or (width, height)
        if fps is None and not 0 < video_fps <= MAX_FPS:
            raise UserError(f'--video {args.video}: states {video_fps:g} fps; pass --fps F, its frame rate')
        fps = fps or video_fps
    if args.video_size is None:
        raise UserError(f'{args.input}: pass --video VIDEO or --video-size W H, the video\'s width and height in '
                        'pixels (keypoint files do not store them; the model needs them to normalise the keypoints)')
    if args.person not in (AUTO_PERSON, ALL_PEOPLE) and args.file_format in ('coco', 'mediapipe', 'h36m'):
        raise UserError(f'--person {args.person}: --from {args.file_format} files have no tracker ids; use '
                        '--person auto')
    layout, entries = read_keypoints(args.file_format, args.input, args.video_size, args.mediapipe_coordinates)
    video = args.video and Path(args.video).name
    placed = place_on_video(entries, args.input, num_frames, video, args.first_frame)
    if args.person == ALL_PEOPLE:
        entries = convert_people(layout, placed, name, args.min_confidence, args.max_gap, args.min_track_frames,
                                 args.input)
    else:
        entries = {name: convert_detections(layout, placed, args.person, args.min_confidence, args.input)}
    return entries, args.video_size, fps or DEFAULT_FPS


def _detect(args, name: str):
    from common.data.pose_detector import detect_video
    if args.person != AUTO_PERSON:
        raise UserError(f'--person {args.person}: MediaPipe\'s pose solution follows one person; use --person auto')
    layout, entries, (width, height, fps) = detect_video(args.input)
    placed = place_on_video(entries, args.input, len(entries.by_id), Path(args.input).name)
    keypoints = convert_detections(layout, placed, AUTO_PERSON, args.min_confidence, args.input)
    return {name: keypoints}, (width, height), args.fps or fps or DEFAULT_FPS


def main(argv=None):
    with exit_on_user_error():
        args = parse_args(argv)
        check_output_file(args.out, '--out')
        video = args.video_name or Path(getattr(args, 'video', None) or args.input).name
        entries, (width, height), fps = (_convert if args.command == 'convert' else _detect)(args, video)
        save_custom_keypoints(args.out, entries, width, height, fps)
        num_frames = next(iter(entries.values())).shape[0]
        names = '' if list(entries) == [video] else f' as people {", ".join(map(repr, entries))}'
        print(f'Wrote {args.out}: video {video!r}{names}, {num_frames} frames (N, 17, 2) px of {width}x{height} '
              f'at {fps:g} fps; predict with: python main.py -d custom -k {custom_name(args.out)} ...')


if __name__ == '__main__':
    main()

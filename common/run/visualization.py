"""Pictures of predictions: the 2D input over a video frame (or a blank image) beside 3D skeletons.

``render_animation`` writes a GIF (Pillow), an MP4 (H.264 through PyAV's bundled FFmpeg,
``common.data.video_io``) or a PNG of the first frame. Figures are drawn on matplotlib's Agg canvas,
so no display is needed. ``video_frames`` reads the background frames: still and animated images
through Pillow, any other video (MP4, MOV, AVI, WebM, ...) through PyAV.

3D panels show camera-frame poses the way the camera sees them, turned a little: plot x = camera x
(right), plot y = camera z (depth), plot z = -camera y (up). ``render_animation`` draws one person,
root-relative (the root at the cube's centre), bones coloured by side; ``render_people`` draws
several people of one video, each in their own colour, placed in one 3D panel by their root positions.
"""
import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageSequence, UnidentifiedImageError

from common.core.atomic import atomic_output, atomic_path
from common.core.errors import UserError
from common.data.video_io import Mp4Writer, read_frames, video_frame_count

DOTS_PER_INCH = 80
VIEW_ELEVATION_DEG = 15.0
VIEW_AZIMUTH_DEG = -70.0        # -90 looks straight along the camera axis; turned to show depth
PLOT_HALF_SIZE_M = 1.0          # 3D panels show a 2 m cube centred on the root joint
PLOT_TICKS_M = (-PLOT_HALF_SIZE_M / 2, 0.0, PLOT_HALF_SIZE_M / 2)
# Plot axes (right, depth, up) named by the camera axes they show (``_plot_coordinates``).
PLOT_AXIS_LABELS = ('x: camera right (m)', 'z: camera forward (m)', '-y: camera up (m)')
# The vertical axis' tick labels sit further out than the others: closer, the axis line hides their minus signs.
AXIS_LABEL_PADS = (-4, -4, 2)
VERTICAL_TICK_PAD = 3
AXIS_FONT_SIZE = 8
LEFT_COLOUR = 'tab:blue'
RIGHT_COLOUR = 'tab:red'
CENTRE_COLOUR = 'black'
PERSON_COLOURS = colormaps['tab10'].colors      # render_people: person k in colour k (of 10, then again)
CUBE_STEP_M = 0.5             # render_people: half the 3D cube's side, a multiple of this
CUBE_CENTRE_DECIMALS = 1      # render_people: the cube's centre rounded to 0.1 m (short tick labels)
BLANK_COLOUR = (255, 255, 255)
LINE_WIDTH = 2.0
KEYPOINT_MARKER_SIZE = 3.0
MS_PER_S = 1000
SUFFIXES = ('.gif', '.mp4', '.png')


def downsample_frames(array: np.ndarray, factor: int) -> np.ndarray:
    """(N, ...) -> (N // factor, ...): the mean of each group of ``factor`` consecutive frames
    (a last incomplete group is dropped), as VideoPose3D's ``--viz-downsample``."""
    complete = array.shape[0] - array.shape[0] % factor
    # The k-th frame of every group, for k = 0 .. factor - 1; their mean is the groups' means.
    kth_frames = [array[k:complete:factor] for k in range(factor)]
    return np.mean(kth_frames, axis=0)


def video_frames(path, skip: int, resolution: tuple):
    """An iterator of (H, W, 3) uint8 frames of ``path`` from frame ``skip`` on.

    Pillow reads animated and still images (a still image is the background of every frame);
    other files are decoded by PyAV, scaled to ``resolution`` (width, height) pixels. Missing
    and unreadable files, and a ``skip`` past the last frame, are ``UserError``s, raised here, before rendering.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f'--viz-video {path}: not found')
    try:
        with Image.open(path) as image:
            num_frames = getattr(image, 'n_frames', 1)
    except UnidentifiedImageError:
        num_frames = video_frame_count(path, flag='--viz-video')
        if skip >= num_frames:
            raise UserError(f'--viz-skip {skip}: {path} has only {num_frames} frames')
        return read_frames(path, skip, resolution, flag='--viz-video')
    if num_frames == 1:
        with Image.open(path) as image:
            return itertools.repeat(np.asarray(image.convert('RGB')))
    if skip >= num_frames:
        raise UserError(f'--viz-skip {skip}: {path} has only {num_frames} frames')
    return _pillow_frames(path, skip)


def _pillow_frames(path: Path, skip: int):
    with Image.open(path) as image:
        for frame in itertools.islice(ImageSequence.Iterator(image), skip, None):
            yield np.asarray(frame.convert('RGB'))


class _GifWriter:
    """Collect (H, W, 3) uint8 frames and save them as a looping GIF when the block ends without error."""

    def __init__(self, path, fps: float):
        self.path, self.fps, self.images = Path(path), fps, []

    def __enter__(self):
        return self

    def write(self, frame: np.ndarray):
        self.images.append(Image.fromarray(frame))

    def __exit__(self, exc_type, *exc):
        if exc_type is None and self.images:
            self.images[0].save(self.path, format='GIF', save_all=True, append_images=self.images[1:],
                                duration=round(MS_PER_S / self.fps), loop=0)
        return False


def _writer(output: Path, temporary: Path, fps: float, bitrate: int):
    """The frame writer for ``output``'s suffix, writing to ``temporary``; None for a PNG (one frame)."""
    suffix = output.suffix.lower()
    if suffix == '.gif':
        return _GifWriter(temporary, fps)
    if suffix == '.mp4':
        return Mp4Writer(temporary, fps, bitrate)
    if suffix == '.png':
        return None
    raise UserError(f'--viz-output {output}: expected a file name ending in {", ".join(SUFFIXES)}')


def check_output(output) -> None:
    """Raise now the ``UserError`` that ``render_animation`` would raise for ``output``'s format."""
    output = Path(output)
    _writer(output, output, fps=1.0, bitrate=1)


def _bone_colour(joint: int, skeleton) -> str:
    if joint in skeleton.joints_left:
        return LEFT_COLOUR
    return RIGHT_COLOUR if joint in skeleton.joints_right else CENTRE_COLOUR


def person_colour(index: int) -> tuple:
    """(r, g, b) in [0, 1]: the colour of person ``index`` (from 0) in ``render_people``, matplotlib's tab10."""
    return PERSON_COLOURS[index % len(PERSON_COLOURS)]


def _plot_coordinates(poses: np.ndarray) -> np.ndarray:
    """(..., 3) camera frame (x right, y down, z forward) -> (..., 3) plot axes (right, depth, up)."""
    return np.stack([poses[..., 0], poses[..., 2], -poses[..., 1]], axis=-1)


@dataclass
class _Skeletons:
    """One skeleton through the frames, as a panel draws it.

    frames: (N, J, 2) pixels (the input panel) or (N, J, 3) plot axes, metres (a 3D panel);
    bone_colours: one per bone of ``skeleton.bones()``; joint_colour: the joint markers' (None: no
    markers); label: its legend entry (None: no legend).
    """
    frames: np.ndarray
    bone_colours: list
    joint_colour: object = None
    label: str = None


@dataclass
class _Panel3D:
    """A 3D panel: its ``_Skeletons`` and the cube it shows, centre (3,) in plot axes and half its side, metres."""
    skeletons: list
    centre: np.ndarray
    half_size: float


class _SkeletonFigure:
    """The figure: the 2D input panel, then the 3D panels; ``draw(frame)`` updates it.

    inputs: the ``_Skeletons`` drawn over the image (pixels); panels: {title: ``_Panel3D``}; bones:
    the skeleton's (child, parent) pairs.
    """

    def __init__(self, inputs: list, panels: dict, bones, resolution: tuple, size: float, first_background):
        self.inputs, self.panels, self.bones = inputs, panels, bones
        width, height = resolution
        num_panels = 1 + len(panels)
        self.figure = Figure(figsize=(size * num_panels, size), dpi=DOTS_PER_INCH)
        FigureCanvasAgg(self.figure)

        image_axes = self.figure.add_subplot(1, num_panels, 1)
        image_axes.set_xticks([])
        image_axes.set_yticks([])
        image_axes.set_title('Input')
        background = (np.array([[BLANK_COLOUR]], np.uint8) if first_background is None else first_background)
        self.image = image_axes.imshow(background, extent=(0, width, height, 0))
        image_axes.set_xlim(0, width)
        image_axes.set_ylim(height, 0)
        self.lines_2d = [self._lines(image_axes, s, dimensions=2) for s in inputs]
        self.points_2d = [None if s.joint_colour is None else
                          image_axes.plot([], [], 'o', color=s.joint_colour, markersize=KEYPOINT_MARKER_SIZE)[0]
                          for s in inputs]

        self.lines_3d = {}
        for number, (title, panel) in enumerate(panels.items(), start=2):
            axes = self.figure.add_subplot(1, num_panels, number, projection='3d')
            axes.view_init(elev=VIEW_ELEVATION_DEG, azim=VIEW_AZIMUTH_DEG)
            ticks = panel.centre[:, None] + np.asarray(PLOT_TICKS_M) * panel.half_size / PLOT_HALF_SIZE_M
            for axis, (set_limits, set_ticks, set_label, label) in enumerate(zip(
                    (axes.set_xlim3d, axes.set_ylim3d, axes.set_zlim3d), (axes.set_xticks, axes.set_yticks,
                                                                          axes.set_zticks),
                    (axes.set_xlabel, axes.set_ylabel, axes.set_zlabel), PLOT_AXIS_LABELS)):
                set_limits(panel.centre[axis] - panel.half_size, panel.centre[axis] + panel.half_size)
                set_ticks(ticks[axis])
                set_label(label, fontsize=AXIS_FONT_SIZE, labelpad=AXIS_LABEL_PADS[axis])
            axes.set_box_aspect((1, 1, 1))
            axes.tick_params(labelsize=AXIS_FONT_SIZE, pad=-2)
            axes.tick_params(axis='z', pad=VERTICAL_TICK_PAD)
            axes.set_title(title)
            self.lines_3d[title] = [self._lines(axes, s, dimensions=3) for s in panel.skeletons]
            if any(s.label for s in panel.skeletons):
                axes.legend(handles=[lines[0] for lines in self.lines_3d[title]], fontsize=AXIS_FONT_SIZE,
                            loc='upper right')
        self.figure.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.92, wspace=0.05)

    @staticmethod
    def _lines(axes, skeletons: _Skeletons, dimensions: int) -> list:
        """One line per bone, in its colour; the first carries the legend label."""
        empty = ([],) * dimensions
        return [axes.plot(*empty, color=colour, linewidth=LINE_WIDTH,
                          label=skeletons.label if bone == 0 else None)[0]
                for bone, colour in enumerate(skeletons.bone_colours)]

    def rgb(self) -> np.ndarray:
        """The figure as drawn now: (H, W, 3) uint8."""
        self.figure.canvas.draw()
        return np.asarray(self.figure.canvas.buffer_rgba())[..., :3].copy()

    def draw(self, frame: int, background=None):
        if background is not None:
            self.image.set_data(background)
        for skeletons, lines, points in zip(self.inputs, self.lines_2d, self.points_2d):
            keypoints = skeletons.frames[frame]
            for line, (child, parent) in zip(lines, self.bones):
                line.set_data(keypoints[[child, parent], 0], keypoints[[child, parent], 1])
            if points is not None:
                points.set_data(keypoints[:, 0], keypoints[:, 1])
        for title, panel in self.panels.items():
            for skeletons, lines in zip(panel.skeletons, self.lines_3d[title]):
                pose = skeletons.frames[frame]
                for line, (child, parent) in zip(lines, self.bones):
                    segment = pose[[child, parent]]
                    line.set_data_3d(segment[:, 0], segment[:, 1], segment[:, 2])


def render_animation(output, keypoints_px: np.ndarray, poses: dict, skeleton, resolution: tuple, fps: float,
                     background=None, limit: int = -1, downsample: int = 1, size: float = 5.0,
                     bitrate: int = 3000) -> int:
    """Draw the 2D input beside each 3D pose sequence into ``output`` (.gif, .mp4 or .png).

    keypoints_px: (N, J, 2) pixels of an image of ``resolution`` (width, height);
    poses: {panel title: (N, J, 3) metres, camera frame, root-relative};
    background: None (blank) or an iterator of (H, W, 3) uint8 frames aligned with frame 0
        (``video_frames``); rendering stops early if it runs out (said in one line);
    limit: render the first ``limit`` frames (< 1: all); downsample: average every ``downsample``
        frames into one, at ``fps / downsample``; size: inches per panel.
    Bones are coloured by side (``LEFT_COLOUR``, ``RIGHT_COLOUR``); each 3D panel is a cube of
    2 ``PLOT_HALF_SIZE_M`` centred on the root. A PNG holds the first frame only. Returns the number
    of frames written.
    """
    colours = [_bone_colour(child, skeleton) for child, _ in skeleton.bones()]
    inputs = [_Skeletons(keypoints_px, colours, CENTRE_COLOUR)]
    panels = {title: _Panel3D([_Skeletons(_plot_coordinates(p), colours)], np.zeros(3), PLOT_HALF_SIZE_M)
              for title, p in poses.items()}
    return _render(output, inputs, panels, skeleton, resolution, fps, background, limit, downsample, size, bitrate)


def render_people(output, keypoints_px: list, positions: list, labels: list, title: str, skeleton,
                  resolution: tuple, fps: float, background=None, limit: int = -1, downsample: int = 1,
                  size: float = 5.0, bitrate: int = 3000) -> int:
    """Draw several people of one video into ``output``: the 2D input of each over the frames, and one
    3D panel ``title`` where each stands at their own position; person k (from 0) in ``person_colour(k)``.

    keypoints_px: one (N, J, 2) array per person, pixels; positions: one (N, J, 3) array per person,
    metres, camera frame, not root-relative (pose + root trajectory); labels: each person's legend
    entry. The 3D cube holds every position of every frame (at least 2 ``PLOT_HALF_SIZE_M`` wide).
    Other arguments and the result: as ``render_animation``.
    """
    bones = skeleton.bones()
    plotted = [_plot_coordinates(p) for p in positions]
    everywhere = np.concatenate([p.reshape(-1, 3) for p in plotted])
    lowest, highest = everywhere.min(axis=0), everywhere.max(axis=0)
    centre = np.round((lowest + highest) / 2, CUBE_CENTRE_DECIMALS)
    half_size = max(PLOT_HALF_SIZE_M, np.ceil(np.max(np.maximum(highest - centre, centre - lowest)) / CUBE_STEP_M)
                    * CUBE_STEP_M)
    inputs, skeletons = [], []
    for index, (pixels, position, label) in enumerate(zip(keypoints_px, plotted, labels)):
        colour = person_colour(index)
        inputs.append(_Skeletons(pixels, [colour] * len(bones), colour, label))
        skeletons.append(_Skeletons(position, [colour] * len(bones), None, label))
    panels = {title: _Panel3D(skeletons, centre, float(half_size))}
    return _render(output, inputs, panels, skeleton, resolution, fps, background, limit, downsample, size, bitrate)


def _render(output, inputs: list, panels: dict, skeleton, resolution: tuple, fps: float, background, limit: int,
            downsample: int, size: float, bitrate: int) -> int:
    """``render_animation``'s frames, limits and writing, for any ``_Skeletons`` and ``_Panel3D``s."""
    output = Path(output)
    available = inputs[0].frames.shape[0]
    frames_in = available if limit < 1 else min(limit, available)
    if limit > available:
        print(f'Rendering {available} frames (--viz-limit {limit} exceeds the video\'s {available})')
    num_frames = frames_in // downsample
    if num_frames < 1:
        raise UserError(f'--viz-limit {limit} / --viz-downsample {downsample}: no frame left to render '
                        f'({available} frames)')
    check_output(output)
    still = output.suffix.lower() == '.png'
    if still:
        num_frames = 1

    def downsampled(skeletons: _Skeletons) -> _Skeletons:
        return replace(skeletons, frames=downsample_frames(skeletons.frames[:frames_in], downsample))
    inputs = [downsampled(s) for s in inputs]
    panels = {title: replace(panel, skeletons=[downsampled(s) for s in panel.skeletons])
              for title, panel in panels.items()}

    def next_background():
        if background is None:
            return None
        group = list(itertools.islice(background, downsample))
        return group[0] if len(group) == downsample else None

    first = next_background()
    if background is not None and first is None:
        raise UserError('--viz-video: no frame to draw on (the video is shorter than --viz-skip + --viz-downsample)')
    picture = _SkeletonFigure(inputs, panels, skeleton.bones(), resolution, size, first)
    picture.draw(0)
    if still:
        with atomic_output(output) as f:
            picture.figure.savefig(f, format='png', dpi=DOTS_PER_INCH)
        return 1
    written = 0
    with atomic_path(output) as temporary, _writer(output, temporary, fps / downsample, bitrate) as writer:
        for frame in range(num_frames):
            frame_background = first if frame == 0 else next_background()
            if background is not None and frame_background is None:
                break
            picture.draw(frame, frame_background)
            writer.write(picture.rgb())
            written += 1
    if written < num_frames:
        print(f'--viz-video ran out of frames: rendered {written} of {num_frames} frames')
    return written

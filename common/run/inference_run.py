"""What ``main.py`` does for ``-d custom`` and for ``--render`` / ``--viz-export``.

* ``-d custom -k NAME --evaluate CHECKPOINT``: predict every frame of every video of
  ``data_2d_custom_NAME.npz`` and write ``custom_NAME_3d.npz`` into the ``-c`` folder:
  ``positions_3d`` video -> [(N, 17, 3) per keypoint array of the video], metres, camera frame,
  root-relative; ``trajectory`` video -> [(N, 3)], the estimated root positions, metres, camera
  frame; ``metadata``: how they were made.
* with ``--render`` and/or ``--viz-export``: predict only the ``--viz-subject`` video (custom) or
  the ``--viz-subject``/``--viz-action``/``--viz-camera`` sequence (Human3.6M or synthetic), then
  export its poses (``common.run.pose_export``; a .bvh moves along the root trajectory, estimated
  or ground truth) and/or draw them (``common.run.visualization``) with the ground truth when
  there is one. The export is written first: a failed render keeps it.
* a custom video whose people are entries ``VIDEO_person1``, ``VIDEO_person2``, ... (``--person all``
  of ``python -m common.keypoints``): ``--viz-subject VIDEO`` predicts every person; ``--render``
  draws them all in one animation, each placed by its estimated root trajectory
  (``visualization.render_people``), and ``--viz-export X.npy`` (or ``.bvh``) writes one file per
  person, ``X_person1.npy``, ... (``pose_export.person_export_path``); ``--viz-subject VIDEO_person2``
  picks one.

With ``--smooth WINDOW`` the predicted poses of each video or sequence are smoothed along time
(``smoothing.smooth_track``) before they are written, exported or drawn; the predictions file is
then ``custom_NAME_3d_smoothWINDOW.npz``.

Everything a run reads or writes is checked before the model samples: the output names, their
extensions and folders, the data, the chosen sequence (long enough for ``--smooth``) and ``--viz-video``.
"""
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from common.core.atomic import check_name_length, check_writable, missing_folders, remove_empty_folders
from common.core.errors import UserError, said_by_rank_zero
from common.core.output_paths import check_output_file
from common.core.units import MM_PER_M
from common.data.camera import image_coordinates
from common.data.custom_data import load_custom_keypoints
from common.data.dataset_files import save_archive
from common.data.h36m import load_h36m
from common.data.person_tracks import split_person_entry
from common.evaluation.inference import AGGREGATION_NAMES, MIN_ROOT_DEPTH_M, TRAJECTORY_ESTIMATED, predict
from common.evaluation.metrics import mean_velocity_error, mpjpe
from common.evaluation.protocol import SamplingSettings
from common.evaluation.report import count, smoothing_tag
from common.evaluation.smoothing import smooth_track, smoothing_words
from common.run.devices import setup_runtime, shutdown
from common.run.experiment import (dataset_sequence_name, load_checkpoint_model, report_removed_temporaries,
                                   smoothing_note)
from common.run.pose_export import EXPORT_FLAG, check_export_path, export_poses, person_export_path
from common.run.visualization import SUFFIXES, render_animation, render_people, video_frames

LAYOUT = 'h36m'       # custom keypoints use the Human3.6M 17-joint order


def predictions_file_name(name: str, smooth_window=None) -> str:
    """'myvideos' -> 'custom_myvideos_3d.npz' (written into the -c folder); with ``--smooth 9``
    'custom_myvideos_3d_smooth9.npz'."""
    return '_'.join([f'custom_{name}_3d', *smoothing_tag(smooth_window)]) + '.npz'


def custom_sequence_name(sequence) -> str:
    """How the lines call a -d custom video's keypoint array: 'dance [keypoints 0]'."""
    return f'{sequence.subject} [keypoints {sequence.camera}]'


def check_smoothing(args, sequences, name=dataset_sequence_name) -> None:
    """--smooth, before the model runs: every sequence long enough (else ``UserError``); the one
    line naming those smoothed with a shorter window. ``name``: Sequence -> how the lines call it."""
    note = smoothing_note(args, sequences, name)
    if note:
        print(note)


def smoothed(args, predictions) -> list:
    """The ``Prediction``s with their poses smoothed along time when --smooth is given (said in one line)."""
    if not args.smooth:
        return predictions
    print(smoothing_words(args.smooth) + ' Applied to the predicted poses before they are written.')
    return [replace(p, poses_3d=smooth_track(p.poses_3d, args.smooth).astype(np.float32)) for p in predictions]


def run_inference(args):
    """Predict, then export / render, as the flags say (see the module docstring). A refused run
    leaves no folder it created behind."""
    outputs = [args.checkpoint] + [Path(p).parent for p in (args.viz_export, args.viz_output) if p]
    created = sorted({folder for output in outputs for folder in missing_folders(output)},
                     key=lambda folder: len(folder.parts), reverse=True)
    try:
        _check_outputs_and_run(args)
    finally:
        remove_empty_folders(created)


def _check_outputs_and_run(args):
    if args.viz_export:
        check_export_path(args.viz_export)
    if args.render:
        check_output_file(args.viz_output, '--viz-output', SUFFIXES)
    runtime = setup_runtime(args.gpu, args.threads)
    try:
        if runtime.distributed:
            with said_by_rank_zero():
                raise UserError('-d custom / --render / --viz-export run in one process; use -gpu 0,1 instead of '
                                'torchrun')
        if args.dataset == 'custom':
            _run_custom(args, runtime)
        else:
            _run_dataset_sequence(args, runtime)
    finally:
        shutdown(runtime)


def _settings(args) -> SamplingSettings:
    return SamplingSettings(args.num_proposals, args.sampling_timesteps, args.test_time_flip, args.batch_size,
                            args.seed)


def _describe_sampling(args, path, checkpoint) -> str:
    trained = f", trained for {count(checkpoint['epoch'], 'epoch')}" if 'epoch' in checkpoint else ''
    return (f'Predicting with {path} ({checkpoint["format"]} checkpoint{trained}): '
            f'H={count(args.num_proposals, "hypothesis", "hypotheses")}, '
            f'K={count(args.sampling_timesteps, "DDIM step")}, {AGGREGATION_NAMES[args.aggregation]}')


def check_finite_predictions(predictions, sequences, checkpoint_path) -> None:
    """NaN or inf poses are never written: a ``UserError`` naming the checkpoint and the sequence."""
    for sequence, prediction in zip(sequences, predictions):
        if not (np.isfinite(prediction.poses_3d).all() and np.isfinite(prediction.trajectory).all()):
            raise UserError(f'{checkpoint_path}: the model predicts non-finite poses for {sequence.subject} '
                            f'(keypoints {sequence.camera}); nothing written')


def _run_custom(args, runtime):
    visualising = bool(args.render or args.viz_export)
    if not visualising:
        report_removed_temporaries(check_writable(args.checkpoint, '-c'))
        check_name_length(Path(args.checkpoint) / predictions_file_name(args.keypoints, args.smooth),
                          f'-k {args.keypoints}: the predictions file', 'shorten NAME in data_2d_custom_NAME.npz')
    custom = load_custom_keypoints(args.data_dir, args.keypoints, args.focal_length)
    sequences = custom.select_video(args.viz_subject, args.viz_camera) if visualising else custom.dataset.sequences
    check_smoothing(args, sequences, custom_sequence_name)
    # --viz-subject VIDEO of the entries VIDEO_person1, ...: every person (not one entry named as asked)
    people = visualising and any(s.subject != args.viz_subject and split_person_entry(s.subject) for s in sequences)
    if people and args.viz_export:
        for sequence in sequences:
            check_output_file(person_export_path(args.viz_export, sequence.subject), EXPORT_FLAG)
    background = _background(args, sequences[0])
    model, path, checkpoint = load_checkpoint_model(args, LAYOUT, custom.dataset.skeleton,
                                                    custom.dataset.keypoints_mirror, runtime)
    label = args.prompt_action or ''
    print(_describe_sampling(args, path, checkpoint))
    print(f'Prompt action: {label!r}' if label else
          'Prompt action: none (best with a model trained with --action-dropout; --prompt-action WORD sets one)')
    if args.aggregation == 'j-agg':
        videos = dict.fromkeys(s.subject for s in sequences)
        print('J-Agg camera (assumed): principal point at the image centre, focal length '
              + ', '.join(f'{custom.focal_lengths[v]:.0f} px ({v})' for v in videos)
              + '; root trajectory estimated at a fixed depth per video')
    predictions = predict(model, sequences, runtime, _settings(args), [label] * len(sequences), args.aggregation,
                          custom.dataset.skeleton.root, show_progress=not args.no_progress)
    check_finite_predictions(predictions, sequences, path)
    predictions = smoothed(args, predictions)
    for sequence, prediction in zip(sequences, predictions):
        print(f'{custom_sequence_name(sequence)}: {sequence.num_frames} frames -> poses '
              f'{prediction.poses_3d.shape}, estimated root depth {prediction.trajectory[0, 2]:.2f} m')
        if prediction.root_depth_clamped:
            print(f'Note: {custom_sequence_name(sequence)}: the estimated root depth (median '
                  f'{prediction.median_root_depth:.2f} m) is below its {MIN_ROOT_DEPTH_M:g} m floor and was set to '
                  f'{MIN_ROOT_DEPTH_M:g} m; check --focal-length and the 2D keypoints')
    if people:
        _export_and_render_people(args, sequences, predictions, custom.dataset.skeleton,
                                  custom.frame_rates[sequences[0].subject], background)
        return
    if visualising:
        sequence = sequences[0]
        _export_and_render(args, sequence, predictions[0], custom.dataset.skeleton,
                           custom.frame_rates[sequence.subject], background, ground_truth=None)
        return
    output = Path(args.checkpoint) / predictions_file_name(args.keypoints, args.smooth)
    positions, trajectories = {}, {}
    for sequence, prediction in zip(sequences, predictions):
        positions.setdefault(sequence.subject, []).append(prediction.poses_3d)
        trajectories.setdefault(sequence.subject, []).append(prediction.trajectory)
    save_archive(output, positions_3d=positions, trajectory=trajectories, metadata={
        'units': 'metres', 'frame': 'camera (x right, y down, z forward); positions_3d root-relative',
        'joints': 'Human3.6M 17', 'source': str(custom.path), 'checkpoint': str(path),
        'aggregation': AGGREGATION_NAMES[args.aggregation], 'num_hypotheses': args.num_proposals,
        'sampling_timesteps': args.sampling_timesteps, 'prompt_action': label, 'smooth_window': args.smooth,
        'focal_length_px': custom.focal_lengths, 'trajectory': TRAJECTORY_ESTIMATED})
    print(f'Wrote {output} (positions_3d: video -> list of (N, 17, 3) arrays, metres, camera frame, root-relative)')


def _select_sequence(dataset, subject, action, camera: int):
    """The Human3.6M sequence named by --viz-subject, --viz-action and --viz-camera."""
    subjects = dataset.subjects()
    if subject is None or action is None:
        raise UserError(f'--render / --viz-export on {dataset.name} data: pass --viz-subject and --viz-action '
                        f'(subjects: {", ".join(subjects)})')
    if subject not in subjects:
        raise UserError(f'--viz-subject {subject}: not in the data; subjects: {", ".join(subjects)}')
    views = [s for s in dataset.sequences if s.subject == subject and s.action == action]
    if not views:
        actions = dict.fromkeys(s.action for s in dataset.sequences if s.subject == subject)
        raise UserError(f'--viz-action {action!r}: subject {subject} has no such action; actions: '
                        f'{", ".join(actions)}')
    cameras = [s.camera for s in views]
    if camera not in cameras:
        raise UserError(f'--viz-camera {camera}: expected one of {", ".join(map(str, cameras))}')
    return views[cameras.index(camera)]


def _run_dataset_sequence(args, runtime):
    dataset = load_h36m(args.data_dir, args.keypoints)
    sequence = _select_sequence(dataset, args.viz_subject, args.viz_action, args.viz_camera)
    check_smoothing(args, [sequence])
    background = _background(args, sequence)
    model, path, checkpoint = load_checkpoint_model(args, LAYOUT, dataset.skeleton, dataset.keypoints_mirror, runtime)
    if args.prompt_action is not None:
        label = args.prompt_action
    else:
        label = sequence.action_label if args.eval_action == 'gt' else ''
    print(_describe_sampling(args, path, checkpoint)
          + (' (ground-truth root trajectory and camera, as in the paper)' if args.aggregation == 'j-agg' else ''))
    print(f'Prompt action: {label!r}')
    prediction, = predict(model, [sequence], runtime, _settings(args), [label], args.aggregation,
                          dataset.skeleton.root, show_progress=not args.no_progress)
    check_finite_predictions([prediction], [sequence], path)
    prediction, = smoothed(args, [prediction])
    poses, target = torch.from_numpy(prediction.poses_3d), torch.from_numpy(sequence.positions_3d)
    velocity = float(mean_velocity_error(poses, target)) * MM_PER_M if sequence.num_frames > 1 else None
    print(f'{sequence.subject} {sequence.action} camera {sequence.camera}: {sequence.num_frames} frames, '
          f'MPJPE {float(mpjpe(poses, target)) * MM_PER_M:.1f} mm'
          + (f', MPJVE {velocity:.1f} mm' if velocity is not None else '')
          + (f' (smoothed, --smooth {args.smooth})' if args.smooth else ''))
    ground_truth = None if args.viz_no_ground_truth else sequence.positions_3d
    _export_and_render(args, sequence, prediction, dataset.skeleton, dataset.fps, background, ground_truth)


def _background(args, sequence):
    """The --viz-video frames to draw on (opened before predicting, so a bad file fails early), or None."""
    if not (args.render and args.viz_video):
        return None
    return video_frames(args.viz_video, args.viz_skip, sequence.resolution)


def _export_and_render(args, sequence, prediction, skeleton, fps: float, background, ground_truth):
    """--viz-export: the (N, 17, 3) poses as .npy, or a .bvh animation moving along the prediction's
    root trajectory; --render: the animation (with ground truth if given).

    background: ``_background``'s frames or None."""
    if args.viz_export:
        print(export_poses(args.viz_export, prediction.poses_3d, skeleton, fps, prediction.trajectory,
                           prediction.trajectory_source))
    if not args.render:
        return
    width, height = sequence.resolution
    poses = {f'Prediction ({AGGREGATION_NAMES[args.aggregation]})': prediction.poses_3d}
    if ground_truth is not None:
        poses['Ground truth'] = ground_truth
    keypoints_px = image_coordinates(sequence.keypoints_2d.astype(np.float64), width, height)
    written = render_animation(args.viz_output, keypoints_px, poses, skeleton, sequence.resolution, fps,
                               background, args.viz_limit, args.viz_downsample, args.viz_size, args.viz_bitrate)
    _say_rendered(args, written, fps)


def _export_and_render_people(args, sequences, predictions, skeleton, fps: float, background):
    """Several people of one video (``sequences``: VIDEO_person1, ...): --viz-export writes one file per
    person (a .bvh along its estimated root trajectory); --render draws them together, each pose at its
    estimated root trajectory."""
    if args.viz_export:
        for sequence, prediction in zip(sequences, predictions):
            path = person_export_path(args.viz_export, sequence.subject)
            written = export_poses(path, prediction.poses_3d, skeleton, fps, prediction.trajectory,
                                   prediction.trajectory_source)
            print(f'{written} ({sequence.subject})')
    if not args.render:
        return
    width, height = sequences[0].resolution
    keypoints_px = [image_coordinates(s.keypoints_2d.astype(np.float64), width, height) for s in sequences]
    positions = [p.poses_3d + p.trajectory[:, None] for p in predictions]
    labels = [f'person {split_person_entry(s.subject)[1]}' for s in sequences]
    title = f'Prediction ({AGGREGATION_NAMES[args.aggregation]}) at estimated root positions'
    written = render_people(args.viz_output, keypoints_px, positions, labels, title, skeleton,
                            sequences[0].resolution, fps, background, args.viz_limit, args.viz_downsample,
                            args.viz_size, args.viz_bitrate)
    _say_rendered(args, written, fps, f', {len(sequences)} people')


def _say_rendered(args, written: int, fps: float, what: str = '') -> None:
    if Path(args.viz_output).suffix.lower() == '.png':
        print(f'Wrote {args.viz_output}: the first frame{what}')
    else:
        print(f'Wrote {args.viz_output}: {written} frames at {fps / args.viz_downsample:g} fps{what}')

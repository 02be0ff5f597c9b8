"""Your own video's keypoints -> 3D: custom files, windowed prediction, aggregation, export, rendering, bad input.

Keypoints come from the synthetic generator's projections; the model is the tiny test model
(-f 9, -cs 32, -dep 2, tiny text tower) saved as one of our checkpoints.
"""
import json
import re
import stat
import struct
import sys
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

import main
from common.core.errors import UserError
from common import keypoints as keypoints_cli
from common.data.camera import intrinsic_vector, project_to_2d_linear
from common.data.custom_data import load_custom_keypoints
from common.data.skeleton import H36M_17
from common.data.video_io import Mp4Writer, read_frames
from common.evaluation.inference import (MIN_ROOT_DEPTH_M, TRAJECTORY_ESTIMATED, Prediction, aggregate,
                                         estimate_root_trajectory, median_root_depth, sample_last_step)
from common.evaluation.protocol import SamplingSettings
from common.run.checkpoints import save_checkpoint
from common.run.visualization import DOTS_PER_INCH, render_animation, video_frames
from common.synthetic import writer as synthetic
from common.synthetic.body import random_body
from support.bvh import MM_PER_CM, expected_joints_cm
from support.bvh_reading import forward_kinematics_cm
from support.models import WINDOW, build_tiny_model, tiny_config
from support.runs import SAMPLING

LONG_FRAMES = 23            # three windows, the last one overlapping
SHORT_FRAMES = 5            # shorter than a window: padded
SYMMETRY = [list(H36M_17.joints_left), list(H36M_17.joints_right)]


def _take(seed: int, action: str, frames: int):
    body = random_body(np.random.default_rng(seed))
    return synthetic.build_h36m_take(seed, 'S9', body, action, 0, synthetic.SIZES['demo'], frames=frames)


def _custom_metadata(views) -> dict:
    return {'layout_name': 'h36m', 'num_joints': 17, 'keypoints_symmetry': SYMMETRY,
            'video_metadata': {name: {'w': view.camera.resolution[0], 'h': view.camera.resolution[1]}
                               for name, view in views.items()}}


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A folder with the tiny checkpoint, a custom file of two videos and a one-take Human3.6M dataset."""
    folder = tmp_path_factory.mktemp('custom')
    torch.manual_seed(0)
    save_checkpoint(folder / 'tiny.bin', model=build_tiny_model(), model_config=tiny_config(), epoch=0, lr=0.0)
    walk, sit = _take(0, 'Walking', LONG_FRAMES), _take(1, 'Sitting', SHORT_FRAMES)
    views = {'walk.mp4': walk.views[0], 'sit.mp4': sit.views[1]}
    np.savez_compressed(folder / 'data_2d_custom_mine.npz',
                        positions_2d={'walk.mp4': {'custom': [views['walk.mp4'].keypoints_px]},   # VideoPose3D's form
                                      'sit.mp4': [views['sit.mp4'].keypoints_px]},                # a plain list
                        metadata=_custom_metadata(views))
    np.savez_compressed(folder / 'data_3d_h36m.npz', positions_3d={'S9': {'Walking': walk.world_32}})
    np.savez_compressed(folder / 'data_2d_h36m_gt.npz', metadata=synthetic.H36M_METADATA,
                        positions_2d={'S9': {'Walking': [v.keypoints_px for v in walk.views]}})
    return folder, views


def _main(capsys, *argv):
    main.main([str(a) for a in argv])
    return capsys.readouterr().out


def _custom(folder, *flags):
    return ('-d', 'custom', '-k', 'mine', '--data-dir', folder, '-c', folder, '--evaluate', 'tiny.bin',
            '-f', WINDOW, '-cs', 32, '-dep', 2, '--text-tower', 'tiny', *SAMPLING, *flags)


def test_loader_reads_both_layouts_and_normalises_pixels(workspace):
    folder, views = workspace
    custom = load_custom_keypoints(folder, 'mine', focal_length_px=1145.0)
    assert custom.video_names() == ['walk.mp4', 'sit.mp4']
    walk = custom.select('walk.mp4')
    w, h = views['walk.mp4'].camera.resolution
    assert walk.resolution == (w, h) and walk.positions_3d is None and walk.action_label == ''
    np.testing.assert_allclose(walk.keypoints_2d, views['walk.mp4'].keypoints_norm, atol=1e-6)
    np.testing.assert_allclose(walk.intrinsics[:4], [1145 / w * 2, 1145 / w * 2, 0, 0], atol=1e-6)
    assert custom.select('sit.mp4').num_frames == SHORT_FRAMES
    assert load_custom_keypoints(folder, 'mine').focal_lengths == {'walk.mp4': w, 'sit.mp4': w}


def test_every_frame_of_every_video_is_predicted_and_saved(workspace, capsys):
    folder, _ = workspace
    out = _main(capsys, *_custom(folder, '--aggregation', 'j-agg'))
    assert f'walk.mp4 [keypoints 0]: {LONG_FRAMES} frames -> poses ({LONG_FRAMES}, 17, 3)' in out
    assert f'sit.mp4 [keypoints 0]: {SHORT_FRAMES} frames -> poses ({SHORT_FRAMES}, 17, 3)' in out
    with np.load(folder / 'custom_mine_3d.npz', allow_pickle=True) as saved:
        positions, trajectory = saved['positions_3d'].item(), saved['trajectory'].item()
        metadata = saved['metadata'].item()
    assert {v: [a.shape for a in arrays] for v, arrays in positions.items()} == {
        'walk.mp4': [(LONG_FRAMES, 17, 3)], 'sit.mp4': [(SHORT_FRAMES, 17, 3)]}
    for video, arrays in positions.items():
        poses = arrays[0]
        assert poses.dtype == np.float32 and np.isfinite(poses).all()
        assert np.all(poses[:, H36M_17.root] == 0)
        assert np.abs(poses).max() <= 1.1 + 1e-6             # the diffusion's clamp, in metres
        assert trajectory[video][0].shape == (poses.shape[0], 3)
        assert np.ptp(trajectory[video][0][:, 2]) == 0        # one fixed root depth per video
    assert metadata['aggregation'] == 'J-Agg' and metadata['units'] == 'metres'
    assert not np.allclose(positions['walk.mp4'][0][1:], positions['walk.mp4'][0][:1])   # frames differ


def test_exported_npy_matches_the_printed_shape_and_the_full_run(workspace, capsys, tmp_path):
    folder, _ = workspace
    _main(capsys, *_custom(folder))
    with np.load(folder / 'custom_mine_3d.npz', allow_pickle=True) as saved:
        full_run = saved['positions_3d'].item()['walk.mp4'][0]
    export = tmp_path / 'walk.npy'
    out = _main(capsys, *_custom(folder, '--viz-subject', 'walk.mp4', '--viz-export', export, '-b', '1'))
    printed = re.search(r'Wrote .*walk\.npy: poses \((\d+), (\d+), (\d+)\)', out)
    poses = np.load(export)
    assert printed and poses.shape == tuple(int(g) for g in printed.groups()) == (LONG_FRAMES, 17, 3)
    # Noise keyed by (video, window): alone and one window per batch, the video gets the same poses.
    np.testing.assert_allclose(poses, full_run, atol=1e-6, rtol=0)


def test_exported_bvh_is_the_full_run_moving_along_its_estimated_trajectory(workspace, capsys, tmp_path):
    folder, _ = workspace
    _main(capsys, *_custom(folder))
    with np.load(folder / 'custom_mine_3d.npz', allow_pickle=True) as saved:
        poses, trajectory = (saved[key].item()['walk.mp4'][0] for key in ('positions_3d', 'trajectory'))
    export = tmp_path / 'walk.bvh'
    out = _main(capsys, *_custom(folder, '--viz-subject', 'walk.mp4', '--viz-export', export, '-b', '1'))
    assert re.search(rf'Wrote .*walk\.bvh: BVH animation, {LONG_FRAMES} frames at 30 fps, 17 joints .*centimetres, '
                     r'Y up .*root moving along the estimated trajectory', out)
    error_cm = np.linalg.norm(forward_kinematics_cm(export) - expected_joints_cm(poses, trajectory), axis=-1)
    assert error_cm.max() * MM_PER_CM < 1.0


def test_p_agg_with_a_prompt_differs_from_the_empty_prompt(workspace, capsys, tmp_path):
    folder, _ = workspace
    poses = {}
    for prompt in ('', 'Walking'):
        export = tmp_path / f'sit_{prompt or "none"}.npy'
        out = _main(capsys, *_custom(folder, '--viz-video-name', 'sit.mp4', '--aggregation', 'p-agg',
                                     '--prompt-action', prompt, '--viz-export', export))
        assert 'P-Agg' in out
        poses[prompt] = np.load(export)
    assert poses[''].shape == (SHORT_FRAMES, 17, 3)
    assert not np.allclose(poses[''], poses['Walking'])


def test_gif_has_one_frame_per_rendered_frame(workspace, capsys, tmp_path):
    folder, _ = workspace
    gif = tmp_path / 'walk.gif'
    out = _main(capsys, *_custom(folder, '--viz-subject', 'walk.mp4', '--render', '--viz-output', gif,
                                 '--viz-limit', 10, '--viz-downsample', 2, '--viz-size', 1.5))
    assert 'Wrote' in out and '5 frames at 15 fps' in out        # 30 fps (default) / 2
    with Image.open(gif) as image:
        assert image.n_frames == 5
        assert image.size == (2 * round(1.5 * DOTS_PER_INCH), round(1.5 * DOTS_PER_INCH))   # input + prediction
    assert [p.name for p in tmp_path.iterdir()] == ['walk.gif']   # no temporary file left


def test_human36m_sequence_renders_prediction_and_ground_truth(workspace, capsys, tmp_path):
    folder, views = workspace
    png, bvh = tmp_path / 'S9_Walking.png', tmp_path / 'S9_Walking.bvh'
    out = _main(capsys, '-k', 'gt', '--data-dir', folder, '-c', folder, '--evaluate', 'tiny.bin', *SAMPLING,
                '--render', '--viz-subject', 'S9', '--viz-action', 'Walking', '--viz-camera', 0,
                '--viz-output', png, '--viz-size', 2, '--viz-export', bvh)
    assert re.search(r'S9 Walking camera 0: 23 frames, MPJPE \d+\.\d mm', out)
    assert 'ground-truth root trajectory' in out
    assert re.search(r'Wrote .*S9_Walking\.bvh: BVH animation, 23 frames at 50 fps, .*root moving along the ground '
                     r'truth trajectory', out)
    root_cm = forward_kinematics_cm(bvh)[:, H36M_17.root]
    np.testing.assert_allclose(root_cm, views['walk.mp4'].trajectory * [100, -100, -100], atol=0.1)   # 1 mm
    with Image.open(png) as image:
        assert image.size == (3 * 2 * DOTS_PER_INCH, 2 * DOTS_PER_INCH)     # input, prediction, ground truth


def test_windows_are_stitched_back_frame_by_frame():
    """A fake sampler echoes each window's keypoints as poses: stitching must give every frame its own."""
    keypoints = np.random.default_rng(0).normal(size=(LONG_FRAMES, 17, 2)).astype(np.float32)

    def echo(clips, tokens, seeds):      # (B, F, J, 2) -> (B, K=2, H=3, F, J, 3), z = 0
        poses = torch.cat([clips, torch.zeros_like(clips[..., :1])], dim=-1)
        return poses[:, None, None].expand(-1, 2, 3, -1, -1, -1)

    for frames in (LONG_FRAMES, SHORT_FRAMES):
        settings = SamplingSettings(num_hypotheses=3, num_steps=2, batch_size=2)
        hypotheses = sample_last_step(echo, keypoints[:frames], WINDOW, torch.zeros(1, 77, dtype=torch.long),
                                      settings, 'cpu', ('walk.mp4', '', '0'), root=0)
        assert hypotheses.shape == (frames, 3, 17, 3)
        expected = keypoints[:frames].copy()
        expected[:, 0] = 0                                      # root zeroed
        np.testing.assert_array_equal(hypotheses[:, 1, :, :2].numpy(), expected)


def test_root_trajectory_is_recovered_from_an_exact_projection():
    rng = np.random.default_rng(0)
    poses = rng.uniform(-0.5, 0.5, size=(12, 17, 3))
    poses[:, 0] = 0
    trajectory = np.column_stack([rng.uniform(-1, 1, 12), rng.uniform(-0.5, 0.5, 12), np.full(12, 4.2)])
    intrinsics = intrinsic_vector((1100.0, 1100.0), (500.0, 480.0), 1000, 1000)
    keypoints = project_to_2d_linear(torch.from_numpy(poses + trajectory[:, None]),
                                     torch.from_numpy(intrinsics).double().expand(12, -1)).numpy()
    np.testing.assert_allclose(estimate_root_trajectory(poses, keypoints, intrinsics), trajectory, atol=1e-9)
    moving = trajectory.copy()
    moving[:, 2] = np.linspace(3, 5, 12)          # the fixed depth is the median of the per-frame depths
    keypoints = project_to_2d_linear(torch.from_numpy(poses + moving[:, None]),
                                     torch.from_numpy(intrinsics).double().expand(12, -1)).numpy()
    assert estimate_root_trajectory(poses, keypoints, intrinsics)[:, 2] == pytest.approx(np.full(12, 4.0))


def test_a_root_depth_below_the_floor_is_clamped_and_kept_for_the_note():
    rng = np.random.default_rng(2)
    poses = rng.uniform(-0.1, 0.1, size=(6, 17, 3))
    poses[:, 0] = 0
    trajectory = np.tile([0.02, -0.01, 0.3], (6, 1))             # 30 cm from the camera
    intrinsics = intrinsic_vector((1100.0, 1100.0), (500.0, 480.0), 1000, 1000)
    keypoints = project_to_2d_linear(torch.from_numpy(poses + trajectory[:, None]),
                                     torch.from_numpy(intrinsics).double().expand(6, -1)).numpy()
    assert median_root_depth(poses, keypoints, intrinsics) == pytest.approx(0.3)
    assert estimate_root_trajectory(poses, keypoints, intrinsics)[:, 2] == pytest.approx(np.full(6, MIN_ROOT_DEPTH_M))
    clamped = Prediction(poses, trajectory, TRAJECTORY_ESTIMATED, median_root_depth=0.3)
    assert clamped.root_depth_clamped and not Prediction(poses, trajectory, TRAJECTORY_ESTIMATED, 0.5).root_depth_clamped


def test_a_clamped_root_depth_is_said_with_the_video_and_its_median(workspace, capsys):
    """A focal length of 1 px puts every video a fraction of a millimetre from the camera (the untrained
    tiny model's poses sit within 0.5 m even at the default focal length)."""
    folder, _ = workspace
    out = _main(capsys, *_custom(folder, '--focal-length', '1'))
    for video in ('walk.mp4', 'sit.mp4'):
        note = re.search(rf'Note: {video} \[keypoints 0\]: the estimated root depth \(median (-?\d+\.\d\d) m\) is '
                         r'below its 0.5 m floor and was set to 0.5 m; check --focal-length and the 2D keypoints\n', out)
        assert note and float(note[1]) < 0.5, out
    with np.load(folder / 'custom_mine_3d.npz', allow_pickle=True) as saved:
        assert all(arrays[0][:, 2].tolist() == [0.5] * len(arrays[0]) for arrays in saved['trajectory'].item().values())


def test_aggregations_mean_and_reprojection_choice():
    rng = np.random.default_rng(1)
    truth = rng.uniform(-0.5, 0.5, size=(4, 17, 3))
    trajectory = np.tile([0.1, 0.2, 4.0], (4, 1))
    intrinsics = intrinsic_vector((1000.0, 1000.0), (500.0, 500.0), 1000, 1000)
    keypoints = project_to_2d_linear(torch.from_numpy(truth + trajectory[:, None]),
                                     torch.from_numpy(intrinsics).double().expand(4, -1)).numpy()
    hypotheses = np.stack([truth + rng.normal(scale=0.1, size=truth.shape) for _ in range(3)], axis=1)
    right = rng.integers(3, size=(4, 17))               # per frame and joint, the hypothesis that is exact
    hypotheses[np.arange(4)[:, None], right, np.arange(17)] = truth
    hypotheses = torch.from_numpy(hypotheses)
    torch.testing.assert_close(aggregate(hypotheses, 'p-agg'), hypotheses.mean(dim=1))
    chosen = aggregate(hypotheses, 'j-agg', keypoints, trajectory, intrinsics)
    np.testing.assert_allclose(chosen.numpy(), truth, atol=1e-12)


def test_png_draws_the_skeleton_over_the_video_frame(tmp_path, capsys):
    green = (0, 200, 0)
    frames = [Image.new('RGB', (100, 50), (0, 0, 40 * i)) for i in range(5)]
    gif = tmp_path / 'video.gif'
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    Image.new('RGB', (100, 50), green).save(tmp_path / 'still.png')
    keypoints = np.random.default_rng(0).uniform(20, 40, size=(8, 17, 2))
    poses = {'Prediction': np.zeros((8, 17, 3))}
    assert len(list(video_frames(gif, 2, (100, 50)))) == 3
    written = render_animation(tmp_path / 'over_video.gif', keypoints, poses, H36M_17, (100, 50), 10.0,
                               background=video_frames(gif, 2, (100, 50)), size=1.0)
    assert written == 3                                  # the video runs out before the keypoints
    assert '--viz-video ran out of frames: rendered 3 of 8 frames' in capsys.readouterr().out
    png = tmp_path / 'still_frame.png'
    render_animation(png, keypoints, poses, H36M_17, (100, 50), 10.0, background=video_frames(
        tmp_path / 'still.png', 0, (100, 50)), size=2.0)
    with Image.open(png) as image:
        corner = image.convert('RGB').getpixel((round(0.2 * DOTS_PER_INCH), round(1.3 * DOTS_PER_INCH)))
    assert corner == green                               # inside the input panel, away from the keypoints


def test_converted_coco_file_renders_an_mp4_over_an_mp4(workspace, capsys, tmp_path):
    """COCO results -> python -m common.keypoints convert -> main.py -d custom --render --viz-video x.mp4 (PyAV)."""
    folder, views = workspace
    view = views['walk.mp4']
    h36m_to_coco = [9, 9, 9, 9, 9, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]    # nose (eyes, ears: at the nose)
    coco = view.keypoints_px[:, h36m_to_coco]
    results = [{'image_id': i, 'keypoints': np.column_stack([k, np.ones(17)]).ravel().tolist(), 'score': 1.0}
               for i, k in enumerate(coco)]
    (tmp_path / 'results.json').write_text(json.dumps(results))
    width, height = view.camera.resolution
    keypoints_cli.main(['convert', '--from', 'coco', str(tmp_path / 'results.json'), '--video-size', str(width),
                        str(height), '--fps', '20', '--video-name', 'walk.mp4',
                        '--out', str(tmp_path / 'data_2d_custom_coco.npz')])
    background = tmp_path / 'walk.mp4'
    with Mp4Writer(background, fps=20) as writer:
        for value in range(LONG_FRAMES):
            writer.write(np.full((height // 10, width // 10, 3), value * 10, np.uint8))
    video = tmp_path / 'out.mp4'
    out = _main(capsys, *_custom(folder, '-k', 'coco', '--data-dir', tmp_path, '--render', '--viz-output', video, '--viz-video', background,
                                 '--viz-skip', 2, '--viz-limit', 8, '--viz-size', 1.5))
    assert 'Wrote' in out and '8 frames at 20 fps' in out
    frames = list(read_frames(video))
    assert len(frames) == 8 and frames[0].shape == (round(1.5 * DOTS_PER_INCH), 2 * round(1.5 * DOTS_PER_INCH), 3)


def _write_custom(folder, positions_2d, metadata, name='bad'):
    np.savez_compressed(folder / f'data_2d_custom_{name}.npz', positions_2d=positions_2d,
                        **({} if metadata is None else {'metadata': metadata}))


BAD_FILES = {
    'eighteen keypoints': ({'v': [np.zeros((5, 18, 2))]}, 'dict',
                           r"positions_2d\['v'\]\[0\]: expected shape \(N, 17, 2\), found \(5, 18, 2\)"),
    'no metadata': ({'v': [np.zeros((5, 17, 2))]}, None, "no key 'metadata'"),
    'no video size': ({'v': [np.zeros((5, 17, 2))]}, {'num_joints': 17}, 'metadata has no video_metadata'),
    'video missing from video_metadata': ({'v': [np.zeros((5, 17, 2))]}, {'video_metadata': {'w': {'w': 9, 'h': 9}}},
                                          "video_metadata has no entry for video 'v'"),
    'COCO layout': ({'v': [np.zeros((5, 17, 2))]}, {'layout_name': 'coco', 'video_metadata': {'v': {'w': 9, 'h': 9}}},
                    'COCO layout'),
    'other symmetry': ({'v': [np.zeros((5, 17, 2))]}, {'num_joints': 17, 'keypoints_symmetry': [[1, 3], [2, 4]],
                                                        'video_metadata': {'v': {'w': 9, 'h': 9}}},
                       'is not the Human3.6M 17-joint layout'),
    'NaN keypoint': ({'v': [np.full((5, 17, 2), np.nan)]}, 'dict', 'NaN or inf values, first in frame 0'),
    'infinite fps': ({'v': [np.zeros((5, 17, 2))]}, {'video_metadata': {'v': {'w': 9, 'h': 9, 'fps': float('inf')}}},
                     'expected a positive width, height and an fps above 0 and at most 10000'),
    'fps 1e300': ({'v': [np.zeros((5, 17, 2))]}, {'video_metadata': {'v': {'w': 9, 'h': 9, 'fps': 1e300}}},
                  'expected a positive width, height and an fps above 0 and at most 10000'),
    'infinite width': ({'v': [np.zeros((5, 17, 2))]}, {'video_metadata': {'v': {'w': float('inf'), 'h': 9}}},
                       r"video_metadata\['v'\] is .*; expected \{'w': width, 'h': height\} in pixels"),
}


def test_missing_video_size_message_has_no_stray_braces(tmp_path):
    _write_custom(tmp_path, {'v': [np.zeros((5, 17, 2))]}, {'num_joints': 17})
    with pytest.raises(UserError) as error:
        load_custom_keypoints(tmp_path, 'bad')
    assert str(error.value).endswith("expected video name -> {'w': width, 'h': height} in pixels for every video")


def test_damaged_npz_is_a_one_line_error(workspace, tmp_path):
    """Flipped bytes inside the compressed keypoints (zlib errors, pickle errors, bad CRC, ...)."""
    folder, _ = workspace
    source = folder / 'data_2d_custom_mine.npz'
    with zipfile.ZipFile(source) as archive:
        member = archive.getinfo('positions_2d.npy')
    data = bytearray(source.read_bytes())
    name_length, extra_length = struct.unpack('<HH', data[member.header_offset + 26:member.header_offset + 30])
    start = member.header_offset + 30 + name_length + extra_length
    messages = set()
    for offset in range(start, start + member.compress_size, max(1, member.compress_size // 25)):
        damaged = bytearray(data)
        damaged[offset] ^= 0xFF
        (tmp_path / 'data_2d_custom_bad.npz').write_bytes(bytes(damaged))
        with pytest.raises(UserError) as error:
            load_custom_keypoints(tmp_path, 'bad')
        messages.add(str(error.value).split(': ', 1)[1].split(' (')[0])
    assert messages == {'not a readable .npz archive'}


def test_nan_weights_are_an_error_not_nan_output(workspace, tmp_path, capsys):
    folder, _ = workspace
    model = build_tiny_model()
    with torch.no_grad():
        model.denoiser.joint_embed.weight.fill_(float('nan'))
    save_checkpoint(tmp_path / 'diverged.bin', model=model, model_config=tiny_config(), epoch=1, lr=0.0)
    with pytest.raises(SystemExit) as exit_info:
        main.main(['-d', 'custom', '-k', 'mine', '--data-dir', str(folder), '-c', str(tmp_path),
                   '--evaluate', 'diverged.bin', *SAMPLING])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'holds NaN or inf values' in err
    assert not (tmp_path / 'custom_mine_3d.npz').exists()


def test_non_finite_predictions_are_never_written(workspace, tmp_path, monkeypatch, capsys):
    import common.run.inference_run as inference_run
    folder, _ = workspace
    real_predict = inference_run.predict

    def nan_predict(*args, **kwargs):
        predictions = real_predict(*args, **kwargs)
        predictions[0].poses_3d[0, 0, 0] = np.nan
        return predictions
    monkeypatch.setattr(inference_run, 'predict', nan_predict)
    with pytest.raises(SystemExit):
        main.main(['-d', 'custom', '-k', 'mine', '--data-dir', str(folder), '-c', str(tmp_path),
                   '--evaluate', str(folder / 'tiny.bin'), *SAMPLING])
    assert 'the model predicts non-finite poses for walk.mp4' in capsys.readouterr().err
    assert not (tmp_path / 'custom_mine_3d.npz').exists()


@pytest.mark.parametrize('case', list(BAD_FILES))
def test_bad_files_are_one_line_errors(case, tmp_path, capsys):
    positions_2d, metadata, message = BAD_FILES[case]
    if metadata == 'dict':
        metadata = {'num_joints': 17, 'keypoints_symmetry': SYMMETRY, 'video_metadata': {'v': {'w': 9, 'h': 9}}}
    _write_custom(tmp_path, positions_2d, metadata)
    with pytest.raises(UserError, match=message):
        load_custom_keypoints(tmp_path, 'bad')
    with pytest.raises(SystemExit) as exit_info:
        main.main(['-d', 'custom', '-k', 'bad', '--data-dir', str(tmp_path), '--evaluate', 'x.bin'])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1 and 'Traceback' not in err


@pytest.fixture
def no_sampling(monkeypatch):
    """The model must not sample: every input is checked before."""
    import common.run.inference_run as inference_run

    def sampled(*args, **kwargs):
        raise AssertionError('the model sampled before the inputs were checked')
    monkeypatch.setattr(inference_run, 'predict', sampled)


@pytest.mark.parametrize('flags, message', [
    (['-k', 'nothere'], r'data_2d_custom_nothere\.npz: not found; .*custom files in .*: mine'),
    (['--viz-subject', 'dance.mp4', '--viz-export', 'x.npy'],
     r'--viz-subject dance\.mp4: no such video .*walk\.mp4, sit\.mp4'),
    (['--render', '--viz-output', 'x.gif'], 'holds 2 videos; choose one with --viz-subject'),
    (['--viz-subject', 'sit.mp4', '--viz-camera', '1', '--viz-export', 'x.npy'], '--viz-camera 1: video sit.mp4'),
    (['--viz-subject', 'sit.mp4', '--render', '--viz-output', 'x.gif', '--viz-video', 'README.md'],
     '--viz-video README.md: FFmpeg cannot read this file'),
    (['--viz-subject', 'sit.mp4', '--render', '--viz-output', 'x.avi'], 'expected a file name ending in .gif'),
    (['--viz-subject', 'sit.mp4', '--render', '--viz-output', 'x.gif', '--viz-video', 'none.mp4'],
     '--viz-video none.mp4: not found'),
    (['--render'], '--render: pass --viz-output'),
    (['--viz-downsample', '0'], '--viz-downsample 0: expected an integer of at least 1'),
    (['--focal-length', '-5'], '--focal-length -5: expected a positive number'),
    (['--focal-length', 'inf'], '--focal-length inf: expected a positive number'),
    (['--viz-subject', 'sit.mp4', '--viz-export', 'out.txt'], r'--viz-export .*out\.txt: expected a file name ending '
                                                              r'in \.npy or \.bvh$'),
    (['--viz-subject', 'sit.mp4', '--viz-export', 'x.npy', '--viz-output', 'x.gif', '--viz-limit', '5'],
     '--viz-output, --viz-limit: used only with --render, which is not given; add --render'),
    (['--viz-subject', 'sit.mp4', '--viz-camera', '0'],
     '--viz-subject, --viz-camera: used only with --render or --viz-export .*, neither given'),
    (['--viz-subject', 'sit.mp4', '--viz-export', '{folder}/a_file/x.npy'], r'--viz-export .*a_file/x.npy: .*a_file is a file, expected a folder'),
    (['--viz-subject', 'sit.mp4', '--render', '--viz-output', '{folder}/a_file/x.gif'],
     r'--viz-output .*a_file/.*: .*a_file is a file, expected a folder'),
    (['--viz-subject', 'sit.mp4', '--render', '--viz-output', '{folder}/a_folder.gif'],
     r'--viz-output .*a_folder\.gif: is a folder; expected a file name'),
    (['--viz-subject', 'sit.mp4', '--viz-export', '{folder}/' + 'x' * 252 + '.bvh'],
     r'--viz-export .*x\.bvh: the file name is 256 bytes long, longer than the file system allows \(255\); choose a '
     r'shorter name$'),
])
def test_bad_flags_are_one_line_errors(workspace, flags, message, capsys, no_sampling):
    folder, _ = workspace
    (folder / 'a_file').write_text('')                 # a regular file where a folder is expected
    (folder / 'a_folder.gif').mkdir(exist_ok=True)      # a folder where a file is expected
    argv = ['-d', 'custom', '-k', 'mine', '--data-dir', str(folder), '-c', str(folder), '--evaluate', 'tiny.bin',
            '-gpu', '', *(flag.format(folder=folder) for flag in flags)]
    with pytest.raises(SystemExit) as exit_info:
        main.main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and re.match('error: .*' + message, err)


@pytest.mark.parametrize('flags, message', [
    (['-d', 'custom', '-k', 'mine'], '-d custom: pass --evaluate CHECKPOINT'),
    (['--evaluate', 'tiny.bin', '--viz-export', 'x.npy'], 'pass --viz-subject and --viz-action'),
    (['--evaluate', 'tiny.bin', '--viz-export', 'x.npy', '--viz-subject', 'S1', '--viz-action', 'Walking'],
     '--viz-subject S1: not in the data; subjects: S9'),
    (['--evaluate', 'tiny.bin', '--viz-export', 'x.npy', '--viz-subject', 'S9', '--viz-action', 'Eating'],
     "--viz-action 'Eating': subject S9 has no such action; actions: Walking"),
    (['--evaluate', 'tiny.bin', '--viz-export', 'x.npy', '--viz-subject', 'S9', '--viz-action', 'Walking',
      '--viz-camera', '4'], '--viz-camera 4: expected one of 0, 1, 2, 3'),
])
def test_bad_sequence_choices_are_one_line_errors(workspace, flags, message, capsys, no_sampling):
    folder, _ = workspace
    with pytest.raises(SystemExit) as exit_info:
        main.main(['-k', 'gt', '--data-dir', str(folder), '-c', str(folder), '-gpu', '', *flags])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and message in err


@pytest.mark.parametrize('suffix', ['.npy', '.bvh'])
def test_an_export_name_of_the_longest_legal_length_is_written(workspace, capsys, tmp_path, suffix):
    """A 255-byte name failed after sampling with 'File name too long': its temporary name added 22 bytes."""
    folder, _ = workspace
    export = tmp_path / ('x' * (255 - len(suffix)) + suffix)
    out = _main(capsys, *_custom(folder, '--viz-subject', 'sit.mp4', '--viz-export', export))
    assert export.is_file() and f'Wrote {export}' in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [export.name]


def test_a_refused_run_leaves_no_folder_behind(workspace, tmp_path, capsys):
    folder, _ = workspace
    for flags in (['-c', tmp_path / 'new' / 'run'], ['--viz-subject', 'sit.mp4', '--viz-export',
                                                     tmp_path / 'exports' / 'one' / 'x.npy']):
        with pytest.raises(SystemExit) as exit_info:
            _main(capsys, *_custom(folder, '-k', 'nothere', *flags))
        assert exit_info.value.code == 2 and 'data_2d_custom_nothere.npz: not found' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_render_keeps_the_export(workspace, tmp_path, capsys, monkeypatch):
    import common.run.inference_run as inference_run
    folder, _ = workspace

    def failing_render(*args, **kwargs):
        raise UserError('the renderer failed')
    monkeypatch.setattr(inference_run, 'render_animation', failing_render)
    export = tmp_path / 'sit.npy'
    with pytest.raises(SystemExit) as exit_info:
        _main(capsys, *_custom(folder, '--viz-subject', 'sit.mp4', '--viz-export', export, '--render',
                               '--viz-output', tmp_path / 'sit.gif'))
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert f'Wrote {export}: poses ({SHORT_FRAMES}, 17, 3)' in out and 'the renderer failed' in err
    assert np.load(export).shape == (SHORT_FRAMES, 17, 3)


def test_a_limit_beyond_the_video_is_said(workspace, capsys, tmp_path):
    folder, _ = workspace
    out = _main(capsys, *_custom(folder, '--viz-subject', 'sit.mp4', '--render', '--viz-output', tmp_path / 'sit.png',
                                 '--viz-limit', 100, '--viz-size', 1))
    assert f"Rendering {SHORT_FRAMES} frames (--viz-limit 100 exceeds the video's {SHORT_FRAMES})" in out
    out = _main(capsys, *_custom(folder, '--viz-subject', 'sit.mp4', '--render', '--viz-output', tmp_path / 'sit.png',
                                 '--viz-limit', SHORT_FRAMES, '--viz-size', 1))
    assert 'Rendering' not in out

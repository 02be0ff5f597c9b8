"""Detector keypoint files -> the custom npz: every format back to the same 17 joints, people, gaps, bad files.

Known Human3.6M-order keypoints come from the synthetic generator; each test writes them in a
format's own layout, spelled here with the format's own joint names (independently of the
module's tables), converts with ``python -m common.keypoints convert`` and compares.
"""
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from common import keypoints as cli
from common.data.custom_data import load_custom_keypoints
from common.data.video_io import Mp4Writer
from common.synthetic import writer as synthetic
from common.synthetic.body import random_body
from support.keypoint_files import COCO_NAMES, H36M_INDEX, detector_results, in_format
from support.runs import REPO_ROOT

FRAMES = 12
SIZE = (1000, 1002)               # the synthetic Human3.6M cameras' images
# Each format's order in its own documentation's names -> our names (None: a joint Human3.6M has not).
HALPE_NAMES = COCO_NAMES + ['head_top', 'thorax', 'pelvis', 'LBigToe', 'RBigToe', 'LSmallToe', 'RSmallToe',
                            'LHeel', 'RHeel']           # Halpe's Head, Neck, Hip
BODY_25_NAMES = ['Nose', 'Neck', 'RShoulder', 'RElbow', 'RWrist', 'LShoulder', 'LElbow', 'LWrist', 'MidHip', 'RHip',
                 'RKnee', 'RAnkle', 'LHip', 'LKnee', 'LAnkle', 'REye', 'LEye', 'REar', 'LEar', 'LBigToe',
                 'LSmallToe', 'LHeel', 'RBigToe', 'RSmallToe', 'RHeel']
OPENPOSE_TO_OURS = {'Nose': 'nose', 'Neck': 'thorax', 'MidHip': 'pelvis', 'RShoulder': 'right_shoulder',
                    'RElbow': 'right_elbow', 'RWrist': 'right_wrist', 'LShoulder': 'left_shoulder',
                    'LElbow': 'left_elbow', 'LWrist': 'left_wrist', 'RHip': 'right_hip', 'RKnee': 'right_knee',
                    'RAnkle': 'right_ankle', 'LHip': 'left_hip', 'LKnee': 'left_knee', 'LAnkle': 'left_ankle'}
BLAZEPOSE_NAMES = ['nose', 'left_eye_inner', 'left_eye', 'left_eye_outer', 'right_eye_inner', 'right_eye',
                   'right_eye_outer', 'left_ear', 'right_ear', 'mouth_left', 'mouth_right', 'left_shoulder',
                   'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_pinky',
                   'right_pinky', 'left_index', 'right_index', 'left_thumb', 'right_thumb', 'left_hip', 'right_hip',
                   'left_knee', 'right_knee', 'left_ankle', 'right_ankle', 'left_heel', 'right_heel',
                   'left_foot_index', 'right_foot_index']


@pytest.fixture(scope='module')
def truth():
    """(FRAMES, 17, 2) float64 pixels, Human3.6M order: a synthetic walk seen by camera 0."""
    body = random_body(np.random.default_rng(3))
    take = synthetic.build_h36m_take(3, 'S9', body, 'Walking', 0, synthetic.SIZES['demo'], frames=FRAMES)
    assert take.views[0].camera.resolution == SIZE
    return take.views[0].keypoints_px.astype(np.float64)


def _expected(truth, exact):
    """The conversion's result: ``exact`` joints as given, the others by the module docstring's rules."""
    expected = truth.copy()
    mid = lambda a, b: (truth[:, H36M_INDEX[a]] + truth[:, H36M_INDEX[b]]) / 2  # noqa: E731
    if 'pelvis' not in exact:
        expected[:, 0] = mid('left_hip', 'right_hip')
    if 'thorax' not in exact:
        expected[:, 8] = mid('left_shoulder', 'right_shoulder')
    expected[:, 7] = (expected[:, 0] + expected[:, 8]) / 2
    if 'head_top' not in exact:
        expected[:, 10] = 2 * truth[:, 9] - expected[:, 8]
    return expected


def _convert(tmp_path, capsys, file_format, source, *flags, name='t'):
    out = tmp_path / f'data_2d_custom_{name}.npz'
    cli.main(['convert', '--from', file_format, str(source), '--out', str(out), '--video-size', *map(str, SIZE),
              *map(str, flags)])
    with np.load(out, allow_pickle=True) as saved:
        positions = saved['positions_2d'].item()
    (video, views), = positions.items()
    return views['custom'][0].astype(np.float64), capsys.readouterr().out


def _write_json(path, content):
    path.write_text(json.dumps(content))
    return path


def _openpose_folder(folder, frames_of_people):
    folder.mkdir()
    for frame, people in enumerate(frames_of_people):
        _write_json(folder / f'clip_{frame:012d}_keypoints.json', {'version': 1.3, 'people': [
            {'person_id': [-1], 'pose_keypoints_2d': p.ravel().tolist()} for p in people]})
    return folder


def _rule_check(truth, converted, exact):
    """Converted == exact joints to float32 precision, built joints == their rule."""
    np.testing.assert_allclose(converted, _expected(truth, exact), atol=1e-3)
    for joint in exact:
        np.testing.assert_allclose(converted[:, H36M_INDEX[joint]], truth[:, H36M_INDEX[joint]], atol=1e-3)


def test_coco_json_with_file_name_ids_in_any_order(truth, tmp_path, capsys):
    ids = [f'frame_{i}.jpg' for i in range(FRAMES)]          # frame_10 after frame_9, not after frame_1
    order = np.random.default_rng(0).permutation(FRAMES)
    coco = in_format(truth, COCO_NAMES)
    path = _write_json(tmp_path / 'results.json', detector_results(coco[order], [ids[i] for i in order]))
    converted, out = _convert(tmp_path, capsys, 'coco', path)
    _rule_check(truth, converted, exact=[n for n in COCO_NAMES if n in H36M_INDEX])
    assert f'{FRAMES} frames of COCO-17 keypoints; 0 frames with 0 people, 0 with several' in out
    assert 'Wrote' in out and '-k t ' in out


def test_coco_npy_and_h36m_npy(truth, tmp_path, capsys):
    np.save(tmp_path / 'coco.npy', in_format(truth, COCO_NAMES)[..., :2])
    converted, _ = _convert(tmp_path, capsys, 'coco', tmp_path / 'coco.npy')
    _rule_check(truth, converted, exact=[n for n in COCO_NAMES if n in H36M_INDEX])
    np.save(tmp_path / 'h36m.npy', np.concatenate([truth, np.ones((FRAMES, 17, 1))], axis=-1))
    converted, _ = _convert(tmp_path, capsys, 'h36m', tmp_path / 'h36m.npy')
    np.testing.assert_allclose(converted, truth, atol=1e-3)


def test_halpe_26_follows_the_tracker_id(truth, tmp_path, capsys):
    halpe = in_format(truth, HALPE_NAMES)
    other = halpe.copy()
    other[..., :2] += 7.0                                    # a second person, more confident
    results = detector_results(halpe, [f'{i}.jpg' for i in range(FRAMES)], score=0.5, idx=[2]) + detector_results(
        other, [f'{i}.jpg' for i in range(FRAMES)], score=2.5, idx=1)
    path = _write_json(tmp_path / 'alphapose-results.json', results)
    converted, out = _convert(tmp_path, capsys, 'halpe', path, '--person', 2)
    _rule_check(truth, converted, exact=[n for n in HALPE_NAMES if n in H36M_INDEX])
    assert '0 frames with 0 people, 12 with several; following tracker id 2' in out
    converted, _ = _convert(tmp_path, capsys, 'halpe', path, '--person', 'auto')
    np.testing.assert_allclose(converted, _expected(truth, HALPE_NAMES) + 7.0, atol=1e-3)
    halpe_136 = np.concatenate([halpe, np.full((FRAMES, 110, 3), 5.0)], axis=1)      # + face and hands
    path = _write_json(tmp_path / 'fullbody.json', detector_results(halpe_136, list(range(FRAMES))))
    converted, _ = _convert(tmp_path, capsys, 'halpe', path)
    _rule_check(truth, converted, exact=[n for n in HALPE_NAMES if n in H36M_INDEX])


def test_sparse_image_ids_are_only_ordered(truth, tmp_path, capsys):
    ids = [139 + 1000 * i * i for i in range(FRAMES)]         # COCO-like ids, not frame numbers
    path = _write_json(tmp_path / 'val.json', detector_results(in_format(truth, COCO_NAMES)[::-1], ids[::-1]))
    converted, out = _convert(tmp_path, capsys, 'coco', path)
    assert f'{FRAMES} frames of COCO-17 keypoints; 0 frames with 0 people' in out
    np.testing.assert_allclose(converted, _expected(truth, COCO_NAMES), atol=1e-3)


def test_openpose_body_25_folder(truth, tmp_path, capsys):
    body_25 = in_format(truth, BODY_25_NAMES, rename={**OPENPOSE_TO_OURS})
    folder = _openpose_folder(tmp_path / 'json', [[frame] for frame in body_25])
    converted, out = _convert(tmp_path, capsys, 'openpose', folder)
    _rule_check(truth, converted, exact=[OPENPOSE_TO_OURS[n] for n in BODY_25_NAMES if n in OPENPOSE_TO_OURS])
    assert 'OpenPose BODY_25' in out


@pytest.mark.parametrize('coordinates', ['normalised', 'pixels'])
def test_mediapipe_landmarks(truth, tmp_path, capsys, coordinates):
    landmarks = in_format(truth, BLAZEPOSE_NAMES)
    if coordinates == 'normalised':
        landmarks[..., :2] /= SIZE
    array = np.concatenate([landmarks[..., :2], np.full(landmarks.shape[:2] + (1,), -0.1), landmarks[..., 2:]], -1)
    np.save(tmp_path / 'landmarks.npy', array)                        # x, y, z, visibility
    converted, _ = _convert(tmp_path, capsys, 'mediapipe', tmp_path / 'landmarks.npy',
                            '--mediapipe-coordinates', coordinates)
    _rule_check(truth, converted, exact=[n for n in BLAZEPOSE_NAMES if n in H36M_INDEX])


def test_built_joints_lie_near_the_real_ones(truth):
    """How far the rules put the built joints from the synthetic body's own joints (pixels, person ~400 px tall)."""
    built = _expected(truth, exact=[])
    distance = np.linalg.norm(built - truth, axis=-1).max(axis=0)
    height = np.ptp(truth[..., 1], axis=1).mean()
    assert distance[0] < 0.02 * height            # pelvis: mid-hips
    assert distance[7] < 0.03 * height            # spine: midway between pelvis and thorax
    assert distance[8] < 0.05 * height            # thorax: mid-shoulders
    assert distance[10] < 0.08 * height           # head top: the nose reflected about itself


def test_auto_follows_the_nearest_box_and_counts_people(truth, tmp_path, capsys):
    coco = in_format(truth, COCO_NAMES)
    far = coco.copy()
    far[..., 0] += 300.0                                # another person 300 px to the right
    results = detector_results(coco[:1], [0], score=0.9) + detector_results(far[:1], [0], score=0.5)
    for frame in range(1, FRAMES):
        if frame == 4:
            continue                                   # nobody detected: no entry for image 4
        if frame != 7:                                 # image 7: only our person
            results += detector_results(far[frame:frame + 1], [frame], score=0.99)    # now more confident, but far
        results += detector_results(coco[frame:frame + 1], [frame], score=0.2)
    path = _write_json(tmp_path / 'two.json', results)
    converted, out = _convert(tmp_path, capsys, 'coco', path)
    assert '1 frames with 0 people, 10 with several' in out
    expected = _expected(truth, COCO_NAMES)
    expected[4] = (expected[3] + expected[5]) / 2
    np.testing.assert_allclose(converted, expected, atol=1e-3)


def test_low_confidence_joints_and_missing_frames_are_interpolated(truth, tmp_path, capsys):
    coco = in_format(truth, COCO_NAMES)
    left_wrist = COCO_NAMES.index('left_wrist')
    coco[3:6, left_wrist, 2] = 0.1                      # frames 3, 4, 5: below the default 0.3
    coco[9, left_wrist, 2] = 0.1
    frames = [i for i in range(FRAMES) if i not in (0, 7)]      # frame 0 and 7 without a detection
    path = _write_json(tmp_path / 'gaps.json', detector_results(coco[frames], [f'{i:04d}.png' for i in frames]))
    converted, out = _convert(tmp_path, capsys, 'coco', path)
    # ids 0001..0011: image i is frame i; frame 0 (no image) holds image 1's pose
    expected = _expected(truth, COCO_NAMES)
    wrist = truth[:, H36M_INDEX['left_wrist']]
    for frame in (3, 4, 5):                             # images 3..5 between images 2 and 6
        expected[frame, H36M_INDEX['left_wrist']] = wrist[2] + (wrist[6] - wrist[2]) * (frame - 2) / 4
    expected[9, H36M_INDEX['left_wrist']] = (wrist[8] + wrist[10]) / 2         # image 9 between 8 and 10
    expected[7] = (expected[6] + expected[8]) / 2                        # image 7 missing: all joints
    expected[0] = expected[1]
    np.testing.assert_allclose(converted, expected, atol=1e-3)
    assert ('Frames without the person, filled: 1 before the first detection (its pose held), 0 after the last '
            '(its pose held), 1 in between (linear interpolation in time)') in out
    assert 'Joint positions filled in time (interpolated, ends held): 4 below confidence 0.3 (--min-confidence)' in out
    converted, out = _convert(tmp_path, capsys, 'coco', path, '--min-confidence', 0.05)
    assert '0 below confidence 0.05' in out


def test_missing_first_frames_hold_the_first_detection(truth, tmp_path, capsys):
    coco = in_format(truth, COCO_NAMES)
    people = [[] for _ in range(3)] + [[_coco_to_body_25(frame)] for frame in coco[3:]]
    converted, out = _convert(tmp_path, capsys, 'openpose', _openpose_folder(tmp_path / 'late', people))
    assert '3 frames with 0 people' in out and '3 before the first detection (its pose held)' in out
    np.testing.assert_allclose(converted[:3], np.repeat(converted[3:4], 3, axis=0))
    np.testing.assert_allclose(converted[3:], _expected(truth, COCO_NAMES)[3:], atol=1e-3)


def _coco_to_body_25(coco_frame):
    """(17, 3) COCO -> (25, 3) BODY_25 with neck = mid-shoulders, mid-hip = mid-hips, feet at the ankles."""
    by_name = dict(zip(COCO_NAMES, coco_frame))
    spelled = {'Nose': 'nose', 'REye': 'right_eye', 'LEye': 'left_eye', 'REar': 'right_ear', 'LEar': 'left_ear',
               **{k: v for k, v in OPENPOSE_TO_OURS.items() if v in by_name}}
    out = np.zeros((25, 3))
    for k, name in enumerate(BODY_25_NAMES):
        if name in spelled:
            out[k] = by_name[spelled[name]]
        elif name == 'Neck':
            out[k] = (by_name['left_shoulder'] + by_name['right_shoulder']) / 2
        elif name == 'MidHip':
            out[k] = (by_name['left_hip'] + by_name['right_hip']) / 2
        else:
            out[k] = by_name['left_ankle' if name.startswith('L') else 'right_ankle']
    return out


def _one_line_error(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(a) for a in argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and err.startswith('error: ') and re.search(message, err), err


def _bad_inputs(tmp_path):
    coco = np.ones((2, 17, 3))
    eighteen = [{'image_id': 0, 'keypoints': [1.0] * 54, 'score': 1}]
    (tmp_path / 'empty_op').mkdir()
    (tmp_path / 'bad_op').mkdir()
    _write_json(tmp_path / 'bad_op' / 'f_0_keypoints.json', {'people': [{'pose_keypoints_2d': [1.0] * 60}]})
    (tmp_path / 'nopeople').mkdir()
    _write_json(tmp_path / 'nopeople' / 'f_0_keypoints.json', {'version': 1.3})
    np.save(tmp_path / 'coco18.npy', np.ones((4, 18, 3)))
    np.save(tmp_path / 'empty.npy', np.ones((0, 17, 3)))
    np.save(tmp_path / 'mp.npy', np.ones((4, 33, 4)))
    np.save(tmp_path / 'dark.npy', np.concatenate([np.ones((4, 17, 2)), np.zeros((4, 17, 1))], -1))
    (tmp_path / 'text.json').write_text('{not json')
    return {
        'wrong joint count (json)': (['coco', _write_json(tmp_path / 'e.json', eighteen)],
                                     r'e\.json: entry 0: keypoints: expected \[x, y, score\] \* \(17\) joints .* 54 values'),
        'missing key': (['coco', _write_json(tmp_path / 'k.json', [{'image_id': 1, 'kp': []}])],
                        r'k\.json: entry 0: expected a dict with keys image_id and keypoints, found keys image_id, kp'),
        'empty list': (['coco', _write_json(tmp_path / 'l.json', [])], r'l\.json: expected a non-empty JSON list'),
        'not json': (['halpe', tmp_path / 'text.json'], r'text\.json: not a readable JSON file'),
        'wrong joint count (npy)': (['coco', tmp_path / 'coco18.npy'],
                                    r'coco18\.npy: expected a numeric array \(N, 17, 2\|3\), found \(4, 18, 3\)'),
        'no frame': (['h36m', tmp_path / 'empty.npy'], r'empty\.npy: .*found no frame'),
        'openpose count': (['openpose', tmp_path / 'bad_op'],
                           r'f_0_keypoints\.json: people\[0\]\.pose_keypoints_2d: expected .*\(25 or 18\) joints'),
        'openpose no people': (['openpose', tmp_path / 'nopeople'], r"f_0_keypoints\.json: expected a dict with a list 'people'"),
        'openpose empty folder': (['openpose', tmp_path / 'empty_op'], r'empty_op: no \.json files'),
        'no usable frame': (['coco', tmp_path / 'dark.npy'], r'dark\.npy: no usable frame'),
        'missing file': (['coco', tmp_path / 'none.json'], r'none\.json: not found'),
    }


def test_malformed_files_are_one_line_errors(tmp_path, capsys):
    for case, (args, message) in _bad_inputs(tmp_path).items():
        file_format, source, *flags = args
        _one_line_error(capsys, ['convert', '--from', file_format, source, '--out', tmp_path / 'data_2d_custom_x.npz',
                                 '--video-size', 10, 10, *flags], message)
    assert not (tmp_path / 'data_2d_custom_x.npz').exists()


def test_bad_flags_are_one_line_errors(tmp_path, capsys):
    np.save(tmp_path / 'k.npy', np.ones((3, 17, 2)))
    good = ['convert', '--from', 'coco', tmp_path / 'k.npy']
    _one_line_error(capsys, good + ['--out', tmp_path / 'k.npz', '--video-size', 9, 9],
                    r'--out .*k\.npz: expected a file named data_2d_custom_NAME\.npz')
    out = ['--out', tmp_path / 'data_2d_custom_k.npz']
    _one_line_error(capsys, good + out, r'k\.npy: pass --video VIDEO or --video-size W H')
    _one_line_error(capsys, good + out + ['--video-size', 0, 9], r'--video-size 0 9: expected a positive')
    _one_line_error(capsys, good + out + ['--video-size', 9, 9, '--min-confidence', 2], r'--min-confidence 2\.0')
    _one_line_error(capsys, good + out + ['--video-size', 9, 9, '--person', 3],
                    r'--person 3: --from coco files have no tracker ids; use --person auto')
    folder = _openpose_folder(tmp_path / 'op', [[np.ones((25, 3))]])
    _one_line_error(capsys, ['convert', '--from', 'openpose', folder, *out, '--video-size', 9, 9, '--person', 3],
                    r'op: no person with tracker id 3 \(--person\); the files have no tracker ids .*--person auto')
    np.save(tmp_path / 'm.npy', np.ones((3, 33, 3)))
    _one_line_error(capsys, ['convert', '--from', 'mediapipe', tmp_path / 'm.npy', *out],
                    r'm\.npy: pass --video VIDEO or --video-size W H')


@pytest.mark.parametrize('fps', ['inf', '1e300', 'nan', '0', '10001'])
def test_a_frame_rate_outside_what_the_outputs_hold_is_refused(tmp_path, capsys, fps):
    """--fps inf or 1e300 was written, then refused by -d custom, failed a render with OverflowError
    after sampling, or gave a BVH 'Frame Time: 0.00000000'; 10000 fps is the most taken."""
    np.save(tmp_path / 'k.npy', np.ones((3, 17, 2)))
    _one_line_error(capsys, ['convert', '--from', 'coco', tmp_path / 'k.npy', '--out',
                             tmp_path / 'data_2d_custom_k.npz', '--video-size', 9, 9, '--fps', fps],
                    rf'^error: --fps {re.escape(format(float(fps), "g"))}: expected a frame rate above 0 and at most '
                    r'10000 frames per second$')
    assert not (tmp_path / 'data_2d_custom_k.npz').exists()
    _, out = _convert(tmp_path, capsys, 'coco', tmp_path / 'k.npy', '--fps', 10000, name='k')
    assert 'at 10000 fps' in out


def test_the_longest_legal_out_name_is_written_and_a_longer_one_refused_first(tmp_path, capsys):
    """A 255-byte name (the file system's NAME_MAX) failed with 'File name too long': its temporary
    name added 22 bytes. One byte more is refused before the file is read."""
    np.save(tmp_path / 'k.npy', np.ones((3, 17, 2)))
    name = 'data_2d_custom_' + 'x' * (255 - len('data_2d_custom_.npz')) + '.npz'
    _convert(tmp_path, capsys, 'coco', tmp_path / 'k.npy', name=name[len('data_2d_custom_'):-len('.npz')])
    assert (tmp_path / name).is_file() and len(name) == 255
    longer = name.replace('xx', 'xxx', 1)
    _one_line_error(capsys, ['convert', '--from', 'coco', tmp_path / 'missing.json', '--video-size', 9, 9,
                             '--out', tmp_path / longer],
                    rf'--out .*{longer}: the file name is 256 bytes long, longer than the file system allows '
                    r'\(255\); choose a shorter name$')


def test_detect_without_mediapipe_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__('sys').modules, 'mediapipe', None)      # as if not installed
    _one_line_error(capsys, ['detect', tmp_path / 'v.mp4', '--out', tmp_path / 'data_2d_custom_v.npz'],
                    r'detect needs MediaPipe, which is not installed here; .*pip install -r requirements-detector\.txt')


def test_written_file_is_what_main_reads(truth, tmp_path, capsys):
    np.save(tmp_path / 'walk.npy', in_format(truth, COCO_NAMES))
    _convert(tmp_path, capsys, 'coco', tmp_path / 'walk.npy', '--fps', 50, '--video-name', 'walk.mp4', name='walk')
    custom = load_custom_keypoints(tmp_path, 'walk')
    assert custom.video_names() == ['walk.mp4'] and custom.frame_rates == {'walk.mp4': 50.0}
    sequence = custom.select(None)
    assert sequence.resolution == SIZE and sequence.num_frames == FRAMES


def test_video_gives_size_rate_and_name(truth, tmp_path, capsys):
    with Mp4Writer(tmp_path / 'dance.mp4', fps=24) as writer:
        for _ in range(FRAMES):
            writer.write(np.zeros((20, 30, 3), np.uint8))
    np.save(tmp_path / 'k.npy', in_format(truth, COCO_NAMES))
    out = tmp_path / 'data_2d_custom_dance.npz'
    cli.main(['convert', '--from', 'coco', str(tmp_path / 'k.npy'), '--video', str(tmp_path / 'dance.mp4'),
              '--out', str(out)])
    with np.load(out, allow_pickle=True) as saved:
        assert saved['metadata'].item()['video_metadata'] == {'dance.mp4': {'w': 30, 'h': 20, 'fps': 24.0}}
    _one_line_error(capsys, ['convert', '--from', 'coco', tmp_path / 'k.npy', '--video', tmp_path / 'k.npy',
                             '--out', out], r'--video .*k\.npy: FFmpeg cannot read this file')


VIDEO_FRAMES = 36                  # a video whose person is detected in frames 20..29 only
FIRST_SEEN, LAST_SEEN = 20, 29


@pytest.fixture(scope='module')
def long_truth():
    """(VIDEO_FRAMES, 17, 2) float64 pixels, Human3.6M order: a synthetic walk seen by camera 0."""
    body = random_body(np.random.default_rng(4))
    take = synthetic.build_h36m_take(4, 'S9', body, 'Walking', 0, synthetic.SIZES['demo'], frames=VIDEO_FRAMES)
    return take.views[0].keypoints_px.astype(np.float64)


def _video(path, frames=VIDEO_FRAMES):
    with Mp4Writer(path, fps=25) as writer:
        for value in range(frames):
            writer.write(np.full((16, 16, 3), value, np.uint8))
    return path


def _late_detections(long_truth, tmp_path, file_format):
    """A detector's file of the video whose person appears in frames 20..29 only -> (path, expected conversion)."""
    seen = range(FIRST_SEEN, LAST_SEEN + 1)
    if file_format == 'openpose':          # files from frame 10 on (0..9 not written), nobody before frame 20
        coco = in_format(long_truth, COCO_NAMES)
        folder = tmp_path / 'json'
        folder.mkdir()
        for frame in range(10, LAST_SEEN + 1):
            people = [_coco_to_body_25(coco[frame])] if frame in seen else []
            _write_json(folder / f'dance_{frame:012d}_keypoints.json',
                        {'people': [{'person_id': [-1], 'pose_keypoints_2d': p.ravel().tolist()} for p in people]})
        return folder, _expected(long_truth, COCO_NAMES)
    names = COCO_NAMES if file_format == 'coco' else HALPE_NAMES
    keypoints = in_format(long_truth, names)
    ids = [f'frame_{i:06d}.jpg' for i in seen] if file_format == 'coco' else list(seen)
    path = _write_json(tmp_path / 'results.json', detector_results(keypoints[FIRST_SEEN:LAST_SEEN + 1], ids, idx=1))
    return path, _expected(long_truth, names)


@pytest.mark.parametrize('file_format', ['coco', 'halpe', 'openpose'])
def test_late_and_early_detections_keep_the_videos_frame_numbers(long_truth, tmp_path, capsys, file_format):
    source, expected = _late_detections(long_truth, tmp_path, file_format)
    seen = slice(FIRST_SEEN, LAST_SEEN + 1)
    converted, out = _convert(tmp_path, capsys, file_format, source)
    assert converted.shape == (LAST_SEEN + 1, 17, 2)              # without the video: up to the last number
    np.testing.assert_allclose(converted[seen], expected[seen], atol=1e-3)
    np.testing.assert_allclose(converted[:FIRST_SEEN], np.repeat(converted[FIRST_SEEN:FIRST_SEEN + 1], 20, 0))
    assert f'{FIRST_SEEN} before the first detection (its pose held), 0 after the last' in out
    kind = {'coco': 'image_id', 'halpe': 'image_id', 'openpose': 'file'}[file_format]
    assert f'Frame numbering: {kind} 0 is frame 0; {LAST_SEEN + 1} frames, to the last {kind}' in out

    converted, out = _convert(tmp_path, capsys, file_format, source, '--video', _video(tmp_path / 'dance.mp4'))
    assert converted.shape == (VIDEO_FRAMES, 17, 2)               # exactly the video's frames
    np.testing.assert_allclose(converted[seen], expected[seen], atol=1e-3)
    np.testing.assert_allclose(converted[LAST_SEEN + 1:], np.repeat(converted[LAST_SEEN:LAST_SEEN + 1], 6, 0))
    assert (f'Frames without the person, filled: {FIRST_SEEN} before the first detection (its pose held), '
            f'{VIDEO_FRAMES - 1 - LAST_SEEN} after the last (its pose held), 0 in between') in out
    assert f'{VIDEO_FRAMES} frames of dance.mp4' in out and f'{VIDEO_FRAMES} frames (N, 17, 2)' in out


def test_frames_beyond_the_video_are_refused_and_first_frame_renumbers(long_truth, tmp_path, capsys):
    """Ids 1..36 (frames extracted with ffmpeg's %d) for a 36-frame video: refused, then --first-frame 1."""
    keypoints = in_format(long_truth, COCO_NAMES)
    path = _write_json(tmp_path / 'one_based.json', detector_results(keypoints, range(1, VIDEO_FRAMES + 1)))
    video = _video(tmp_path / 'dance.mp4')
    argv = ['convert', '--from', 'coco', path, '--out', tmp_path / 'data_2d_custom_x.npz', '--video', video]
    _one_line_error(capsys, argv, r"one_based\.json: image_id 36 names frame 36, beyond the 36 frames of dance\.mp4 "
                                  r'\(frames 0\.\.35; .*\(numbered from 1\? pass --first-frame 1\)')
    _one_line_error(capsys, argv + ['--first-frame', 2], r'image_id 1 is frame 1, before --first-frame 2')
    converted, out = _convert(tmp_path, capsys, 'coco', path, '--video', video, '--first-frame', 1)
    np.testing.assert_allclose(converted, _expected(long_truth, COCO_NAMES), atol=1e-3)
    assert 'image_id 1 is frame 0 (--first-frame)' in out and '0 before the first detection' in out


def test_ids_that_are_no_frame_numbers_must_match_the_videos_count(long_truth, tmp_path, capsys):
    keypoints = in_format(long_truth, COCO_NAMES)[:5]
    path = _write_json(tmp_path / 'named.json',
                       detector_results(keypoints, ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg', 'e.jpg']))
    converted, out = _convert(tmp_path, capsys, 'coco', path)
    assert "image_ids without a number: frames in image_id order, frame 0 = 'a.jpg'" in out
    np.testing.assert_allclose(converted, _expected(long_truth[:5], COCO_NAMES), atol=1e-3)
    _one_line_error(capsys, ['convert', '--from', 'coco', path, '--out', tmp_path / 'data_2d_custom_x.npz',
                             '--video', _video(tmp_path / 'dance.mp4')],
                    r'named\.json: image_ids without a number, so its 5 entries cannot be placed on the 36 frames')


def test_nan_coordinates_are_counted_apart_from_low_confidence(truth, tmp_path, capsys):
    h36m = np.concatenate([truth, np.full((FRAMES, 17, 1), 0.9)], axis=-1)
    h36m[4, H36M_INDEX['left_wrist'], :2] = np.nan                  # no coordinates, confidence 0.9
    h36m[5, H36M_INDEX['left_wrist'], 0] = np.inf
    h36m[6, H36M_INDEX['right_knee'], 2] = 0.1                      # located, not confident
    np.save(tmp_path / 'nan.npy', h36m)
    converted, out = _convert(tmp_path, capsys, 'h36m', tmp_path / 'nan.npy')
    assert '1 below confidence 0.3 (--min-confidence), 2 without coordinates (NaN or infinite in the file)' in out
    wrist = truth[:, H36M_INDEX['left_wrist']]
    np.testing.assert_allclose(converted[4:6, H36M_INDEX['left_wrist']], [wrist[3] + (wrist[6] - wrist[3]) * k / 3
                                                                    for k in (1, 2)], atol=1e-3)
    coco = in_format(truth, COCO_NAMES)
    coco[2, COCO_NAMES.index('right_ankle'), :2] = np.nan      # JSON's NaN literal
    converted, out = _convert(tmp_path, capsys, 'coco', _write_json(tmp_path / 'nan.json',
                                                                    detector_results(coco, range(FRAMES))))
    assert '0 below confidence 0.3 (--min-confidence), 1 without coordinates' in out
    assert np.isfinite(converted).all()


def test_detect_keeps_every_decoded_frame(long_truth, tmp_path, capsys, monkeypatch):
    """The detector (faked: no MediaPipe here) finds the person in frames 20..29 of a 36-frame video."""
    from common.data import pose_detector
    coco = in_format(long_truth, COCO_NAMES)

    def landmarks_of(frames):           # BlazePose's 33 landmarks, normalised, from the COCO joints they share
        landmarks = []
        for index, _ in enumerate(frames):
            if not FIRST_SEEN <= index <= LAST_SEEN:
                landmarks.append(None)
                continue
            frame = np.zeros((33, 4))
            for k, name in enumerate(BLAZEPOSE_NAMES):
                point = coco[index, COCO_NAMES.index(name)] if name in COCO_NAMES else coco[index, 0]
                frame[k] = (point[0] / 16, point[1] / 16, 0.0, 0.9)
            landmarks.append(frame)
        return landmarks
    monkeypatch.setattr(pose_detector, '_pose_solution', lambda: None)
    monkeypatch.setattr(pose_detector, 'detect_landmarks', landmarks_of)
    out_file = tmp_path / 'data_2d_custom_dance.npz'
    cli.main(['detect', str(_video(tmp_path / 'dance.mp4')), '--out', str(out_file)])
    out = capsys.readouterr().out
    with np.load(out_file, allow_pickle=True) as saved:
        converted = saved['positions_2d'].item()['dance.mp4']['custom'][0]
    assert converted.shape == (VIDEO_FRAMES, 17, 2)
    np.testing.assert_allclose(converted[FIRST_SEEN:LAST_SEEN + 1],
                               _expected(long_truth, COCO_NAMES)[FIRST_SEEN:LAST_SEEN + 1], atol=1e-3)
    assert 'Frames without the person, filled: 20 before the first detection (its pose held), 6 after the last' in out


def test_unwritable_out_is_refused_before_reading(tmp_path, capsys):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    _one_line_error(capsys, ['convert', '--from', 'coco', tmp_path / 'missing.json', '--video-size', 9, 9,
                             '--out', blocker / 'data_2d_custom_x.npz'], r'--out .*a_file/data_2d_custom_x.npz: .*a_file is a file, expected a folder')


def test_frame_numbers_start_at_the_first_frame_not_the_first_detection():
    from common.data.frame_numbering import NumberedEntries, place_on_video
    late = place_on_video(NumberedEntries({n: [n] for n in range(200, 210)}, 'image_id'), 'late.json')
    assert len(late.frames) == 210 and late.frames[:200] == [[]] * 200 and late.frames[205] == [205]
    coco_ids = place_on_video(NumberedEntries({139 + 1000 * n: [n] for n in range(5)}, 'image_id'), 'val.json')
    assert coco_ids.frames == [[0], [1], [2], [3], [4]] and 'no frame numbers' in coco_ids.numbering
    with pytest.raises(cli.UserError, match=r'--first-frame 1: val\.json has 5 image_ids spread over 139\.\.4139'):
        place_on_video(NumberedEntries({139 + 1000 * n: [n] for n in range(5)}, 'image_id'), 'val.json',
                       first_frame=1)


# The detector's environment (requirements-detector.txt) has no torch: python -m common.keypoints, with what
# convert and detect import when they start (the video reader, the detector), must load without it.
IMPORT_WITHOUT_TORCH = """
import sys
sys.modules['torch'] = None          # every import of torch now raises ModuleNotFoundError
for module in sys.argv[1:]:
    __import__(module)
"""


@pytest.mark.parametrize('modules, code', [
    (['common.keypoints', 'common.data.video_io', 'common.data.pose_detector'], 0),
    (['common.data.camera'], 1),           # the check itself: a module that needs torch fails
])
def test_the_command_loads_without_torch(modules, code):
    ended = subprocess.run([sys.executable, '-c', IMPORT_WITHOUT_TORCH, *modules], cwd=REPO_ROOT,
                           capture_output=True, text=True, timeout=60)
    assert ended.returncode == code, ended.stderr
    assert ("import of torch halted" in ended.stderr) == (code == 1)

"""Several people in one video: ``convert --person all`` keeps each person's identity, main.py predicts
and renders them together.

Two synthetic walkers (the generator's articulated poses, moved along straight lines in the image)
cross each other's path at frame ``CROSSING``; person B is missing for the frames ``GAP``, while a
third, small person far away shows up. Every frame lists its detections in
a random order. The true keypoints are known, so each written track is compared with its person.
"""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import main
from common import keypoints as cli
from common.data.custom_data import load_custom_keypoints
from common.data.frame_numbering import place_on_video
from common.data.keypoint_formats import layout_for
from common.data.keypoint_readers import read_keypoints
from common.data.keypoint_tracks import Detection
from common.data.person_tracks import person_entry_name, split_person_entry, track_people
from common.data.video_io import read_frames
from common.run.checkpoints import save_checkpoint
from common.run.pose_export import person_export_path
from common.run.visualization import DOTS_PER_INCH, person_colour
from common.synthetic import writer as synthetic
from common.synthetic.body import random_body
from support.models import WINDOW, build_tiny_model, tiny_config
from support.runs import SAMPLING

FRAMES = 30
SIZE = (1000, 1002)
CROSSING = 10                   # A walks right, B walks left: same x here
STEP_PX = 20                    # each walker's horizontal step per frame
GAP = [20, 21, 22]              # frames without B
STRANGER = GAP                  # a third, small person at the top right while B is away: B's open track
                                # must not take it (the gate)
STRANGER_FRAMES = len(STRANGER)
# Human3.6M joints that COCO (and OpenPose) give directly (the others are built from them).
DIRECT = [1, 2, 3, 4, 5, 6, 9, 11, 12, 13, 14, 15, 16]
H36M_TO_COCO = [9, 9, 9, 9, 9, 11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3]     # eyes and ears at the nose
H36M_TO_BODY_25 = [9, 8, 14, 15, 16, 11, 12, 13, 0, 1, 2, 3, 4, 5, 6, 9, 9, 9, 9, 6, 6, 6, 3, 3, 3]
VIDEO = 'walk.mp4'


def _walker(seed: int, scale: float, start, step) -> np.ndarray:
    """(FRAMES, 17, 2) float64 pixels, Human3.6M order: a synthetic walk's pose around its pelvis,
    scaled, with the pelvis moved from ``start`` by ``step`` pixels per frame."""
    take = synthetic.build_h36m_take(seed, 'S9', random_body(np.random.default_rng(seed)), 'Walking', 0,
                                     synthetic.SIZES['demo'], frames=FRAMES)
    pose = take.views[0].keypoints_px.astype(np.float64)
    pelvis = np.asarray(start) + np.arange(FRAMES)[:, None] * np.asarray(step)
    return scale * (pose - pose[:, :1]) + pelvis[:, None]


@pytest.fixture(scope='module')
def people():
    """{'A', 'B', 'stranger'}: each person's true (FRAMES, 17, 2) pixels; B is smaller and higher (farther)."""
    a = _walker(0, 1.0, (500 - CROSSING * STEP_PX, 600), (STEP_PX, 0))
    b = _walker(1, 0.8, (500 + CROSSING * STEP_PX, 560), (-STEP_PX, 0))
    stranger = _walker(2, 0.4, (900, 150), (0, 0))
    assert np.allclose(a[CROSSING, 0, 0], b[CROSSING, 0, 0])            # the paths cross
    return {'A': a, 'B': b, 'stranger': stranger}


def _present(people):
    """{frame: [(who, (17, 2) pixels)]} in a shuffled order per frame."""
    rng = np.random.default_rng(7)
    frames = {}
    for frame in range(FRAMES):
        here = [('A', people['A'][frame])]
        here += [] if frame in GAP else [('B', people['B'][frame])]
        here += [('stranger', people['stranger'][frame])] if frame in STRANGER else []
        frames[frame] = [here[i] for i in rng.permutation(len(here))]
    return frames


def _flat(keypoints, order, confidence=0.9):
    """[x, y, score] * K of a (17, 2) Human3.6M pose in a format's joint ``order``."""
    return np.column_stack([keypoints[order], np.full(len(order), confidence)]).ravel().tolist()


def _write(tmp_path, people, file_format):
    """The people in ``file_format``'s own files: COCO results, AlphaPose results (COCO-17, tracker ids
    that are no help), OpenPose's per-frame folder (BODY_25)."""
    frames = _present(people)
    if file_format == 'openpose':
        folder = tmp_path / 'openpose'
        folder.mkdir()
        for frame, here in frames.items():
            content = {'people': [{'person_id': [-1], 'pose_keypoints_2d': _flat(k, H36M_TO_BODY_25)} for _, k in here]}
            (folder / f'walk_{frame:012d}_keypoints.json').write_text(json.dumps(content))
        return folder
    results = [{'image_id': frame, 'keypoints': _flat(k, H36M_TO_COCO), 'score': 0.9, 'idx': [number]}
               for frame, here in frames.items() for number, (_, k) in enumerate(here)]
    path = tmp_path / f'{file_format}.json'
    path.write_text(json.dumps(results))
    return path


def _convert(capsys, source, file_format, *flags, name='two'):
    out = source.parent / f'data_2d_custom_{name}.npz'
    cli.main(['convert', '--from', file_format, str(source), '--video-size', *map(str, SIZE), '--video-name', VIDEO,
              '--person', 'all', '--out', str(out), *map(str, flags)])
    return out, capsys.readouterr().out


def _entries(path) -> dict:
    """{entry: (N, 17, 2) pixels} of a written custom file, and the entries main.py reads from it."""
    with np.load(path, allow_pickle=True) as saved:
        positions = saved['positions_2d'].item()
    custom = load_custom_keypoints(path.parent, path.stem[len('data_2d_custom_'):])
    assert [s.subject for s in custom.dataset.sequences] == list(positions)
    return {name: views['custom'][0].astype(np.float64) for name, views in positions.items()}


def test_tracks_keep_each_identity_through_the_crossing_and_the_gap(people, tmp_path):
    layout, entries = read_keypoints('coco', _write(tmp_path, people, 'coco'))
    placed = place_on_video(entries, 'coco.json', FRAMES)
    found = track_people(placed.frames, layout.num_joints, 0.3, layout.used_joints(), max_gap=10, min_track_frames=10)
    assert len(found.tracks) == 2 and found.dropped == [STRANGER_FRAMES] and found.not_started == 0
    a, b = found.tracks                                    # A starts on the left: person 1
    detected_b = np.setdiff1d(np.arange(FRAMES), GAP)
    assert a.present.all() and np.array_equal(np.flatnonzero(b.present), detected_b)
    np.testing.assert_allclose(a.keypoints[:, :, :2], people['A'][:, H36M_TO_COCO], atol=1e-6, rtol=0)
    np.testing.assert_allclose(b.keypoints[detected_b, :, :2], people['B'][detected_b][:, H36M_TO_COCO],
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize('file_format', ['coco', 'halpe', 'openpose'])
def test_every_format_writes_one_entry_per_person_filled_on_every_frame(people, tmp_path, capsys, file_format):
    out, printed = _convert(capsys, _write(tmp_path, people, file_format), file_format)
    assert (f'Tracks found: 3 (matched frame to frame, kept through gaps of up to 10 frames, --max-gap); dropped, as '
            f'detected in fewer than 10 frames (--min-track-frames): 1, detected in {STRANGER_FRAMES} '
            'frames') in printed
    assert f'{VIDEO}_person1: detected in 30 of 30 frames, filled in 0 ' in printed
    assert (f'{VIDEO}_person2: detected in 27 of 30 frames, filled in 3 (0 before the first detection and 0 after '
            'the last: pose held; 3 in between: interpolated)') in printed
    assert f"as people '{VIDEO}_person1', '{VIDEO}_person2', 30 frames" in printed
    written = _entries(out)
    assert list(written) == [f'{VIDEO}_person1', f'{VIDEO}_person2']
    a, b = written.values()
    detected_b = np.setdiff1d(np.arange(FRAMES), GAP)
    np.testing.assert_allclose(a[:, DIRECT], people['A'][:, DIRECT], atol=1e-4, rtol=0)      # float32 in the file
    np.testing.assert_allclose(b[detected_b][:, DIRECT], people['B'][detected_b][:, DIRECT], atol=1e-4, rtol=0)
    before, after = GAP[0] - 1, GAP[-1] + 1                  # B's gap: interpolated linearly in time, joint by joint
    weights = (np.array(GAP) - before) / (after - before)
    between = people['B'][before] + weights[:, None, None] * (people['B'][after] - people['B'][before])
    np.testing.assert_allclose(b[GAP][:, DIRECT], between[:, DIRECT], atol=1e-4, rtol=0)


def test_a_gap_longer_than_max_gap_starts_another_person(people, tmp_path, capsys):
    _, printed = _convert(capsys, _write(tmp_path, people, 'coco'), 'coco', '--max-gap', len(GAP) - 1)
    after_gap = FRAMES - GAP[-1] - 1                      # B again, too short: dropped after the stranger
    assert (f'Tracks found: 4 (matched frame to frame, kept through gaps of up to 2 frames, --max-gap); dropped, as '
            f'detected in fewer than 10 frames (--min-track-frames): 2, detected in {STRANGER_FRAMES}, {after_gap} '
            'frames') in printed
    assert (f'{VIDEO}_person2: detected in {GAP[0]} of {FRAMES} frames, filled in {FRAMES - GAP[0]} (0 before the '
            f'first detection and {FRAMES - GAP[0]} after the last') in printed
    (tmp_path / 'low').mkdir()
    _, printed = _convert(capsys, _write(tmp_path / 'low', people, 'coco'), 'coco', '--min-track-frames',
                          STRANGER_FRAMES)
    assert f'{VIDEO}_person3: detected in {STRANGER_FRAMES} of {FRAMES} frames' in printed and 'dropped' not in printed


def _detection_at(x: float) -> Detection:
    """A standing person of the synthetic walk's first pose, pelvis at (x, 500) px, joints confident."""
    pose = _walker(0, 1.0, (0, 0), (0, 0))[0]
    return Detection(np.column_stack([pose[H36M_TO_COCO] + (x, 500), np.ones(17)]))


def test_identities_are_matched_together_not_track_by_track():
    """Two people 100 px apart both step 60 px left: the first track's nearest detection is the second
    person (40 px from it); giving each track its nearest in turn would swap them, the least total
    distance (60 + 60 px, against 40 + 160 px) keeps them."""
    frames = [[_detection_at(0), _detection_at(100)], [_detection_at(40), _detection_at(-60)]]
    coco = layout_for('coco', 17)
    found = track_people(frames, 17, 0.3, coco.used_joints(), max_gap=0, min_track_frames=1)
    left, right = (t.keypoints[:, 0, 0] for t in found.tracks)
    nose = _detection_at(0).keypoints[0, 0]
    np.testing.assert_allclose(left - nose, [0, -60])
    np.testing.assert_allclose(right - nose, [100, 40])


def test_entry_names_carry_video_and_person():
    assert person_entry_name('my_person1.mp4', 12) == 'my_person1.mp4_person12'
    assert split_person_entry('my_person1.mp4_person12') == ('my_person1.mp4', 12)
    assert [split_person_entry(n) for n in ('walk.mp4', 'walk_person0', 'walk_person', '_person2')] == [None] * 4
    assert person_export_path('out/walk_3d.npy', 'walk.mp4_person3') == Path('out/walk_3d_person3.npy')


def _one_line_error(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(a) for a in argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and re.fullmatch(f'error: {message}\n', err), err


def test_one_person_formats_and_detect_refuse_all(tmp_path, capsys):
    out = tmp_path / 'data_2d_custom_x.npz'
    np.save(tmp_path / 'one.npy', np.ones((4, 17, 2)))
    takes = '--person all takes convert --from coco, halpe, openpose'
    for file_format in ('mediapipe', 'h36m'):
        _one_line_error(capsys, ['convert', '--from', file_format, tmp_path / 'one.npy', '--video-size', 10, 10,
                                 '--person', 'all', '--out', out],
                        f'--person all: --from {file_format} files hold one person per frame; {takes}')
    _one_line_error(capsys, ['detect', tmp_path / 'one.npy', '--person', 'all', '--out', out],
                    f'--person all: detect \\(MediaPipe\\) finds one person per frame; {takes}')
    _one_line_error(capsys, ['convert', '--from', 'coco', tmp_path / 'one.npy', '--video-size', 10, 10,
                             '--max-gap', 3, '--out', out],
                    '--max-gap: used only with --person all, which is not given')
    assert not out.exists()


def test_no_people_and_only_short_tracks_are_one_line_errors(people, tmp_path, capsys):
    empty = tmp_path / 'empty'
    empty.mkdir()
    for frame in range(5):
        (empty / f'walk_{frame:012d}_keypoints.json').write_text(json.dumps({'people': []}))
    out = tmp_path / 'data_2d_custom_x.npz'
    _one_line_error(capsys, ['convert', '--from', 'openpose', empty, '--video-size', 10, 10, '--person', 'all',
                             '--out', out], f'--person all: {empty} has no person in any frame; nothing written')
    coco = _write(tmp_path, people, 'coco')
    _one_line_error(capsys, ['convert', '--from', 'coco', coco, '--video-size', *SIZE, '--person', 'all',
                             '--min-track-frames', FRAMES + 1, '--out', out],
                    f'--person all: no track of {coco} is detected in --min-track-frames {FRAMES + 1} frames '
                    f'\\(tracks found: 3, the longest detected in {FRAMES} frames\\); lower it, e.g. '
                    f'--min-track-frames {FRAMES}; nothing written')
    assert not out.exists()


def test_a_person_without_some_joint_anywhere_is_dropped_not_the_video(people, tmp_path, capsys):
    """A's left wrist (COCO 9) has no coordinates in any frame: A is dropped with the reason, B becomes person 1."""
    results = [{'image_id': frame, 'score': 0.9,
                'keypoints': [float('nan') if who == 'A' and i // 3 == 9 and i % 3 < 2 else v
                              for i, v in enumerate(_flat(k, H36M_TO_COCO))]}
               for frame, here in _present(people).items() for who, k in here]
    source = tmp_path / 'coco.json'
    source.write_text(json.dumps(results))
    out, printed = _convert(capsys, source, 'coco')
    assert (f'Dropped: {source}: the person first detected in frame 0: left_wrist without coordinates (NaN) in every '
            'frame of the person') in printed
    (b,) = _entries(out).values()
    detected_b = np.setdiff1d(np.arange(FRAMES), GAP)
    np.testing.assert_allclose(b[detected_b][:, DIRECT], people['B'][detected_b][:, DIRECT], atol=1e-4, rtol=0)
    assert f'{VIDEO}_person1: detected in 27 of 30 frames' in printed and '_person2' not in printed


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp('multi')
    torch.manual_seed(0)
    save_checkpoint(folder / 'tiny.bin', model=build_tiny_model(), model_config=tiny_config(), epoch=0, lr=0.0)
    return folder


def _colour_pixels(frame: np.ndarray, index: int) -> int:
    """Pixels of ``frame`` (H, W, 3) uint8 within a video codec's error of ``person_colour(index)``."""
    colour = np.asarray(person_colour(index)) * 255
    return int(np.sum(np.abs(frame.astype(float) - colour).max(axis=-1) < 40))


def test_two_people_are_predicted_exported_and_rendered_in_one_video(people, tiny_checkpoint, tmp_path, capsys):
    folder = tiny_checkpoint
    _convert(capsys, _write(folder, people, 'coco'), 'coco', name='two')
    run = ['-d', 'custom', '-k', 'two', '--data-dir', folder, '-c', folder, '--evaluate', 'tiny.bin', '-f', WINDOW,
           '-cs', 32, '-dep', 2, '--text-tower', 'tiny', *SAMPLING]
    main.main([str(a) for a in run])
    with np.load(folder / 'custom_two_3d.npz', allow_pickle=True) as saved:
        trajectory = saved['trajectory'].item()
        assert {v: a[0].shape for v, a in saved['positions_3d'].item().items()} == {
            f'{VIDEO}_person1': (FRAMES, 17, 3), f'{VIDEO}_person2': (FRAMES, 17, 3)}
    capsys.readouterr()
    video, export = tmp_path / 'both.mp4', tmp_path / 'walk_3d.npy'
    main.main([str(a) for a in run + ['--viz-subject', VIDEO, '--render', '--viz-output', video, '--viz-export', export,
                                      '--viz-limit', 12, '--viz-size', 3]])
    printed = capsys.readouterr().out
    assert f'Wrote {video}: 12 frames at 30 fps, 2 people' in printed
    for number in (1, 2):            # one export per person, the same poses as the full run
        assert f'walk_3d_person{number}.npy: poses ({FRAMES}, 17, 3)' in printed
        assert np.load(tmp_path / f'walk_3d_person{number}.npy').shape == (FRAMES, 17, 3)
    assert not export.exists()
    alone = tmp_path / 'person2.npy'                # one person picked by its entry name: one plain file
    main.main([str(a) for a in run + ['--viz-subject', f'{VIDEO}_person2', '--viz-export', alone]])
    np.testing.assert_array_equal(np.load(alone), np.load(tmp_path / 'walk_3d_person2.npy'))
    assert not np.allclose(trajectory[f'{VIDEO}_person1'][0][:, 0], trajectory[f'{VIDEO}_person2'][0][:, 0])
    frames = list(read_frames(video))
    panel = 3 * DOTS_PER_INCH
    assert len(frames) == 12 and frames[0].shape == (panel, 2 * panel, 3)
    for index in (0, 1):             # each person's colour in the input panel and in the 3D panel
        assert _colour_pixels(frames[0][:, :panel], index) > 20
        assert _colour_pixels(frames[0][:, panel:], index) > 20

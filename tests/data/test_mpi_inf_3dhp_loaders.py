"""MPI-INF-3DHP processed files: loaders on tiny files written here, and the converter on the real TS5/TS6."""
import numpy as np
import pytest
import torch

from common.core.errors import EXIT_USER_ERROR, UserError
from common.data.camera import image_coordinates, project_to_2d_linear
from common.data.mpi_inf_3dhp import convert_test_annotations, load_3dhp_test, load_3dhp_train, read_test_annotations
from common.mpi_inf_3dhp import main

PELVIS = 14
MIRROR_3DHP = [0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 14, 15, 16]


def _views(rng, n, width, height):
    data_3d = rng.normal(scale=300, size=(n, 17, 3)) + [100, -200, 4000]      # millimetres
    data_2d = rng.uniform(0, [width, height], size=(n, 17, 2))                 # pixels
    return {'data_3d': data_3d.astype(np.float32), 'data_2d': data_2d.astype(np.float32)}


def make_train_content(seed=0):
    rng = np.random.default_rng(seed)
    return {'S1 Seq1': [{0: _views(rng, 7, 2048, 2048), 2: _views(rng, 7, 2048, 2048)}],
            'S2 Seq2': [{5: _views(rng, 4, 2048, 2048)}]}


def make_test_content(seed=1):
    rng = np.random.default_rng(seed)
    data = {'TS1': _views(rng, 6, 2048, 2048), 'TS5': _views(rng, 5, 1920, 1080)}
    data['TS1']['valid'] = np.array([1, 1, 0, 1, 0, 1], np.float32)
    data['TS5']['valid'] = np.array([0, 1, 1, 1, 1], np.float32)
    return data


def _one_line_error(call, match):
    with pytest.raises(UserError, match=match) as err:
        call()
    assert '\n' not in str(err.value)


@pytest.mark.parametrize('with_fps', [False, True], ids=['cameras', 'cameras-and-fps'])
def test_train_loader_metres_root_relative_and_normalised(tmp_path, with_fps):
    content = make_train_content()
    if with_fps:                        # the community's file: [cameras, fps] per sequence
        content = {take: [entry[0], 25] for take, entry in content.items()}
    path = tmp_path / 'data_train_3dhp_ori.npz'
    np.savez_compressed(path, data=content)
    dataset = load_3dhp_train(path)
    assert dataset.name == 'mpi_inf_3dhp' and dataset.keypoints_mirror.tolist() == MIRROR_3DHP
    assert [(s.subject, s.camera, s.num_frames) for s in dataset.sequences] == [
        ('S1 Seq1', 0, 7), ('S1 Seq1', 2, 7), ('S2 Seq2', 5, 4)]
    for seq in dataset.sequences:
        views = content[seq.subject][0][seq.camera]
        metres = views['data_3d'].astype(np.float64) / 1000
        assert seq.action == '' and seq.action_label == '' and seq.intrinsics is None and seq.valid is None
        assert seq.resolution == (2048, 2048)
        assert np.all(seq.positions_3d[:, PELVIS] == 0)
        np.testing.assert_allclose(seq.trajectory, metres[:, PELVIS], atol=1e-6)
        np.testing.assert_allclose(seq.positions_3d, metres - metres[:, PELVIS:PELVIS + 1], atol=1e-6)
        np.testing.assert_allclose(seq.keypoints_2d, views['data_2d'] / 1024 - 1, atol=1e-6)


def test_test_loader_valid_resolution_and_linear_intrinsics(tmp_path):
    content = make_test_content()
    path = tmp_path / 'data_test_3dhp_ori.npz'
    np.savez_compressed(path, data=content)
    dataset = load_3dhp_test(path)
    ts1, ts5 = dataset.sequences
    assert (ts1.subject, ts5.subject) == ('TS1', 'TS5')
    assert ts1.valid.dtype == bool and ts1.valid.tolist() == [True, True, False, True, False, True]
    assert ts5.resolution == (1920, 1080)
    # 1920 x 1080: u / 960 - 1, v / 960 - 1080 / 1920.
    np.testing.assert_allclose(ts5.keypoints_2d, content['TS5']['data_2d'] / 960 - [1, 0.5625], atol=1e-6)
    np.testing.assert_allclose(ts5.trajectory, content['TS5']['data_3d'][:, PELVIS] / 1000, atol=1e-6)
    # Sensor intrinsics in normalised units: f_mm * 2 / sensor_w; offset_mm * 2 / sensor_w (x and y alike).
    np.testing.assert_allclose(ts1.intrinsics, [7.32506 * 0.2, 7.32506 * 0.2, -0.0322884 * 0.2, 0.0929296 * 0.2,
                                                0, 0, 0, 0, 0], rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ts5.intrinsics, [8.770747185 * 0.2, 8.770747185 * 0.2, -0.104908645 * 0.2,
                                                0.104899704 * 0.2, 0, 0, 0, 0, 0], rtol=1e-6, atol=1e-8)
    only = load_3dhp_test(path, sequences=['TS5'])
    assert [s.subject for s in only.sequences] == ['TS5']
    _one_line_error(lambda: load_3dhp_test(path, sequences=['TS3']), r'no test sequence TS3; sequences found: TS1, TS5')


def test_missing_files_and_keys(tmp_path):
    _one_line_error(lambda: load_3dhp_train(tmp_path / 'data_train_3dhp_ori.npz'),
                    r'data_train_3dhp_ori\.npz: not found;.*P-STMO.*python -m common\.synthetic --out')
    _one_line_error(lambda: load_3dhp_test(tmp_path / 'data_test_3dhp_ori.npz'),
                    r'data_test_3dhp_ori\.npz: not found;.*python -m common\.mpi_inf_3dhp convert-test')
    np.savez_compressed(tmp_path / 'x.npz', positions=make_test_content())
    _one_line_error(lambda: load_3dhp_test(tmp_path / 'x.npz'), r"x\.npz: no key 'data'; keys found: positions")


def _train_not_a_list(train, test):
    train['S1 Seq1'] = train['S1 Seq1'][0]


def _train_three_items(train, test):
    train['S2 Seq2'] = train['S2 Seq2'] + [25, 'extra']


def _train_16_joints(train, test):
    train['S2 Seq2'][0][5]['data_3d'] = train['S2 Seq2'][0][5]['data_3d'][:, :16]


def _train_2d_length(train, test):
    train['S1 Seq1'][0][2]['data_2d'] = train['S1 Seq1'][0][2]['data_2d'][:5]


def _train_nan(train, test):
    train['S1 Seq1'][0][2]['data_2d'][3, 0, 1] = np.nan


def _train_no_2d(train, test):
    del train['S2 Seq2'][0][5]['data_2d']


def _test_no_valid(train, test):
    del test['TS5']['valid']


def _test_valid_length(train, test):
    test['TS1']['valid'] = test['TS1']['valid'][:4]


def _test_inf(train, test):
    test['TS5']['data_3d'][2, 14, 0] = np.inf


def _test_unknown_sequence(train, test):
    test['TS9'] = test.pop('TS5')


@pytest.mark.parametrize('which, corrupt, message', [
    ('train', _train_not_a_list, r'data\[S1 Seq1\] should be a list \[dict camera -> \{data_3d, data_2d\}\] or '
                                  r'\[that dict, fps\], found dict$'),
    ('train', _train_three_items, r'data\[S2 Seq2\] should be a list .*, found list of 3 items$'),
    ('train', _train_16_joints, r'data\[S2 Seq2\]\[0\]\[5\]\[data_3d\]: expected shape \(N, 17, 3\), found \(4, 16, 3\)'),
    ('train', _train_2d_length, r'data\[S1 Seq1\]\[0\]\[2\]\[data_2d\]: expected shape \(7, 17, 2\), found \(5, 17, 2\)'),
    ('train', _train_nan, r'data\[S1 Seq1\]\[0\]\[2\]\[data_2d\]: NaN or inf values, first in frame 3'),
    ('train', _train_no_2d, r'data\[S2 Seq2\]\[0\]\[5\]: expected a dict with data_3d and data_2d, found data_3d'),
    ('test', _test_no_valid, r"data\[TS5\]: no key 'valid'"),
    ('test', _test_valid_length, r'data\[TS1\]\[valid\]: expected shape \(6,\), found \(4,\)'),
    ('test', _test_inf, r'data\[TS5\]\[data_3d\]: NaN or inf values, first in frame 2'),
    ('test', _test_unknown_sequence, r'data\[TS9\]: unknown test sequence; expected one of TS1, TS2'),
])
def test_bad_files_are_one_line_user_errors(tmp_path, which, corrupt, message):
    train, test = make_train_content(), make_test_content()
    corrupt(train, test)
    np.savez_compressed(tmp_path / 'train.npz', data=train)
    np.savez_compressed(tmp_path / 'test.npz', data=test)
    load = load_3dhp_train if which == 'train' else load_3dhp_test
    _one_line_error(lambda: load(tmp_path / f'{which}.npz'), message)


@pytest.fixture(scope='module')
def converted_ts5_ts6(mpi_inf_3dhp_annotations, tmp_path_factory):
    out = tmp_path_factory.mktemp('converted') / 'data_test_3dhp_ori.npz'
    convert_test_annotations(mpi_inf_3dhp_annotations, out, ['TS5', 'TS6'])
    return out


def test_converter_on_real_ts5_ts6(converted_ts5_ts6, mpi_inf_3dhp_annotations):
    assert [p.name for p in converted_ts5_ts6.parent.iterdir()] == ['data_test_3dhp_ori.npz']   # no temp file left
    raw = np.load(converted_ts5_ts6, allow_pickle=True)['data'].item()
    assert {name: raw[name]['data_3d'].dtype for name in raw} == {'TS5': np.float32, 'TS6': np.float32}
    dataset = load_3dhp_test(converted_ts5_ts6)
    annotations = read_test_annotations(mpi_inf_3dhp_annotations, ['TS5', 'TS6'])
    assert [(s.subject, s.num_frames, int(s.valid.sum())) for s in dataset.sequences] == [
        ('TS5', 320, 276), ('TS6', 492, 392)]
    for seq in dataset.sequences:
        annot3 = annotations[seq.subject].annot3
        assert np.all(seq.positions_3d[:, PELVIS] == 0)
        np.testing.assert_allclose(seq.trajectory, annot3[:, PELVIS] / 1000, atol=1e-6)
        np.testing.assert_allclose(seq.positions_3d, (annot3 - annot3[:, PELVIS:PELVIS + 1]) / 1000, atol=1e-6)
        np.testing.assert_array_equal(seq.valid, annotations[seq.subject].valid)


def test_linear_intrinsics_reproject_annot3_onto_annot2(converted_ts5_ts6, mpi_inf_3dhp_annotations):
    """SPEC section 2: the linear projection of annot3 lands within 5 px of annot2 (about 1.5 px mean on TS5)."""
    dataset = load_3dhp_test(converted_ts5_ts6)
    annotations = read_test_annotations(mpi_inf_3dhp_annotations, ['TS5', 'TS6'])
    for seq in dataset.sequences:
        absolute = torch.from_numpy(seq.positions_3d + seq.trajectory[:, None])
        intrinsics = torch.from_numpy(np.tile(seq.intrinsics, (seq.num_frames, 1)))
        projected = image_coordinates(project_to_2d_linear(absolute, intrinsics).numpy(), *seq.resolution)
        error_px = np.linalg.norm(projected - annotations[seq.subject].annot2, axis=-1)[seq.valid]
        assert error_px.max() < 5 and error_px.mean() < 2, (seq.subject, error_px.mean(), error_px.max())


def test_cli_converts_and_reports(converted_ts5_ts6, mpi_inf_3dhp_annotations, tmp_path, capsys):
    out = tmp_path / 'ts5.npz'
    main(['convert-test', str(mpi_inf_3dhp_annotations), str(out), '--sequences', 'TS5'])
    assert 'TS5: 320 frames, 276 valid' in capsys.readouterr().out
    assert [s.subject for s in load_3dhp_test(out).sequences] == ['TS5']


def test_cli_bad_sequence_exits_with_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(['convert-test', str(tmp_path), str(tmp_path / 'out.npz'), '--sequences', 'TS5,TS8'])
    assert exit_info.value.code == EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith('error: unknown test sequence TS8') and err.count('\n') == 1
    assert not (tmp_path / 'out.npz').exists()

"""Small things a run says instead of doing silently: -e 0's baseline, mirrored training clips,
training subjects that are also test subjects, and a resume with another data selection."""
import contextlib
import io

import numpy as np
import pytest

import main as h36m_main
import main_3dhp
from common.data.generators import ChunkedGenerator
from common.data.mpi_inf_3dhp import TRAIN_FILE, load_3dhp_train
from common.data.sequences import Sequence
from common.data.skeleton import H36M_17
from common.run.checkpoints import read_checkpoint
from common.run.experiment import clips_description
from support.runs import TINY_RUN_FLAGS

SEEN_SUBJECT_FLAGS = ['-k', 'synthetic_det', '-str', 'S1,S9', '-ste', 'S9', '-a', 'Walking,Eating', '--nolog']


@pytest.fixture(scope='module')
def baseline_run(tiny_dataset, tmp_path_factory):
    """-e 0 training on S1 and S9, tested on S9: (folder, its standard output)."""
    folder = tmp_path_factory.mktemp('baseline')
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        h36m_main.main(['--data-dir', str(tiny_dataset), '-c', str(folder), *SEEN_SUBJECT_FLAGS, *TINY_RUN_FLAGS,
                        '-e', '0'])
    return folder, out.getvalue()


def test_zero_epochs_say_what_they_do(baseline_run):
    folder, out = baseline_run
    assert ('-e 0: no training; the initial weights are saved as last_epoch.bin and best_epoch.bin and evaluated, an '
            'untrained baseline') in out
    assert 'Validating' not in out
    assert read_checkpoint(folder / 'best_epoch.bin')['epoch'] == 0


def test_mirrored_training_clips_are_said(baseline_run):
    # S1 and S9 x Walking and Eating x 4 cameras = 16 sequences of 40 frames, 5 clips of 9 frames each.
    assert 'Training on 640 frames of 16 sequences: 80 clips x 2 with their mirrored copies, of 9 frames;' in \
        baseline_run[1]


def test_clip_count_without_augmentation():
    sequence = Sequence('S1', 'Walking', 0, np.zeros((20, 17, 2), np.float32), np.zeros((20, 17, 3), np.float32))
    mirror = H36M_17.mirror_permutation()
    plain = ChunkedGenerator([sequence], 9, 4, mirror, mirror, augment=False)
    flipped = ChunkedGenerator([sequence], 9, 4, mirror, mirror, augment=True)
    assert clips_description(plain, 9) == '3 clips of 9 frames'
    assert clips_description(flipped, 9) == '3 clips x 2 with their mirrored copies, of 9 frames'


def test_training_subjects_among_the_test_subjects_get_a_note(baseline_run):
    assert ('Note: training subjects S9 are also test subjects (-ste S9): the test numbers are on subjects seen in '
            'training') in baseline_run[1]


def test_the_checkpoint_records_the_training_data_and_a_resume_must_keep_it(baseline_run, tiny_dataset, capsys):
    folder, _ = baseline_run
    assert read_checkpoint(folder / 'last_epoch.bin')['training_data'] == {
        '-k': 'synthetic_det', '-str': 'S1,S9', '-a': 'Walking,Eating'}
    flags = [flag if flag != 'S1,S9' else 'S1' for flag in SEEN_SUBJECT_FLAGS]
    with pytest.raises(SystemExit) as exit_info:
        h36m_main.main(['--data-dir', str(tiny_dataset), '-c', str(folder), *flags, *TINY_RUN_FLAGS,
                        '-r', 'last_epoch.bin', '-e', '1'])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        f'error: -r {folder / "last_epoch.bin"}: its run trained on -str S1,S9, this command selects -str S1; resume '
        "with the run's selection (-k synthetic_det -str S1,S9 -a Walking,Eating), or start a new run in another -c\n")


def test_3dhp_checkpoints_record_their_training_file(tiny_dataset, tmp_path):
    main_3dhp.main(['--data-dir', str(tiny_dataset), '-c', str(tmp_path), *TINY_RUN_FLAGS, '-e', '0', '--nolog',
                    '--test-sequences', 'TS1'])
    train = load_3dhp_train(tiny_dataset / TRAIN_FILE).sequences
    assert read_checkpoint(tmp_path / 'last_epoch.bin')['training_data'] == {
        'training data': f'data_train_3dhp_ori.npz ({len(train)} sequences, {sum(s.num_frames for s in train)} frames)'}

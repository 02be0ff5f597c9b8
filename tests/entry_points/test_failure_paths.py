"""Failure paths of main.py that must never mislead: a diverged run stops at once, a used -c folder
is refused (or cleared with --overwrite), our checkpoints' configuration drives --evaluate and -r,
write failures and leftovers are handled, and result files of different settings coexist."""
import os
import shlex
import shutil
import time

import pytest
import torch

import common.run.training as training
import main as h36m_main
from common.run.checkpoints import read_checkpoint, save_checkpoint
from common.run.run_folder import LOCK_FILE
from support.checkpoint_damage import flip_tensor_bytes
from support.runs import DATA_FLAGS, TINY_RUN_FLAGS

BASE = ['-gpu', '', '--no-progress', '--nolog', *DATA_FLAGS]


def _main(folder, dataset, *flags):
    return h36m_main.main(['--data-dir', str(dataset), '-c', str(folder), *BASE, *flags])


def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope='module')
def one_epoch_run(tiny_dataset, tmp_path_factory):
    """A finished 1-epoch run of the tiny model (-f 9, width 32) with one evaluation table."""
    folder = tmp_path_factory.mktemp('one_epoch')
    _main(folder, tiny_dataset, *TINY_RUN_FLAGS, '-e', '1', '--nolog')
    return folder


def test_diverged_run_stops_at_the_first_non_finite_loss(tiny_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _main(tmp_path, tiny_dataset, *TINY_RUN_FLAGS, '-e', '3', '-lr', '1e38')
    assert exit_info.value.code == 2
    _one_line_error(capsys, 'training loss is nan at epoch 1, step 2', 'no checkpoint was written')
    assert not list(tmp_path.glob('*.bin')) and not list(tmp_path.glob('*.csv'))


ONE_STEP_PER_EPOCH = ['-b', '80']   # 8 sequences x 5 clips of 9 frames x 2 (flip) = 80 clips


def test_divergence_later_keeps_the_last_finite_epoch(tiny_dataset, tmp_path, capsys, monkeypatch):
    real_step, losses = training.train_step, iter([None, float('inf')])

    def diverging_in_epoch_2(*args):
        loss = real_step(*args)
        return next(losses) or loss
    monkeypatch.setattr(training, 'train_step', diverging_in_epoch_2)
    with pytest.raises(SystemExit) as exit_info:
        _main(tmp_path, tiny_dataset, *TINY_RUN_FLAGS, *ONE_STEP_PER_EPOCH, '-e', '3')
    assert exit_info.value.code == 2
    _one_line_error(capsys, 'training loss is inf at epoch 2, step 1', 'last_epoch.bin keeps epoch 1')
    assert read_checkpoint(tmp_path / 'last_epoch.bin')['epoch'] == 1
    assert read_checkpoint(tmp_path / 'best_epoch.bin')['epoch'] == 1
    assert not list(tmp_path.glob('*.csv'))                 # no evaluation after a diverged run


def test_validation_never_reports_nan(tiny_dataset, tmp_path, capsys, monkeypatch):
    import common.evaluation.protocol as evaluation
    real_evaluate = evaluation.evaluate

    def nan_result(*args, **kwargs):
        result = real_evaluate(*args, **kwargs)
        result.average[training.VALIDATION_SETTING][-1] = float('nan')
        return result
    monkeypatch.setattr(training, 'evaluate', nan_result)
    with pytest.raises(SystemExit):
        _main(tmp_path, tiny_dataset, *TINY_RUN_FLAGS, *ONE_STEP_PER_EPOCH, '-e', '2')
    out, err = capsys.readouterr()
    assert 'nan mm' not in out + err
    assert err.count('\n') == 1 and 'validation MPJPE is nan after epoch 1' in err
    assert not (tmp_path / 'best_epoch.bin').exists() and not (tmp_path / 'last_epoch.bin').exists()


def test_used_folder_is_refused_and_left_byte_identical(one_epoch_run, tiny_dataset, capsys):
    before = _snapshot(one_epoch_run)
    with pytest.raises(SystemExit) as exit_info:
        _main(one_epoch_run, tiny_dataset, *TINY_RUN_FLAGS, '-cs', '64', '-e', '1')
    assert exit_info.value.code == 2
    _one_line_error(capsys, 'already holds checkpoints of an earlier run (best_epoch.bin, last_epoch.bin)',
                    '-r last_epoch.bin', '--overwrite')
    assert _snapshot(one_epoch_run) == before


def test_overwrite_deletes_only_the_earlier_runs_files(one_epoch_run, tiny_dataset, tmp_path):
    folder = tmp_path / 'run'
    shutil.copytree(one_epoch_run, folder)
    ours = ['epoch_20.bin', 'inference_data_J_Agg.mat', 'best_epoch_H9_K9_action-none_flip_seed1_protocol-per-frame_x.csv',
            'mpii_3dhp_evaluation_sequencewise_ori_J_Agg_t1.csv', 'training_curves.png',
            'tensorboard/events.out.tfevents.1.host']
    foreign = ['best_epoch_20_10.bin', 'notes.txt', 'best_epoch.bin.bak', 'tensorboard/notes.txt']
    (folder / 'tensorboard').mkdir()
    for name in ours + foreign:
        (folder / name).write_bytes(b'x')
    _main(folder, tiny_dataset, *TINY_RUN_FLAGS, '-cs', '64', '-e', '1', '--overwrite', '--no-eval')
    assert all((folder / name).read_bytes() == b'x' for name in foreign)
    assert not any((folder / name).exists() for name in ours)
    assert read_checkpoint(folder / 'last_epoch.bin')['model_config']['width'] == 64
    assert read_checkpoint(folder / 'best_epoch.bin')['model_config']['width'] == 64


def test_final_evaluation_refuses_a_best_checkpoint_of_another_run(one_epoch_run, tiny_dataset, tmp_path, capsys):
    """Resuming from a path outside -c into a folder whose best_epoch.bin is another run's."""
    start = tmp_path / 'start.bin'
    save_checkpoint(start, **_checkpoint_fields(one_epoch_run / 'last_epoch.bin', run_id='run-a'))
    shutil.copy(one_epoch_run / 'best_epoch.bin', tmp_path / 'best_epoch.bin')
    with pytest.raises(SystemExit) as exit_info:
        _main(tmp_path, tiny_dataset, '-r', str(start), '-e', '1')
    assert exit_info.value.code == 2
    _one_line_error(capsys, 'best_epoch.bin was not written by this run')


def _checkpoint_fields(path, run_id):
    """The arguments of save_checkpoint that rebuild ``path`` under another run id."""
    from common.run.checkpoints import config_from_dict
    from common.model.build import build_model
    from common.data.skeleton import H36M_17
    checkpoint = read_checkpoint(path)
    config = config_from_dict(checkpoint['model_config'])
    model = build_model(config, H36M_17.mirror_permutation(), H36M_17.mirror_permutation())
    model.load_state_dict(checkpoint['model'], strict=False)

    class Optimizer:
        def state_dict(self):
            return checkpoint['optimizer']
    return dict(model=model, model_config=config, epoch=checkpoint['epoch'], lr=checkpoint['lr'], optimizer=Optimizer(),
                rng_states=checkpoint['rng_states'], best_val=checkpoint['best_val'], history=checkpoint['history'],
                run_id=run_id)


def test_evaluate_takes_the_configuration_from_our_checkpoint(tiny_dataset, tmp_path, capsys):
    """A 27-frame checkpoint on 40-frame sequences, without -f/-cs/-dep/--text-tower (default -f 243)."""
    _main(tmp_path, tiny_dataset, '-f', '27', '-cs', '32', '-dep', '2', '--text-tower', 'tiny', '-timestep', '4',
          '-e', '0', '--no-eval')
    capsys.readouterr()
    result = _main(tmp_path, tiny_dataset, '--evaluate', 'last_epoch.bin', '-sampling_timesteps', '2')
    out = capsys.readouterr().out
    assert 'Model configuration from' in out and '-f 27 -cs 32 -dep 2' in out and '--text-tower tiny' in out
    assert result.settings.num_steps == 2
    for flags, message in ((['-f', '9'], '-f 9: contradicts'), (['-dep', '3'], '-dep 3: contradicts'),
                           (['--text-tower', 'vit-b-32'], '--text-tower vit-b-32: contradicts'),
                           (['-sampling_timesteps', '5'], '-sampling_timesteps 5 exceeds -timestep 4 of')):
        with pytest.raises(SystemExit) as exit_info:
            _main(tmp_path, tiny_dataset, '--evaluate', 'last_epoch.bin', *flags)
        assert exit_info.value.code == 2
        _one_line_error(capsys, message)


def test_unwritable_folder_fails_before_any_work(tiny_dataset, tmp_path, capsys):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    with pytest.raises(SystemExit) as exit_info:
        _main(blocker / 'run', tiny_dataset, *TINY_RUN_FLAGS, '-e', '1')
    assert exit_info.value.code == 2
    _one_line_error(capsys, f'-c {blocker / "run"}: {blocker} is a file, expected a folder')
    with pytest.raises(SystemExit) as exit_info:
        _main(blocker, tiny_dataset, *TINY_RUN_FLAGS, '-e', '1')
    assert exit_info.value.code == 2
    _one_line_error(capsys, f'error: -c {blocker} is a file, expected a folder')


def test_an_export_under_a_regular_file_is_one_line(one_epoch_run, tiny_dataset, tmp_path, capsys):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    with pytest.raises(SystemExit) as exit_info:
        _main(one_epoch_run, tiny_dataset, '--evaluate', 'best_epoch.bin', '--viz-subject', 'S9', '--viz-action',
              'Walking', '--viz-export', str(blocker / 'poses.npy'))
    assert exit_info.value.code == 2
    _one_line_error(capsys, str(blocker / 'poses.npy'), f'{blocker} is a file')


def test_stale_temporary_files_of_ours_are_removed_at_start(one_epoch_run, tiny_dataset, tmp_path, capsys):
    folder = tmp_path / 'run'
    shutil.copytree(one_epoch_run, folder)
    stale, fresh = folder / '.last_epoch.bin.0123456789abcdef.tmp', folder / '.best_epoch.bin.fedcba9876543210.tmp'
    foreign = [folder / '.last_epoch.bin.tmp', folder / '.notes.0123456789abcdef.txt', folder / 'x.0123456789abcdef.tmp']
    for path in (stale, fresh, *foreign):
        path.write_bytes(b'partial')
    old = time.time() - 3600
    for path in (stale, *foreign):
        os.utime(path, (old, old))
    _main(folder, tiny_dataset, '--evaluate', 'best_epoch.bin')
    assert not stale.exists() and fresh.exists() and all(p.exists() for p in foreign)
    assert f'Removed 1 temporary files left by an interrupted save in {folder}: {stale.name}' in capsys.readouterr().out


def test_gt_and_none_tables_both_survive(one_epoch_run, tiny_dataset, tmp_path):
    folder = tmp_path / 'run'
    shutil.copytree(one_epoch_run, folder)
    for action in ('gt', 'none'):
        _main(folder, tiny_dataset, '--evaluate', 'best_epoch.bin', '--eval-action', action)
    _main(folder, tiny_dataset, '--evaluate', 'best_epoch.bin', '--no-test-time-flip')
    _main(folder, tiny_dataset, '--evaluate', 'best_epoch.bin', '--protocol', 'per-frame')
    _main(folder, tiny_dataset, '--evaluate', 'best_epoch.bin', '-b', '2')
    stems = sorted(p.stem for p in folder.glob('best_epoch_H1_K1_*.json'))
    # -b 4: the final evaluation of the training run; -b 1024: the original's default when -b is not written.
    assert stems == [f'best_epoch_H1_K1_action-{name}_synthetic_det_S9_a-Walking+Eating' for name in (
        'gt_flip_seed1_protocol-original-b1024',
        'gt_flip_seed1_protocol-original-b2',
        'gt_flip_seed1_protocol-original-b4',
        'gt_flip_seed1_protocol-per-frame',
        'gt_noflip_seed1_protocol-original-b1024',
        'none_flip_seed1_protocol-original-b1024')]


def test_official_checkpoint_uses_the_flags_and_carries_its_text_tower(tiny_dataset, tmp_path, capsys):
    from common.model.official_checkpoint import official_state_dict
    from support.models import build_tiny_model
    torch.save({'epoch': 80, 'model_pos': official_state_dict(build_tiny_model())}, tmp_path / 'best_epoch_20_10.bin')
    _main(tmp_path, tiny_dataset, *TINY_RUN_FLAGS, '--evaluate', 'best_epoch_20_10.bin', '--require-clip-weights')
    out = capsys.readouterr().out
    assert 'Model configuration from the flags (official checkpoint' in out
    assert 'loaded unchecked' not in out and 'damaged' not in out    # checked by its zip's CRC-32s
    assert 'CLIP text tower: ' + str(tmp_path / 'best_epoch_20_10.bin') + ' (official checkpoint)' in out
    with pytest.raises(SystemExit):
        _main(tmp_path, tiny_dataset, *TINY_RUN_FLAGS, '-dep', '4', '--evaluate', 'best_epoch_20_10.bin')
    _one_line_error(capsys, 'depth 2 in the file, 4 asked (set -dep)')


def test_resume_takes_the_configuration_from_the_checkpoint(one_epoch_run, tiny_dataset, tmp_path, capsys):
    folder = tmp_path / 'run'
    shutil.copytree(one_epoch_run, folder)
    capsys.readouterr()
    _main(folder, tiny_dataset, '-r', 'last_epoch.bin', '-e', '2', '-b', '4', '--no-eval')
    out = capsys.readouterr().out
    assert 'Model configuration from ' + str(folder / 'last_epoch.bin') in out and '-f 9 -cs 32 -dep 2' in out
    assert read_checkpoint(folder / 'last_epoch.bin')['epoch'] == 2
    with pytest.raises(SystemExit):
        _main(folder, tiny_dataset, '-r', 'last_epoch.bin', '-e', '3', '-cs', '64')
    _one_line_error(capsys, '-cs 64: contradicts', 'trained with -cs 32')


@pytest.mark.parametrize('flag, part', [('--evaluate', 'model'), ('-r', 'optimizer')])
def test_flipped_bytes_in_a_checkpoint_are_refused(one_epoch_run, tiny_dataset, tmp_path, capsys, flag, part):
    """100 bytes flipped inside the weights (--evaluate) or the optimizer state (-r): one line, exit 2,
    before any work; the intact file loads (test_resume_takes_the_configuration_from_the_checkpoint)."""
    path = tmp_path / 'last_epoch.bin'
    shutil.copy(one_epoch_run / 'last_epoch.bin', path)
    checkpoint = read_checkpoint(path)
    tensors = checkpoint['model'] if part == 'model' else {
        f'{index} {name}': value for index, state in checkpoint['optimizer']['state'].items()
        for name, value in state.items() if value.dim()}
    flip_tensor_bytes(path, tensors)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        _main(tmp_path, tiny_dataset, flag, 'last_epoch.bin', '-e', '2')
    assert exit_info.value.code == 2
    _one_line_error(capsys, f'error: {path}: damaged checkpoint: archive/data/',
                    'no longer matches the CRC-32 checksum written with it')
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != LOCK_FILE) == ['last_epoch.bin']


FOUR_STEPS_PER_EPOCH = ['-b', '20', '--no-eval']


def _interrupt_on_call(number, real):
    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == number:
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    return interrupted


@pytest.mark.parametrize('step_call, expected', [
    (7, 'interrupted at epoch 2 step 3; {folder}/last_epoch.bin holds epoch 1; resume with -c {folder} -r last_epoch.bin'),
    (2, 'interrupted at epoch 1 step 2; no checkpoint was written yet')])
def test_ctrl_c_in_a_step_says_what_was_kept(tiny_dataset, tmp_path, capsys, monkeypatch, step_call, expected):
    monkeypatch.setattr(training, 'train_step', _interrupt_on_call(step_call, training.train_step))
    with pytest.raises(SystemExit) as exit_info:
        _main(tmp_path, tiny_dataset, *TINY_RUN_FLAGS, *FOUR_STEPS_PER_EPOCH, '-e', '3')
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == expected.format(folder=tmp_path) + '\n'
    kept = sorted(p.name for p in tmp_path.iterdir() if p.name != LOCK_FILE)
    assert kept == (['best_epoch.bin', 'last_epoch.bin'] if step_call > 4 else [])
    if kept:
        assert read_checkpoint(tmp_path / 'last_epoch.bin')['epoch'] == 1
        monkeypatch.undo()
        _main(tmp_path, tiny_dataset, *TINY_RUN_FLAGS, *FOUR_STEPS_PER_EPOCH, '-e', '2', '-r', 'last_epoch.bin')
        assert read_checkpoint(tmp_path / 'last_epoch.bin')['epoch'] == 2


def test_ctrl_c_while_saving_leaves_whole_files(tiny_dataset, tmp_path, capsys, monkeypatch):
    """Epoch 2 writes best_epoch.bin, then last_epoch.bin; Ctrl-C halfway through the latter."""
    real_save, calls = torch.save, []

    def interrupted_on_the_fourth_file(obj, f, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            f.write(b'PK\x03\x04 half a checkpoint')
            raise KeyboardInterrupt
        return real_save(obj, f, *args, **kwargs)
    monkeypatch.setattr(torch, 'save', interrupted_on_the_fourth_file)
    with pytest.raises(SystemExit) as exit_info:
        _main(tmp_path, tiny_dataset, *TINY_RUN_FLAGS, *FOUR_STEPS_PER_EPOCH, '-e', '3')
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == (f'interrupted at epoch 2 after its last step; {tmp_path}/last_epoch.bin holds '
                                       f'epoch 1; resume with -c {tmp_path} -r last_epoch.bin\n')
    monkeypatch.undo()
    assert read_checkpoint(tmp_path / 'last_epoch.bin')['epoch'] == 1
    assert read_checkpoint(tmp_path / 'best_epoch.bin')['epoch'] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith('.tmp')]


def test_checkpoint_from_before_the_prompt_defaults_evaluates_as_trained(one_epoch_run, tiny_dataset, tmp_path,
                                                                          capsys):
    """A configuration written before --learn-prompts/--per-clip-prompts existed ('frozen_prompts',
    learnable vectors and per-clip prompts then) is adopted as it was trained, and says so once."""
    folder = tmp_path / 'run'
    shutil.copytree(one_epoch_run, folder)
    checkpoint = torch.load(folder / 'best_epoch.bin', map_location='cpu', weights_only=True)
    config = checkpoint['model_config']
    del config['learn_prompts'], config['per_clip_prompts']
    config['frozen_prompts'] = False             # the old default: learnable vectors
    checkpoint['version'] = 1
    torch.save(checkpoint, folder / 'old.bin')
    capsys.readouterr()
    _main(folder, tiny_dataset, '--evaluate', 'old.bin')
    out = capsys.readouterr().out
    assert '--learn-prompts --per-clip-prompts --text-tower tiny' in out
    assert out.count('its clips attended to their own prompts, so it loads as --per-clip-prompts') == 1
    with pytest.raises(SystemExit):
        _main(folder, tiny_dataset, '--evaluate', 'old.bin', '--frozen-prompts')
    _one_line_error(capsys, 'no --learn-prompts: contradicts', 'trained with --learn-prompts')


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_before_the_first_step_says_so_and_quotes_the_folder(one_epoch_run, tiny_dataset, tmp_path, capsys,
                                                                     monkeypatch):
    """Ctrl-C right after the 'Training on' line (here: while the optimizer is built) said 'after its
    last step'; the resume command is quoted for the shell, the folder having a space."""
    monkeypatch.setattr(training, 'make_optimizer', _interrupt)
    new, resumed = tmp_path / 'new run', tmp_path / 'run folder'
    shutil.copytree(one_epoch_run, resumed)
    capsys.readouterr()
    for folder, flags, expected in (
            (new, [], 'interrupted at epoch 1 before its first step; no checkpoint was written yet'),
            (resumed, ['-r', 'last_epoch.bin'], f"interrupted at epoch 2 before its first step; "
                                                f"{resumed}/last_epoch.bin holds epoch 1; resume with -c '{resumed}' "
                                                "-r last_epoch.bin")):
        with pytest.raises(SystemExit) as exit_info:
            _main(folder, tiny_dataset, *TINY_RUN_FLAGS, '-e', '3', *flags)
        assert exit_info.value.code == 130
        assert capsys.readouterr().err == expected + '\n'
    command = expected.split('resume with ')[1]
    assert shlex.split(command) == ['-c', str(resumed), '-r', 'last_epoch.bin']


def test_resuming_with_fewer_epochs_than_trained_is_refused(one_epoch_run, tiny_dataset, tmp_path, capsys):
    """-r last_epoch.bin -e 0 on a checkpoint of epoch 1 trained nothing and evaluated, silently."""
    folder = tmp_path / 'run'
    shutil.copytree(one_epoch_run, folder)
    before = _snapshot(folder)
    with pytest.raises(SystemExit) as exit_info:
        _main(folder, tiny_dataset, *TINY_RUN_FLAGS, '-r', 'last_epoch.bin', '-e', '0')
    assert exit_info.value.code == 2
    path = folder / 'last_epoch.bin'
    _one_line_error(capsys, f'error: -e 0: {path} has already trained 1 epoch (-e counts all the epochs of the run); '
                            f'pass -e 2 or more to train further, or evaluate it with --evaluate {path}\n')
    assert _snapshot(folder) == before
    _main(folder, tiny_dataset, *TINY_RUN_FLAGS, '-r', 'last_epoch.bin', '-e', '1')
    out = capsys.readouterr().out
    assert f'-e 1: {path} has trained 1 epoch already; nothing to train, the run evaluates best_epoch.bin' in out
    assert 'Evaluating the best checkpoint' in out and read_checkpoint(path)['epoch'] == 1


def test_a_checkpoint_of_ours_missing_a_key_is_one_line(one_epoch_run, tiny_dataset, tmp_path, capsys):
    """A hand-made dict marked as ours without 'model_config' (--evaluate), or without 'rng_states'
    (-r), was a KeyError traceback."""
    checkpoint = torch.load(one_epoch_run / 'last_epoch.bin', map_location='cpu', weights_only=True)
    torch.save({key: value for key, value in checkpoint.items() if key != 'model_config'}, tmp_path / 'bare.bin')
    torch.save({key: value for key, value in checkpoint.items() if key != 'rng_states'}, tmp_path / 'norng.bin')
    for flag, name, message in (
            ('--evaluate', 'bare.bin', f"error: {tmp_path}/bare.bin: marked as a checkpoint of this project (format "
                                       "'finepose') but without 'model_config'; expected the keys model, model_config, "
                                       "clip_fingerprint, clip_source, as training writes them\n"),
            ('-r', 'norng.bin', f"error: -r {tmp_path}/norng.bin: marked as a checkpoint of this project (format "
                                "'finepose') but without 'rng_states' to resume from; expected the keys epoch, lr, "
                                "optimizer, rng_states, best_val, history, as training writes them\n")):
        with pytest.raises(SystemExit) as exit_info:
            _main(tmp_path, tiny_dataset, flag, name, '-e', '2')
        assert exit_info.value.code == 2
        _one_line_error(capsys, message)


def test_a_refused_run_leaves_no_folder_or_lock_behind(one_epoch_run, tiny_dataset, tmp_path, capsys):
    """A refused training or evaluation leaves no -c folder it created (nor its parents), and none of
    ours in a folder it found empty."""
    found = tmp_path / 'empty'
    found.mkdir()
    for folder, flags in ((tmp_path / 'runs' / 'new', ['-k', 'unknown_detector']),
                          (tmp_path / 'evaluations' / 'new', ['--evaluate', str(one_epoch_run / 'best_epoch.bin'),
                                                              '-cs', '64']),
                          (found, ['-k', 'unknown_detector'])):
        with pytest.raises(SystemExit) as exit_info:
            _main(folder, tiny_dataset, *TINY_RUN_FLAGS, '-e', '1', *flags)
        assert exit_info.value.code == 2
        capsys.readouterr()
    assert [p.name for p in tmp_path.iterdir()] == ['empty'] and list(found.iterdir()) == []


def test_a_result_table_name_at_the_file_systems_limit(one_epoch_run, tiny_dataset, tmp_path, capsys):
    """The evaluation table of a checkpoint with a long name: at 255 bytes (NAME_MAX) it failed after
    the whole evaluation ('File name too long': its temporary name added 22 bytes); it is written
    now, and a name one byte longer is refused before the model is built."""
    shutil.copy(one_epoch_run / 'best_epoch.bin', tmp_path / 'c.bin')
    _main(tmp_path, tiny_dataset, *TINY_RUN_FLAGS, '--evaluate', 'c.bin')
    tail = len(next(tmp_path.glob('c_H*.json')).name) - len('c')
    longest = 'c' * (255 - tail)
    shutil.copy(one_epoch_run / 'best_epoch.bin', tmp_path / f'{longest}.bin')
    _main(tmp_path, tiny_dataset, *TINY_RUN_FLAGS, '--evaluate', f'{longest}.bin')
    assert sorted(len(p.name) for p in tmp_path.glob(f'{longest}_H*')) == [254, 255]      # .csv and .json
    shutil.copy(one_epoch_run / 'best_epoch.bin', tmp_path / f'{longest}c.bin')
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        _main(tmp_path, tiny_dataset, *TINY_RUN_FLAGS, '--evaluate', f'{longest}c.bin')
    assert exit_info.value.code == 2
    _one_line_error(capsys, f'error: --evaluate {tmp_path}/{longest}c.bin: its result table {tmp_path}/{longest}c_H',
                    '.json: the file name is 256 bytes long, longer than the file system allows (255); rename the '
                    'checkpoint\n')
    assert not list(tmp_path.glob(f'{longest}c_H*'))

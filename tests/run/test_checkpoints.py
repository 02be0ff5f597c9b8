"""Our checkpoint format: atomic save, round trip, CLIP fingerprint check, official files recognised,
damage found by the zip container's CRC-32 checksums."""
import dataclasses
import errno
import os
import re

import numpy as np
import pytest
import torch

from torch.utils.serialization import config as serialization_config

from common.run.checkpoint_checksums import damaged_record
from common.run.checkpoints import (LEGACY_PROMPT_NOTE, TEXT_TOWER_PREFIX, checksum_note, config_from_dict,
                                    legacy_config_notes, load_model_weights, read_checkpoint, save_checkpoint)
from common.core.errors import UserError
from common.model.official_checkpoint import official_state_dict
from support.checkpoint_damage import flip_tensor_bytes
from support.models import build_tiny_model, tiny_config


def _save(model, path, **kwargs):
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    save_checkpoint(path, model=model, model_config=tiny_config(), epoch=3, lr=5e-5, optimizer=optimizer,
                    rng_states={'torch': torch.get_rng_state()}, best_val=42.0, history={'train_loss_mm': [1.0]}, **kwargs)


def test_round_trip_without_the_clip_tower(tmp_path):
    model = build_tiny_model()
    torch.nn.init.normal_(model.denoiser.frame_pos_embed)
    path = tmp_path / 'last_epoch.bin'
    _save(model, path)
    checkpoint = read_checkpoint(path)
    assert checkpoint['format'] == 'finepose' and checkpoint['epoch'] == 3 and checkpoint['best_val'] == 42.0
    assert not any(k.startswith(TEXT_TOWER_PREFIX) for k in checkpoint['model'])
    assert config_from_dict(checkpoint['model_config']) == tiny_config()
    other = build_tiny_model()
    load_model_weights(other, checkpoint, path)
    torch.testing.assert_close(other.state_dict(), model.state_dict())
    assert [p.name for p in tmp_path.iterdir()] == ['last_epoch.bin']      # no temporary file left


def test_configuration_from_before_the_prompt_flags_loads_as_trained():
    """Configurations saved with 'frozen_prompts' and no 'per_clip_prompts' came from models whose
    clips attended to their own prompts, with learnable vectors unless frozen_prompts."""
    current = dataclasses.asdict(tiny_config(learn_prompts=True, per_clip_prompts=True))
    assert config_from_dict(current) == tiny_config(learn_prompts=True, per_clip_prompts=True)
    assert legacy_config_notes(current) == [] and config_from_dict(dataclasses.asdict(tiny_config())) == tiny_config()
    for frozen in (False, True):
        old = {k: v for k, v in current.items() if k not in ('learn_prompts', 'per_clip_prompts')}
        old['frozen_prompts'] = frozen
        assert config_from_dict(old) == tiny_config(learn_prompts=not frozen, per_clip_prompts=True)
        assert legacy_config_notes(old) == [LEGACY_PROMPT_NOTE]


def test_different_clip_tower_is_refused(tmp_path):
    model = build_tiny_model()
    path = tmp_path / 'best_epoch.bin'
    _save(model, path)
    other = build_tiny_model()
    with torch.no_grad():
        other.prompt_encoder.text_tower.positional_embedding.add_(1.0)
    with pytest.raises(UserError, match='trained with CLIP text weights'):
        load_model_weights(other, read_checkpoint(path), path)


def test_incompatible_model_is_a_user_error(tmp_path):
    path = tmp_path / 'a.bin'
    _save(build_tiny_model(), path)
    with pytest.raises(UserError, match='incompatible with this model'):
        load_model_weights(build_tiny_model(depth=3), read_checkpoint(path), path)
    with pytest.raises(UserError, match='has shape'):
        load_model_weights(build_tiny_model(num_frames=11), read_checkpoint(path), path)


@pytest.mark.parametrize('failure', ['os_error', 'torch_wrapped'])
def test_failed_save_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch, failure):
    """A full disk: torch.save reports it as a RuntimeError whose context is the OSError."""
    model = build_tiny_model()
    path = tmp_path / 'last_epoch.bin'
    _save(model, path)
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b'partial')
        disk_full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        if failure == 'os_error':
            raise disk_full
        try:
            raise disk_full
        except OSError:
            raise RuntimeError('[enforce fail at inline_container.cc] unexpected pos')
    monkeypatch.setattr(torch, 'save', broken_save)
    with pytest.raises(UserError) as error:
        _save(model, path)
    assert str(error.value) == f'cannot write {path}: No space left on device'
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ['last_epoch.bin']


def test_checkpoint_with_nan_weights_is_refused(tmp_path):
    model = build_tiny_model()
    with torch.no_grad():
        model.denoiser.head[-1].weight[0, 0] = float('nan')
    path = tmp_path / 'last_epoch.bin'
    _save(model, path)
    with pytest.raises(UserError, match=r'parameter denoiser\.head\.1\.weight holds NaN or inf values'):
        load_model_weights(build_tiny_model(), read_checkpoint(path), path)


def test_damaged_checkpoint_message_is_whole(tmp_path):
    path = tmp_path / 'best_epoch.bin'
    _save(build_tiny_model(), path)
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[:len(data) // 2]))
    with pytest.raises(UserError) as error:
        read_checkpoint(path)
    assert str(error.value) == (f'{path}: damaged checkpoint: its zip structure is broken (File is not a zip file), '
                                'as in a file cut short by an interrupted copy, download or save; use another copy, '
                                'or an earlier epoch_N.bin')


def test_official_checkpoint_is_recognised(tmp_path):
    model = build_tiny_model()
    path = tmp_path / 'best_epoch_20_10.bin'
    torch.save({'epoch': 5, 'lr': 1e-5, 'model_pos': official_state_dict(model)}, path)
    checkpoint = read_checkpoint(path)
    assert checkpoint['format'] == 'official'
    other = build_tiny_model()
    load_model_weights(other, checkpoint, path)
    torch.testing.assert_close(other.state_dict(), model.state_dict())


def test_missing_or_foreign_files(tmp_path):
    with pytest.raises(UserError, match='not found'):
        read_checkpoint(tmp_path / 'nope.bin')
    torch.save({'something': torch.zeros(1)}, tmp_path / 'foreign.bin')
    with pytest.raises(UserError, match='no "model_pos" entry'):
        read_checkpoint(tmp_path / 'foreign.bin')


def _saved_tiny_checkpoint(path):
    model = build_tiny_model()
    torch.nn.init.normal_(model.denoiser.head[-1].weight)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.denoiser.head[-1].weight.sum().backward()
    optimizer.step()
    save_checkpoint(path, model=model, model_config=tiny_config(), epoch=3, lr=5e-5, optimizer=optimizer,
                    rng_states={'data': {'state': 2 ** 70}}, best_val=42.0, history={'train_loss_mm': [1.0]},
                    training_data={'-str': 'S1'})
    return read_checkpoint(path)

def _damage_message(path, record):
    return (f'{path}: damaged checkpoint: {record} no longer matches the CRC-32 checksum written with it '
            '(changed on disk or in transfer); use another copy, or an earlier epoch_N.bin')


@pytest.mark.parametrize('part', ['weights', 'optimizer state'])
def test_flipped_bytes_are_refused_as_damage(tmp_path, part):
    path = tmp_path / 'last_epoch.bin'
    checkpoint = _saved_tiny_checkpoint(path)
    assert checksum_note(path) is None and damaged_record(path) is None
    tensors = checkpoint['model'] if part == 'weights' else {
        f'{index} {name}': value for index, state in checkpoint['optimizer']['state'].items()
        for name, value in state.items()}
    flip_tensor_bytes(path, tensors)
    assert torch.load(path, weights_only=True)['epoch'] == 3        # torch itself does not notice
    record = damaged_record(path)
    assert re.fullmatch(r'archive/data/\d+', record)                 # the record of the flipped tensor
    with pytest.raises(UserError) as error:
        read_checkpoint(path)
    assert str(error.value) == _damage_message(path, record)


def test_a_changed_configuration_or_a_cut_file_is_damage_too(tmp_path):
    path = tmp_path / 'best_epoch.bin'
    _saved_tiny_checkpoint(path)
    intact = path.read_bytes()
    # The pickled structure (data.pkl) holds the configuration: its 'width' 16 becomes 17 in place.
    at = intact.index(b'X\x05\x00\x00\x00width') + 10                   # after the key: its memo index,
    at += {ord('q'): 2, ord('r'): 5}[intact[at]]                            # BINPUT i or LONG_BINPUT iiii,
    assert intact[at] == 0x4b and intact[at + 1] == tiny_config().width     # then BININT1 <width>
    path.write_bytes(intact[:at + 1] + bytes([tiny_config().width + 1]) + intact[at + 2:])
    with pytest.raises(UserError) as error:
        read_checkpoint(path)
    assert str(error.value) == _damage_message(path, 'archive/data.pkl')
    path.write_bytes(intact[:len(intact) // 2])                        # a transfer cut in half
    with pytest.raises(UserError, match=f'^{path}: damaged checkpoint: its zip structure is broken '):
        read_checkpoint(path)


def test_checksums_are_written_even_where_a_caller_switched_them_off(tmp_path):
    path = tmp_path / 'last_epoch.bin'
    serialization_config.save.compute_crc32 = False
    try:
        _saved_tiny_checkpoint(path)
        assert serialization_config.save.compute_crc32 is False            # restored after the save
        torch.save({'epoch': 3}, tmp_path / 'plain.bin')                   # torch's own save: no CRCs
    finally:
        serialization_config.save.compute_crc32 = True
    assert damaged_record(path) is None and read_checkpoint(path)['epoch'] == 3
    assert damaged_record(tmp_path / 'plain.bin') == 'plain/data.pkl'


def test_legacy_format_files_load_unchecked_with_a_note(tmp_path):
    path = tmp_path / 'last_epoch.bin'
    checkpoint = _saved_tiny_checkpoint(path)
    torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    assert read_checkpoint(path)['epoch'] == 3
    assert checksum_note(path) == (
        f"{path}: in torch's legacy (pre-zip) format, it carries no checksums: loaded unchecked for damage")


def test_official_checkpoints_in_the_zip_format_are_checked(tmp_path):
    path = tmp_path / 'best_epoch_20_10.bin'
    weights = official_state_dict(build_tiny_model())
    torch.save({'epoch': 5, 'model_pos': weights}, path)
    assert checksum_note(path) is None and read_checkpoint(path)['format'] == 'official'
    flip_tensor_bytes(path, weights)
    with pytest.raises(UserError, match=f'^{path}: damaged checkpoint: best_epoch_20_10/data/'):
        read_checkpoint(path)

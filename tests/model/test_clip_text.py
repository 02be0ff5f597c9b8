"""CLIP text tower: equal to OpenAI's model.py, weight loading, frozen, never downloads."""
import hashlib
import warnings

import pytest
import torch
from torch import nn

from common.core.errors import UserError
from common.model.clip_text import CLIPTextTower, TextTowerConfig, build_text_tower, load_text_tower_weights
from common.model.openai_clip import clip_source_module
from common.model.tokenizer import get_tokenizer

CONFIG = TextTowerConfig(width=64, layers=2, heads=2, embed_dim=48)


def _openai_clip():
    openai = clip_source_module('model')
    torch.manual_seed(0)
    return openai.CLIP(embed_dim=48, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=16,
                       context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=2,
                       transformer_layers=2).eval()


def _text_state(model):
    return {k: v for k, v in model.state_dict().items() if not k.startswith('visual.')}


def test_equals_openai_encode_text_on_same_weights():
    reference = _openai_clip()
    tower = CLIPTextTower(CONFIG)
    tower.load_state_dict(_text_state(reference))
    tokens = get_tokenizer().tokenize(['A person walking', 'Eating', '', 'a person sitting down slowly'])
    with torch.no_grad():
        torch.testing.assert_close(tower.encode_text(tokens), reference.encode_text(tokens), atol=1e-5, rtol=1e-5)


def test_vit_b32_shape_and_names():
    tower = CLIPTextTower()
    names = dict((k, tuple(v.shape)) for k, v in tower.state_dict().items())
    assert names['token_embedding.weight'] == (49408, 512)
    assert names['positional_embedding'] == (77, 512)
    assert names['transformer.resblocks.11.attn.in_proj_weight'] == (1536, 512)
    assert names['transformer.resblocks.11.mlp.c_fc.weight'] == (2048, 512)
    assert names['text_projection'] == (512, 512) and names['logit_scale'] == ()
    assert not any(k.startswith('visual') for k in names)
    assert sum(v.numel() for v in tower.parameters()) == 63_428_097


def test_frozen_and_always_eval():
    tower = CLIPTextTower(CONFIG)
    assert not any(p.requires_grad for p in tower.parameters())
    tower.train()
    assert not tower.training


def test_seeded_random_tower_is_reproducible():
    a, b = CLIPTextTower(CONFIG), CLIPTextTower(CONFIG)
    torch.testing.assert_close(a.state_dict(), b.state_dict())
    assert a.fingerprint() == b.fingerprint()


def test_fingerprint_is_kept_until_a_weight_changes(monkeypatch):
    tower = CLIPTextTower(CONFIG)
    first = tower.fingerprint()
    hashed = []
    real_sha1 = hashlib.sha1
    monkeypatch.setattr(hashlib, 'sha1', lambda *a: hashed.append(1) or real_sha1(*a))
    assert tower.fingerprint() == first and hashed == []                  # kept: nothing changed
    with torch.no_grad():
        tower.text_projection[0, 0] += 1.0                                 # in place
    changed = tower.fingerprint()
    assert changed != first and len(hashed) == 1
    state = {k: v.clone() for k, v in CLIPTextTower(CONFIG).state_dict().items()}
    tower.load_state_dict(state)                                           # copied back in
    assert tower.fingerprint() == first and len(hashed) == 2


def test_loads_plain_state_dict_and_torchscript_fp16_archive(tmp_path):
    reference = _openai_clip()
    plain = tmp_path / 'plain.pt'
    torch.save(reference.state_dict(), plain)
    tower = CLIPTextTower(CONFIG)
    load_text_tower_weights(tower, plain)
    torch.testing.assert_close(tower.state_dict(), _text_state(reference))

    class TextOnly(nn.Module):
        """A traceable module with OpenAI's text names, stored in float16 like OpenAI's archive."""

        def __init__(self, src):
            super().__init__()
            self.token_embedding, self.positional_embedding = src.token_embedding, src.positional_embedding
            self.transformer, self.ln_final = src.transformer, src.ln_final
            self.text_projection, self.logit_scale = src.text_projection, src.logit_scale

        def forward(self, x):
            return x @ self.text_projection

    archive = tmp_path / 'ViT-B-32.pt'
    traced = torch.jit.trace(TextOnly(_openai_clip()).half(), torch.zeros(2, 64, dtype=torch.float16))
    traced.save(str(archive))
    tower = CLIPTextTower(CONFIG)
    load_text_tower_weights(tower, archive)
    assert tower.token_embedding.weight.dtype == torch.float32
    expected = {k: v.half().float() for k, v in _text_state(_openai_clip()).items()}
    torch.testing.assert_close(tower.state_dict(), expected)


def test_missing_weights_warn_or_fail(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    with pytest.warns(UserWarning, match='randomly initialised text tower'):
        tower = build_text_tower()
    assert tower.source.startswith('random')
    with pytest.raises(UserError, match='CLIP weights not found'):
        build_text_tower(require_weights=True)
    with pytest.raises(UserError, match='nope.pt'):
        build_text_tower(weights=tmp_path / 'nope.pt')


def test_small_tower_is_random_and_refuses_weights(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter('error')      # an explicitly chosen small tower needs no warning
        tower = build_text_tower(CONFIG)
    assert tower.source.startswith('random') and tower.token_embedding.weight.shape == (49408, 64)
    with pytest.raises(UserError, match='only for the ViT-B/32 text tower'):
        build_text_tower(CONFIG, weights=tmp_path / 'ViT-B-32.pt')
    with pytest.raises(UserError, match='only for the ViT-B/32 text tower'):
        build_text_tower(CONFIG, require_weights=True)


def test_wrong_file_is_a_clear_error(tmp_path):
    bad = tmp_path / 'bad.pt'
    torch.save({'token_embedding.weight': torch.zeros(3, 3)}, bad)
    with pytest.raises(UserError, match='missing positional_embedding'):
        load_text_tower_weights(CLIPTextTower(CONFIG), bad)
    garbage = tmp_path / 'garbage.pt'
    garbage.write_text('not a checkpoint')
    with pytest.raises(UserError, match='cannot read CLIP weights'):
        load_text_tower_weights(CLIPTextTower(CONFIG), garbage)

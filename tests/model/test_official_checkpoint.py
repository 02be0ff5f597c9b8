"""Official checkpoints: the reference's key layout loads completely and round-trips, and a
checkpoint of the original code makes our network compute the outputs recorded from that code.

The parity oracle is numbers, not code: ``<shared>/parity/`` holds inputs and outputs recorded by
running the original FinePOSE (27 frames, depth 4, width 512, ViT-B/32 text tower, Human3.6M
prompts) and the script that writes its deterministic weights as an official checkpoint.
``<shared>`` is $FINEPOSE_SHARED, by default ``../shared`` next to the repository; the tests skip
when it is absent.
"""
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

from common.core.errors import UserError
from common.model.build import ModelConfig, build_model
from common.model.clip_text import TextTowerConfig, build_text_tower
from common.model.clip_text import TEXT_TOWERS
from common.model.diffusion import schedule_terms
from common.model.official_checkpoint import (load_official_checkpoint, load_official_model, load_official_state_dict,
                                        official_state_dict, official_to_ours)
from common.data.skeleton import H36M_17
from common.model.tokenizer import get_tokenizer
from support.models import build_tiny_model, tiny_config

PERM = H36M_17.mirror_permutation()
PARITY_TAG = 'f27_d4'
PARITY_CONFIG = ModelConfig(num_frames=27, depth=4)          # width 512, 8 heads, ViT-B/32 tower, H36M
PARITY_TOLERANCE = 1e-4
MIXED_PROMPT_TOLERANCE = 1e-5     # the bar for the batched output y (measured: 1.3e-6)
# The recorded batch has two clips of different actions; the original's prompt mixing moves its
# outputs by 0.03 there, so the two ways must differ by clearly more than float error.
MIXED_PROMPT_MARGIN = 0.01


def _reference_key_list(shared_dir):
    return json.loads((shared_dir / 'data' / 'reference_checkpoint_keys.json').read_text())


def _random_reference_state(keys):
    g = torch.Generator().manual_seed(0)
    state = {}
    for name, shape in keys['parameters']:
        if '.visual.' in name:
            state[name] = torch.zeros(shape)          # the vision tower is ignored; no need for values
        else:
            state[name] = torch.randn(shape, generator=g) * 0.02
    for name, value in schedule_terms(1000).items():
        state['module.' + name] = value
    return state


def test_reference_layout_loads_completely_and_round_trips(shared_dir):
    """The paper-size model (243 frames, depth 8, width 512, ViT-B/32) has exactly the original's
    parameter names and shapes (``reference_checkpoint_keys.json``), vision tower aside."""
    keys = _reference_key_list(shared_dir)
    assert {n for n, _ in keys['buffers']} == {'module.' + n for n in schedule_terms(1000)}
    state = _random_reference_state(keys)
    model = build_model(ModelConfig(), PERM, PERM, clip_weights=None)
    ours = official_to_ours(state, 1000)
    assert set(ours) == set(model.state_dict())              # no missing, no unexpected
    load_official_state_dict(model, state)
    back = official_state_dict(model)
    kept = {k: v for k, v in state.items() if '.visual.' not in k}
    assert set(back) == set(kept)
    for name, value in kept.items():
        torch.testing.assert_close(back[name].to(value.dtype), value, rtol=0, atol=0, msg=name)


def test_schedule_mismatch_and_wrong_layout_are_user_errors():
    model = build_tiny_model()
    state = official_state_dict(model)
    with pytest.raises(UserError, match='differs from a 500-step cosine schedule'):
        official_to_ours(state, 500)
    state['module.pose_estimator.extra.weight'] = torch.zeros(1)
    with pytest.raises(UserError, match='unexpected parameter module.pose_estimator.extra.weight'):
        official_to_ours(state, 1000)


@pytest.mark.parametrize('asked, message', [
    (dict(depth=3), r'depth 2 in the file, 3 asked \(set -dep\)'),
    (dict(width=64), r'width 32 in the file, 64 asked \(set -cs\)'),
    (dict(num_frames=11), r'frames 9 in the file, 11 asked \(set -f\)'),
    (dict(layout='mpi_inf_3dhp'), r'prompt layout 7 segments \(Human3\.6M, with the action\) in the file, '
                                  r'6 segments \(MPI-INF-3DHP, no action\) asked \(evaluate it with main\.py'),
    (dict(text_tower=TextTowerConfig(width=64, layers=3, heads=2, embed_dim=64)),
     r'text tower width 64, 2 layers in the file, width 64, 3 layers asked \(set --text-tower vit-b-32'),
    (dict(depth=3, width=64), r'depth 2 in the file, 3 asked \(set -dep\); width 32 in the file, 64 asked'),
])
def test_architecture_mismatch_names_what_differs(asked, message):
    """One line that says which setting differs, found in the file versus asked by the flags."""
    state = official_state_dict(build_tiny_model())
    with pytest.raises(UserError, match=message) as error:
        load_official_state_dict(build_tiny_model(**asked), state, source='best_epoch_20_10.bin')
    assert 'other dataset' not in str(error.value) and '\n' not in str(error.value)


def test_official_checkpoint_supplies_the_text_tower_without_a_warning():
    """Built for an official checkpoint, the ViT-B/32 tower is neither read from a file nor
    announced as random (the checkpoint fills it), and --require-clip-weights is satisfied."""
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        tower = build_text_tower(TextTowerConfig(), weights=None, require_weights=True, weights_in_checkpoint=True)
    assert tower.config == TextTowerConfig()
    model = build_tiny_model()
    target = build_model(tiny_config(), PERM, PERM, require_clip_weights=True, clip_in_checkpoint=True)
    load_official_state_dict(target, official_state_dict(model), source='best_epoch_20_10.bin')
    assert target.prompt_encoder.text_tower.source == 'best_epoch_20_10.bin (official checkpoint)'
    torch.testing.assert_close(target.state_dict(), model.state_dict())


def test_reference_bin_file_with_numpy_rng(tmp_path):
    source = build_tiny_model()
    torch.nn.init.normal_(source.denoiser.frame_pos_embed)
    path = tmp_path / 'best_epoch_20_10.bin'
    torch.save({'epoch': 80, 'lr': 1e-5, 'random_state': np.random.RandomState(1234),
                'optimizer': {'state': {}, 'param_groups': []}, 'model_pos': official_state_dict(source)}, path)
    target = build_tiny_model()
    info = load_official_checkpoint(target, path)
    assert info['epoch'] == 80
    torch.testing.assert_close(target.state_dict(), source.state_dict())
    (tmp_path / 'junk.bin').write_bytes(b'junk')
    with pytest.raises(UserError, match='not a readable FinePOSE checkpoint'):
        load_official_checkpoint(target, tmp_path / 'junk.bin')


@pytest.mark.parametrize('layout', ['h36m', 'mpi_inf_3dhp'])
def test_load_official_model_builds_the_model_from_the_file(layout, tmp_path):
    """The README's one call: every architecture setting read off the file's shapes."""
    config = ModelConfig(layout=layout, num_frames=9, width=32, depth=3, mlp_ratio=4.0, timesteps=200,
                         text_tower=TEXT_TOWERS['tiny'])
    source = build_tiny_model(**{k: getattr(config, k) for k in ('layout', 'num_frames', 'width', 'depth',
                                                                 'mlp_ratio', 'timesteps', 'text_tower')}, heads=8)
    torch.nn.init.normal_(source.denoiser.frame_pos_embed)
    path = tmp_path / 'best_epoch_20_10.bin'
    torch.save({'epoch': 20, 'model_pos': official_state_dict(source)}, path)
    model = load_official_model(path)
    assert not model.training and model.num_timesteps == 200
    assert model.denoiser.num_frames == 9 and len(model.denoiser.spatial_blocks) == 3
    assert model.state_dict().keys() == source.state_dict().keys()
    torch.testing.assert_close(model.state_dict(), source.state_dict(), rtol=0, atol=0)
    state = official_state_dict(source)
    state['module.pose_estimator.clip_text.token_embedding.weight'] = torch.zeros(10, 48)
    torch.save({'model_pos': state}, path)
    with pytest.raises(UserError, match='text tower of width 48'):
        load_official_model(path)


@pytest.fixture(scope='module')
def parity(shared_dir, tmp_path_factory):
    """(our model filled from the original's checkpoint, built with the library's defaults, and
    recorded arrays as tensors)."""
    folder = shared_dir / 'parity'
    recorded = [folder / f'ref_{PARITY_TAG}.npz', folder / f'ref_{PARITY_TAG}_persample.npz']
    script = folder / 'make_ref_checkpoint.py'
    if not script.is_file() or not all(f.is_file() for f in recorded):
        pytest.skip(f'recorded parity outputs not found under {folder}')
    checkpoint = tmp_path_factory.mktemp('parity') / f'ref_{PARITY_TAG}.bin'      # ~0.7 GB, written in ~8 s
    subprocess.run([sys.executable, str(script), PARITY_TAG, str(checkpoint)], check=True, capture_output=True)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')      # no ViT-B-32.pt needed: the checkpoint holds the text tower
        model = build_model(PARITY_CONFIG, PERM, PERM)
    load_official_checkpoint(model, checkpoint)
    checkpoint.unlink()
    arrays = {}
    for path in recorded:
        with np.load(path) as archive:
            arrays.update({k: torch.from_numpy(archive[k]) for k in archive.files})
    return model.eval(), arrays


def _denoise_recorded_batch(model, arrays, action_tokens, per_clip_prompts=False):
    """Our prompts and denoiser output (B, H, F, J, 3) on the recorded inputs, the B clips in one
    batch with their H hypotheses, as ``ddim_sample`` lays them out: by default with the original's
    batched prompt mixing (``EncodedPrompts.mixed_over_batch``), else each clip with its own prompt."""
    noisy = arrays['x3d']                                        # (B, H, F, J, 3)
    hypotheses, joints = noisy.shape[1], noisy.shape[3]
    with torch.no_grad():
        prompts = model.prompt_encoder(action_tokens)
        rows = (prompts.repeat_interleave(hypotheses) if per_clip_prompts
                else prompts.mixed_over_batch(joints, hypotheses))
        y = model.denoiser(arrays['x2d'].repeat_interleave(hypotheses, 0), noisy.flatten(0, 1),
                           arrays['t'].repeat_interleave(hypotheses), rows)
    return prompts, y.view(noisy.shape)


def test_parity_prompt_tokens(parity):
    model, arrays = parity
    assert get_tokenizer().tokenize(['Walking', 'SittingDown']).equal(arrays['text_tokens'])
    assert model.prompt_encoder.word_tokens.equal(arrays['pre_tokens'][0, :, :model.prompt_encoder.word_tokens.shape[1]])
    prompts, _ = _denoise_recorded_batch(model, arrays, arrays['text_tokens'])
    torch.testing.assert_close(prompts.tokens[prompts.index], arrays['xf_out'], atol=PARITY_TOLERANCE, rtol=0)
    torch.testing.assert_close(prompts.pooled[prompts.index], arrays['xf_proj'], atol=PARITY_TOLERANCE, rtol=0)


@pytest.mark.parametrize('per_clip_prompts', [False, True])
def test_parity_denoiser_same_action(parity, per_clip_prompts):
    """One action in the batch (as in every evaluation batch): mixing changes nothing."""
    model, arrays = parity
    _, y = _denoise_recorded_batch(model, arrays, arrays['same_text_tokens'], per_clip_prompts)
    assert y.abs().mean() > 0.05
    torch.testing.assert_close(y, arrays['y_same_action'], atol=PARITY_TOLERANCE, rtol=0)


def test_parity_denoiser_mixes_prompts_across_the_batch_by_default(parity):
    """Two actions in one batch: by default ours equals the original's batched output y (FPC row
    k*J + j of the flattened (clip, hypothesis, joint) batch attends to clip (k*J + j) mod B's
    prompt), and differs from each clip run alone (y_per_sample)."""
    model, arrays = parity
    _, y = _denoise_recorded_batch(model, arrays, arrays['text_tokens'])
    difference = (y - arrays['y']).abs().max().item()
    print(f'default (batched mixing) vs the original\'s y: max |diff| {difference:.2e}')
    assert difference <= MIXED_PROMPT_TOLERANCE
    assert (arrays['y'] - arrays['y_per_sample']).abs().max() > MIXED_PROMPT_MARGIN


def test_parity_denoiser_per_clip_prompts(parity):
    """With --per-clip-prompts ours equals the original run one clip at a time (y_per_sample)."""
    model, arrays = parity
    _, y = _denoise_recorded_batch(model, arrays, arrays['text_tokens'], per_clip_prompts=True)
    difference = (y - arrays['y_per_sample']).abs().max().item()
    print(f'--per-clip-prompts vs the original\'s y_per_sample: max |diff| {difference:.2e}')
    assert difference <= MIXED_PROMPT_TOLERANCE
    assert (y - arrays['y']).abs().max() > MIXED_PROMPT_MARGIN


def test_official_models_get_the_original_prompt_behaviour(tmp_path):
    """``load_official_model`` and ``official_model_config`` build the original's prompts: vectors
    that do not learn, batched mixing."""
    path = tmp_path / 'best_epoch_20_10.bin'
    torch.save({'epoch': 20, 'model_pos': official_state_dict(build_tiny_model(heads=8))}, path)
    model = load_official_model(path)
    assert not model.prompt_encoder.learn_prompts and not model.per_clip_prompts

"""Official checkpoints: the reference's key layout loads completely, round-trips, and our
network computes the reference's function (parity against an independent transcription)."""
import json
import warnings

import numpy as np
import pytest
import torch

from common.clip_text import TextTowerConfig, build_text_tower
from common.diffusion import schedule_terms
from common.errors import UserError
from common.model import ModelConfig, build_model
from common.official_checkpoint import (load_official_checkpoint, load_official_state_dict, official_state_dict,
                                        official_to_ours)
from common.skeleton import H36M_17
from common.tokenizer import get_tokenizer
from model_fixtures import TINY_TOWER, build_tiny_model, tiny_config
from reference_finepose import RefMixSTE2, reference_ddim_sample

TOK = get_tokenizer()
PERM = H36M_17.mirror_permutation()
PRE_TEXT = ['A person', 'speed', 'head', 'body', 'arm', 'leg']


def _reference_key_list(shared_dir):
    return json.loads((shared_dir / 'data' / 'reference_checkpoint_keys.json').read_text())


def _random_reference_state(keys, seed=0):
    g = torch.Generator().manual_seed(seed)
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


def _perturb_zero_initialised(model, seed):
    """Give the zero-initialised parameters values, so every path of the network matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in (model.denoiser.joint_pos_embed, model.denoiser.frame_pos_embed,
                  model.denoiser.prompt_attention.stylize.out_proj.weight,
                  model.denoiser.prompt_attention.stylize.out_proj.bias):
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)


def _reference_for(model, config, is_train):
    tower = config.text_tower
    ref = RefMixSTE2(config.num_frames, config.width, config.depth, text_width=tower.width, text_layers=tower.layers,
                     text_heads=tower.heads, heads=config.heads, layout=config.layout, is_train=is_train).eval()
    state = {k[len('module.pose_estimator.'):]: v for k, v in official_state_dict(model).items()
             if k.startswith('module.pose_estimator.')}
    ref.load_state_dict(state)
    return ref


def _parity(config, actions, b, h, seed=0, tolerance=1e-5):
    """Max |ours - reference| in both input layouts, clips of one batch sharing the action."""
    model = build_tiny_model(**{k: getattr(config, k) for k in ('num_frames', 'width', 'depth', 'heads', 'layout', 'text_tower')})
    model.eval()
    _perturb_zero_initialised(model, seed)
    g = torch.Generator().manual_seed(seed)
    f = config.num_frames
    kp = torch.randn(b, f, 17, 2, generator=g) * 0.3
    noisy = torch.randn(b, h, f, 17, 3, generator=g) * 0.5
    t = torch.randint(0, 1000, (b,), generator=g)
    text = TOK.tokenize(actions)
    pre_text = TOK.tokenize(PRE_TEXT)[None].expand(b, -1, -1)
    with torch.no_grad():
        ref_eval = _reference_for(model, config, is_train=False)(kp, noisy, t, text, pre_text)
        prompts = model.prompt_encoder(text).repeat_interleave(h)
        ours = model.denoiser(kp.repeat_interleave(h, 0), noisy.flatten(0, 1), t.repeat_interleave(h), prompts)
        ours = ours.view(b, h, f, 17, 3)
        ref_train = _reference_for(model, config, is_train=True)(kp, noisy[:, 0], t, text, pre_text)
    assert ref_eval.abs().mean() > 0.05
    err_eval = (ours - ref_eval).abs().max().item()
    err_train = (ours[:, 0] - ref_train).abs().max().item()
    assert err_eval <= tolerance and err_train <= tolerance, (err_eval, err_train)
    return ref_eval


@pytest.mark.parametrize('layout', ['h36m', 'mpi_inf_3dhp'])
def test_parity_with_reference_small(layout):
    config = ModelConfig(layout=layout, num_frames=9, width=32, depth=3, heads=4, text_tower=TINY_TOWER)
    _parity(config, ['Walking'], b=1, h=3)
    _parity(config, ['Eating', 'Eating'], b=2, h=2, seed=1)


def test_reference_mixes_prompts_across_clips_and_we_do_not():
    """The reference tiles prompt keys over the (clip x joint) batch: with different actions in
    one batch its clip 1 sees clip 0's prompt for some joints; ours matches per-clip runs."""
    config = ModelConfig(num_frames=9, width=32, depth=2, heads=4, text_tower=TINY_TOWER)
    model = build_tiny_model(num_frames=9, width=32, depth=2, heads=4).eval()
    _perturb_zero_initialised(model, 0)
    ref = _reference_for(model, config, is_train=True)
    g = torch.Generator().manual_seed(2)
    kp, noisy, t = torch.randn(2, 9, 17, 2, generator=g), torch.randn(2, 9, 17, 3, generator=g), torch.tensor([400, 400])
    text, pre = TOK.tokenize(['Walking', 'Phoning']), TOK.tokenize(PRE_TEXT)[None].expand(2, -1, -1)
    with torch.no_grad():
        mixed = ref(kp, noisy, t, text, pre)
        per_clip = torch.cat([ref(kp[i:i + 1], noisy[i:i + 1], t[i:i + 1], text[i:i + 1], pre[:1]) for i in range(2)])
        ours = model.denoiser(kp, noisy, t, model.prompt_encoder(text))
    assert (mixed - per_clip).abs().max() > 1e-3
    torch.testing.assert_close(ours, per_clip, atol=1e-5, rtol=1e-5)


def test_parity_with_reference_paper_size(shared_dir):
    """243 frames, depth 8, width 512, the full ViT-B/32 text tower: max |diff| <= 1e-4."""
    config = ModelConfig()
    model = build_model(config, PERM, PERM)
    state = _random_reference_state(_reference_key_list(shared_dir), seed=3)
    load_official_state_dict(model, state)
    _perturb_zero_initialised(model, 3)
    with torch.no_grad():   # realistic magnitudes for the randomly drawn norms
        for name, p in model.named_parameters():
            if name.endswith('norm.weight') or '.norm1.' in name or '.norm2.' in name or name.endswith('ln_1.weight') \
                    or name.endswith('ln_2.weight') or name.endswith('head.0.weight') or 'ln_final.weight' in name:
                if p.ndim == 1 and name.endswith('weight'):
                    p.add_(1.0)
    model.eval()
    g = torch.Generator().manual_seed(0)
    kp = torch.randn(1, 243, 17, 2, generator=g) * 0.3
    noisy = torch.randn(1, 1, 243, 17, 3, generator=g) * 0.5
    t = torch.tensor([637])
    text, pre = TOK.tokenize(['Greeting']), TOK.tokenize(PRE_TEXT)[None]
    with torch.no_grad():
        ref = _reference_for(model, config, is_train=False)(kp, noisy, t, text, pre)
        ours = model.denoiser(kp, noisy[:, 0], t, model.prompt_encoder(text))
    assert 0.05 < ref.abs().mean() < 5
    max_diff = (ours - ref[:, 0]).abs().max().item()
    print(f"paper-size parity: max |diff| {max_diff:.2e}, mean |output| {ref.abs().mean():.3f}")
    assert max_diff <= 1e-4


def test_sampling_with_flip_matches_reference_loop():
    """DDIM with flip, H hypotheses, K steps: our batched sampler equals the reference's
    per-step procedure (two separate denoiser calls, float64 coefficients) on the same noise."""
    model = build_tiny_model().eval()
    _perturb_zero_initialised(model, 5)
    kp, text = torch.randn(1, 9, 17, 2) * 0.3, TOK.tokenize(['Posing'])
    h, k = 3, 4
    ours = model.ddim_sample(kp, text, num_hypotheses=h, num_steps=k, flip=True, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        prompts = model.prompt_encoder(text).repeat_interleave(h)

        def denoise(keypoints, x_t, time):                   # (1, H, F, J, 3) -> (1, H, F, J, 3)
            return model.denoiser(keypoints.expand(h, -1, -1, -1), x_t[0], torch.full((h,), time), prompts)[None]
        reference = reference_ddim_sample(denoise, kp, PERM, PERM, h, k, torch.Generator().manual_seed(11))
    torch.testing.assert_close(ours, reference, atol=2e-5, rtol=1e-4)

"""Diffusion: schedule, noising, DDIM steps, flip, reproducible sampling."""
import math

import pytest
import torch

from common.core.keyed_random import generators_from_seeds, keyed_seed
from common.data.skeleton import H36M_17, flip_horizontal
from common.model.diffusion import ddim_time_pairs, schedule_terms
from common.model.tokenizer import get_tokenizer
from support.models import build_tiny_model

TOK = get_tokenizer()
PERM = H36M_17.mirror_permutation()
# The noise seed of the first window of S9 "Walking 1", camera 0, with --seed 1.
FIRST_WALKING_WINDOW_SEED = 8367565050389954780


def test_cosine_schedule_closed_form():
    terms = schedule_terms(1000)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2
    for t in (0, 10, 500, 990):
        assert abs(terms['alphas_cumprod'][t].item() - f(t + 1) / f(0)) < 1e-12
    assert terms['betas'].max().item() == 0.999          # clipped at the end of the schedule
    assert (terms['alphas_cumprod'].diff() < 0).all()


def test_ddim_step_times():
    pairs = ddim_time_pairs(1000, 10)
    assert [t for t, _ in pairs] == [999, 899, 799, 699, 599, 499, 399, 299, 199, 99]
    assert [s for _, s in pairs] == [899, 799, 699, 599, 499, 399, 299, 199, 99, -1]
    assert ddim_time_pairs(1000, 1) == [(999, -1)]


def test_q_sample_scales_and_clamps():
    model = build_tiny_model()
    x0 = torch.full((2, 9, 17, 3), 0.5)
    noise = torch.zeros_like(x0)
    t = torch.tensor([0, 999])
    x_t = model.q_sample(x0, t, noise)
    abar = schedule_terms(1000)['alphas_cumprod']
    torch.testing.assert_close(x_t[0], x0[0] * abar[0].sqrt().float())
    torch.testing.assert_close(x_t[1], x0[1] * abar[999].sqrt().float())
    big = model.q_sample(torch.full_like(x0, 5.0), torch.tensor([0, 0]), noise)
    assert big.max().item() == torch.tensor(1.1).item()


def _inputs(b=2):
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, 9, 17, 2, generator=g) * 0.3, TOK.tokenize(['Walking', 'Eating'][:b])


def test_sample_shapes_and_reproducibility():
    model = build_tiny_model().eval()
    kp, tokens = _inputs()
    a = model.ddim_sample(kp, tokens, num_hypotheses=3, num_steps=4, generators=generators_from_seeds([7, 70]))
    b = model.ddim_sample(kp, tokens, num_hypotheses=3, num_steps=4, generators=generators_from_seeds([7, 70]))
    c = model.ddim_sample(kp, tokens, num_hypotheses=3, num_steps=4, generators=generators_from_seeds([8, 80]))
    assert a.shape == (2, 4, 3, 9, 17, 3)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    assert a.abs().max() <= 1.1


def test_a_clips_hypotheses_do_not_depend_on_its_batch():
    """Each clip's noise comes from its own generator: clip 1 sampled next to clip 0 equals clip 1
    sampled alone (float rounding), and swapping the two clips' generators changes it."""
    model = build_tiny_model().eval()
    kp, tokens = _inputs()
    both = model.ddim_sample(kp, tokens, num_hypotheses=2, num_steps=3, generators=generators_from_seeds([7, 70]))
    alone = model.ddim_sample(kp[1:], tokens[1:], num_hypotheses=2, num_steps=3, generators=generators_from_seeds([70]))
    swapped = model.ddim_sample(kp, tokens, num_hypotheses=2, num_steps=3, generators=generators_from_seeds([70, 7]))
    torch.testing.assert_close(alone, both[1:], atol=1e-6, rtol=1e-5)
    assert (swapped[1] - both[1]).abs().max() > 1e-3
    with pytest.raises(ValueError, match='1 generators for 2 clips'):
        model.ddim_sample(kp, tokens, generators=generators_from_seeds([7]))


def test_keyed_seeds_are_stable_and_distinct():
    """The seed of a key is a fixed function of it (this value must not change between versions:
    it would change every result), and neighbouring keys get unrelated seeds."""
    walking = ('S9', 'Walking 1', '0')
    assert keyed_seed('sampling', 1, walking, 0) == FIRST_WALKING_WINDOW_SEED
    keys = [('sampling', seed, (subject, 'Walking 1', camera), w) for seed in (1, 2) for subject in ('S9', 'S11')
            for camera in '0123' for w in range(4)] + [('training', 1, 0, 0, 0), ('training', 1, 0, 0, 1)]
    seeds = [keyed_seed(*key) for key in keys]
    assert len(set(seeds)) == len(seeds) and all(0 <= s < 2 ** 63 for s in seeds)


def test_single_step_returns_the_direct_x0_prediction():
    model = build_tiny_model().eval()
    kp, tokens = _inputs(1)
    out = model.ddim_sample(kp, tokens, num_hypotheses=2, num_steps=1, flip=False,
                            generators=generators_from_seeds([3]))
    assert out.shape == (1, 1, 2, 9, 17, 3)
    noise = torch.randn((2, 9, 17, 3), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        prompts = model.prompt_encoder(tokens).repeat_interleave(2)
        direct = model.denoiser(kp.expand(2, -1, -1, -1), noise.clamp(-1.1, 1.1), torch.full((2,), 999), prompts)
    torch.testing.assert_close(out[0, 0], direct.clamp(-1.1, 1.1), atol=1e-6, rtol=1e-5)


def test_flip_averages_plain_and_mirrored_predictions():
    model = build_tiny_model().eval()
    kp, tokens = _inputs(1)
    noise = torch.randn((1, 9, 17, 3), generator=torch.Generator().manual_seed(4)) * 0.3
    with torch.no_grad():
        prompts = model.prompt_encoder(tokens)
        got = model._predict_x0(noise, kp, 500, prompts, flip=True)
        t = torch.full((1,), 500)
        plain = model.denoiser(kp, noise, t, prompts)
        mirrored = model.denoiser(flip_horizontal(kp, PERM), flip_horizontal(noise, PERM), t, prompts)
    expected = ((plain + flip_horizontal(mirrored, PERM)) / 2).clamp(-1.1, 1.1)      # x0 is clamped to +-1.1 scale
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('learn_prompts', [False, True])
def test_training_loss_and_gradients(learn_prompts):
    """The prompt vectors get a gradient only with learn_prompts (the original computes them under no_grad)."""
    model = build_tiny_model(learn_prompts=learn_prompts).train()
    kp, tokens = _inputs()
    target = torch.randn(2, 9, 17, 3) * 0.2
    draws = model.draw_training_noise(generators_from_seeds([0, 1]), (9, 17, 3))
    loss = model(kp, target, tokens, *draws)
    assert loss.ndim == 0 and loss.item() > 0
    loss.backward()
    assert model.denoiser.joint_embed.weight.grad.abs().sum() > 0
    action_grad = model.prompt_encoder.learnable['action'].grad
    assert action_grad.abs().sum() > 0 if learn_prompts else action_grad is None


def test_3dhp_layout_samples_every_step_and_hypothesis():
    model = build_tiny_model(layout='mpi_inf_3dhp').eval()
    kp = torch.randn(2, 9, 17, 2) * 0.3
    tokens = get_tokenizer().tokenize(['', ''])
    out = model.ddim_sample(kp, tokens, num_hypotheses=3, num_steps=2, generators=generators_from_seeds([1, 2]))
    assert out.shape == (2, 2, 3, 9, 17, 3)
    assert not torch.allclose(out[:, :, 0], out[:, :, 1])          # hypotheses come from different noise


def test_prompt_is_encoded_once_per_sampling_call(monkeypatch):
    """K steps x H hypotheses x the flip pass reuse one encoding of the batch's prompts, and the
    flip pass shares the plain pass's denoiser call."""
    model = build_tiny_model().eval()
    calls = {'prompt': 0, 'denoiser': 0}
    prompt_forward, denoiser_forward = model.prompt_encoder.forward, model.denoiser.forward

    def counted(name, forward):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return forward(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(model.prompt_encoder, 'forward', counted('prompt', prompt_forward))
    monkeypatch.setattr(model.denoiser, 'forward', counted('denoiser', denoiser_forward))
    kp, tokens = _inputs()
    model.ddim_sample(kp, tokens, num_hypotheses=4, num_steps=3, flip=True, generators=generators_from_seeds([0, 1]))
    assert calls == {'prompt': 1, 'denoiser': 3}


class _KnownX0Denoiser(torch.nn.Module):
    """Predicts the fixed pose ``x0`` whatever its input; records each call's (step, x_t)."""

    def __init__(self, x0):
        super().__init__()
        self.x0, self.calls = x0, []

    def forward(self, keypoints_2d, x_t, t, prompts, spatial_keep=None, temporal_keep=None):
        self.calls.append((t.tolist(), x_t.clone()))
        return self.x0.expand_as(x_t)


def test_ddim_steps_follow_the_equations_with_a_known_x0():
    """With x0 known, each DDIM step (eta = 1) must give x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s - sigma^2) eps
    + sigma z, eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t) (forward process solved for eps),
    sigma^2 = (1 - abar_t/abar_s)(1 - abar_s)/(1 - abar_t), abar from the cosine schedule written out
    here, and x_T and z the clip generator's successive standard-normal draws."""
    cosine = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2
    abar, running = [], 1.0
    for t in range(1000):
        running *= 1 - min(1 - cosine(t + 1) / cosine(t), 0.999)
        abar.append(running)
    model = build_tiny_model().eval()
    kp, tokens = _inputs(1)
    h, seed = 2, 21
    x0 = torch.linspace(-0.9, 0.9, 9 * 17 * 3).view(9, 17, 3)
    model.denoiser = _KnownX0Denoiser(x0)
    out = model.ddim_sample(kp, tokens, num_hypotheses=h, num_steps=3, flip=False,
                            generators=generators_from_seeds([seed]))
    torch.testing.assert_close(out, x0.expand(1, 3, h, 9, 17, 3))
    draws = torch.Generator().manual_seed(seed)
    x = torch.randn((h, 9, 17, 3), generator=draws).double()
    for (steps, x_in), (t, s) in zip(model.denoiser.calls, [(999, 665), (665, 332), (332, -1)]):
        assert steps == [t] * h
        torch.testing.assert_close(x_in, x.clamp(-1.1, 1.1).float(), atol=1e-5, rtol=1e-5)
        if s < 0:
            break
        eps = (x - math.sqrt(abar[t]) * x0) / math.sqrt(1 - abar[t])
        sigma = math.sqrt((1 - abar[t] / abar[s]) * (1 - abar[s]) / (1 - abar[t]))
        z = torch.randn((h, 9, 17, 3), generator=draws)
        x = math.sqrt(abar[s]) * x0 + math.sqrt(1 - abar[s] - sigma ** 2) * eps + sigma * z
    assert len(model.denoiser.calls) == 3


def test_prompt_mixing_changes_nothing_when_the_sampling_batch_holds_one_action():
    """Evaluation samples windows of one sequence per batch, so the original's batched prompt
    mixing (the default) samples exactly what each clip's own prompt does; with two actions in a
    batch it would not (the flip pass and H hypotheses included)."""
    mixing = build_tiny_model().eval()
    torch.nn.init.normal_(mixing.denoiser.prompt_attention.stylize.out_proj.weight, std=0.2)   # prompts matter
    per_clip = build_tiny_model(per_clip_prompts=True).eval()
    per_clip.load_state_dict(mixing.state_dict())
    kp = torch.randn(3, 9, 17, 2, generator=torch.Generator().manual_seed(5)) * 0.3

    def sample(model, actions):
        return model.ddim_sample(kp, TOK.tokenize(actions), num_hypotheses=2, num_steps=2, flip=True,
                                 generators=generators_from_seeds([3, 4, 5]))
    one_action = ['Walking'] * 3
    assert torch.equal(sample(mixing, one_action), sample(per_clip, one_action))
    two_actions = ['Walking', 'Eating', 'Walking']
    assert (sample(mixing, two_actions) - sample(per_clip, two_actions)).abs().max() > 1e-4

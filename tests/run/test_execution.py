"""Speed and memory paths compute the same thing: chunked sampling, micro-batched training
steps, activation checkpointing, the fused optimizer; bf16 autocast stays close to float32."""
import copy

import pytest
import torch

import common.model.diffusion as diffusion
from common.core.keyed_random import generators_from_seeds
from common.model.build import ExecutionOptions, apply_execution_options
from common.model.tokenizer import get_tokenizer
from common.run.devices import Runtime
from common.run.training import TrainSettings, make_optimizer, step_generators, train_step
from support.models import assert_same_updates, build_tiny_model

TOK = get_tokenizer()


def _perturbed_tiny_model(**overrides):
    # The initial weights are fixed, not left to the global generator (whose state depends on which
    # tests ran before): on a few draws Adam's first step on near-zero gradients turns float noise
    # into update differences of 3e-3 relative, beyond assert_same_updates' bound.
    torch.manual_seed(0)
    model = build_tiny_model(**overrides)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():   # zero-initialised parameters get values, so every path matters
        for p in (model.denoiser.frame_pos_embed, model.denoiser.prompt_attention.stylize.out_proj.weight):
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def test_chunked_sampling_matches_one_denoiser_call_per_step(monkeypatch):
    model = _perturbed_tiny_model().eval()
    kp = torch.randn(2, 9, 17, 2, generator=torch.Generator().manual_seed(1)) * 0.3
    tokens = TOK.tokenize(['Walking', 'Eating'])

    def sample():
        return model.ddim_sample(kp, tokens, num_hypotheses=2, num_steps=2, flip=True,
                                 generators=generators_from_seeds([5, 6]))
    monkeypatch.setattr(diffusion, 'CPU_CHUNK_TOKENS', 10 ** 9)
    whole = sample()
    monkeypatch.setattr(diffusion, 'CPU_CHUNK_TOKENS', 3 * 9 * 17)   # 8 clips -> calls of 3, 3 and 2
    chunked = sample()
    torch.testing.assert_close(chunked, whole, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('clips, tokens_per_clip, max_tokens, expected', [
    (8, 153, 459, [(0, 3), (3, 6), (6, 8)]),        # 1224 tokens -> 3 chunks, sizes 3, 3, 2
    (4, 4131, 4096, [(0, 1), (1, 2), (2, 3), (3, 4)]),   # a clip over the limit is a chunk alone
    (40, 459, 4096, [(0, 8), (8, 16), (16, 24), (24, 32), (32, 40)]),
    (5, 10, 10 ** 9, [(0, 5)]),
])
def test_clip_chunks(clips, tokens_per_clip, max_tokens, expected):
    chunks = diffusion.clip_chunks(clips, tokens_per_clip, max_tokens)
    assert [(c.start, c.stop) for c in chunks] == expected


def test_chunk_tokens_per_device():
    assert diffusion.chunk_tokens('cpu') == diffusion.CPU_CHUNK_TOKENS == 4096
    assert diffusion.chunk_tokens(torch.device('cuda', 1)) == diffusion.GPU_CHUNK_TOKENS


@pytest.mark.parametrize('per_clip_prompts', [False, True])
def test_micro_batched_training_matches_one_call_with_stochastic_depth(monkeypatch, per_clip_prompts):
    """Two steps in micro-batches of 2, 2 and 1 clips give the weights of two steps in one call,
    with stochastic depth on (the default rate): each clip's t, noise and keep masks come from its
    own generator (``training.step_generators``) before the batch is split, and with the
    original's prompt mixing (the default) the prompt each joint attends to is decided over the
    whole batch (``fpc_prompt_tokens``) and sliced with it, so the lone clip of the last
    micro-batch attends to the other clips' prompts as it would in the whole batch. The first
    step's loss and accumulated gradients agree too (``support.models.assert_same_updates`` says
    how weights compare)."""
    model = _perturbed_tiny_model(per_clip_prompts=per_clip_prompts).train()
    g = torch.Generator().manual_seed(4)
    steps = []
    for batch_index in range(2):
        kp, poses = torch.randn(5, 9, 17, 2, generator=g) * 0.3, torch.randn(5, 9, 17, 3, generator=g) * 0.2
        draws = model.draw_training_noise(step_generators(1, 0, batch_index, 5), (9, 17, 3))
        assert (draws.spatial_keep == 0).any() and (draws.temporal_keep == 0).any()   # stochastic depth drops
        tokens = TOK.tokenize(['Walking', 'Eating', 'Sitting', 'Walking', ''])
        attended = model.fpc_prompt_tokens(tokens)                                    # (5, 17, 77)
        own = torch.equal(attended, tokens[:, None].expand_as(attended))
        assert own is per_clip_prompts
        assert torch.equal(attended[4, 0], tokens[4 if per_clip_prompts else (4 * 17) % 5])
        steps.append((kp, poses, tokens, *draws, attended))
    runtime = Runtime(torch.device('cpu'), gpu_ids=[])
    runs = {}
    for name, limit in (('whole', 10 ** 9), ('chunked', 2 * 9 * 17)):
        monkeypatch.setattr(diffusion, 'CPU_CHUNK_TOKENS', limit)
        replica = copy.deepcopy(model)
        optimizer = make_optimizer(replica, TrainSettings(epochs=1, learning_rate=1e-3))
        calls = []
        replica.denoiser.register_forward_hook(lambda module, args, out: calls.append(out.shape[0]))
        loss = train_step(replica, optimizer, steps[0], runtime)
        grads = [p.grad.clone() for p in replica.parameters() if p.grad is not None]
        train_step(replica, optimizer, steps[1], runtime)
        weights = {n: p.detach() for n, p in replica.named_parameters() if p.requires_grad}
        runs[name] = dict(loss=loss, calls=calls, grads=grads, weights=weights,
                          moved=sum(not torch.equal(a, b) for a, b in zip(model.parameters(), replica.parameters())))
    whole, chunked = runs['whole'], runs['chunked']
    assert whole['calls'] == [5, 5] and chunked['calls'] == [2, 2, 1, 2, 2, 1]
    assert chunked['loss'] == pytest.approx(whole['loss'], rel=1e-6)
    assert whole['moved'] > 10 and chunked['moved'] > 10                  # the steps did update weights
    scale = max(grad.abs().max().item() for grad in whole['grads'])      # attention key biases' gradients are ~0
    for expected, got in zip(whole['grads'], chunked['grads']):
        torch.testing.assert_close(got, expected, atol=1e-6 * scale, rtol=1e-4)
    initial = {name: p for name, p in model.named_parameters() if p.requires_grad}
    assert_same_updates(initial, whole['weights'], chunked['weights'])


def test_a_clips_training_draws_depend_only_on_its_key():
    """Clip 2 of a batch of 5 draws what clip 2 of a batch of 3 draws (same seed, epoch, batch);
    another batch index or epoch draws something else."""
    model = build_tiny_model()

    def draws(num_clips, epoch=0, batch_index=0):
        return model.draw_training_noise(step_generators(1, epoch, batch_index, num_clips), (9, 17, 3))

    five, three = draws(5), draws(3)
    for got, expected in zip(five, three):
        assert torch.equal(got[:3], expected)
    assert not torch.equal(draws(3, batch_index=1).noise, three.noise)
    assert not torch.equal(draws(3, epoch=1).noise, three.noise)
    assert not torch.equal(five.noise[0], five.noise[1])


def _loss_and_grads(model, seed=3):
    g = torch.Generator().manual_seed(seed)
    kp, target = torch.randn(2, 9, 17, 2, generator=g) * 0.3, torch.randn(2, 9, 17, 3, generator=g) * 0.2
    draws = model.draw_training_noise(generators_from_seeds([seed, seed + 1]), (9, 17, 3))
    assert (draws.spatial_keep == 0).any() and (draws.temporal_keep == 0).any()   # stochastic depth drops
    loss = model(kp, target, TOK.tokenize(['Walking', 'Eating']), *draws)
    model.zero_grad(set_to_none=True)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_activation_checkpointing_gives_the_same_loss_and_gradients():
    model = _perturbed_tiny_model(drop_path=0.3, learn_prompts=True).train()
    loss, grads = _loss_and_grads(model)
    apply_execution_options(model, ExecutionOptions(activation_checkpointing=True))
    loss_ckpt, grads_ckpt = _loss_and_grads(model)
    torch.testing.assert_close(loss_ckpt, loss, atol=0, rtol=0)
    assert grads_ckpt.keys() == grads.keys() and 'prompt_encoder.learnable.action' in grads
    for name, grad in grads.items():
        torch.testing.assert_close(grads_ckpt[name], grad, atol=1e-7, rtol=1e-5, msg=name)


def test_fused_optimizer_step_matches_the_plain_loop():
    model = _perturbed_tiny_model().train()
    params = [p for p in model.parameters() if p.requires_grad]
    copies = [p.detach().clone().requires_grad_() for p in params]
    fused = make_optimizer(model, TrainSettings(epochs=1))
    assert fused.param_groups[0]['fused']
    loop = torch.optim.AdamW(copies, lr=6e-5, weight_decay=0.1, foreach=False)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        for p, c in zip(params, copies):
            p.grad = torch.randn(p.shape, generator=g) * 1e-3
            c.grad = p.grad.clone()
        fused.step()
        loop.step()
    for p, c in zip(params, copies):
        torch.testing.assert_close(p, c, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize('kind', ['sample', 'train'])
def test_bf16_autocast_stays_close_to_float32(kind):
    model = _perturbed_tiny_model().eval()
    kp = torch.randn(1, 9, 17, 2, generator=torch.Generator().manual_seed(2)) * 0.3
    tokens = TOK.tokenize(['Posing'])
    outputs = []
    for bf16 in (False, True):
        apply_execution_options(model, ExecutionOptions(bf16=bf16))
        if kind == 'sample':
            out = model.ddim_sample(kp, tokens, num_hypotheses=2, num_steps=2, generators=generators_from_seeds([4]))
        else:
            out = _loss_and_grads(model)[0]
        assert out.dtype == torch.float32
        outputs.append(out)
    fp32, bf16 = outputs
    assert not torch.equal(fp32, bf16)                   # autocast really ran in bfloat16
    torch.testing.assert_close(bf16, fp32, atol=0.05, rtol=0.05)

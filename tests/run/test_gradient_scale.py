"""Issue 16: the training step follows the original's gradient, (u * L) * dL/dw, with L the
global batch's loss and u its loss unit per metre (1 for Human3.6M, 1000 for MPI-INF-3DHP);
``--gradient-scale plain`` follows dL/dw. Checked against a plain backward computed here, for
one call, three micro-batches and two DDP processes."""
import copy
import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import common.model.diffusion as diffusion
from common.core.keyed_random import generators_from_seeds
from common.model.tokenizer import get_tokenizer
from common.run.devices import Runtime
from common.run.training import TrainSettings, loss_weight_unit, make_optimizer, train_step, wrap_for_training
from support.models import build_tiny_model

CLIPS, FRAMES, JOINTS = 4, 9, 17


def _model(layout='h36m'):
    torch.manual_seed(0)
    model = build_tiny_model(drop_path=0.0, layout=layout).train()
    with torch.no_grad():   # zero-initialised output layers get values, so every weight has a gradient
        model.denoiser.prompt_attention.stylize.out_proj.weight.normal_(0, 0.1)
    return model


def _inputs(model, labels):
    g = torch.Generator().manual_seed(7)
    keypoints = torch.randn(CLIPS, FRAMES, JOINTS, 2, generator=g) * 0.3
    poses = torch.randn(CLIPS, FRAMES, JOINTS, 3, generator=g) * 0.2
    draws = model.draw_training_noise(generators_from_seeds(range(CLIPS)), (FRAMES, JOINTS, 3))
    tokens = get_tokenizer().tokenize(labels)
    return keypoints, poses, tokens, *draws, model.fpc_prompt_tokens(tokens)     # as training.prepare_step_inputs


def _plain_loss_and_grads(model, inputs):
    """The batch's mean loss and its plain gradient, by one backward of the model's own loss."""
    replica = copy.deepcopy(model)
    loss = replica(*inputs)
    loss.backward()
    return loss.item(), {n: p.grad for n, p in replica.named_parameters() if p.grad is not None}


def _step(model, inputs, unit, runtime=None):
    replica = copy.deepcopy(model)
    runtime = runtime or Runtime(torch.device('cpu'), gpu_ids=[])
    optimizer = make_optimizer(replica, TrainSettings(epochs=1, learning_rate=1e-3))
    unused = not replica.prompt_encoder.learn_prompts      # as training.train: vectors without gradients
    loss = train_step(wrap_for_training(replica, runtime, unused), optimizer, inputs, runtime, unit)
    return loss, {n: p.grad for n, p in replica.named_parameters() if p.grad is not None}


def _assert_scaled(grads, plain, factor):
    assert grads.keys() == plain.keys() and len(grads) > 50
    peak = max(g.abs().max().item() for g in plain.values())
    for name, grad in grads.items():
        torch.testing.assert_close(grad, plain[name] * factor, rtol=1e-4, atol=1e-6 * peak * abs(factor), msg=name)


@pytest.mark.parametrize('chunk_clips', [CLIPS, 2, 1], ids=['one-call', 'micro-batches-2', 'micro-batches-1'])
def test_original_weighting_is_loss_times_plain_gradient(chunk_clips, monkeypatch):
    monkeypatch.setattr(diffusion, 'CPU_CHUNK_TOKENS', chunk_clips * FRAMES * JOINTS)
    model = _model()
    inputs = _inputs(model, ['Walking', 'Eating', 'Sitting', 'Walking'])
    loss, plain = _plain_loss_and_grads(model, inputs)
    step_loss, grads = _step(model, inputs, loss_weight_unit('original', 'h36m'))
    assert step_loss == pytest.approx(loss, rel=1e-6)
    assert 0.05 < loss < 5          # a factor far from 1, so a missing scale would show
    _assert_scaled(grads, plain, loss)


def test_plain_weighting_is_the_plain_gradient():
    model = _model()
    inputs = _inputs(model, ['Walking', 'Eating', 'Sitting', 'Walking'])
    loss, plain = _plain_loss_and_grads(model, inputs)
    assert loss_weight_unit('plain', 'h36m') is None
    _, grads = _step(model, inputs, None)
    _assert_scaled(grads, plain, 1.0)


def test_3dhp_weight_is_the_loss_in_millimetres():
    """The original computes the MPI-INF-3DHP loss on its millimetre files: the weight is 1000 L."""
    model = _model('mpi_inf_3dhp')
    inputs = _inputs(model, [''] * CLIPS)
    loss, plain = _plain_loss_and_grads(model, inputs)
    assert loss_weight_unit('original', 'mpi_inf_3dhp') == 1000.0
    _, grads = _step(model, inputs, loss_weight_unit('original', 'mpi_inf_3dhp'))
    _assert_scaled(grads, plain, 1000.0 * loss)


def test_unknown_gradient_scale_is_refused():
    with pytest.raises(ValueError, match="gradient_scale 'squared': expected one of original, plain"):
        loss_weight_unit('squared', 'h36m')


def _ddp_worker(rank, world_size, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=world_size)
    try:
        model = _model()
        inputs = _inputs(model, ['Walking', 'Eating', 'Sitting', 'Walking'])
        loss, grads = _step(model, inputs, 1.0, Runtime(torch.device('cpu'), [], rank, world_size))
        torch.save({'loss': loss, 'grads': grads}, os.path.join(out_dir, f'rank{rank}.pt'))
    finally:
        dist.destroy_process_group()


def test_two_ddp_processes_weight_by_the_global_batch_loss(tmp_path):
    """Each rank computes the loss of its 2 clips; the weight is the 4 clips' loss after the all-reduce."""
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    sys.path.insert(0, os.path.dirname(__file__))
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / 'init'), str(tmp_path)), nprocs=2, join=True)
    model = _model()
    loss, plain = _plain_loss_and_grads(model, _inputs(model, ['Walking', 'Eating', 'Sitting', 'Walking']))
    for rank in range(2):
        result = torch.load(tmp_path / f'rank{rank}.pt')
        assert result['loss'] == pytest.approx(loss, rel=1e-6)
        _assert_scaled(result['grads'], plain, loss)

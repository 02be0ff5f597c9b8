"""Denoiser: shapes, each clip attends to its own prompt, errors."""
import pytest
import torch

from common.model.tokenizer import get_tokenizer
from support.models import build_tiny_model

TOK = get_tokenizer()


def test_each_clip_attends_to_its_own_prompt():
    model = build_tiny_model().eval()
    g = torch.Generator().manual_seed(0)
    kp, noisy = torch.randn(3, 9, 17, 2, generator=g), torch.randn(3, 9, 17, 3, generator=g)
    t = torch.tensor([10, 500, 900])
    # Make the stylisation non-zero so the prompts matter.
    torch.nn.init.normal_(model.denoiser.prompt_attention.stylize.out_proj.weight, std=0.2)
    with torch.no_grad():
        batch = model.denoiser(kp, noisy, t, model.prompt_encoder(TOK.tokenize(['Walking', 'Eating', 'Sitting'])))
        for i, action in enumerate(['Walking', 'Eating', 'Sitting']):
            alone = model.denoiser(kp[i:i + 1], noisy[i:i + 1], t[i:i + 1], model.prompt_encoder(TOK.tokenize([action])))
            torch.testing.assert_close(batch[i:i + 1], alone, atol=1e-5, rtol=1e-5)
        other = model.denoiser(kp[:1], noisy[:1], t[:1], model.prompt_encoder(TOK.tokenize(['Eating'])))
    assert (other - batch[:1]).abs().max() > 1e-4


def test_output_shape_and_wrong_frames():
    model = build_tiny_model()
    prompts = model.prompt_encoder(TOK.tokenize(['']))
    out = model.denoiser(torch.zeros(1, 9, 17, 2), torch.zeros(1, 9, 17, 3), torch.tensor([3]), prompts)
    assert out.shape == (1, 9, 17, 3)
    with pytest.raises(ValueError, match='built for 9 frames'):
        model.denoiser(torch.zeros(1, 8, 17, 2), torch.zeros(1, 8, 17, 3), torch.tensor([3]), prompts)


def test_stochastic_depth_applies_the_given_keep_masks():
    """Masks come per clip from ``draw_keep_masks`` (block 0 has rate 0, block 1 the full 0.5);
    without masks nothing is dropped (whatever the train/eval mode), all-ones masks change
    nothing, drawn ones do, and a clip's output depends only on its own masks."""
    model = build_tiny_model(drop_path=0.5).train()
    spatial, temporal = model.denoiser.draw_keep_masks(torch.Generator().manual_seed(0))
    assert spatial.shape == (2, 2, 9) and temporal.shape == (2, 2, 17)
    assert torch.equal(spatial[0], torch.ones(2, 9)) and torch.equal(temporal[0], torch.ones(2, 17))
    block1 = torch.cat([spatial[1].flatten(), temporal[1].flatten()])
    assert set(block1.tolist()) == {0.0, 2.0}                              # dropped, or kept and scaled 1 / (1 - p)
    masks = [model.denoiser.draw_keep_masks(torch.Generator().manual_seed(s)) for s in (1, 2)]
    spatial, temporal = (torch.stack(m) for m in zip(*masks))             # (2, depth, 2, F), (2, depth, 2, J)
    g = torch.Generator().manual_seed(3)
    kp, noisy, t = torch.randn(2, 9, 17, 2, generator=g), torch.randn(2, 9, 17, 3, generator=g), torch.tensor([5, 700])
    with torch.no_grad():
        prompts = model.prompt_encoder(TOK.tokenize(['Walking', 'Eating']))
        plain = model.denoiser(kp, noisy, t, prompts)
        ones = model.denoiser(kp, noisy, t, prompts, torch.ones_like(spatial), torch.ones_like(temporal))
        dropped = model.denoiser(kp, noisy, t, prompts, spatial, temporal)
        alone = model.denoiser(kp[1:], noisy[1:], t[1:], model.prompt_encoder(TOK.tokenize(['Eating'])),
                               spatial[1:], temporal[1:])
        evaluated = model.eval().denoiser(kp, noisy, t, prompts)
    torch.testing.assert_close(ones, plain, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(evaluated, plain, atol=0, rtol=0)
    assert (dropped - plain).abs().max() > 1e-3
    torch.testing.assert_close(alone, dropped[1:], atol=1e-5, rtol=1e-5)

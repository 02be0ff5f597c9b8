"""Denoiser: shapes, each clip attends to its own prompt, errors."""
import pytest
import torch

from common.tokenizer import get_tokenizer
from model_fixtures import build_tiny_model

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


def test_drop_path_only_in_training():
    model = build_tiny_model(drop_path=0.5)
    prompts = model.prompt_encoder(TOK.tokenize(['Walking']))
    args = (torch.randn(1, 9, 17, 2), torch.randn(1, 9, 17, 3), torch.tensor([5]))
    model.eval()
    with torch.no_grad():
        a, b = model.denoiser(*args, prompts), model.denoiser(*args, prompts)
        torch.testing.assert_close(a, b)
        model.train()
        torch.manual_seed(0)
        c = model.denoiser(*args, prompts)
    assert not torch.allclose(a, c)

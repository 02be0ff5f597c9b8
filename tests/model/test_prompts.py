"""FPP: layouts, shapes, gradients into the learnable prompt vectors, empty actions."""
import torch

from common.model.prompts import H36M_LAYOUT, MPI_INF_3DHP_LAYOUT
from common.model.tokenizer import get_tokenizer
from support.models import build_tiny_model

TOK = get_tokenizer()


def test_layouts_fill_the_clip_context():
    assert H36M_LAYOUT.length == MPI_INF_3DHP_LAYOUT.length == 77
    assert [s.num_learnable for s in H36M_LAYOUT.segments] == [3, 8, 6, 6, 6, 10, 10]
    assert [s.num_learnable for s in MPI_INF_3DHP_LAYOUT.segments] == [5, 8, 8, 8, 12, 12]
    assert [s.text for s in H36M_LAYOUT.segments] == ['A person', None, 'speed', 'head', 'body', 'arm', 'leg']
    assert H36M_LAYOUT.has_action and not MPI_INF_3DHP_LAYOUT.has_action


def test_shapes_and_deduplication_h36m():
    encoder = build_tiny_model().prompt_encoder
    tokens = TOK.tokenize(['Walking', 'Eating', 'Walking', ''])
    prompts = encoder(tokens)
    assert prompts.tokens.shape == (3, 77, 64) and prompts.pooled.shape == (3, 32)
    assert prompts.index.tolist()[0] == prompts.index.tolist()[2] != prompts.index.tolist()[1]
    alone = encoder(TOK.tokenize(['Eating']))
    torch.testing.assert_close(prompts.tokens[prompts.index[1]], alone.tokens[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(prompts.pooled[prompts.index[1]], alone.pooled[0], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(prompts.tokens).all()


def test_shapes_3dhp_ignores_action_tokens():
    encoder = build_tiny_model(layout='mpi_inf_3dhp').prompt_encoder
    prompts = encoder(TOK.tokenize(['', '', 'anything']))
    assert prompts.tokens.shape == (1, 77, 64) and prompts.index.tolist() == [0, 0, 0]


def test_pooled_token_positions():
    h36m = build_tiny_model().prompt_encoder
    tokens = TOK.tokenize(['Walking', '', 'WalkDog'])
    # End-of-text position in the action's own tokens: 'walking' is one token, 'walkdog' two.
    assert h36m._pooled_position(tokens).tolist() == [2, 1, 3]
    assert build_tiny_model(layout='mpi_inf_3dhp').prompt_encoder._pooled_position(tokens).tolist() == [76, 76, 76]


def _prompt_grads(model):
    prompts = model.prompt_encoder(TOK.tokenize(['Walking', 'Sitting']))
    (prompts.tokens.square().sum() + prompts.pooled.square().sum()).backward()
    return model.prompt_encoder


def test_learn_prompts_reaches_every_prompt_vector_and_no_clip_weight():
    encoder = _prompt_grads(build_tiny_model(learn_prompts=True))
    for name, vectors in encoder.learnable.items():
        assert vectors.grad is not None, name
        assert (vectors.grad.abs().sum(dim=1) > 0).all(), f'a {name} vector got no gradient'
    assert all(p.grad is None for p in encoder.text_tower.parameters())
    assert all(p.grad is not None for p in encoder.encoder.parameters())


def test_prompt_vectors_do_not_learn_by_default_as_in_the_reference():
    encoder = _prompt_grads(build_tiny_model())
    assert all(v.grad is None for v in encoder.learnable.values())
    assert all(p.grad is not None for p in encoder.encoder.parameters())

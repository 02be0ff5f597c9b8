"""CLIP tokenizer: OpenAI's ids, framed as ``clip.tokenize(texts, truncate=True)`` frames them."""
import pytest
import torch

from common.core.errors import UserError
from common.model.openai_clip import clip_source_module
from common.model.tokenizer import CONTEXT_LENGTH, get_tokenizer

PROMPTS = ['A person walking', '', 'Ünïcödé café, naïve déjà vu', 'WALKING THE DOG', 'SittingDown',
           "don't stop!!  &amp; 12 people, 3.5 m/s", ' '.join(f'word{i % 7}' for i in range(100))]


def _clip_tokenize(texts):
    """clip-anytorch's ``clip.tokenize(texts, truncate=True)``: start + ids + end in a zeroed 77-wide
    row; a longer sequence is cut to 77 and its last entry replaced by the end token."""
    bpe = clip_source_module('simple_tokenizer').SimpleTokenizer()
    sot, eot = bpe.encoder['<|startoftext|>'], bpe.encoder['<|endoftext|>']
    rows = torch.zeros(len(texts), CONTEXT_LENGTH, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = [sot] + bpe.encode(text) + [eot]
        if len(ids) > CONTEXT_LENGTH:
            ids = ids[:CONTEXT_LENGTH]
            ids[-1] = eot
        rows[i, :len(ids)] = torch.tensor(ids)
    return rows


def test_known_ids():
    tokens = get_tokenizer().tokenize(['A person walking'])
    assert tokens.shape == (1, CONTEXT_LENGTH) and tokens.dtype == torch.long
    assert tokens[0, :5].tolist() == [49406, 320, 2533, 3941, 49407]
    assert tokens[0, 5:].eq(0).all()
    assert get_tokenizer().vocab_size == 49408


def test_equals_clip_anytorch_ids():
    ours = get_tokenizer().tokenize(PROMPTS)
    torch.testing.assert_close(ours, _clip_tokenize(PROMPTS), rtol=0, atol=0)
    assert ours[1, :2].tolist() == [49406, 49407] and ours[1, 2:].eq(0).all()    # '' is start + end
    assert ours[3].tolist() == get_tokenizer().tokenize(['walking the dog'])[0].tolist()   # lower-cased
    assert len(get_tokenizer().encode(PROMPTS[-1])) > CONTEXT_LENGTH               # the long one is cut


def test_truncation():
    long_text = PROMPTS[-1]
    tokens = get_tokenizer().tokenize([long_text])[0]
    assert tokens[-1].item() == 49407 and tokens.ne(0).all()
    assert tokens[1:-1].tolist() == get_tokenizer().encode(long_text)[:CONTEXT_LENGTH - 2]
    with pytest.raises(UserError, match='longer than the 77-token'):
        get_tokenizer().tokenize([long_text], truncate=False)

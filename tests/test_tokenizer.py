"""CLIP tokenizer: OpenAI's ids."""
import pytest
import torch

from clip_reference import load_clip_module
from common.errors import UserError
from common.tokenizer import CONTEXT_LENGTH, get_tokenizer


def test_known_ids():
    tokens = get_tokenizer().tokenize(['A person walking'])
    assert tokens.shape == (1, CONTEXT_LENGTH) and tokens.dtype == torch.long
    assert tokens[0, :5].tolist() == [49406, 320, 2533, 3941, 49407]
    assert tokens[0, 5:].eq(0).all()
    assert get_tokenizer().vocab_size == 49408


def test_empty_text_is_start_and_end_only():
    tokens = get_tokenizer().tokenize([''])[0]
    assert tokens[:2].tolist() == [49406, 49407] and tokens[2:].eq(0).all()


def test_matches_openai_simple_tokenizer():
    openai = load_clip_module('simple_tokenizer').SimpleTokenizer()
    ours = get_tokenizer()
    texts = ['Walking', 'WalkDog', 'SittingDown', 'A person', 'speed', 'head', 'body', 'arm', 'leg',
             'TakingPhoto', "don't stop!!", 'Ünïcödé  &amp; spaces', '12 people, 3.5 m/s', 'Purchases']
    for text in texts:
        assert ours.encode(text) == openai.encode(text), text


def test_truncation():
    long_text = ' '.join(['walking'] * 100)
    tokens = get_tokenizer().tokenize([long_text])[0]
    assert tokens[-1].item() == 49407 and tokens.ne(0).all()
    with pytest.raises(UserError, match='longer than the 77-token'):
        get_tokenizer().tokenize([long_text], truncate=False)

"""CLIP token ids, computed by OpenAI's own tokenizer.

The byte-pair encoding is CLIP's ``SimpleTokenizer`` from the installed ``clip-anytorch``
(``clip/simple_tokenizer.py``, loaded by file through ``common.model.openai_clip``; the package's
``__init__`` is never imported). This module only frames its ids for the 77-token context:
``tokenize(["A person walking"])[0]`` is 49406 (start), 320, 2533, 3941, 49407 (end), then zeros.
"""
from functools import lru_cache

import torch

from common.core.errors import UserError
from common.model.openai_clip import clip_source_module

CONTEXT_LENGTH = 77
START_OF_TEXT = '<|startoftext|>'
END_OF_TEXT = '<|endoftext|>'
FRAMED_TEXTS_KEPT = 4096        # distinct texts whose token rows stay cached (action labels, prompt words)


class ClipTokenizer:
    """Text -> CLIP token ids (vocabulary of 49408)."""

    def __init__(self):
        self.bpe = clip_source_module('simple_tokenizer').SimpleTokenizer()
        self.sot = self.bpe.encoder[START_OF_TEXT]
        self.eot = self.bpe.encoder[END_OF_TEXT]

    @property
    def vocab_size(self) -> int:
        return len(self.bpe.encoder)

    def encode(self, text: str) -> list:
        """Text -> token ids, without start/end tokens."""
        return self.bpe.encode(text)

    def tokenize(self, texts, context_length: int = CONTEXT_LENGTH, truncate: bool = True) -> torch.Tensor:
        """List of texts -> (len(texts), context_length) long tensor: start, ids, end, zeros.

        A text too long for the context keeps its first ``context_length - 1`` tokens (start
        included) followed by the end-of-text token when ``truncate`` (as the reference does),
        else raises.
        """
        if isinstance(texts, str):
            texts = [texts]
        if not texts:
            return torch.zeros(0, context_length, dtype=torch.long)
        return torch.stack([self._framed_ids(text, context_length, truncate) for text in texts])

    @lru_cache(maxsize=FRAMED_TEXTS_KEPT)
    def _framed_ids(self, text: str, context_length: int, truncate: bool) -> torch.Tensor:
        """One row of ``tokenize``, kept: training tokenizes every clip's action label at every step,
        and byte-pair encoding is the costly part of a step's host work (ftfy, regex, merges)."""
        body = [self.sot] + self.encode(text)
        if len(body) >= context_length:
            if not truncate:
                raise UserError(f'text {text!r} is longer than the {context_length}-token CLIP context')
            body = body[:context_length - 1]
        ids = body + [self.eot]
        return torch.tensor(ids + [0] * (context_length - len(ids)), dtype=torch.long)     # never written to


@lru_cache(maxsize=1)
def get_tokenizer() -> ClipTokenizer:
    """The process-wide tokenizer (building it reads ~50k merges, so it is done once)."""
    return ClipTokenizer()

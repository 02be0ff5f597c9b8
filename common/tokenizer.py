"""CLIP's byte-pair-encoding tokenizer, with the vocabulary of the installed ``clip-anytorch``.

Token ids equal OpenAI's: ``tokenize(["A person walking"])[0]`` starts 49406, 320, 2533, 3941,
49407 and is zero-padded to the 77-token context. The merge list is read from the
``clip-anytorch`` distribution's data file without importing the ``clip`` package (its
``__init__`` imports torchvision).

Algorithm (Sennrich et al.; GPT-2/CLIP variant): text is cleaned (ftfy, HTML unescape,
whitespace collapsed, lower-cased), split into words by a regular expression, each word's UTF-8
bytes are mapped to printable characters, the last character marked as word end (``</w>``),
and adjacent symbol pairs are merged greedily in the order of the merge list.
"""
import gzip
import html
import importlib.metadata
from functools import lru_cache

import ftfy
import regex
import torch

from common.errors import UserError

CONTEXT_LENGTH = 77
START_OF_TEXT = '<|startoftext|>'
END_OF_TEXT = '<|endoftext|>'
VOCAB_DISTRIBUTION = 'clip-anytorch'
VOCAB_FILE = 'clip/bpe_simple_vocab_16e6.txt.gz'
# CLIP uses the first 48894 merges of the file (its first line is a version header):
# 256 byte symbols + 256 word-final byte symbols + 48894 merges + 2 special tokens = 49408.
NUM_MERGES = 49152 - 256 - 2
WORD_END = '</w>'
_WORD_PATTERN = regex.compile(
    r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+",
    regex.IGNORECASE)


def _byte_symbols():
    """Map each byte 0..255 to a printable unicode character.

    Printable Latin-1 bytes map to themselves; the others, in byte order, to 256, 257, ...
    The dict's order (printable bytes first) is the order of the first 256 vocabulary entries.
    """
    printable = (list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1))
                 + list(range(ord('®'), ord('ÿ') + 1)))
    symbols = {b: chr(b) for b in printable}
    others = [b for b in range(256) if b not in symbols]
    symbols.update({b: chr(256 + i) for i, b in enumerate(others)})
    return symbols


def _read_merges():
    try:
        path = importlib.metadata.distribution(VOCAB_DISTRIBUTION).locate_file(VOCAB_FILE)
        text = gzip.open(path).read().decode('utf-8')
    except (importlib.metadata.PackageNotFoundError, FileNotFoundError):
        raise UserError(f'CLIP vocabulary {VOCAB_FILE} not found: install it with '
                        f'`pip install --no-deps {VOCAB_DISTRIBUTION}==2.6.0`') from None
    lines = text.split('\n')[1:NUM_MERGES + 1]
    return [tuple(line.split()) for line in lines]


def _clean(text: str) -> str:
    text = html.unescape(html.unescape(ftfy.fix_text(text)))
    return regex.sub(r'\s+', ' ', text.strip()).strip().lower()


class BPETokenizer:
    """Text -> CLIP token ids (vocabulary of 49408)."""

    def __init__(self):
        self.byte_symbols = _byte_symbols()
        merges = _read_merges()
        vocab = list(self.byte_symbols.values())
        vocab += [symbol + WORD_END for symbol in vocab]
        vocab += [''.join(pair) for pair in merges]
        vocab += [START_OF_TEXT, END_OF_TEXT]
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.merge_rank = {pair: i for i, pair in enumerate(merges)}
        self.sot = self.encoder[START_OF_TEXT]
        self.eot = self.encoder[END_OF_TEXT]

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    @lru_cache(maxsize=4096)
    def _bpe(self, word: str) -> tuple:
        """One word (already byte-mapped) -> its BPE symbols."""
        symbols = list(word[:-1]) + [word[-1] + WORD_END]
        while len(symbols) > 1:
            pairs = {(a, b) for a, b in zip(symbols, symbols[1:])}
            best = min(pairs, key=lambda pair: self.merge_rank.get(pair, float('inf')))
            if best not in self.merge_rank:
                break
            merged = []
            i = 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            symbols = merged
        return tuple(symbols)

    def encode(self, text: str) -> list:
        """Text -> token ids, without start/end tokens."""
        ids = []
        for word in _WORD_PATTERN.findall(_clean(text)):
            mapped = ''.join(self.byte_symbols[b] for b in word.encode('utf-8'))
            ids.extend(self.encoder[symbol] for symbol in self._bpe(mapped))
        return ids

    def tokenize(self, texts, context_length: int = CONTEXT_LENGTH, truncate: bool = True) -> torch.Tensor:
        """List of texts -> (len(texts), context_length) long tensor: start, ids, end, zeros.

        Texts too long for the context are cut and end with the end-of-text token when
        ``truncate`` (as the reference does), else raise.
        """
        if isinstance(texts, str):
            texts = [texts]
        out = torch.zeros(len(texts), context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [self.sot] + self.encode(text) + [self.eot]
            if len(ids) > context_length:
                if not truncate:
                    raise UserError(f'text {text!r} is longer than the {context_length}-token CLIP context')
                ids = ids[:context_length - 1] + [self.eot]
            out[row, :len(ids)] = torch.tensor(ids)
        return out


@lru_cache(maxsize=1)
def get_tokenizer() -> BPETokenizer:
    """The process-wide tokenizer (building it reads ~50k merges, so it is done once)."""
    return BPETokenizer()

"""A digest of a checkpoint's content, so a damaged file is refused instead of evaluated.

torch's zip container does not check the bytes of the tensors it reads back: a flipped byte in
the weights loads silently. Our checkpoints therefore carry ``digest``, a hash of everything else
they hold, computed when the file is written and compared on every load.

The content is walked in a fixed order: dictionaries by the ``repr`` of their keys, lists and
tuples in order; a tensor contributes its dtype, shape and raw bytes, any other value its type
name and ``repr`` (str, int, float, bool, None: what our checkpoints hold besides tensors).
Anything else is a ``TypeError``: a new kind of entry must first be given an encoding here.
The tensors' bytes are hashed by ``hashlib`` (``DIGEST_ALGORITHM``), one tensor per task on up
to torch's thread count (``--threads``; hashlib releases the GIL on large buffers); the digest is
the hash of the encoded structure with each tensor's own digest in its place.
"""
import hashlib
from concurrent.futures import ThreadPoolExecutor

import torch

DIGEST_ALGORITHM = 'sha256'    # hardware-accelerated on x86 (SHA-NI) and ARMv8: ~2x blake2b here
# Tensors below this size are hashed inline: a thread hand-off costs more than hashing them.
INLINE_BYTES = 1 << 16
MAX_THREADS = 8


def _tensor_bytes(tensor: torch.Tensor):
    """The tensor's bytes as a buffer hashlib reads without a copy (a copy only when it is not
    contiguous or not on the CPU)."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy()


def _hash_tensor(tensor: torch.Tensor, algorithm: str) -> bytes:
    digest = hashlib.new(algorithm, f'{tensor.dtype} {tuple(tensor.shape)};'.encode())
    digest.update(_tensor_bytes(tensor))
    return digest.digest()


def _encode(value, tensors: list, out: list) -> None:
    """Append ``value``'s structure to ``out``: str pieces, and for each tensor its index in ``tensors``."""
    if isinstance(value, torch.Tensor):
        out.append(len(tensors))
        tensors.append(value)
    elif isinstance(value, dict):
        out.append(f'dict {len(value)}{{')
        for key in sorted(value, key=repr):
            _encode(key, tensors, out)
            _encode(value[key], tensors, out)
        out.append('}')
    elif isinstance(value, (list, tuple)):
        out.append(f'seq {len(value)}[')
        for item in value:
            _encode(item, tensors, out)
        out.append(']')
    elif value is None or isinstance(value, (str, int, float, bool)):
        text = repr(value)
        out.append(f'{type(value).__name__} {len(text)}:{text};')
    else:
        raise TypeError(f'no digest encoding for a {type(value).__name__} in a checkpoint')


def content_digest(content, algorithm: str = DIGEST_ALGORITHM) -> str:
    """'<algorithm>:<hex>' of ``content`` (nested dicts, lists, tuples, tensors and plain values).

    The same content gives the same digest wherever its tensors live (CPU or GPU) and whatever
    their memory layout; a single changed byte of any tensor or value changes it."""
    tensors, structure = [], []
    _encode(content, tensors, structure)
    large = [i for i, t in enumerate(tensors) if t.numel() * t.element_size() >= INLINE_BYTES]
    threads = min(MAX_THREADS, torch.get_num_threads(), len(large))
    digests = {}
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            digests = dict(zip(large, pool.map(lambda i: _hash_tensor(tensors[i], algorithm), large)))
    total = hashlib.new(algorithm)
    for piece in structure:
        if isinstance(piece, int):
            total.update(b'tensor ' + (digests.get(piece) or _hash_tensor(tensors[piece], algorithm)) + b';')
        else:
            total.update(piece.encode())
    return f'{algorithm}:{total.hexdigest()}'

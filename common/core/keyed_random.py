"""Random draws keyed by what they are for, so results do not depend on how work is split.

Every random number of a clip comes from the clip's own generator, seeded by a key that names
the clip: sampling (``SAMPLING_STREAM``, seed, the sequence's (subject, action, camera), window),
training (``TRAINING_STREAM``, seed, epoch, batch, position in the global batch). Whatever the batch size, the number of
processes or GPUs and the micro-batching, a clip gets the same numbers.

The seed is the first 63 bits of BLAKE2b of the key's ``repr`` (a tuple): stable across runs,
machines and Python versions (unlike ``hash()``), and fits torch's int64 tensors. Generators are
CPU generators; draws are moved to the device afterwards, so CPU and CUDA get the same numbers.
"""
import hashlib

import torch

SAMPLING_STREAM = 'sampling'
TRAINING_STREAM = 'training'
_SEED_BITS = 63


def keyed_seed(*key) -> int:
    """A seed in [0, 2**63) from the key's parts (ints, strings, tuples of them), e.g.
    ('sampling', 1, ('S9', 'Walking 1', 0), 3)."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, 'little') >> (64 - _SEED_BITS)


def generators_from_seeds(seeds) -> list:
    """One CPU ``torch.Generator`` per seed of ``seeds`` (ints, or an int64 tensor (B,))."""
    values = seeds.tolist() if torch.is_tensor(seeds) else list(seeds)
    return [torch.Generator().manual_seed(int(s)) for s in values]


def normal_per_clip(generators, clip_shape, device=None):
    """Standard normal noise (B * n, ...) for B clips: ``clip_shape`` = (n, ...) drawn from each
    clip's generator in turn, on the CPU, then moved to ``device``."""
    return torch.cat([torch.randn(clip_shape, generator=g) for g in generators]).to(device)

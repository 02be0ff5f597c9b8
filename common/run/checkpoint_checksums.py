"""Damaged checkpoint files found by the CRC-32 checksums their zip container already carries.

``torch.save`` writes a zip archive in which every record (``data.pkl``, the pickled structure and
configuration, and one record per tensor storage) carries the CRC-32 of its bytes, computed while
writing (``torch.utils.serialization.config.save.compute_crc32``, on by default; ``saving_with_checksums``
makes sure of it). ``torch.load`` never compares them, so a flipped byte in the weights loads
silently. ``damaged_record`` reads every record back through Python's ``zipfile``, which compares
each record's bytes with its CRC-32 and its local header with the central directory.

This covers every tensor's bytes and the configuration, costs a save nothing (torch computes the
checksums anyway) and a load one read of the file at CRC-32 speed, and works for any checkpoint
written by torch >= 1.6, official ones included. CRC-32 catches every burst of up to 32 flipped
bits and other damage with probability 1 - 2^-32 per record: damage on disk or in transfer, not
deliberate tampering. Files in torch's legacy (pre-zip) format carry no checksums.
"""
import zipfile
from contextlib import contextmanager
from pathlib import Path

from torch.utils.serialization import config as serialization_config

ZIP_MAGIC = b'PK\x03\x04'


def has_checksums(path) -> bool:
    """Whether ``path`` is a zip archive (torch >= 1.6's format), whose records carry CRC-32s."""
    with open(path, 'rb') as f:
        return f.read(len(ZIP_MAGIC)) == ZIP_MAGIC


# What zipfile raises for a file whose zip structure is broken (no central directory at its end,
# a local header that is not one, ...): a file cut short, typically.
BROKEN_ARCHIVE = (zipfile.BadZipFile, EOFError, ValueError, NotImplementedError)


def damaged_record(path):
    """None when every record of the zip archive ``path`` matches the CRC-32 written with it; else
    the first damaged record's name. A broken zip structure raises one of ``BROKEN_ARCHIVE``."""
    with zipfile.ZipFile(path) as archive:
        return archive.testzip()


@contextmanager
def saving_with_checksums():
    """``torch.save`` inside this block computes the CRC-32s even where a caller switched them off."""
    previous = serialization_config.save.compute_crc32
    serialization_config.save.compute_crc32 = True
    try:
        yield
    finally:
        serialization_config.save.compute_crc32 = previous


def checksum_failure(path) -> str:
    """The one-line reason a checkpoint at ``path`` is refused, or '' when its checksums hold (or
    it has none: ``has_checksums``)."""
    if not has_checksums(Path(path)):
        return ''
    remedy = 'use another copy, or an earlier epoch_N.bin'
    try:
        damaged = damaged_record(path)
    except BROKEN_ARCHIVE as err:
        return (f'{path}: damaged checkpoint: its zip structure is broken ({err}), as in a file cut short by an '
                f'interrupted copy, download or save; {remedy}')
    if damaged is None:
        return ''
    return (f'{path}: damaged checkpoint: {damaged} no longer matches the CRC-32 checksum written with it '
            f'(changed on disk or in transfer); {remedy}')

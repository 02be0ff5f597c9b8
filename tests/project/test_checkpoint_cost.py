"""tools/checkpoint_cost.py: the with/without-checksums measurement, on the tiny model."""
import sys

import torch
from torch.utils.serialization import config as serialization_config

from common.run import checkpoint_checksums, checkpoints
from support.models import build_tiny_model, tiny_config
from support.runs import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / 'tools'))
import checkpoint_cost  # noqa: E402


def test_measures_both_ways_and_restores_the_checks(tmp_path, monkeypatch):
    checks, saves = [], []
    real_check, real_save = checkpoints.checksum_failure, torch.save
    monkeypatch.setattr(checkpoints, 'checksum_failure', lambda path: checks.append(path) or real_check(path))
    monkeypatch.setattr(torch, 'save', lambda *args, **kwargs: saves.append(serialization_config.save.compute_crc32)
                        or real_save(*args, **kwargs))
    model = build_tiny_model()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    times = checkpoint_cost.measure(model, optimizer, tiny_config(), repeats=2, folder=tmp_path)
    # Saves alternate without and with torch's CRC-32s (warm-up, then 2 timed); loads check 3 times.
    assert saves == [False, True] * 3 and len(checks) == 3
    assert checkpoints.checksum_failure is not real_check                    # the monkeypatched spy is back
    assert checkpoints.saving_with_checksums is checkpoint_checksums.saving_with_checksums
    assert serialization_config.save.compute_crc32 is True
    assert set(times) == {'size_mib', 'save without checksums', 'save with checksums', 'load without check',
                          'load with check', 'check alone'}
    assert all(t > 0 for t in times.values()) and list(tmp_path.iterdir()) == []
    text = checkpoint_cost.report(times, threads=1, repeats=2)
    assert 'CRC-32 checksums, 1 threads, median of 2' in text
    assert 'the check adds' in text and text.count('\n') == 7

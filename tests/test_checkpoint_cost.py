"""tools/checkpoint_cost.py: the with/without-digest measurement, on the tiny model."""
import sys

import torch

from common.run import checkpoint_digest, checkpoints
from conftest import REPO_ROOT
from model_fixtures import build_tiny_model, tiny_config

sys.path.insert(0, str(REPO_ROOT / 'tools'))
import checkpoint_cost  # noqa: E402


def test_measures_both_ways_and_restores_the_digest(tmp_path, monkeypatch):
    calls = []
    real_digest = checkpoints.content_digest
    monkeypatch.setattr(checkpoints, 'content_digest',
                        lambda content, *algorithm: calls.append(algorithm) or real_digest(content, *algorithm))
    model = build_tiny_model()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    times = checkpoint_cost.measure(model, optimizer, tiny_config(), repeats=2, folder=tmp_path)
    # Saves with the digest: the first, the warm-up and 2 timed; loads checking it: the warm-up and 2 timed.
    assert calls == [()] * 4 + [('sha256',)] * 3
    assert checkpoints.check_digest.__module__ == 'common.run.checkpoints'
    assert set(times) == {'size_mib', 'save without digest', 'save with digest', 'load without digest',
                          'load with digest', 'digest alone'}
    assert all(t > 0 for t in times.values()) and list(tmp_path.iterdir()) == []
    text = checkpoint_cost.report(times, threads=1, repeats=2)
    assert f'{checkpoint_digest.DIGEST_ALGORITHM} digest, 1 threads, median of 2' in text
    assert 'the digest adds' in text and text.count('\n') == 7

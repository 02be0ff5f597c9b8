"""tools/gpu_table.py and tools/original_side_by_side.py, run on the CPU with tiny rows and a
stand-in of the original code (same interface as its FinePOSE, loss and clip modules), so the
script a GPU owner runs is known to work end to end."""
import json
import subprocess
import sys
import textwrap

import pytest

from support.runs import REPO_ROOT

TINY = {'frames': 9, 'depth': 1, 'width': 32, 'heads': 4, 'text_tower': 'tiny', 'hypotheses': 2, 'steps': 2}

STAND_IN = {
    'clip.py': '''
        import torch

        def tokenize(text, truncate=False):
            return torch.zeros(1, 77, dtype=torch.long)
        ''',
    'common/__init__.py': '',
    'common/loss.py': '''
        import torch

        def mpjpe(predicted, target):
            return torch.mean(torch.norm(predicted - target, dim=len(target.shape) - 1))
        ''',
    'common/finepose.py': '''
        import torch
        from torch import nn

        class FinePOSE(nn.Module):
            """The original's interface: training returns (B, F, J, 3), sampling (B, K, H, F, J, 3)."""
            def __init__(self, args, joints_left, joints_right, is_train=True, num_proposals=1, sampling_timesteps=1):
                super().__init__()
                self.is_train, self.h, self.k = is_train, num_proposals, sampling_timesteps
                self.linear = nn.Linear(2, 3)

            def forward(self, input_2d, input_3d, input_text, pre_text_tensor, input_2d_flip=None):
                assert input_text.shape == (input_2d.shape[0], 77) and pre_text_tensor.shape[1:] == (6, 77)
                out = self.linear(input_2d)
                if self.is_train:
                    return out
                return out[:, None, None].expand(-1, self.k, self.h, -1, -1, -1)
        ''',
}


@pytest.fixture
def stand_in_original(tmp_path):
    root = tmp_path / 'original'
    for name, text in STAND_IN.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))
    return root


def test_original_harness_times_training_and_sampling(stand_in_original, tmp_path):
    out = tmp_path / 'original.json'
    done = subprocess.run([sys.executable, 'tools/original_side_by_side.py', '--original', str(stand_in_original),
                           '--device', 'cpu', '--frames', '9', '--train-batches', '4,8', '--sample-batches', '1',
                           '--hypotheses', '2', '--steps', '2', '--repeats', '2', '--json', str(out)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())['rows']
    assert [(r['kind'], r['batch'], len(r['seconds'])) for r in rows] == [('train', 4, 2), ('train', 8, 2),
                                                                            ('sample', 1, 2)]
    assert 'train-9-b4: median' in done.stdout


def test_original_harness_refuses_a_folder_without_the_original(tmp_path):
    done = subprocess.run([sys.executable, 'tools/original_side_by_side.py', '--original', str(tmp_path),
                           '--device', 'cpu'], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and 'no common/finepose.py; expected a checkout of PKU-ICST-MIPL' in done.stderr


def test_gpu_table_runs_ours_and_the_original_side_by_side(stand_in_original, tiny_dataset, tmp_path):
    out = tmp_path / 'table.json'
    done = subprocess.run([sys.executable, 'tools/gpu_table.py', '--device', 'cpu', '--override', json.dumps(TINY),
                           '--original', str(stand_in_original), '--data-dir', str(tiny_dataset), '--threads', '1',
                           '--train-batches', '4', '--sample-batches', '1', '--options', '', '--epoch-steps', '2',
                           '--eval-windows', '2', '--json', str(out)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == '| measurement | original | ours | ours --bf16 | ours --compile |'
    table = '\n'.join(lines)
    assert 'failed' not in table, table
    rows = {line.split(' | ')[0][2:]: line.split(' | ')[1:] for line in lines[2:] if line.startswith('| ')}
    assert rows['largest training batch that fits (of 4)'][:2] == ['4 clips', '4 clips']
    original, ours = rows['full evaluation H=20 K=10 -b 4, 360 windows (extrapolated)'][:2]
    assert original.endswith(' h') and ' h (' in ours
    results = json.loads(out.read_text())
    assert results['data']['epoch-243-b4']['measured_steps'] == 2
    assert results['data']['eval-243-h20k10-b4']['measured_windows'] == 2
    assert sorted(p.name for p in tmp_path.glob('*.json')) == ['table.json']      # no intermediate file left

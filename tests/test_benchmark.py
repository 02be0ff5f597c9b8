"""tools/benchmark.py: a tiny row runs in its own process and the JSON report is complete."""
import json
import subprocess
import sys

from conftest import REPO_ROOT

TINY = {'frames': 9, 'depth': 1, 'width': 32, 'heads': 4, 'text_tower': 'tiny', 'hypotheses': 2, 'steps': 2}


def test_benchmark_runs_a_tiny_row_and_writes_json(tmp_path):
    out = tmp_path / 'bench.json'
    done = subprocess.run([sys.executable, 'tools/benchmark.py', '--rows', 'sample-27-h20k10', '--repeats', '2',
                           '--threads', '1', '--override', json.dumps(TINY), '--json', str(out)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report['device'] == 'cpu' and report['threads'] == 1 and report['options']['bf16'] is False
    (row,) = report['rows']
    assert row['row']['name'] == 'sample-27-h20k10' and row['row']['frames'] == 9
    assert row['row']['reference_s'] is None                 # an overridden row is not compared with the reference
    measured = row['measured']
    assert len(measured['seconds']) == 2 and measured['median_s'] > 0
    assert 0.05 < measured['peak_rss_gb'] < 4
    # 2 steps x 2 clips (H=2) x 2 (flip): the denoiser's attention and matrix products were counted.
    assert measured['flops'] > 2 * 2 * 2 * 9 * 17 * 32 * 32
    assert 'sample-27-h20k10' in done.stdout and 'GFLOP/s' in done.stdout
    # The machine's float32 matmul ceiling, and the row's share of it in the table.
    peak = report['machine']['matmul_gflops']['float32']
    assert 0.1 < peak < 1e6 and 'Matmul peak here: float32' in done.stdout
    share = measured['flops'] / 1e9 / measured['median_s'] / peak
    assert f'{share:.0%}' in done.stdout.splitlines()[2]


def test_benchmark_rejects_unknown_rows():
    done = subprocess.run([sys.executable, 'tools/benchmark.py', '--rows', 'train-1000'], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and 'unknown row(s) train-1000' in done.stderr

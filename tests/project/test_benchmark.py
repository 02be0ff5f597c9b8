"""tools/benchmark.py: a tiny row of every kind runs in its own process and the JSON report is complete."""
import json
import math
import subprocess
import sys

import pytest
import torch

from support.runs import REPO_ROOT, TINY_DATA_FRAMES

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


# ----------------------------------------------------------------------------- rows on a dataset

TINY_DATA_ROW = {'frames': 9, 'depth': 1, 'width': 32, 'heads': 4, 'text_tower': 'tiny', 'hypotheses': 2, 'steps': 2}
TRAIN_SEQUENCES = 5 * 9 * 4          # tiny_dataset: training subjects x actions (one take each) x cameras
TEST_SEQUENCES = 2 * 9 * 4           # S9, S11
CHUNKS = math.ceil(TINY_DATA_FRAMES / TINY_DATA_ROW['frames'])      # clips (windows) of 9 frames in 40


def _benchmark(*flags):
    return subprocess.run([sys.executable, 'tools/benchmark.py', '--threads', '1', '--repeats', '1',
                           '--override', json.dumps(TINY_DATA_ROW), *flags],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_dataset_rows_time_the_pipeline_an_epoch_and_the_whole_evaluation(tiny_dataset, tmp_path):
    out = tmp_path / 'full.json'
    done = _benchmark('--rows', 'pipeline-27-b1024,epoch-243-b4,eval-243-h20k10-b4', '--data-dir', str(tiny_dataset),
                      '--measure-steps', '2', '--measure-windows', '3', '--measure-ddim-steps', '1', '--json', str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    pipeline, epoch, evaluation = (row['measured'] for row in report['rows'])
    clips = TRAIN_SEQUENCES * CHUNKS * 2                                      # with their mirrored copies
    # -f 9 -s 27 -b 1024: the original's 1024 // 27 = 37 clips a step.
    assert pipeline['clips'] == clips and pipeline['clips_per_step'] == 37
    assert pipeline['steps'] == math.ceil(clips / 37)
    assert pipeline['clips_per_s'] == pytest.approx(clips / pipeline['median_s'])
    assert pipeline['host_ms_per_step'] == pytest.approx(pipeline['median_s'] / pipeline['steps'] * 1e3)
    assert epoch['steps'] == math.ceil(clips / 4) and epoch['measured_steps'] == 2 and epoch['flops'] > 0
    assert epoch['epoch_s'] == pytest.approx(epoch['steps'] * (epoch['host_ms_per_step'] + epoch['device_ms_per_step'])
                                             / 1e3)
    windows = TEST_SEQUENCES * CHUNKS
    passes = windows * 2 * 2 * 2                                              # H x K x flip
    assert evaluation['sequences'] == TEST_SEQUENCES and evaluation['windows'] == windows
    assert evaluation['measured_windows'] == 3 and evaluation['measured_passes'] == 3 * 2 * 1 * 2      # K measured: 1
    assert evaluation['passes'] == passes
    assert evaluation['device_s'] == pytest.approx(evaluation['measured_sampling_s'] * passes / (3 * 2 * 2))
    assert 0 < evaluation['host_s'] < evaluation['median_s']
    table = done.stdout.splitlines()
    assert table[0].startswith('row | what | host | device') and len(table) > 4
    assert any(line.startswith('eval-243-h20k10-b4 | 360 windows of 72 sequences') for line in table)


def test_dataset_rows_need_a_dataset():
    done = subprocess.run([sys.executable, 'tools/benchmark.py', '--rows', 'pipeline-243-b4'], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and '--rows pipeline-243-b4: these rows read a dataset; pass --data-dir' in done.stderr


def test_gpu_memory_is_estimated_from_live_tensors(tiny_dataset, tmp_path):
    out = tmp_path / 'memory.json'
    done = _benchmark('--rows', 'epoch-243-b4,eval-243-h20k10-b4', '--data-dir', str(tiny_dataset),
                      '--estimate-gpu-memory', '--json', str(out))
    assert done.returncode == 0, done.stderr
    training, sampling = (row['measured']['gpu_memory'] for row in json.loads(out.read_text())['rows'])
    assert training['per_clip_gb'] > 0 and training['clips'] == 4
    assert training['gpu_peak_estimate_gb'] == pytest.approx(training['fixed_gb'] + 4 * training['per_clip_gb'])
    assert training['gpu_chunk_clips'] == 65536 // (9 * 17)
    # -b 4 windows x H=2 x flip = 16 clips of 9 x 17 tokens: one GPU chunk.
    assert sampling['batch_windows'] == 4 and sampling['chunk_clips'] == 16
    assert sampling['gpu_peak_estimate_gb'] > sampling['model_gb'] + sampling['chunk_activation_gb'] > 0


def test_live_tensor_bytes_follow_storages_not_views():
    sys.path.insert(0, str(REPO_ROOT / 'tools'))
    from benchmark_full_size import LiveTensorBytes
    live = LiveTensorBytes()
    with live:
        a = torch.ones(1000)                                  # 4000 bytes
        b = a * 2
        view = b.view(10, 100)
        assert live.now == 8000
        del a, b
        assert live.now == 4000                               # the view keeps b's storage
        live.mark()
        c = view + 1
        del c, view
    assert (live.now, live.peak, live.since_mark) == (0, 8000, 8000)

"""Speed and memory of FinePOSE training steps and sampling, next to the original code's figures,
and of the data pipeline, a training epoch and the full evaluation on a whole dataset.

    python tools/benchmark.py                          # the model rows, CPU, 2 threads, 3 timed runs each
    python tools/benchmark.py --device cuda --rows train-243-b4,sample-27-h20k10 --json bench.json
    python tools/benchmark.py --rows pipeline-243-b4 --data-dir big     # a dataset row (tools/benchmark_full_size.py)

Each row runs in a fresh subprocess (so its peak memory is its own): the model is built
(the ViT-B/32-shaped text tower, random weights unless OpenAI's file is present; the speed is
the same), one warm-up run is made, then ``--repeats`` timed runs; the table shows their median.

* train-*: one training step of main.py with its default (the original's) prompts
  (``training.train_step``: the loss on random clips, each with a different action label, their
  prompts mixed over the batch, in the device's micro-batches, backward, and an AdamW step from
  ``training.make_optimizer``).
* sample-*: ``PoseDiffusion.ddim_sample`` of one random clip with H hypotheses, K DDIM steps
  and test-time flip.

Peak memory is the subprocess's peak resident set (``getrusage``: torch itself, the model,
optimizer state and activations); on CUDA also ``torch.cuda.max_memory_allocated``. The
floating-point work of one run is counted with ``torch.utils.flop_counter.FlopCounterMode``
(matrix products and attention; forward + backward for training) during the warm-up run, and
divided by the median time.

Rows on a dataset (``pipeline-*``, ``epoch-*``, ``eval-*``; they need ``--data-dir``, e.g. the
set of ``python -m common.synthetic --out big --h36m-size``) are described in
``tools/benchmark_full_size.py``: host and device time apart, peak memory, a measured fraction
extrapolated where asked (``--measure-steps``, ``--measure-windows``, ``--measure-ddim-steps``),
and, with ``--estimate-gpu-memory``, the CUDA memory they would need, estimated on a CPU.

The "original" columns are the original FinePOSE code's time and peak memory for four rows,
measured side by side with ours in one run (2-core AMD EPYC Zen 3, AVX2, torch 2.13 CPU, 2
threads, float32, random weights, the original patched only to run on a CPU); the speed-up
and peak ratio are taken against them on CPU runs only (comparable on such a machine).
"""
import argparse
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from common.core.atomic import write_text_atomic  # noqa: E402  (after the path; the package is imported before torch)
from common.core.errors import exit_on_user_error  # noqa: E402

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count  # noqa: E402

from common.core.keyed_random import generators_from_seeds  # noqa: E402
from common.core.units import MM_PER_M  # noqa: E402
from common.data.h36m import ACTIONS as H36M_ACTIONS  # noqa: E402
from common.data.skeleton import H36M_17  # noqa: E402
from common.evaluation.protocol import action_tokens_for  # noqa: E402
from common.model.build import ExecutionOptions, ModelConfig, apply_execution_options, build_model  # noqa: E402
from common.model.clip_text import TEXT_TOWERS  # noqa: E402
from common.run.arguments import add_execution_flags  # noqa: E402
from common.run.devices import Runtime  # noqa: E402
from common.run.experiment import execution_options_from_args  # noqa: E402
from common.run.batch_rule import training_batch  # noqa: E402
from common.run.training import TrainSettings, make_optimizer, step_generators, train_step  # noqa: E402

import benchmark_full_size as full_size  # noqa: E402  (tools/, this script's folder)

CPU_THREADS = 2
DEFAULT_REPEATS = 3
INPUT_SEED = 0
KEYPOINT_SPREAD = 0.3      # random 2D keypoints ~ N(0, 0.3^2), normalised image units
POSE_SPREAD = 0.2          # random 3D poses ~ N(0, 0.2^2) metres
GB = 1e9
GFLOP = 1e9
# The ceiling the rows run against: one (M x 512) @ (512 x 1024) product, the denoiser's MLP
# up-projection over one CPU chunk of M = 4096 tokens (diffusion.CPU_CHUNK_TOKENS; operands in
# cache: on a 2-core EPYC 174 GFLOP/s, against 143 for PERF_NOTES.md's 16384 x 512 x 2048) in
# float32; fewer rows in bfloat16 (a CPU without bf16 matrix units takes seconds for one product).
PEAK_SHAPE = {torch.float32: (4096, 512, 1024), torch.bfloat16: (1024, 512, 1024)}
PEAK_MIN_SECONDS = 2.0


DATA_KINDS = ('pipeline', 'epoch', 'evaluate')


@dataclass(frozen=True)
class Row:
    """One measurement. kind: 'train' (batch clips per step), 'sample' (1 clip, H hypotheses,
    K steps, flip), or one of ``DATA_KINDS`` on a dataset (``benchmark_full_size``; batch is
    main.py's -b: clips, or frames with -s ``stride``; windows for 'evaluate'). reference_s /
    reference_peak_gb: the original code's figures on the 2-core EPYC of the module docstring
    (None: not measured)."""
    name: str
    kind: str
    frames: int
    depth: int
    width: int = 512
    heads: int = 8
    batch: int = 1
    hypotheses: int = 1
    steps: int = 1
    text_tower: str = 'vit-b-32'
    stride: int = None
    reference_s: float = None
    reference_peak_gb: float = None

    def describe(self) -> str:
        shape = f'{self.frames} frames, depth {self.depth}, width {self.width}'
        if self.kind == 'train':
            return f'train step, {shape}, batch {self.batch}'
        if self.kind == 'sample':
            return f'sampling, {shape}, H={self.hypotheses}, K={self.steps}, flip, {self.batch} clip'
        flags = f'-f {self.frames}' + (f' -s {self.stride}' if self.stride else '') + f' -b {self.batch}'
        if self.kind == 'pipeline':
            return f'training data pipeline of an epoch, {flags} ({self.clips} clips a step)'
        if self.kind == 'epoch':
            return f'training epoch, {shape}, {flags} ({self.clips} clips a step)'
        return f'full test-set evaluation, {shape}, H={self.hypotheses}, K={self.steps}, flip, -b {self.batch}'

    @property
    def clips(self) -> int:
        """Clips a training step takes (main.py's rule, ``batch_rule.training_batch``)."""
        return training_batch(self.batch, self.stride, True).clips


ROWS = (
    Row('train-243-b1', 'train', 243, 8, batch=1, reference_s=7.24, reference_peak_gb=5.00),
    Row('train-243-b4', 'train', 243, 8, batch=4, reference_s=57.93, reference_peak_gb=10.50),
    Row('sample-243-h1k1', 'sample', 243, 8, hypotheses=1, steps=1),
    Row('sample-243-h5k2', 'sample', 243, 8, hypotheses=5, steps=2, reference_s=65.15, reference_peak_gb=1.85),
    Row('sample-243-h20k1', 'sample', 243, 8, hypotheses=20, steps=1),
    Row('sample-243-h20k10', 'sample', 243, 8, hypotheses=20, steps=10),
    Row('train-27-b4', 'train', 27, 4, batch=4),
    Row('sample-27-h20k10', 'sample', 27, 4, hypotheses=20, steps=10, reference_s=52.20, reference_peak_gb=1.57),
    Row('pipeline-243-b4', 'pipeline', 243, 8, batch=4),
    Row('pipeline-27-b1024', 'pipeline', 27, 8, batch=1024, stride=27),
    Row('epoch-243-b4', 'epoch', 243, 8, batch=4),
    Row('epoch-27-b1024', 'epoch', 27, 8, batch=1024, stride=27),
    Row('eval-243-h20k10-b4', 'evaluate', 243, 8, batch=4, hypotheses=20, steps=10),
    Row('eval-243-h1k1-b4', 'evaluate', 243, 8, batch=4, hypotheses=1, steps=1),
    Row('eval-243-h20k10-b1024', 'evaluate', 243, 8, batch=1024, hypotheses=20, steps=10),
)
ROWS_BY_NAME = {r.name: r for r in ROWS}
# The default rows: those without a dataset, but for one window at H=20 K=10 (400 denoiser passes:
# a GPU row, about an hour on a 2-core CPU).
DEFAULT_ROWS = [r.name for r in ROWS if r.kind not in DATA_KINDS and r.name != 'sample-243-h20k10']
OVERRIDABLE = ('frames', 'depth', 'width', 'heads', 'batch', 'hypotheses', 'steps', 'text_tower', 'stride')


# --------------------------------------------------------------------------------------------
# Worker: one row, in its own process.

def _cpu_flash_attention_flops(query, key, value, *args, out_shape=None, **kwargs):
    return sdpa_flop_count(query, key, value)


def _cpu_flash_attention_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs):
    return sdpa_backward_flop_count(grad_out, query, key, value)


# FlopCounterMode knows the GPU attention kernels; these are the CPU ones.
CPU_ATTENTION_FLOPS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_attention_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_attention_backward_flops,
}


def _synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _build(row: Row, device, options: ExecutionOptions):
    config = ModelConfig(num_frames=row.frames, width=row.width, depth=row.depth, heads=row.heads,
                         text_tower=TEXT_TOWERS[row.text_tower])
    perm = H36M_17.mirror_permutation()
    with warnings.catch_warnings():
        warnings.filterwarnings('ignore', message='CLIP weights not found')
        model = build_model(config, perm, perm)
    return apply_execution_options(model.to(device), options)


def _inputs(row: Row, device):
    """Seeded random clips: 2D keypoints (B, F, 17, 2), 3D poses (B, F, 17, 3), tokens of distinct actions."""
    g = torch.Generator().manual_seed(INPUT_SEED)
    keypoints = torch.randn(row.batch, row.frames, 17, 2, generator=g) * KEYPOINT_SPREAD
    poses = torch.randn(row.batch, row.frames, 17, 3, generator=g) * POSE_SPREAD
    labels = [H36M_ACTIONS[i % len(H36M_ACTIONS)] for i in range(row.batch)]
    return keypoints.to(device), poses.to(device), action_tokens_for(labels).to(device)


def _train_step_runner(model, row: Row, device):
    model.train()
    optimizer = make_optimizer(model, TrainSettings(epochs=1))
    keypoints, poses, tokens = _inputs(row, device)
    runtime = Runtime(device, gpu_ids=[])
    steps = itertools.count()

    def run():
        draws = model.draw_training_noise(step_generators(INPUT_SEED, 0, next(steps), row.batch), poses.shape[1:])
        inputs = (keypoints, poses, tokens, *draws, model.fpc_prompt_tokens(tokens))      # as prepare_step_inputs
        return train_step(model, optimizer, inputs, runtime)
    return run


def _sample_runner(model, row: Row, device):
    model.eval()
    keypoints, _, tokens = _inputs(row, device)

    def run():
        generators = generators_from_seeds(range(INPUT_SEED, INPUT_SEED + row.batch))
        return model.ddim_sample(keypoints, tokens, row.hypotheses, row.steps, flip=True, generators=generators)
    return run


def _bf16_change_mm(model, row: Row, device) -> float:
    """With bf16 on: the same seeded computation in bfloat16 and in float32. Sampling: mean
    distance between the two runs' poses over every hypothesis and step (it bounds the change of
    MPJPE); training: the change of the loss (an MPJPE). Millimetres."""
    outputs = []
    for dtype in (torch.bfloat16, None):
        model.autocast_dtype = dtype
        if row.kind == 'train':
            keypoints, poses, tokens = _inputs(row, device)
            draws = model.draw_training_noise(step_generators(INPUT_SEED, 0, 0, row.batch), poses.shape[1:])
            with torch.no_grad():                        # the same t, noise and stochastic-depth masks
                outputs.append(model(keypoints, poses, tokens, *(x.to(device) for x in draws)).float())
        else:
            outputs.append(_sample_runner(model, row, device)().float())
    model.autocast_dtype = torch.bfloat16
    bf16, fp32 = outputs
    if row.kind == 'train':
        return abs(bf16 - fp32).item() * MM_PER_M
    return torch.linalg.vector_norm(bf16 - fp32, dim=-1).mean().item() * MM_PER_M


def run_data_row(row: Row, model, device, repeats: int, options: ExecutionOptions, data: dict) -> dict:
    """A row of ``DATA_KINDS`` (``benchmark_full_size``); data: the driver's --data-dir and --measure-* flags."""
    data_dir = data['data_dir']
    if row.kind == 'pipeline':
        return full_size.run_pipeline(row, model, data_dir, repeats)
    if data['estimate_gpu_memory']:
        estimate = (full_size.estimate_training_memory if row.kind == 'epoch' else full_size.estimate_sampling_memory)
        return dict(gpu_memory=estimate(row, model, data_dir), **_data_row_placeholders())
    if row.kind == 'epoch':
        counter = FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS)
        result = full_size.run_epoch(row, model, data_dir, device, data['measure_steps'], options.compile, counter)
    else:
        result = full_size.run_evaluate(row, model, data_dir, device, data['measure_windows'],
                                        data['measure_ddim_steps'])
    if device.type == 'cuda':
        result['cuda_peak_gb'] = torch.cuda.max_memory_allocated(device) / GB
    return result


def _data_row_placeholders() -> dict:
    return dict(seconds=[], median_s=float('nan'), peak_rss_gb=full_size.peak_rss_gb())


def run_row(row: Row, device_name: str, threads: int, repeats: int, options: ExecutionOptions, data=None) -> dict:
    """Build, warm up (counting FLOPs), time ``repeats`` runs; returns the measurements."""
    device = torch.device(device_name)
    torch.set_num_threads(threads)
    torch.manual_seed(INPUT_SEED)
    model = _build(row, device, options)
    if row.kind in DATA_KINDS:
        return run_data_row(row, model, device, repeats, options, data)
    run = (_train_step_runner if row.kind == 'train' else _sample_runner)(model, row, device)
    counter = FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS)
    if options.compile:
        run()                                         # compiles; then count on the same model, run eagerly
        with torch.compiler.set_stance('force_eager'), counter:
            run()
    else:
        with counter:                                 # the warm-up run
            run()
    _synchronize(device)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        _synchronize(device)
        seconds.append(time.perf_counter() - start)
    result = dict(
        seconds=seconds, median_s=statistics.median(seconds), flops=counter.get_total_flops(),
        peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB,   # Linux: KiB
        text_tower=model.prompt_encoder.text_tower.source)
    if device.type == 'cuda':
        result['cuda_peak_gb'] = torch.cuda.max_memory_allocated(device) / GB
    if options.bf16:
        result['bf16_change_mm'] = _bf16_change_mm(model, row, device)
    return result


def worker_main(spec: dict):
    row = Row(**spec['row'])
    with exit_on_user_error():
        result = run_row(row, spec['device'], spec['threads'], spec['repeats'], ExecutionOptions(**spec['options']),
                         spec.get('data'))
    print(json.dumps(result))


# --------------------------------------------------------------------------------------------
# Driver: rows in subprocesses, table, JSON.

def matmul_peak_gflops(device_name: str, threads: int, dtype=torch.float32) -> float:
    """GFLOP/s of the ``PEAK_SHAPE`` matrix product in ``dtype`` on the device: after a warm-up,
    the median over at least ``PEAK_MIN_SECONDS`` of products (sustained, not a lucky burst)."""
    device = torch.device(device_name)
    torch.set_num_threads(threads)
    m, k, n = PEAK_SHAPE[dtype]
    g = torch.Generator().manual_seed(INPUT_SEED)
    a, b = (torch.randn(shape, generator=g).to(device, dtype) for shape in ((m, k), (k, n)))
    for _ in range(3):
        a @ b
    rates, spent = [], 0.0
    while spent < PEAK_MIN_SECONDS:
        _synchronize(device)
        start = time.perf_counter()
        a @ b
        _synchronize(device)
        elapsed = time.perf_counter() - start
        rates.append(2 * m * k * n / elapsed / GFLOP)
        spent += elapsed
    return statistics.median(rates)


def machine_description(device_name: str) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    info = dict(cpu=cpu, cpu_count=os.cpu_count(), torch=torch.__version__, python=platform.python_version(),
                cpu_capability=torch.backends.cpu.get_cpu_capability())
    if device_name.startswith('cuda'):
        info['gpu'] = torch.cuda.get_device_name(torch.device(device_name))
    return info


def measure_in_subprocess(row: Row, device_name: str, threads: int, repeats: int, options: ExecutionOptions,
                          data=None) -> dict:
    spec = dict(row=asdict(row), device=device_name, threads=threads, repeats=repeats, options=asdict(options),
                data=data)
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), '--worker', json.dumps(spec)],
                          stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise SystemExit(f'benchmark row {row.name} failed (exit code {done.returncode}); see the error above')
    return json.loads(done.stdout.strip().splitlines()[-1])


def apply_overrides(rows, overrides: dict):
    """Rows with some fields replaced (e.g. a tiny model for tests); the figures of the original no longer apply."""
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise SystemExit(f'--override: unknown field(s) {", ".join(unknown)}; allowed: {", ".join(OVERRIDABLE)}')
    if not overrides:
        return list(rows)
    return [replace(r, **overrides, reference_s=None, reference_peak_gb=None) for r in rows]


def _fmt(value, spec: str, missing: str = '-') -> str:
    return missing if value is None else format(value, spec)


def _comparison(row: dict, ours: dict, on_cpu: bool):
    """(speed-up, peak ratio) against the original's figures (comparable on CPU only); None where
    there is nothing to compare."""
    if not on_cpu:
        return None, None
    speedup = row['reference_s'] / ours['median_s'] if row['reference_s'] else None
    ratio = ours['peak_rss_gb'] / row['reference_peak_gb'] if row['reference_peak_gb'] else None
    return speedup, ratio


def format_table(results: list, machine: dict, device_name: str, options: ExecutionOptions, threads: int) -> str:
    on_cpu = device_name == 'cpu'
    precision = 'bfloat16' if options.bf16 else 'float32'
    ceiling = machine['matmul_gflops'][precision]
    head = ['row', 'original s', 'ours s', 'speed-up', 'original peak GB', 'ours peak GB', 'peak ratio',
            'GFLOP', 'GFLOP/s', 'of matmul peak']
    lines = [' | '.join(head), ' | '.join('---' for _ in head)]
    for r in results:
        row, ours = r['row'], r['measured']
        speedup, ratio = _comparison(row, ours, on_cpu)
        lines.append(' | '.join([
            row['name'], _fmt(row['reference_s'], '.2f'), f"{ours['median_s']:.2f}",
            _fmt(speedup, '.2f') + ('x' if speedup else ''), _fmt(row['reference_peak_gb'], '.2f'),
            f"{ours.get('cuda_peak_gb', ours['peak_rss_gb']):.2f}", _fmt(ratio, '.2f'),
            f"{ours['flops'] / GFLOP:,.0f}", f"{ours['flops'] / GFLOP / ours['median_s']:.0f}",
            f"{ours['flops'] / GFLOP / ours['median_s'] / ceiling:.0%}"]))
    peak_kind = 'torch.cuda.max_memory_allocated' if not on_cpu else 'peak RSS of the row\'s process'
    runs = len(results[0]['measured']['seconds']) if results else 0
    notes = [f"Machine: {machine['cpu']} ({machine['cpu_count']} CPUs, {machine['cpu_capability']})"
             + (f", GPU {machine['gpu']}" if 'gpu' in machine else '') + f", torch {machine['torch']}, "
             + (f'{threads} threads' if on_cpu else device_name),
             f'Options: {", ".join(k for k, v in asdict(options).items() if v) or "none (defaults)"}; '
             f'times = median of {runs} runs after a warm-up; peak = {peak_kind}; '
             'GFLOP/s = our FLOPs of one run (training: forward + backward) / our median time.',
             'Matmul peak here: ' + ', '.join(
                 f'{name} {value:.0f} GFLOP/s ({"x".join(map(str, PEAK_SHAPE[getattr(torch, name)]))} product, M x K x N)'
                 for name, value in machine['matmul_gflops'].items())
             + f'; "of matmul peak" compares GFLOP/s with the {precision} one.',
             'Original: the original FinePOSE code measured side by side with ours on a 2-core AMD EPYC (Zen 3, AVX2), '
             'torch 2.13 CPU, 2 threads, float32, patched only to run on a CPU; speed-up and peak ratio (CPU runs '
             'only) against it.']
    for r in results:
        if 'bf16_change_mm' in r['measured']:
            notes.append(f"{r['row']['name']}: bf16 vs float32 on the same seed: {r['measured']['bf16_change_mm']:.3f} mm")
    return '\n'.join(lines + [''] + notes)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'], help='where to run (default: cpu)')
    parser.add_argument('--rows', default=','.join(DEFAULT_ROWS), metavar='LIST',
                        help='comma-separated row names (default: ' + ','.join(DEFAULT_ROWS) + '): '
                             + ', '.join(ROWS_BY_NAME))
    parser.add_argument('--repeats', type=int, default=DEFAULT_REPEATS, metavar='N',
                        help=f'timed runs per row after one warm-up run; the median is reported (default: {DEFAULT_REPEATS})')
    parser.add_argument('--threads', type=int, default=CPU_THREADS, metavar='N',
                        help=f'torch CPU threads (default: {CPU_THREADS}, as for the figures of the original)')
    parser.add_argument('--json', default=None, metavar='OUT', help='also write the results to this JSON file')
    add_execution_flags(parser)
    parser.add_argument('--override', default='{}', metavar='JSON',
                        help='replace row fields for every selected row, e.g. \'{"frames": 9, "width": 32, '
                             '"text_tower": "tiny"}\' (no comparison with the original then); fields: ' + ', '.join(OVERRIDABLE))
    data = parser.add_argument_group('rows on a dataset (pipeline-*, epoch-*, eval-*; tools/benchmark_full_size.py)')
    data.add_argument('--data-dir', default=None, metavar='PATH',
                      help='the Human3.6M-format files they read, as main.py --data-dir (e.g. the set of python -m '
                           'common.synthetic --out big --h36m-size)')
    data.add_argument('--measure-steps', type=int, default=None, metavar='N',
                      help='epoch rows: time N training steps after a warm-up one and extrapolate to the epoch '
                           '(default: the whole epoch)')
    data.add_argument('--measure-windows', type=int, default=None, metavar='N',
                      help='eval rows: the model samples the first N windows, the others get stand-in hypotheses; '
                           'the device time is extrapolated (default: every window)')
    data.add_argument('--measure-ddim-steps', type=int, default=None, metavar='K',
                      help='eval rows: the measured windows are sampled with K of the row\'s DDIM steps, the device '
                           'time extrapolated (default: all of them)')
    data.add_argument('--estimate-gpu-memory', action='store_true',
                      help='epoch and eval rows, on a CPU: instead of timing, estimate the CUDA memory they need at '
                           'the GPU chunk size by counting the bytes of live tensors')
    parser.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error('--repeats: expected at least 1')
    if args.threads < 1:
        parser.error('--threads: expected at least 1')
    unknown = [n for n in args.rows.split(',') if n not in ROWS_BY_NAME]
    if unknown:
        parser.error(f'--rows: unknown row(s) {", ".join(unknown)}; choose from {", ".join(ROWS_BY_NAME)}')
    if args.device == 'cuda' and args.worker is None and not torch.cuda.is_available():
        parser.error('--device cuda: CUDA is not available here')
    for flag in ('measure_steps', 'measure_windows', 'measure_ddim_steps'):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            parser.error(f'--{flag.replace("_", "-")}: expected at least 1')
    data_rows = [n for n in args.rows.split(',') if ROWS_BY_NAME[n].kind in DATA_KINDS]
    if data_rows and args.data_dir is None:
        parser.error(f'--rows {",".join(data_rows)}: these rows read a dataset; pass --data-dir PATH (e.g. the set of '
                     'python -m common.synthetic --out big --h36m-size)')
    if args.estimate_gpu_memory and args.device != 'cpu':
        parser.error('--estimate-gpu-memory: an estimate made on the CPU; on a GPU the rows measure '
                     'torch.cuda.max_memory_allocated')
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker is not None:
        return worker_main(json.loads(args.worker))
    options = execution_options_from_args(args)
    rows = apply_overrides([ROWS_BY_NAME[n] for n in args.rows.split(',')], json.loads(args.override))
    machine = machine_description(args.device)
    machine['matmul_gflops'] = {'float32': matmul_peak_gflops(args.device, args.threads)}
    if args.bf16:
        machine['matmul_gflops']['bfloat16'] = matmul_peak_gflops(args.device, args.threads, torch.bfloat16)
    data = dict(data_dir=args.data_dir, measure_steps=args.measure_steps, measure_windows=args.measure_windows,
                measure_ddim_steps=args.measure_ddim_steps, estimate_gpu_memory=args.estimate_gpu_memory)
    results = []
    for row in rows:
        print(f'{row.name}: {row.describe()} ...', file=sys.stderr, flush=True)
        result = dict(row=asdict(row), description=row.describe())
        result['measured'] = measure_in_subprocess(row, args.device, args.threads, args.repeats, options, data)
        print(f'{row.name}: median {result["measured"]["median_s"]:.2f} s, '
              f'peak {result["measured"]["peak_rss_gb"]:.2f} GB', file=sys.stderr, flush=True)
        results.append(result)
    model_results = [r for r in results if r['row']['kind'] not in DATA_KINDS]
    data_results = [r for r in results if r['row']['kind'] in DATA_KINDS]
    if model_results:
        print(format_table(model_results, machine, args.device, options, args.threads))
    if data_results:
        print(full_size.format_full_size_table(data_results, args.device == 'cpu'))
        if not model_results:
            print(f"Machine: {machine['cpu']} ({machine['cpu_count']} CPUs)" + (f", GPU {machine['gpu']}" if 'gpu' in
                  machine else '') + f", torch {machine['torch']}, {args.threads} threads; options: "
                  + (', '.join(k for k, v in asdict(options).items() if v) or 'none (defaults)'))
    if args.json:
        report = dict(machine=machine, device=args.device, threads=args.threads, repeats=args.repeats,
                      options=asdict(options), data=data, rows=results)
        write_text_atomic(args.json, json.dumps(report, indent=2) + '\n')
        print(f'Wrote {args.json}')


if __name__ == '__main__':
    main()

"""The rows of ``tools/benchmark.py`` that run on a whole dataset: the training data pipeline, a
training epoch and the full test-set evaluation, each split into host and device time.

    python -m common.synthetic --out big --h36m-size          # Human3.6M's size, no licence needed
    python tools/benchmark.py --rows pipeline-243-b4,pipeline-27-b1024 --data-dir big

The data is read as ``main.py`` reads it (``common.run.h36m_experiment.load_data``: -k cpn_ft_h36m_dbb,
training subjects S1,S5,S6,S7,S8, test subjects S9,S11, every action), with the row's -f, -s and -b:

* pipeline: every step of one epoch as ``training.epoch_step_inputs`` makes it (clips cut from
  the sequences and mirrored, each clip's keyed random draws, tokens, the FPC mixing), the model
  never called: clips per second and milliseconds per step of the host alone.
* epoch: training steps of the paper's model on those inputs (``training.train_step``); the host
  time (the pipeline) and the device time (the step, synchronised) are timed apart, and the
  epoch is their mean times its steps. ``--measure-steps N`` times N steps (default: the whole
  epoch) and extrapolates.
* evaluate: ``evaluation.evaluate`` over every test window, as ``main.py --evaluate`` runs it (P-Best
  batches of -b windows, the original's count). The model samples the first
  ``--measure-windows`` windows (default: all) with ``--measure-ddim-steps`` of the K DDIM steps
  (default: all); the other windows get stand-in hypotheses, so everything else (windows, seeds,
  the four settings, the errors, stitching, MPJVE) runs for the whole test set. Host time = the
  whole run minus the sampling; device time = the measured sampling times the denoiser passes of
  the whole evaluation over the measured ones (exact on a CPU, where the work is per clip; on a
  GPU measure whole batches).

``--estimate-gpu-memory`` (epoch and evaluate rows, run on a CPU) estimates the CUDA memory the
row would need, from what the code allocates at the GPU chunk size (``diffusion.GPU_CHUNK_TOKENS``):
``LiveTensorBytes`` counts the bytes of the tensors alive at every moment, plus the model's
parameters. Sampling runs one batch of -b windows of the longest test sequence: the denoiser's
first call (the largest chunk) runs for real and measures its own peak above what was alive before
it; later calls return zeros of its output's shape, each adding that peak to what is alive then.
A training step is measured at 1 and 2 clips and extrapolated linearly in clips. Not counted: the
CUDA context and libraries (about 0.5 GB), the caching allocator's rounding and fragmentation, and
GPU kernels' workspaces that differ from the CPU's.
"""
import contextlib
import math
import resource
import statistics
import time
import weakref

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from common.core.keyed_random import generators_from_seeds
from common.data.generators import make_windows
from common.evaluation.protocol import SamplingSettings, action_tokens_for, evaluate
from common.model import diffusion
from common.run import training
from common.run.arguments import parse_args
from common.run.devices import Runtime
from common.run.experiment import final_counting, training_generator
from common.run.h36m_experiment import load_data
from common.run.training import TrainSettings, epoch_step_inputs, loss_weight_unit, make_optimizer, train_step

GB = 1e9
KEYPOINTS = 'cpn_ft_h36m_dbb'
PIPELINE_WARMUP_STEPS = 20
STAND_IN_SPREAD = 0.2           # stand-in hypotheses ~ N(0, 0.2^2) metres
TRAINING_MEMORY_CLIPS = (1, 2)  # the clips a training step's memory is measured at, then extrapolated
# Cards for which --estimate-gpu-memory says what fits (GB of device memory).
CARDS_GB = {'80 GB (A100/H100)': 80, '24 GB (RTX 3090/4090, A10)': 24}
CUDA_CONTEXT_GB = 0.5           # CUDA context and libraries, not counted by the allocator


def peak_rss_gb() -> float:
    """This process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GB


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def main_flags(row, data_dir) -> list:
    """The ``main.py`` flags a row stands for."""
    flags = ['--data-dir', str(data_dir), '-k', KEYPOINTS, '-f', str(row.frames), '-gpu', '', '--nolog',
             '--no-progress', '-b', str(row.batch)]
    if row.kind == 'evaluate':
        return flags + ['--evaluate', 'benchmark', '-num_proposals', str(row.hypotheses),
                        '-sampling_timesteps', str(row.steps)]
    return flags + (['-s', str(row.stride)] if row.stride else [])


def load(row, data_dir):
    """(main.py's parsed flags, its ``ExperimentData``, seconds and peak resident GB of the loading)."""
    args = parse_args('h36m', main_flags(row, data_dir))
    start = time.perf_counter()
    data = load_data(args)
    return args, data, time.perf_counter() - start, peak_rss_gb()


# --------------------------------------------------------------------------------------------
# pipeline and epoch rows

def run_pipeline(row, model, data_dir, repeats: int) -> dict:
    """Clips per second of ``epoch_step_inputs`` over whole epochs (median of ``repeats``)."""
    args, data, load_s, load_peak = load(row, data_dir)
    start = time.perf_counter()
    generator = training_generator(args, data, row.frames)
    generator_s = time.perf_counter() - start
    settings = TrainSettings(epochs=1, seed=args.seed)
    for _ in zip(range(PIPELINE_WARMUP_STEPS), epoch_step_inputs(generator, model, settings, 0)):
        pass
    seconds = []
    for epoch in range(1, repeats + 1):
        start = time.perf_counter()
        for _ in epoch_step_inputs(generator, model, settings, epoch):
            pass
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds)
    return dict(seconds=seconds, median_s=median, load_s=load_s, load_peak_rss_gb=load_peak, generator_s=generator_s,
                clips_per_step=args.training_batch.clips, steps=generator.num_batches, clips=generator.num_clips,
                clips_per_s=generator.num_clips / median, host_ms_per_step=median / generator.num_batches * 1e3,
                peak_rss_gb=peak_rss_gb())


def run_epoch(row, model, data_dir, device, measure_steps, compile_first: bool, flop_counter) -> dict:
    """Training steps on the real inputs, host and device timed apart, extrapolated to the epoch."""
    args, data, load_s, load_peak = load(row, data_dir)
    generator = training_generator(args, data, row.frames)
    settings = TrainSettings(epochs=1, seed=args.seed)
    model.train()
    optimizer = make_optimizer(model, settings)
    runtime = Runtime(device, gpu_ids=[])
    weight_unit = loss_weight_unit(settings.gradient_scale, 'h36m')
    steps = epoch_step_inputs(generator, model, settings, 0)
    if compile_first:                                  # compiles; the next step is counted eagerly
        train_step(model, optimizer, next(steps), runtime, weight_unit)
    eager = torch.compiler.set_stance('force_eager') if compile_first else contextlib.nullcontext()
    with eager, flop_counter:                          # the warm-up step, its work counted
        train_step(model, optimizer, next(steps), runtime, weight_unit)
    synchronize(device)
    host, step = [], []
    remaining = generator.num_batches - 1 - compile_first
    for _ in range(remaining if measure_steps is None else min(measure_steps, remaining)):
        start = time.perf_counter()
        inputs = next(steps)
        made = time.perf_counter()
        train_step(model, optimizer, inputs, runtime, weight_unit)
        synchronize(device)
        host.append(made - start)
        step.append(time.perf_counter() - made)
    host_s, device_s = statistics.fmean(host), statistics.fmean(step)
    return dict(seconds=step, median_s=statistics.median(step), load_s=load_s, load_peak_rss_gb=load_peak,
                clips_per_step=args.training_batch.clips, steps=generator.num_batches, measured_steps=len(step),
                host_ms_per_step=host_s * 1e3, device_ms_per_step=device_s * 1e3, host_to_device=host_s / device_s,
                epoch_s=generator.num_batches * (host_s + device_s), flops=flop_counter.get_total_flops(),
                peak_rss_gb=peak_rss_gb())


# --------------------------------------------------------------------------------------------
# evaluate rows

class MeasuredSampling(nn.Module):
    """Stands for the model in ``evaluation.evaluate``: the first ``windows`` windows (None: all)
    are sampled by ``model`` with at most ``ddim_steps`` DDIM steps (None: all; the last one
    repeated up to K, so the shapes are the run's), timed; every later window (also the rest of a
    sampling batch) gets stand-in hypotheses drawn from its generator (timed too, to be subtracted
    from the host's time)."""

    def __init__(self, model, windows, ddim_steps, device):
        super().__init__()
        self.model, self.windows, self.ddim_steps, self.device = model, windows, ddim_steps, device
        self.sampled = self.passes = 0
        self.sampling_s = self.stand_in_s = 0.0

    def ddim_sample(self, keypoints_2d, action_tokens, num_hypotheses, num_steps, flip, *, generators):
        b, f, j, _ = keypoints_2d.shape
        real = b if self.windows is None else max(0, min(b, self.windows - self.sampled))
        parts = []
        if real:
            start = time.perf_counter()
            steps = num_steps if self.ddim_steps is None else min(num_steps, self.ddim_steps)
            out = self.model.ddim_sample(keypoints_2d[:real], action_tokens[:real], num_hypotheses, steps, flip,
                                         generators=generators[:real])
            parts.append(torch.cat([out, out[:, -1:].expand(-1, num_steps - steps, *out.shape[2:])], dim=1))
            synchronize(self.device)
            self.sampled += real
            self.passes += real * num_hypotheses * steps * (2 if flip else 1)
            self.sampling_s += time.perf_counter() - start
        if real < b:
            start = time.perf_counter()
            stand_in = torch.cat([torch.randn((1, num_steps, num_hypotheses, f, j, 3), generator=g)
                                  for g in generators[real:]])
            parts.append((stand_in * STAND_IN_SPREAD).to(self.device))
            synchronize(self.device)
            self.stand_in_s += time.perf_counter() - start
        return torch.cat(parts)


def run_evaluate(row, model, data_dir, device, measure_windows, measure_ddim_steps) -> dict:
    """The full test-set evaluation: host time measured on every window, device time extrapolated
    from the sampled ones (see the module docstring)."""
    args, data, load_s, load_peak = load(row, data_dir)
    settings = SamplingSettings(row.hypotheses, row.steps, True, row.batch, args.seed)
    windows = sum(-(-s.num_frames // row.frames) for s in data.test)
    measured = MeasuredSampling(model, measure_windows, measure_ddim_steps, device)
    runtime = Runtime(device, gpu_ids=[])
    start = time.perf_counter()
    evaluate(measured, data.test, data.test_groups, runtime, row.frames, data.skeleton.root, settings,
             data.test_action_labels, counting=final_counting(args, data), show_progress=False)
    total_s = time.perf_counter() - start
    passes = windows * row.hypotheses * row.steps * 2
    device_s = measured.sampling_s * passes / measured.passes
    host_s = total_s - measured.sampling_s - measured.stand_in_s
    return dict(seconds=[total_s], median_s=total_s, load_s=load_s, load_peak_rss_gb=load_peak, windows=windows,
                sequences=len(data.test), measured_windows=measured.sampled, measured_passes=measured.passes,
                passes=passes, measured_sampling_s=measured.sampling_s, host_s=host_s, device_s=device_s,
                host_ms_per_window=host_s / windows * 1e3, device_ms_per_window=device_s / windows * 1e3,
                evaluation_s=host_s + device_s, peak_rss_gb=peak_rss_gb())


# --------------------------------------------------------------------------------------------
# GPU memory, estimated on a CPU

class LiveTensorBytes(TorchDispatchMode):
    """Bytes of the tensor storages that operators create inside this mode and that are still alive:
    ``now``, and ``peak``, the most at any moment. A storage is counted from the operator that made
    it until Python frees it (views share their base's storage; tensors made before the mode, such
    as the parameters, are not counted). ``mark()`` starts a new ``since_mark`` peak."""

    def __init__(self):
        super().__init__()
        self.sizes, self.now, self.peak, self.since_mark = {}, 0, 0, 0

    def mark(self) -> int:
        self.since_mark = self.now
        return self.now

    def _freed(self, key):
        self.now -= self.sizes.pop(key, 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            key = storage.data_ptr()
            if storage.nbytes() == 0 or key in self.sizes:
                continue
            self.sizes[key] = storage.nbytes()
            self.now += storage.nbytes()
            self.peak, self.since_mark = max(self.peak, self.now), max(self.since_mark, self.now)
            weakref.finalize(storage, self._freed, key)
        return out


@contextlib.contextmanager
def gpu_chunking():
    """Denoiser calls and training micro-batches chunked as on a GPU (``diffusion.GPU_CHUNK_TOKENS``)."""
    saved = diffusion.chunk_tokens, training.chunk_tokens
    diffusion.chunk_tokens = training.chunk_tokens = lambda device: diffusion.GPU_CHUNK_TOKENS
    try:
        yield
    finally:
        diffusion.chunk_tokens, training.chunk_tokens = saved


def model_bytes(model) -> int:
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))


def estimate_sampling_memory(row, model, data_dir) -> dict:
    """Estimated CUDA peak (bytes) of sampling one batch of -b windows of the longest test sequence."""
    args, data, _, _ = load(row, data_dir)
    sequence = max(data.test, key=lambda s: s.num_frames)
    windows = torch.from_numpy(make_windows(sequence.keypoints_2d, row.frames))[:row.batch]
    tokens = action_tokens_for([sequence.action_label]).expand(len(windows), -1)
    generators = generators_from_seeds(range(len(windows)))
    real_denoise = model._denoise
    live = LiveTensorBytes()
    calls = {'transient': None, 'peak': 0}

    def denoise(keypoints_2d, x_t, t, prompts, *masks):
        before = live.mark()
        if calls['transient'] is None:                 # the first (largest) chunk: for real
            out = real_denoise(keypoints_2d, x_t, t, prompts, *masks)
            calls['transient'] = live.since_mark - before
            calls['chunk_clips'] = x_t.shape[0]
        else:
            out = torch.zeros(x_t.shape, dtype=torch.float32, device=x_t.device)
        calls['peak'] = max(calls['peak'], before + calls['transient'])
        return out

    model.eval()
    model._denoise = denoise
    try:
        with gpu_chunking(), live:
            model.ddim_sample(windows, tokens, row.hypotheses, row.steps, flip=True, generators=generators)
    finally:
        del model._denoise
    peak = max(live.peak, calls['peak']) + model_bytes(model)
    return dict(gpu_peak_estimate_gb=peak / GB, batch_windows=len(windows), chunk_clips=calls['chunk_clips'],
                chunk_activation_gb=calls['transient'] / GB, model_gb=model_bytes(model) / GB)


def estimate_training_memory(row, model, data_dir) -> dict:
    """Estimated CUDA peak of one training step at the row's batch, and the largest batch of one
    micro-batch that fits each of ``CARDS_GB``: measured at ``TRAINING_MEMORY_CLIPS`` clips (one
    micro-batch each), extrapolated linearly in clips."""
    args, data, _, _ = load(row, data_dir)
    generator = training_generator(args, data, row.frames)
    model.train()
    settings = TrainSettings(epochs=1, seed=args.seed)
    runtime = Runtime(torch.device('cpu'), gpu_ids=[])
    peaks = []
    for clips in TRAINING_MEMORY_CLIPS:
        optimizer = make_optimizer(model, settings)
        inputs = next(epoch_step_inputs(generator, model, settings, 0))
        inputs = [x[:clips] for x in inputs]
        live = LiveTensorBytes()
        with gpu_chunking(), live:
            train_step(model, optimizer, inputs, runtime)
        del optimizer
        model.zero_grad(set_to_none=True)
        peaks.append(live.peak + model_bytes(model))
    per_clip = (peaks[1] - peaks[0]) / (TRAINING_MEMORY_CLIPS[1] - TRAINING_MEMORY_CLIPS[0])
    fixed = peaks[0] - per_clip * TRAINING_MEMORY_CLIPS[0]
    clips = args.training_batch.clips
    chunk_clips = max(1, diffusion.GPU_CHUNK_TOKENS // (row.frames * 17))
    result = dict(gpu_peak_estimate_gb=(fixed + per_clip * min(clips, chunk_clips)) / GB, clips=clips,
                  fixed_gb=fixed / GB, per_clip_gb=per_clip / GB, gpu_chunk_clips=chunk_clips,
                  gpu_chunk_peak_estimate_gb=(fixed + per_clip * chunk_clips) / GB)
    for card, size in CARDS_GB.items():
        result[f'largest_micro_batch_{size}gb'] = max(0, math.floor(((size - CUDA_CONTEXT_GB) * GB - fixed) / per_clip))
    return result


# --------------------------------------------------------------------------------------------
# table

def _duration(seconds: float) -> str:
    if seconds >= 2 * 3600:
        return f'{seconds / 3600:.1f} h'
    if seconds >= 120:
        return f'{seconds / 60:.1f} min'
    return f'{seconds:.1f} s' if seconds >= 1 else f'{seconds * 1e3:.1f} ms'


def _cells(row: dict, m: dict) -> tuple:
    """(what, host, device, whole, host / device) cells of one full-size row."""
    if 'gpu_memory' in m:
        return ('CUDA memory estimated on the CPU (not timed)', '-', '-', '-', '-')
    if row['kind'] == 'pipeline':
        return (f"{m['clips']:,} clips of {row['frames']} frames, {m['clips_per_step']} a step: "
                f"{m['clips_per_s']:,.0f} clips/s", f"{m['host_ms_per_step']:.2f} ms/step", '-',
                f"{_duration(m['median_s'])} an epoch ({m['steps']:,} steps)", '-')
    if row['kind'] == 'epoch':
        return (f"{m['steps']:,} steps of {m['clips_per_step']} clips (measured {m['measured_steps']})",
                f"{m['host_ms_per_step']:.2f} ms/step", f"{m['device_ms_per_step']:.0f} ms/step",
                f"{_duration(m['epoch_s'])} an epoch", f"{m['host_to_device']:.4f}")
    return (f"{m['windows']:,} windows of {m['sequences']} sequences, H={row['hypotheses']} K={row['steps']}, "
            f"-b {row['batch']} (device: {m['measured_passes']:,} of {m['passes']:,} denoiser passes measured)",
            f"{_duration(m['host_s'])} "
            f"({m['host_ms_per_window']:.1f} ms/window)", f"{_duration(m['device_s'])} "
            f"({m['device_ms_per_window']:.0f} ms/window)", _duration(m['evaluation_s']),
            f"{m['host_s'] / m['device_s']:.4f}")


def format_full_size_table(results: list, on_cpu: bool) -> str:
    head = ['row', 'what', 'host', 'device', 'whole', 'host / device', 'peak RSS GB', 'CUDA peak GB',
            'CUDA estimate GB']
    lines = [' | '.join(head), ' | '.join('---' for _ in head)]
    notes = []
    for r in results:
        row, m = r['row'], r['measured']
        estimate = m.get('gpu_memory', {}).get('gpu_peak_estimate_gb')
        lines.append(' | '.join([row['name'], *_cells(row, m), f"{m['peak_rss_gb']:.2f}",
                                 f"{m['cuda_peak_gb']:.2f}" if 'cuda_peak_gb' in m else '-',
                                 f'{estimate:.2f}' if estimate is not None else '-']))
        if 'load_s' in m:
            notes.append(f"{row['name']}: data loaded in {m['load_s']:.1f} s (peak RSS then "
                         f"{m['load_peak_rss_gb']:.2f} GB)" + (f", clips cut in {m['generator_s']:.1f} s"
                                                               if 'generator_s' in m else ''))
        if row['kind'] == 'evaluate' and 'passes' in m and m['measured_passes'] < m['passes']:
            notes.append(f"{row['name']}: the model sampled {m['measured_windows']} windows ({m['measured_passes']:,} "
                         f"denoiser passes of one clip) in {_duration(m['measured_sampling_s'])}; device time scaled "
                         f"to the evaluation's {m['passes']:,} passes")
        if row['kind'] == 'epoch' and 'steps' in m and m['measured_steps'] < m['steps'] - 1:
            notes.append(f"{row['name']}: {m['measured_steps']} steps timed after one warm-up step, extrapolated to "
                         f"the epoch's {m['steps']:,}; one step: {m['flops'] / 1e9:,.1f} GFLOP")
        if 'gpu_memory' in m:
            notes.append(f"{row['name']}: CUDA memory estimated on the CPU at the GPU chunk size: "
                         + ', '.join(f'{k} {v:.3g}' if isinstance(v, float) else f'{k} {v}'
                                     for k, v in m['gpu_memory'].items()))
    where = 'the CPU (host and device are one)' if on_cpu else 'the GPU'
    notes.append(f'Host: the Python/CPU work around the model; device: the model on {where}, synchronised. '
                 'Peak RSS: the row\'s process; CUDA peak: torch.cuda.max_memory_allocated.')
    return '\n'.join(lines + [''] + notes)

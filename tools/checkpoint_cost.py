"""What the checkpoint damage check costs: save and load times of the paper-size model with and without it.

    python tools/checkpoint_cost.py                 # 2 threads, 5 timed runs each, in a temporary folder
    python tools/checkpoint_cost.py --threads 1 --repeats 9 --folder /scratch

The checkpoint is the one training writes after a step of the paper's model (``ModelConfig()``:
243 frames, width 512, depth 8; CLIP's text tower not stored) with its AdamW state, written by
``checkpoints.save_checkpoint`` and read by ``checkpoints.read_checkpoint``. The check compares
the CRC-32 checksums of the zip records (``checkpoint_checksums``): torch computes them on every
save by default, so "save without checksums" switches torch's own computation off
(``compute_crc32``) to show what they cost, and "load without check" skips ours. Each time is the
median of ``--repeats`` runs, after one warm-up run; the runs alternate with and without.
"""
import argparse
import contextlib
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from common.data.skeleton import H36M_17  # noqa: E402
from common.model.build import ModelConfig, build_model  # noqa: E402
from common.run import checkpoints  # noqa: E402
from common.run import checkpoint_checksums  # noqa: E402
from common.run.training import TrainSettings, make_optimizer  # noqa: E402


def trained_state():
    """The paper-size model and its AdamW optimizer after one step (random gradients)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')      # random CLIP text weights: the checkpoint does not hold them
        model = build_model(ModelConfig(), H36M_17.mirror_permutation(), H36M_17.mirror_permutation())
    optimizer = make_optimizer(model, TrainSettings(epochs=1))
    for parameter in model.parameters():
        if parameter.requires_grad:
            parameter.grad = torch.randn_like(parameter)
    optimizer.step()
    return model, optimizer


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def median_times(runs: dict, repeats: int) -> dict:
    """name -> median seconds of ``runs[name]()``, the runs interleaved (so a change in the machine's
    load hits all alike), after one warm-up run each."""
    for run in runs.values():
        run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(_timed(run))
    return {name: statistics.median(values) for name, values in times.items()}


def without_checksums(run):
    """``run`` with torch writing no CRC-32s (``save``) and ``read_checkpoint`` checking none (``load``)."""
    def unchecked():
        saving, failure = checkpoint_checksums.saving_with_checksums, checkpoints.checksum_failure
        config = checkpoint_checksums.serialization_config.save
        previous = config.compute_crc32
        checkpoints.saving_with_checksums, checkpoints.checksum_failure = contextlib.nullcontext, (lambda path: '')
        config.compute_crc32 = False
        try:
            run()
        finally:
            checkpoints.saving_with_checksums, checkpoints.checksum_failure = saving, failure
            config.compute_crc32 = previous
    return unchecked


def measure(model, optimizer, config: ModelConfig, repeats: int, folder=None) -> dict:
    """The checkpoint's size (MiB) and the median times (s) of the five measurements."""
    state = dict(model=model, model_config=config, epoch=1, lr=6e-5, optimizer=optimizer)
    with tempfile.TemporaryDirectory(dir=folder) as temporary:
        path = Path(temporary) / 'last_epoch.bin'

        def save():
            checkpoints.save_checkpoint(path, **state)

        def load():
            checkpoints.read_checkpoint(path)

        times = {}
        times.update(median_times({'save without checksums': without_checksums(save), 'save with checksums': save},
                                  repeats))
        times['size_mib'] = path.stat().st_size / 2 ** 20
        times.update(median_times({'load without check': without_checksums(load), 'load with check': load,
                                   'check alone': lambda: checkpoint_checksums.damaged_record(path)}, repeats))
    return times


def report(times: dict, threads: int, repeats: int) -> str:
    lines = [f'Checkpoint: {times["size_mib"]:.0f} MiB, CRC-32 checksums, {threads} threads, median of {repeats}']
    lines += [f'  {name:<22} {seconds:6.3f} s' for name, seconds in times.items() if name != 'size_mib']
    saved = times['save with checksums'] - times['save without checksums']
    loaded = times['load with check'] - times['load without check']
    lines.append(f"  torch's own CRC-32s add {saved:.3f} s to a save ({100 * saved / times['save without checksums']:.0f}%; "
                 'computed by default, so checking them adds nothing to a default save)')
    lines.append(f'  the check adds {loaded:.3f} s to a load ({100 * loaded / times["load without check"]:.0f}%)')
    return '\n'.join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--threads', type=int, default=2, help='torch (and digest) threads (default: 2)')
    parser.add_argument('--repeats', type=int, default=5, help='timed runs per measurement (default: 5)')
    parser.add_argument('--folder', default=None, help='where to write the checkpoint (default: a temporary folder)')
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, optimizer = trained_state()
    print(report(measure(model, optimizer, ModelConfig(), args.repeats, args.folder), args.threads, args.repeats))


if __name__ == '__main__':
    main()

"""What the checkpoint digest costs: save and load times of the paper-size model with and without it.

    python tools/checkpoint_cost.py                 # 2 threads, 5 timed runs each, in a temporary folder
    python tools/checkpoint_cost.py --threads 1 --repeats 9 --folder /scratch

The checkpoint is the one training writes after a step of the paper's model (``ModelConfig()``:
243 frames, width 512, depth 8; CLIP's text tower not stored) with its AdamW state, written by
``checkpoints.save_checkpoint`` and read by ``checkpoints.read_checkpoint``; "without digest"
runs the same two calls with the digest's computation and check replaced by nothing. Each time
is the median of ``--repeats`` runs, after one warm-up run; the saves alternate with and without.
"""
import argparse
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
from common.run.checkpoint_digest import DIGEST_ALGORITHM, content_digest  # noqa: E402
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


def without_digest(run):
    """``run`` with ``save_checkpoint`` writing a constant digest and ``read_checkpoint`` checking none."""
    def undigested():
        digest, check = checkpoints.content_digest, checkpoints.check_digest
        checkpoints.content_digest, checkpoints.check_digest = (lambda content: 'none'), (lambda *args: None)
        try:
            run()
        finally:
            checkpoints.content_digest, checkpoints.check_digest = digest, check
    return undigested


def measure(model, optimizer, config: ModelConfig, repeats: int, folder=None) -> dict:
    """The checkpoint's size (MiB) and the median times (s) of the five measurements."""
    state = dict(model=model, model_config=config, epoch=1, lr=6e-5, optimizer=optimizer)
    with tempfile.TemporaryDirectory(dir=folder) as temporary:
        path = Path(temporary) / 'last_epoch.bin'

        def save():
            checkpoints.save_checkpoint(path, **state)

        def load():
            checkpoints.read_checkpoint(path)

        save()
        content = {k: v for k, v in torch.load(path, map_location='cpu', weights_only=True).items() if k != 'digest'}
        times = {'size_mib': path.stat().st_size / 2 ** 20}
        times.update(median_times({'save without digest': without_digest(save), 'save with digest': save}, repeats))
        times.update(median_times({'load without digest': without_digest(load), 'load with digest': load,
                                   'digest alone': lambda: content_digest(content)}, repeats))
    return times


def report(times: dict, threads: int, repeats: int) -> str:
    lines = [f'Checkpoint: {times["size_mib"]:.0f} MiB, {DIGEST_ALGORITHM} digest, {threads} threads, '
             f'median of {repeats}']
    lines += [f'  {name:<20} {seconds:6.3f} s' for name, seconds in times.items() if name != 'size_mib']
    for what in ('save', 'load'):
        added = times[f'{what} with digest'] - times[f'{what} without digest']
        lines.append(f'  the digest adds {added:.3f} s to a {what} '
                     f'({100 * added / times[f"{what} without digest"]:.0f}%)')
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

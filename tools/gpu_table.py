"""The GPU table: this project and the original FinePOSE code on the same card, side by side.

    python -m common.synthetic --out big --h36m-size
    python tools/gpu_table.py --original PATH/TO/FinePOSE_CVPR2024 --original-python PATH/TO/its/python \\
        --data-dir big --json gpu_table.json

Every measurement runs in its own process on the GPU, ours through ``tools/benchmark.py`` (random
weights; time does not depend on their values), the original's through
``tools/original_side_by_side.py`` in its own environment (``--original-python``; it needs OpenAI's
``clip`` package and ``~/.cache/clip/ViT-B-32.pt``). The paper's model (243 frames, depth 8,
width 512), in order:

1. a training step of 4 clips, then of 8, 16, 32, 64 until one does not fit (ours runs a step in
   micro-batches of at most ``diffusion.GPU_CHUNK_TOKENS`` pose tokens, so its largest batch is
   bounded by time, not memory);
2. sampling one window and a batch of 4 windows at H=20, K=10 with flip;
3. ours on the dataset (--data-dir): the data pipeline of both training batches, an epoch
   (``--epoch-steps`` steps timed, extrapolated), the full evaluation at H=20 K=10 -b 4 (the model
   samples ``--eval-windows`` windows, extrapolated) and at H=1 K=1 (every window);
4. ours with ``--bf16`` and ``--compile`` (training step, one window, the H=20 K=10 evaluation).

The original's full evaluation is its time for a 4-window batch times the test set's windows / 4
(its host work not included), its steps per second one over its training step (its data pipeline not
included). Prints the Markdown table and writes every measurement to ``--json``.
``--device cpu`` and ``--override`` (tiny rows) exist to test this script without a GPU.
"""
import argparse
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = REPO_ROOT / 'tools' / 'benchmark.py'
ORIGINAL = REPO_ROOT / 'tools' / 'original_side_by_side.py'
TRAIN_BATCHES = (4, 8, 16, 32, 64)
SAMPLE_BATCHES = (1, 4)
EPOCH_STEPS = 200
EVAL_WINDOWS = 64
PAPER = dict(frames=243, depth=8, width=512, hypotheses=20, steps=10)
RUNS = itertools.count(1)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--original', type=Path, default=None,
                        help='a checkout of PKU-ICST-MIPL/FinePOSE_CVPR2024 (without it: ours only)')
    parser.add_argument('--original-python', default=sys.executable,
                        help='the Python of the original\'s environment (default: this one)')
    parser.add_argument('--data-dir', required=True, help='the Human3.6M-format set of the dataset rows')
    parser.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    parser.add_argument('--epoch-steps', type=int, default=EPOCH_STEPS)
    parser.add_argument('--eval-windows', type=int, default=EVAL_WINDOWS)
    parser.add_argument('--threads', type=int, default=4, help='CPU threads of each process (default: 4)')
    parser.add_argument('--train-batches', default=','.join(map(str, TRAIN_BATCHES)), metavar='LIST',
                        help='training batches to try, in clips (default: %(default)s; stops at the first that fails)')
    parser.add_argument('--sample-batches', default=','.join(map(str, SAMPLE_BATCHES)), metavar='LIST',
                        help='sampling batches, in windows (default: %(default)s)')
    parser.add_argument('--options', default='--bf16,--compile', metavar='LIST',
                        help='execution options measured besides the default (default: %(default)s)')
    parser.add_argument('--override', default=None, help=argparse.SUPPRESS)     # tiny rows, for the tests
    parser.add_argument('--json', default='gpu_table.json')
    args = parser.parse_args(argv)
    args.train_batches = [int(b) for b in args.train_batches.split(',') if b]
    args.sample_batches = [int(b) for b in args.sample_batches.split(',') if b]
    args.options = [o for o in args.options.split(',') if o]
    return args


def _run(argv: list, what: str):
    """Run one measurement; (exit status, its stdout). A failure is said and does not stop the table."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    print(f'{what}: exit {done.returncode} after {time.perf_counter() - start:.0f} s', file=sys.stderr, flush=True)
    return done.returncode, done.stdout


def ours(args, rows: str, *flags, what: str, override: dict = None):
    """One tools/benchmark.py run; its rows' measurements ({row name: measured}), or None if it failed."""
    out = Path(args.json).with_suffix(f'.run{next(RUNS)}.json')
    merged = {**json.loads(args.override or '{}'), **(override or {})}
    argv = [sys.executable, str(BENCHMARK), '--device', args.device, '--rows', rows, '--threads', str(args.threads),
            '--repeats', '3', '--data-dir', args.data_dir, '--json', str(out), *flags]
    if merged:
        argv += ['--override', json.dumps(merged)]
    code, _ = _run(argv, what)
    if code != 0 or not out.is_file():
        return None
    report = json.loads(out.read_text())
    out.unlink()
    return {r['row']['name']: r['measured'] for r in report['rows']}


def original_rows(args) -> dict:
    """The original's measurements: {'gpu': name, 'train': {clips: result}, 'sample': {windows: result}};
    empty without --original."""
    if args.original is None:
        return {'train': {}, 'sample': {}}
    out = Path(args.json).with_suffix('.original.json')
    shape = json.loads(args.override) if args.override else PAPER
    argv = [args.original_python, str(ORIGINAL), '--original', str(args.original), '--device', args.device,
            '--frames', str(shape.get('frames', 243)), '--depth', str(shape.get('depth', 8)),
            '--width', str(shape.get('width', 512)), '--hypotheses', str(shape.get('hypotheses', 20)),
            '--steps', str(shape.get('steps', 10)), '--train-batches', ','.join(map(str, args.train_batches)),
            '--sample-batches', ','.join(map(str, args.sample_batches)), '--json', str(out)]
    code, _ = _run(argv, 'original')
    if code != 0 or not out.is_file():
        return {'failed': True, 'train': {}, 'sample': {}}
    report = json.loads(out.read_text())
    out.unlink()
    return {'gpu': report['gpu'], **{kind: {r['batch']: r for r in report['rows'] if r['kind'] == kind}
                                     for kind in ('train', 'sample')}}


def measure(args) -> dict:
    results = {'original': original_rows(args), 'train': {}, 'sample': {}}
    for batch in args.train_batches:
        measured = ours(args, 'train-243-b4', what=f'ours train b{batch}', override={'batch': batch})
        results['train'][batch] = measured and measured['train-243-b4']
        if measured is None:
            break
    for batch in args.sample_batches:
        measured = ours(args, 'sample-243-h20k10', what=f'ours sample b{batch}', override={'batch': batch})
        results['sample'][batch] = measured and measured['sample-243-h20k10']
    results['data'] = ours(args, 'pipeline-243-b4,pipeline-27-b1024,epoch-243-b4,eval-243-h20k10-b4',
                           '--measure-steps', str(args.epoch_steps), '--measure-windows', str(args.eval_windows),
                           what='ours on the dataset')
    results['h1k1'] = ours(args, 'eval-243-h1k1-b4', what='ours H=1 K=1 evaluation')
    for option in args.options:
        results[option] = {
            'model': ours(args, 'train-243-b4,sample-243-h20k10', option, what=f'ours {option}'),
            'eval': ours(args, 'eval-243-h20k10-b4', option, '--measure-windows', str(args.eval_windows),
                         what=f'ours {option} evaluation')}
    return results


def _time(measured, key='median_s', per_unit=1.0, unit='s') -> str:
    """'0.123 s (4.5 GB)': a measurement's time (``key`` / ``per_unit`` ``unit``) and peak memory."""
    if not measured:
        return 'failed'
    if measured.get('out_of_memory'):
        return 'out of memory'
    peak = measured.get('cuda_peak_gb', measured.get('peak_rss_gb'))
    return f'{measured[key] / per_unit:.3f} {unit}' + (f' ({peak:.1f} GB)' if peak is not None else '')


def _largest(by_batch: dict) -> str:
    fitted = [b for b, m in by_batch.items() if m and not m.get('out_of_memory')]
    return f'{max(fitted)} clips' if fitted else '-'


def table(results: dict, windows: int, train_batches, sample_batches) -> str:
    original = results['original']
    data = results['data'] or {}
    lines = ['| measurement | original | ours | ours --bf16 | ours --compile |', '|---|---|---|---|---|']

    def line(name, theirs, mine, bf16='-', compiled='-'):
        lines.append(f'| {name} | {theirs} | {mine} | {bf16} | {compiled} |')

    def option(opt, part, row, key='median_s', per_unit=1.0, unit='s'):
        if opt not in results:
            return 'not run'
        return _time((results[opt][part] or {}).get(row), key, per_unit, unit)

    line('training step, 4 clips (s, peak GB)', _time(original['train'].get(4)),
         _time(results['train'].get(4)), option('--bf16', 'model', 'train-243-b4'),
         option('--compile', 'model', 'train-243-b4'))
    line(f'largest training batch that fits (of {", ".join(map(str, train_batches))})', _largest(original['train']),
         _largest(results['train']))
    for batch in train_batches[1:]:
        if batch in results['train'] or batch in original['train']:
            line(f'training step, {batch} clips', _time(original['train'].get(batch)),
                 _time(results['train'].get(batch)))
    step = original['train'].get(4)
    epoch = data.get('epoch-243-b4')
    line('epoch steps per second, 4 clips (original: its step alone)',
         f"{1 / step['median_s']:.2f}" if step and 'median_s' in step else '-',
         f"{epoch['steps'] / epoch['epoch_s']:.2f}" if epoch else 'failed')
    for name in ('pipeline-243-b4', 'pipeline-27-b1024'):
        if name in data:
            line(f'data pipeline {name[9:]}: host ms per step', '-', f"{data[name]['host_ms_per_step']:.2f}")
    for batch in sample_batches:
        line(f'sampling {batch} window(s), H=20 K=10, flip (s, peak GB)',
             _time(original['sample'].get(batch)), _time(results['sample'].get(batch)),
             option('--bf16', 'model', 'sample-243-h20k10') if batch == 1 else '-',
             option('--compile', 'model', 'sample-243-h20k10') if batch == 1 else '-')
    sampled = {b: m for b, m in original['sample'].items() if 'median_s' in m}
    batch = 4 if 4 in sampled else max(sampled, default=None)        # the paper's -b 4 when measured
    evaluation = data.get('eval-243-h20k10-b4')
    line(f'full evaluation H=20 K=10 -b 4, {windows:,} windows (extrapolated)',
         f"{sampled[batch]['median_s'] * windows / batch / 3600:.2f} h" if batch else '-',
         _time(evaluation, 'evaluation_s', 3600, 'h'),
         option('--bf16', 'eval', 'eval-243-h20k10-b4', 'evaluation_s', 3600, 'h'),
         option('--compile', 'eval', 'eval-243-h20k10-b4', 'evaluation_s', 3600, 'h'))
    h1k1 = (results['h1k1'] or {}).get('eval-243-h1k1-b4')
    line('full evaluation H=1 K=1 -b 4', '-', _time(h1k1, 'evaluation_s', 60, 'min'))
    return '\n'.join(lines)


def main(argv=None):
    args = parse_args(argv)
    results = measure(args)
    evaluation = (results['data'] or {}).get('eval-243-h20k10-b4')
    windows = evaluation['windows'] if evaluation else 0
    text = table(results, windows, args.train_batches, args.sample_batches)
    print(text)
    Path(args.json).write_text(json.dumps(results, indent=2, default=str) + '\n')
    print(f'Wrote {args.json}')
    return results


if __name__ == '__main__':
    main()

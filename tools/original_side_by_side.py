"""Time the original FinePOSE code (PKU-ICST-MIPL/FinePOSE_CVPR2024) as it is, for the GPU table.

    python tools/original_side_by_side.py --original PATH/TO/FinePOSE_CVPR2024 --json original.json

Run it with the original's own environment (its README: PyTorch, OpenAI's ``clip`` package with
``~/.cache/clip/ViT-B-32.pt``, timm, einops); nothing of this project is imported, and nothing of
the original is copied here: its model is imported from ``--original`` at run time, built and
called the way its ``main.py`` does (``nn.DataParallel(FinePOSE(...)).cuda()``, CLIP-tokenised
action and prompt words, AdamW, ``loss.backward(loss.clone().detach())``, ``torch.no_grad()``
sampling with the flipped 2D input), on random clips, one warm-up then ``--repeats`` timed runs:

* train-243-bN: one training step of N clips of 243 frames (depth 8, width 512);
* sample-243-h20k10-bN: sampling N windows with 20 hypotheses and 10 DDIM steps, flip.

Each row reports the median time and ``torch.cuda.max_memory_allocated``; a row that runs out of
GPU memory is reported as such (``--batches`` tries several batch sizes: the largest that fits).
``--device cpu`` exists only to test this script with a stand-in of the original (the original
itself places its tensors on CUDA).
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

# Human3.6M's 17-joint layout, as the original's main.py reads it from its dataset.
JOINTS_LEFT, JOINTS_RIGHT = [4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]
PROMPT_WORDS = ['A person', 'speed', 'head', 'body', 'arm', 'leg']        # the original's pre_text_information
ACTIONS = ['Walking', 'Eating', 'Sitting', 'Greeting']
CLIP_WEIGHTS = Path('~/.cache/clip/ViT-B-32.pt').expanduser()
GB = 1e9


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--original', required=True, type=Path, help='a checkout of PKU-ICST-MIPL/FinePOSE_CVPR2024')
    parser.add_argument('--device', default='cuda', choices=['cuda', 'cpu'])
    parser.add_argument('--frames', type=int, default=243)
    parser.add_argument('--depth', type=int, default=8)
    parser.add_argument('--width', type=int, default=512)
    parser.add_argument('--train-batches', default='4', metavar='LIST',
                        help='training batches (clips) to time, e.g. 4,8,16,32,64 (stops at the first that does '
                             'not fit)')
    parser.add_argument('--sample-batches', default='1,4', metavar='LIST', help='sampling batches (windows) to time')
    parser.add_argument('--hypotheses', type=int, default=20)
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--json', default=None, help='write the results here')
    return parser.parse_args(argv)


def import_original(path: Path):
    """(FinePOSE class, mpjpe, clip module) of the original checkout at ``path``.

    ``clip`` is OpenAI's package of the original's own environment (``--original-python``), which
    the original's model needs; this project's environment never runs this function (its test
    puts a stand-in ``clip`` on the path)."""
    if not (path / 'common' / 'finepose.py').is_file():
        raise SystemExit(f'--original {path}: no common/finepose.py; expected a checkout of '
                         'PKU-ICST-MIPL/FinePOSE_CVPR2024')
    sys.path.insert(0, str(path))
    import clip  # the original's environment only, see above
    from common.finepose import FinePOSE
    from common.loss import mpjpe
    return FinePOSE, mpjpe, clip


def synchronize(device):
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def timed(run, device, repeats: int) -> dict:
    """One warm-up, then ``repeats`` timed runs: median seconds and the device's peak memory."""
    if device.type == 'cuda':
        torch.cuda.reset_peak_memory_stats(device)
    run()
    synchronize(device)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    result = dict(seconds=seconds, median_s=statistics.median(seconds))
    if device.type == 'cuda':
        result['cuda_peak_gb'] = torch.cuda.max_memory_allocated(device) / GB
    return result


def model_args(args, flip=True) -> argparse.Namespace:
    """The flags the original's FinePOSE reads from its argument parser."""
    return argparse.Namespace(number_of_frames=args.frames, test_time_augmentation=flip, timestep=1000, scale=1.0,
                              cs=args.width, dep=args.depth)


def text_inputs(clip, batch: int, device):
    """(action tokens (B, 77), prompt-word tokens (B, 6, 77)) as the original's main.py makes them."""
    actions = torch.cat([clip.tokenize(ACTIONS[i % len(ACTIONS)], truncate=True) for i in range(batch)])
    words = torch.cat([clip.tokenize(word, truncate=True) for word in PROMPT_WORDS])
    return actions.to(device), words[None].repeat(batch, 1, 1).to(device)


def clips(args, batch: int, device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    inputs_2d = torch.randn(batch, args.frames, 17, 2, generator=g) * 0.3
    inputs_3d = torch.randn(batch, args.frames, 17, 3, generator=g) * 0.2
    inputs_3d[:, :, 0] = 0
    return inputs_2d.to(device), inputs_3d.to(device)


def train_row(original, args, batch: int, device) -> dict:
    FinePOSE, mpjpe, clip = original
    model = nn.DataParallel(FinePOSE(model_args(args), JOINTS_LEFT, JOINTS_RIGHT, is_train=True)).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-5, weight_decay=0.1)
    inputs_2d, inputs_3d = clips(args, batch, device)
    input_text, pre_text = text_inputs(clip, batch, device)

    def step():
        optimizer.zero_grad()
        loss = mpjpe(model(inputs_2d, inputs_3d, input_text, pre_text), inputs_3d)
        loss.backward(loss.clone().detach())
        optimizer.step()
        return loss.item()
    return timed(step, device, args.repeats)


def sample_row(original, args, batch: int, device) -> dict:
    FinePOSE, _, clip = original
    model = FinePOSE(model_args(args), JOINTS_LEFT, JOINTS_RIGHT, is_train=False, num_proposals=args.hypotheses,
                     sampling_timesteps=args.steps)
    model = nn.DataParallel(model).to(device)
    model.eval()
    inputs_2d, inputs_3d = clips(args, batch, device)
    flipped = inputs_2d.clone()
    flipped[..., 0] *= -1
    flipped[:, :, JOINTS_LEFT + JOINTS_RIGHT] = flipped[:, :, JOINTS_RIGHT + JOINTS_LEFT]
    input_text, pre_text = text_inputs(clip, batch, device)

    def sample():
        with torch.no_grad():
            return model(inputs_2d, inputs_3d, input_text, pre_text, input_2d_flip=flipped)
    return timed(sample, device, args.repeats)


def out_of_memory(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or 'out of memory' in str(err)


def main(argv=None):
    args = parse_args(argv)
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('--device cuda: CUDA is not available here')
    if args.device == 'cuda' and not CLIP_WEIGHTS.is_file():
        raise SystemExit(f'{CLIP_WEIGHTS}: not found; the original loads CLIP ViT-B/32 from there (clip.load '
                         'downloads it when it is missing, which needs the internet)')
    device = torch.device(args.device)
    original = import_original(args.original)
    rows = []
    for kind, batches, run in (('train', args.train_batches, train_row), ('sample', args.sample_batches, sample_row)):
        for batch in [int(b) for b in batches.split(',') if b]:
            name = (f'train-{args.frames}-b{batch}' if kind == 'train'
                    else f'sample-{args.frames}-h{args.hypotheses}k{args.steps}-b{batch}')
            try:
                result = run(original, args, batch, device)
            except RuntimeError as err:
                if not out_of_memory(err):
                    raise
                rows.append(dict(name=name, kind=kind, batch=batch, out_of_memory=True))
                print(f'{name}: out of GPU memory', flush=True)
                torch.cuda.empty_cache()
                break
            rows.append(dict(name=name, kind=kind, batch=batch, **result))
            peak = f", peak {result['cuda_peak_gb']:.2f} GB" if 'cuda_peak_gb' in result else ''
            print(f"{name}: median {result['median_s']:.3f} s{peak}", flush=True)
            if device.type == 'cuda':
                torch.cuda.empty_cache()
    report = dict(code='PKU-ICST-MIPL/FinePOSE_CVPR2024', path=str(args.original), device=args.device,
                  gpu=torch.cuda.get_device_name(device) if device.type == 'cuda' else None,
                  torch=torch.__version__, frames=args.frames, depth=args.depth, width=args.width, rows=rows)
    if args.json:
        tmp = f'{args.json}.tmp{os.getpid()}'
        with open(tmp, 'w') as f:
            json.dump(report, f, indent=2)
        os.replace(tmp, args.json)
    return report


if __name__ == '__main__':
    main()

"""--protocol: the original FinePOSE's evaluation count, reproduced cell by cell from its recorded
tables, and the per-frame count beside it; the counting weights and P-Best batches by hand.

The oracle (``<shared>/parity/eval_protocol/``, see its README) holds a small synthetic Human3.6M
subset and the tables the ORIGINAL code printed on it with the weights of
``make_ref_checkpoint.py f27_d4`` under two deterministic noise rules (every Gaussian draw zero;
a fixed table from numpy's default_rng(123)) and three -b values. Our ``main.py --evaluate`` runs
on the same files with the same rule put in place of our one sampling draw,
``common.model.diffusion.normal_per_clip``.

Sampling costs ~1 s per window here, so each window is sampled once per noise rule and reused
across the -b values and both protocols: ``PoseDiffusion.ddim_sample`` is wrapped by a cache that
runs the real method on the clips it has not seen. A clip's hypotheses do not depend on the batch
it is sampled in (the denoiser never mixes clips; test_training checks the batch size changes
nothing), so this only skips repeated work. Under the zero rule every hypothesis starts from and
receives the same (zero) noise, so hypotheses coincide: the cache samples one and repeats it
(having checked on its first clip, sampled with both hypotheses, that they coincide).
"""
import functools
import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import main as h36m_main
import main_3dhp
from common.evaluation import metrics
from common.core.keyed_random import generators_from_seeds
from common.data.camera import intrinsic_vector
from common.data.generators import make_windows, stitch_windows
from common.data.sequences import Sequence
from common.evaluation.protocol import (ORIGINAL, PER_FRAME_COUNTING, Counting, SamplingSettings, evaluate_sequence,
                                        frame_weights, sampling_seeds, zero_root)
from common.model import diffusion
from common.model.diffusion import PoseDiffusion
from common.run import experiment
from support.runs import TINY_RUN_FLAGS

ORACLE_FLAGS = ['-k', 'gt', '-f', '27', '-dep', '4', '-cs', '512', '-ste', 'S9', '-a', 'Walking,Directions', '--p2',
                '-num_proposals', '2', '-sampling_timesteps', '2', '--nolog', '-gpu', '', '--no-progress',
                '--threads', '1']
WINDOW = 27
TOLERANCE_MM = 1e-3
# tables.json's names for our settings, and its step names (step 0 = after the first DDIM step).
SETTING_NAMES = {'P-Best': 'P_Best', 'J-Best': 'J_Best', 'P-Agg': 'P_Agg', 'J-Agg': 'J_Agg'}
PATTERN_SEED, PATTERN_HYPOTHESES = 123, 64


def _noise_rule(rule: str):
    """The oracle's noise rule in place of ``normal_per_clip``: each clip's (H, F, J, 3) draw is
    zeros ('zero') or the first H rows of the recorded pattern table ('pattern')."""
    pattern = torch.from_numpy(np.random.default_rng(PATTERN_SEED).standard_normal(
        (PATTERN_HYPOTHESES, WINDOW, 17, 3)).astype(np.float32))

    def draw(generators, clip_shape, device=None):
        one = torch.zeros(clip_shape) if rule == 'zero' else pattern[:clip_shape[0]].reshape(clip_shape)
        return torch.cat([one] * len(generators)).to(device)
    return draw


class SampleCache:
    """``ddim_sample`` clip by clip: a clip seen before (same 2D input, action tokens and sampling
    settings, under the same noise rule) is answered from the cache; the others are sampled in one
    real call. Under the zero rule one hypothesis is sampled and repeated, after checking on the
    first clip, sampled with every hypothesis, that they coincide (module docstring)."""

    def __init__(self, real):
        self.real, self.rule, self.store, self.sampled, self.zero_checked = real, None, {}, 0, False

    def __call__(self, model, keypoints_2d, action_tokens, num_hypotheses=1, num_steps=1, flip=True, *, generators):
        keys = [(self.rule, kp.numpy().tobytes(), tokens.numpy().tobytes(), num_hypotheses, num_steps, flip)
                for kp, tokens in zip(keypoints_2d, action_tokens)]
        missing = [i for i, key in enumerate(keys) if key not in self.store]
        if missing:
            if self.rule == 'zero' and not self.zero_checked:
                first = self.real(model, keypoints_2d[:1], action_tokens[:1], num_hypotheses, num_steps, flip,
                                  generators=generators[:1])
                assert num_hypotheses > 1 and (first == first[:, :, :1]).all(), 'zero noise: hypotheses differ'
                self.zero_checked = True
            sampled_h = 1 if self.rule == 'zero' else num_hypotheses
            out = self.real(model, keypoints_2d[missing], action_tokens[missing], sampled_h, num_steps, flip,
                            generators=[generators[i] for i in missing])
            for i, clip in zip(missing, out.expand(-1, -1, num_hypotheses, -1, -1, -1)):
                self.store[keys[i]] = clip.clone()
            self.sampled += len(missing)
        return torch.stack([self.store[key] for key in keys])


@pytest.fixture(scope='module')
def oracle(shared_dir, tmp_path_factory):
    """(data folder, recorded tables, the original-layout checkpoint written by make_ref_checkpoint.py)."""
    folder = shared_dir / 'parity' / 'eval_protocol'
    script = shared_dir / 'parity' / 'make_ref_checkpoint.py'
    if not (folder / 'tables.json').is_file() or not script.is_file():
        pytest.skip(f'recorded evaluation tables not found under {folder}')
    checkpoint = tmp_path_factory.mktemp('eval_protocol') / 'best.bin'        # ~0.7 GB, deleted below
    subprocess.run([sys.executable, str(script), 'f27_d4', str(checkpoint)], check=True, capture_output=True)
    yield folder, json.loads((folder / 'tables.json').read_text()), checkpoint
    checkpoint.unlink()


@pytest.fixture(scope='module')
def evaluate_oracle(oracle, tmp_path_factory):
    """evaluate(rule, *flags) -> our EvaluationResult of ``main.py --evaluate`` on the oracle's data
    under a noise rule. Windows are sampled once per rule (``SampleCache``) and the checkpoint file
    is read once (``read_checkpoint`` memoised: the same dict every time)."""
    folder, _, checkpoint = oracle
    cache = SampleCache(PoseDiffusion.ddim_sample)
    read_once = functools.lru_cache(maxsize=1)(experiment.read_checkpoint)
    output = tmp_path_factory.mktemp('oracle_tables')

    def evaluate(rule, *flags):
        cache.rule = rule
        with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
            warnings.simplefilter('ignore')          # no ViT-B-32.pt needed: the checkpoint holds the text tower
            patch.setattr(diffusion, 'normal_per_clip', _noise_rule(rule))
            patch.setattr(PoseDiffusion, 'ddim_sample', lambda model, *args, **kwargs: cache(model, *args, **kwargs))
            patch.setattr(experiment, 'read_checkpoint', read_once)
            return h36m_main.main(['--data-dir', str(folder), '--evaluate', str(checkpoint), '-c', str(output),
                                   *ORACLE_FLAGS, *flags])
    evaluate.output = output
    return evaluate


def _cells(result):
    """{(group, step, protocol, setting): mm} of our result's position errors, in tables.json's names
    (the original prints no MPJVE)."""
    rows = list(result.groups.items()) + [('Average', result.average)]
    return {(group, f'step {k}', f'P{p}', SETTING_NAMES[s]): float(values[k])
            for group, errors in rows for (s, p), values in errors.items() if p != metrics.VELOCITY
            for k in range(len(values))}


def _recorded_cells(run):
    return {(group, step, protocol, setting): value for group, steps in run['table'].items()
            for step, protocols in steps.items() for protocol, settings in protocols.items()
            for setting, value in settings.items()}


def _max_difference(ours: dict, recorded: dict) -> float:
    assert ours.keys() == recorded.keys()
    return max(abs(ours[cell] - recorded[cell]) for cell in recorded)


@pytest.mark.parametrize('rule', ['zero', 'pattern'])
def test_original_protocol_reproduces_the_recorded_tables(oracle, evaluate_oracle, rule, capsys):
    """Every cell (P1 and P2, four settings, both DDIM steps, each action and the average) of the
    three recorded -b runs, to 1e-3 mm, and the original's counted frames (tables.json)."""
    _, tables, _ = oracle
    runs = [run for run in tables['runs'] if run['noise'] == rule]
    assert sorted(run['b'] for run in runs) == [1, 4, 1024]
    counted = {action: total['counted_frames'] for action, total in tables['frames_counted']['per_action_total'].items()}
    for run in runs:
        result = evaluate_oracle(rule, '-b', str(run['b']))
        difference = _max_difference(_cells(result), _recorded_cells(run))
        with capsys.disabled():
            print(f'\n{rule} noise, -b {run["b"]}: max |ours - original| {difference:.2e} mm')
        assert difference <= TOLERANCE_MM, (rule, run['b'])
        assert dict(result.frames) == counted
    out = capsys.readouterr().out
    assert 'Counted as the original FinePOSE counts (--protocol original)' in out
    assert 'P-Best picks one hypothesis per evaluation batch of 4 windows of one sequence (-b 4).' in out
    stem = 'best_H2_K2_action-gt_flip_seed1_protocol-original-b1024_gt_S9_a-Walking+Directions'
    document = json.loads((evaluate_oracle.output / f'{stem}.json').read_text())
    assert (document['protocol'], document['p_best_windows']) == ('original', 1024)
    assert document['groups']['Walking']['frames'] == counted['Walking']


def test_without_b_p_best_takes_the_original_default(oracle, evaluate_oracle, capsys):
    """No -b: P-Best per batch of 1024 windows, the original's default, whatever our -b defaults to."""
    _, tables, _ = oracle
    (run,) = [run for run in tables['runs'] if run['noise'] == 'pattern' and run['b'] == 1024]
    assert _max_difference(_cells(evaluate_oracle('pattern')), _recorded_cells(run)) <= TOLERANCE_MM
    assert "batch of 1024 windows of one sequence (-b 1024, the original's default)" in capsys.readouterr().out


def test_per_frame_protocol_differs_where_the_counts_differ(oracle, evaluate_oracle, capsys):
    """per-frame counts each real frame once and picks P-Best per window: one table for every -b;
    every action of the oracle has a double-counted tail (Walking, Directions: 120 frames) or
    padding (Directions 1: 20 frames), so every action's numbers move away from the original's
    (-b 1: P-Best per window in both)."""
    _, tables, _ = oracle
    for rule in ('zero', 'pattern'):
        per_frame = {b: evaluate_oracle(rule, '--protocol', 'per-frame', '-b', str(b)) for b in (1, 4)}
        cells = _cells(per_frame[1])
        assert _max_difference(_cells(per_frame[4]), cells) == 0
        assert dict(per_frame[1].frames) == {'Walking': 4 * (120 + 81), 'Directions': 4 * (120 + 20)}
        (run,) = [run for run in tables['runs'] if run['noise'] == rule and run['b'] == 1]
        recorded = _recorded_cells(run)
        for group in ('Walking', 'Directions', 'Average'):
            moved = [abs(cells[c] - recorded[c]) for c in recorded if c[0] == group]
            print(f'{rule} noise, {group}: per-frame - original (-b 1) {min(moved):.4f} to {max(moved):.3f} mm')
            assert min(moved) > TOLERANCE_MM and max(moved) > 0.1, (rule, group)
    assert 'Counted per frame (--protocol per-frame)' in capsys.readouterr().out
    assert (evaluate_oracle.output / 'best_H2_K2_action-gt_flip_seed1_protocol-per-frame_gt_S9_a-Walking+Directions.json'
            ).is_file()


def test_per_frame_equals_original_on_whole_windows(evaluate_oracle):
    """'Walking 1' (81 frames = 3 whole windows, no overlap, no padding): per-frame agrees exactly with
    the original count at -b 1 (P-Best per window in both); at -b 4 only P-Best moves (one
    hypothesis for the 3 windows)."""
    per_frame = _cells(evaluate_oracle('pattern', '--protocol', 'per-frame', '-a', 'Walking 1'))
    assert _max_difference(per_frame, _cells(evaluate_oracle('pattern', '-b', '1', '-a', 'Walking 1'))) <= 1e-9
    batched = _cells(evaluate_oracle('pattern', '-b', '4', '-a', 'Walking 1'))
    moved = {cell for cell in per_frame if abs(batched[cell] - per_frame[cell]) > 1e-9}
    assert moved and all(cell[3] == 'P_Best' for cell in moved)


def test_frame_weights_by_hand():
    """25 frames in 9-frame windows: starts 0, 9, 16 (the last overlaps frames 16-17)."""
    valid = np.ones(25, bool)
    count, choose = frame_weights(PER_FRAME_COUNTING, 25, 9, valid)
    assert count.sum() == 25 and count[2, :2].sum() == 0 and count[2, 2:].sum() == 7
    assert (choose == 1).all()
    count, choose = frame_weights(Counting(ORIGINAL, 2), 25, 9, valid)
    assert (count == 1).all() and count.sum() == 27 and (choose == count).all()
    # 5 frames in one 9-frame window: per-frame counts 5, the original 9 (the padding too).
    assert frame_weights(PER_FRAME_COUNTING, 5, 9)[0].sum() == 5
    assert frame_weights(Counting(ORIGINAL, None), 5, 9)[0].sum() == 9
    # Invalid frames 0-5 and 20-24: per-frame counts the 14 valid ones once; the original, in batches
    # of 2 windows, gives each valid frame of the first batch (18 window frames, 12 valid) 18/12, and
    # of the second (window 2: frames 16-24, 4 valid) 9/4.
    valid[:6] = valid[20:] = False
    count, _ = frame_weights(PER_FRAME_COUNTING, 25, 9, valid)
    assert count.sum() == 14
    count, choose = frame_weights(Counting(ORIGINAL, 2), 25, 9, valid)
    np.testing.assert_allclose(count[0], [0] * 6 + [1.5] * 3)
    np.testing.assert_allclose(count[1], [1.5] * 9)
    np.testing.assert_allclose(count[2], [9 / 4] * 4 + [0] * 5)
    assert count.sum() == pytest.approx(27)


def test_p_best_index_per_batch_of_windows():
    """Hypothesis 0 is better in window 0 by 0.6 and worse in windows 1 and 2 by 0.4 each: per window
    the choices are 0, 1, 1; per batch of 2 windows (0-1, then 2) 0 then 1; per sequence 1."""
    errors = torch.zeros(3, 1, 2, 4)
    errors[0, 0, 1] = 0.15                      # window 0: hypothesis 1 worse by 0.6 over 4 frames
    errors[1:, 0, 0] = 0.1                      # windows 1, 2: hypothesis 0 worse by 0.4 each
    assert metrics.p_best_index(errors, 1)[:, 0].tolist() == [0, 1, 1]
    assert metrics.p_best_index(errors, 2)[:, 0].tolist() == [0, 0, 1]
    assert metrics.p_best_index(errors, None)[:, 0].tolist() == [1, 1, 1]
    # Weights: window 1 counted 3 times tips the first batch of 2 to hypothesis 1.
    weights = torch.ones(3, 4)
    weights[1] = 3
    assert metrics.p_best_index(errors, 2, weights)[:, 0].tolist() == [1, 1, 1]


def test_3dhp_protocol_names_counts_and_exports(tiny_dataset, tmp_path, capsys):
    """main_3dhp.py: the original's batches of 2 windows whatever -b says, every sequence pooled into
    the average; per-frame counts each valid frame once. The exports keep one pose per frame."""
    common = ['--data-dir', str(tiny_dataset), '-c', str(tmp_path), *TINY_RUN_FLAGS]
    main_3dhp.main([*common, '-e', '0', '--nolog'])
    results = {}
    for protocol in ('original', 'per-frame'):
        results[protocol] = main_3dhp.main([*common, '--evaluate', 'best_epoch.bin', '-num_proposals', '2',
                                            '--protocol', protocol])
    out = capsys.readouterr().out
    assert 'P-Best picks one hypothesis per evaluation batch of 2 windows of one sequence (fixed at 2' in out
    assert 'Each batch counts its mean over its valid frames' in out
    assert sorted(p.name for p in tmp_path.glob('best_epoch_H2_K1_*.json')) == [
        'best_epoch_H2_K1_action-absent_flip_seed1_protocol-original-b2.json',
        'best_epoch_H2_K1_action-absent_flip_seed1_protocol-per-frame.json']
    original, per_frame = results['original'], results['per-frame']
    # Pooled: the average is the frame-weighted mean of the sequences, not their plain mean.
    frames = np.array([original.frames[g] for g in original.groups], float)
    p_agg = np.array([original.groups[g][('P-Agg', 1)][-1] for g in original.groups])
    assert original.average[('P-Agg', 1)][-1] == pytest.approx((frames * p_agg).sum() / frames.sum())
    assert per_frame.average[('P-Agg', 1)][-1] == pytest.approx(np.mean(
        [per_frame.groups[g][('P-Agg', 1)][-1] for g in per_frame.groups]))
    assert all(original.frames[g] > per_frame.frames[g] for g in original.groups)


def _synthetic_sequence(frames: int):
    """A Human3.6M-shaped Sequence with random root-relative poses 5 m in front of a camera."""
    rng = np.random.default_rng(3)
    poses = (rng.standard_normal((frames, 17, 3)) * 0.2).astype(np.float32)
    poses[:, 0] = 0
    return Sequence('S0', 'Walking', 0, keypoints_2d=(rng.standard_normal((frames, 17, 2)) * 0.1).astype(np.float32),
                    positions_3d=poses, trajectory=np.tile(np.float32([0, 0, 5]), (frames, 1)),
                    intrinsics=intrinsic_vector([1000.0, 1000.0], [500.0, 500.0], 1000, 1000).astype(np.float32))


def _keyed_sampler(steps: int, hypotheses: int):
    """A stand-in for the model: each window's (K, H, F, J, 3) hypotheses drawn from its own seed."""
    def sample(keypoints_2d, action_tokens, seeds):
        shape = (steps, hypotheses, *keypoints_2d.shape[1:3], 3)
        return torch.stack([torch.randn(shape, generator=g) * 0.2 for g in generators_from_seeds(seeds)])
    return sample


@pytest.mark.parametrize('counting', [Counting(ORIGINAL, 2), PER_FRAME_COUNTING], ids=['original-b2', 'per-frame'])
def test_sequence_counts_and_p_best_poses_do_not_depend_on_the_sampling_batch(counting):
    """23 frames in 5-frame windows (starts 0, 5, 10, 15, 18), sampled 3 windows at a time while
    P-Best takes batches of 2 (or 1): the P-Best poses equal those picked from all hypotheses at
    once, and P-Agg's counted error equals the mean over every window frame (original) or over
    every real frame once (per-frame), computed from the stitched windows."""
    sequence, window, settings = _synthetic_sequence(23), 5, SamplingSettings(3, 2, batch_size=3)
    sampler = _keyed_sampler(settings.num_steps, settings.num_hypotheses)
    result = evaluate_sequence(sampler, sequence, 0, window, 0, settings, 'cpu', 'Walking', counting, keep_poses=True)
    seeds = sampling_seeds(settings.seed, sequence.key, range(5))
    hyps = zero_root(sampler(torch.zeros(5, window, 17, 2), None, seeds), 0)
    truth = torch.from_numpy(make_windows(sequence.positions_3d, window))
    errors = metrics.joint_errors(hyps, truth[:, None, None]).mean(dim=-1)                    # (W, K, H, F)
    expected = metrics.pick_hypotheses(hyps, metrics.p_best_index(errors, counting.windows_per_batch))
    stitched = stitch_windows(expected.transpose(1, 2), 23, overlap_from_last=counting.rule == ORIGINAL)
    np.testing.assert_array_equal(result.poses['P-Best'], stitched.numpy())
    mean_errors = metrics.joint_errors(hyps.mean(dim=2), truth[:, None]).mean(dim=-1).double()  # (W, K, F)
    if counting.rule == ORIGINAL:
        assert result.frames == 25
        np.testing.assert_allclose(result.sums[('P-Agg', 1)], mean_errors.sum(dim=(0, 2)).numpy(), rtol=1e-12)
    else:
        assert result.frames == 23
        per_frame = stitch_windows(mean_errors.transpose(1, 2), 23)                             # (N, K)
        np.testing.assert_allclose(result.sums[('P-Agg', 1)], per_frame.sum(dim=0).numpy(), rtol=1e-12)

"""The demo (``python -m common.demo``) end to end, shrunk to seconds: tiny data and model, one epoch."""
import re

import numpy as np

from common import demo

TINY_RECIPE = (demo.Choice(('-f', '9', '-cs', '32', '-dep', '2', '--text-tower', 'tiny', '-b', '16'), 'tiny'),
               demo.Choice(('--threads', '1', '--no-progress'), 'quiet'))


def test_demo_prints_three_numbers_renders_and_names_its_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, 'DEMO_FRAMES_PER_TAKE', 12)
    monkeypatch.setattr(demo, 'RECIPE', TINY_RECIPE)
    monkeypatch.setattr(demo, 'SAMPLING', ('-num_proposals', '2', '-sampling_timesteps', '1'))
    demo.main(['--out', str(tmp_path), '--epochs', '1'])
    out = capsys.readouterr().out
    assert '  -f 9 -cs 32 -dep 2 --text-tower tiny -b 16 tiny' in out            # every choice with its reason
    assert re.search(r"\n  \(no --gradient-scale\) +the original's gradient weighting", out)
    untrained = re.search(r'\n  untrained model +([\d.]+) mm\n', out)
    baseline = re.search(r'\n  mean training pose +([\d.]+) mm +\(no model', out)
    trained = re.search(r'\n  trained, 1 epoch +([\d.]+) mm += ([\d.]+) x the mean pose\n', out)
    assert untrained and baseline and trained, out
    assert float(trained.group(2)) == round(float(trained.group(1)) / float(baseline.group(1)), 2)
    render = tmp_path / 'render_S9_Walking_camera0.gif'
    assert render.stat().st_size > 0 and f'camera 0 (prediction beside ground truth): {render}' in out
    poses = np.load(tmp_path / 'render_S9_Walking_camera0.npy')
    assert poses.shape == (12, 17, 3)
    widths = re.search(r'shoulders ([\d.]+) cm apart \(ground truth ([\d.]+)\), hips ([\d.]+) cm apart', out)
    shoulders = np.linalg.norm(poses[:, 11] - poses[:, 14], axis=-1).mean() * 100
    assert float(widths.group(1)) == round(shoulders, 1)
    assert f'Checkpoint: {tmp_path / "checkpoint" / "best_epoch.bin"}' in out
    assert (tmp_path / 'checkpoint' / 'best_epoch.bin').is_file()
    assert f'python main.py -d custom -k myvideos -c {tmp_path / "checkpoint"} --evaluate best_epoch.bin' in out

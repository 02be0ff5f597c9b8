"""The words around the numbers say what happened: ground truth used by each setting, the action
label (or none), the learning rate an epoch trained at, no validation talk with --no-eval,
clips per batch, plurals, and tables whose columns line up with their headers."""
import csv
import re
from collections import OrderedDict

import numpy as np
import pytest

import main as h36m_main
from common.evaluation import metrics
from common.evaluation.protocol import EvaluationResult, SamplingSettings
from common.evaluation.report import count, format_result, ground_truth_notice, setting_label, write_result_files
from support.runs import TINY_RUN_FLAGS


def _result(groups, hypotheses=1, steps=1):
    errors = {(s, 1): np.arange(1.0, steps + 1) * (i + 1) for i, s in enumerate(metrics.SETTINGS)}
    per_group = OrderedDict((g, errors) for g in groups)
    return EvaluationResult(per_group, errors, OrderedDict((g, 100 + i) for i, g in enumerate(groups)),
                            SamplingSettings(hypotheses, steps), (1,))


def test_every_setting_says_which_ground_truth_it_uses(tmp_path):
    assert [setting_label(s) for s in metrics.SETTINGS] == ['P-Best*', 'J-Best*', 'P-Agg', 'J-Agg+']
    notice = ground_truth_notice('gt')
    assert '* oracle settings (P-Best, J-Best)' in notice and '+ J-Agg' in notice
    assert 'ground-truth root trajectory and camera' in notice
    write_result_files(_result(['Walking']), tmp_path, 'table', 'action', {})
    with open(tmp_path / 'table.csv') as f:
        used = {row['setting']: row['ground_truth_used'] for row in csv.DictReader(f)}
    assert used == {'P-Best': 'gt_3d_pose (oracle)', 'J-Best': 'gt_3d_pose (oracle)', 'P-Agg': 'no',
                    'J-Agg': 'gt_root_camera'}


def test_the_action_label_source_is_always_said():
    assert 'no action label (--eval-action none)' in ground_truth_notice('none')
    assert 'ground-truth action label' in ground_truth_notice('gt')
    assert 'no action labels' in ground_truth_notice('absent')


def test_plurals():
    assert (count(1, 'epoch'), count(3, 'epoch'), count(1, 'hypothesis', 'hypotheses'),
            count(20, 'hypothesis', 'hypotheses')) == ('1 epoch', '3 epochs', '1 hypothesis', '20 hypotheses')
    assert format_result(_result(['TS1']), 'sequence').startswith('H=1 hypothesis, K=1 DDIM step, ')
    assert 'averaged over 1 sequence\n' in format_result(_result(['TS1']), 'sequence')
    assert format_result(_result(['TS1', 'TS2'], 20, 10), 'sequence').startswith('H=20 hypotheses, K=10 DDIM steps')


@pytest.mark.parametrize('group_title, groups', [('sequence', ['TS1', 'TS5']), ('action', ['Walking', 'SittingDown'])])
def test_per_group_columns_line_up_with_the_header(group_title, groups):
    lines = format_result(_result(groups), group_title).splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith(group_title))
    table = lines[header:header + len(groups) + 2]
    # Right edges of the number columns (the left-aligned group name aside).
    ends = [[m.end() for m in re.finditer(r'\S+', line)][1:] for line in table]
    assert all(row == ends[0] for row in ends[1:-1]), table          # every column ends under its title
    assert ends[-1] == ends[0][:-1], table                            # 'Average' has no frames column


def test_training_log_says_what_the_epoch_did(tiny_dataset, tmp_path, capsys):
    flags = ['--data-dir', str(tiny_dataset), '-c', str(tmp_path), '-k', 'cpn_ft_h36m_dbb', '-str', 'S1', '-ste', 'S9',
             '-a', 'Walking', *TINY_RUN_FLAGS, '-e', '1', '-lr', '1e-3', '--no-eval', '--nolog', '--eval-action', 'none']
    h36m_main.main(flags)
    out = capsys.readouterr().out
    assert '[1] time ' in out and ' lr 0.001 ' in out                  # the rate epoch 1 trained at
    assert 'validating' not in out.lower() and 'nan' not in out
    assert 'No validation (--no-eval): best_epoch.bin is the last epoch' in out
    assert '20 clips x 2 with their mirrored copies, of 9 frames; 4 clips a step (-b 4), 10 steps per epoch' in out, out
    assert 'Prompts use no action label (--eval-action none)' in out
    assert 'H=1 hypothesis, K=1 DDIM step' in out

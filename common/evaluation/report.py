"""Evaluation tables: printed summary, and the same numbers as CSV and JSON files."""
import csv
import io
import json
import math
import re
from pathlib import Path

from common.core.atomic import write_text_atomic
from common.evaluation import metrics
from common.evaluation.baseline import MEAN_POSE_LABEL
from common.evaluation.metrics import VELOCITY
from common.evaluation.protocol import ORIGINAL
from common.evaluation.smoothing import smoothing_words

# The metrics of the tables: Protocols #1 and #2 (positions), and MPJVE (velocity; ``metrics.VELOCITY``).
PROTOCOL_NAMES = {1: 'Protocol #1 (MPJPE)', 2: 'Protocol #2 (P-MPJPE)',
                  VELOCITY: 'MPJVE (velocity error, mm per frame)'}
METRIC_NAMES = {1: 'MPJPE', 2: 'P-MPJPE', VELOCITY: 'MPJVE'}
SMOOTHED_TABLES = (' Every number is of the smoothed poses (P-Best\'s hypotheses are chosen before smoothing; '
                   'Protocol #2 aligns each smoothed pose).')
VELOCITY_COUNTING = ('MPJVE counts each setting\'s per-frame poses of a sequence: every pair of consecutive real '
                     'frames once ({valid}never a pair across sequences, never padding), the same under either '
                     '--protocol.')

MEAN_POSE_NOTICE = (f"Baseline '{MEAN_POSE_LABEL}' (no model): one constant pose predicted at every frame, counted as "
                    'the settings are (--smooth leaves it unchanged; its MPJVE is the ground truth\'s own motion); a '
                    'setting near it has learnt little. Its pose: {source}.')
MEAN_POSE_ABSENT = f"No '{MEAN_POSE_LABEL}' line: {{source}}."
# The CSV's ground_truth_used of the baseline: it uses the training data, nothing of the test set.
MEAN_POSE_GROUND_TRUTH = metrics.GT_NONE


def count(n: int, noun: str, nouns: str = None) -> str:
    """'1 epoch', '3 epochs', '1 hypothesis' with nouns='hypotheses'."""
    return f'{n} {noun if n == 1 else nouns or noun + "s"}'


# The mark after a setting's name in printed tables, by what it takes from the ground truth.
GROUND_TRUTH_MARKS = {metrics.GT_NONE: '', metrics.GT_ORACLE: '*', metrics.GT_ROOT_CAMERA: '+'}
ACTION_SOURCES = {
    'gt': 'Prompts use the ground-truth action label of each sequence (--eval-action gt); '
          '--eval-action none evaluates without it.',
    'none': 'Prompts use no action label (--eval-action none): the action segment of every prompt is empty.',
    'absent': 'Prompts have no action segment (MPI-INF-3DHP has no action labels).',
}


def setting_label(setting: str) -> str:
    """'P-Best' -> 'P-Best*' (oracle), 'J-Agg' -> 'J-Agg+' (ground-truth root and camera), 'P-Agg' as is."""
    return setting + GROUND_TRUTH_MARKS[metrics.GROUND_TRUTH_USED[setting]]


def ground_truth_notice(action_source: str) -> str:
    """Which reported numbers use ground truth beyond the 2D input, and which action label the prompts had.

    action_source: a key of ``ACTION_SOURCES``."""
    return '\n'.join([
        'Ground truth used: * oracle settings (P-Best, J-Best): hypotheses chosen by their error against the '
        'ground-truth 3D pose;',
        '                   + J-Agg: reprojects with the ground-truth root trajectory and camera, as in the paper; '
        'P-Agg: none.',
        ACTION_SOURCES[action_source]])


def p_best_batch_words(counting) -> str:
    """'4 windows of one sequence (-b 4)', 'a whole sequence', 'each window'."""
    if counting.rule != ORIGINAL:
        return 'each window'
    batch = (f'{count(counting.windows_per_batch, "window")} of one sequence' if counting.windows_per_batch
             else 'a whole sequence')
    return f'{batch} ({counting.batch_source})'


def counting_notice(result, group_title: str) -> str:
    """How the table counts frames and picks P-Best (``--protocol``), in words."""
    counting, window = result.counting, result.window_frames
    if counting.rule == ORIGINAL:
        lines = [f'Counted as the original FinePOSE counts (--protocol original): every frame of every {window}-frame '
                 'window, so frames where a sequence\'s last window overlaps the one before count twice and a '
                 'sequence shorter than a window counts its padding;',
                 f'P-Best picks one hypothesis per evaluation batch of {p_best_batch_words(counting)}.']
        if result.invalid_frames:
            lines.append('Each batch counts its mean over its valid frames as many times as it has window frames.')
        if counting.pooled:
            lines.append(f'The average is over every counted frame of every {group_title}.')
    else:
        lines = ['Counted per frame (--protocol per-frame): every real frame once (the overlap of a sequence\'s '
                 'last window and the padding of a short sequence do not count); P-Best picks one hypothesis per '
                 'window.']
    return '\n'.join(lines)


def velocity_counting_notice(result) -> str:
    """How MPJVE counts frame pairs, in words."""
    return VELOCITY_COUNTING.format(valid='both frames valid; ' if result.invalid_frames else '')


def mean_pose_notice(result):
    """What the ``mean training pose`` line is and where its pose comes from, or why it is absent;
    None when the evaluation asked for no baseline."""
    if result.mean_pose is None:
        return None
    template = MEAN_POSE_NOTICE if result.mean_pose_errors is not None else MEAN_POSE_ABSENT
    return template.format(source=result.mean_pose.source)


def _metric_tables(result, metric, group_title: str) -> str:
    """One metric's per-step averages for every setting and the ``mean training pose`` line, then its
    per-group table at the last step with the counted frames (positions) or frame pairs (MPJVE)."""
    settings = metrics.SETTINGS
    unit, counts = ('pair', result.pairs) if metric == VELOCITY else ('frame', result.frames)
    over = f'every counted {unit} of every {group_title}' if result.counting.pooled else f'average over {group_title}s'
    out = io.StringIO()
    out.write(f'\n{PROTOCOL_NAMES[metric]}, {over}\n')
    out.write('step ' + ''.join(f'{setting_label(x):>9}' for x in settings) + '\n')
    steps = len(result.average[(settings[0], metric)])
    for k in range(steps):
        out.write(f'{k + 1:>4} ' + ''.join(f'{result.average[(x, metric)][k]:9.2f}' for x in settings) + '\n')
    if result.mean_pose_errors is not None:
        out.write(f'{MEAN_POSE_LABEL} (baseline, no model): {result.mean_pose_errors["average"][metric]:.2f}\n')
    width = max(len(str(g)) for g in [*result.groups, group_title, 'Average']) + 2
    out.write(f'\n{PROTOCOL_NAMES[metric]} per {group_title}, step {steps}\n')
    out.write(f'{group_title:<{width}}' + ''.join(f'{setting_label(x):>9}' for x in settings) + f'{unit + "s":>9}\n')
    for group, errors in result.groups.items():
        out.write(f'{str(group):<{width}}' + ''.join(f'{errors[(x, metric)][-1]:9.2f}' for x in settings)
                  + f'{counts[group]:9d}\n')
    out.write(f'{"Average":<{width}}' + ''.join(f'{result.average[(x, metric)][-1]:9.2f}' for x in settings) + '\n')
    return out.getvalue()


def format_result(result, group_title: str) -> str:
    """Sampling settings, smoothing and counting rule, then for every protocol and MPJVE the
    per-step averages for every setting and the per-group table at the last step."""
    s = result.settings
    out = io.StringIO()
    average = ' over every counted frame of' if result.counting.pooled else ', averaged over'
    out.write(f'H={count(s.num_hypotheses, "hypothesis", "hypotheses")}, K={count(s.num_steps, "DDIM step")}, '
              f'test-time flip {"on" if s.flip else "off"}; errors in mm{average} '
              f'{count(len(result.groups), group_title)}\n')
    if result.smooth_window is not None:
        out.write(smoothing_words(result.smooth_window) + SMOOTHED_TABLES + '\n')
    out.write(counting_notice(result, group_title) + '\n')
    with_velocity = (metrics.SETTINGS[0], VELOCITY) in result.average
    if with_velocity:
        out.write(velocity_counting_notice(result) + '\n')
    if mean_pose_notice(result):
        out.write(mean_pose_notice(result) + '\n')
    for metric in (*result.protocols, *([VELOCITY] if with_velocity else [])):
        out.write(_metric_tables(result, metric, group_title))
    return out.getvalue()


def _metric_name(metric) -> str:
    """The JSON name of a metric: 'P1', 'P2', 'MPJVE'."""
    return METRIC_NAMES[VELOCITY] if metric == VELOCITY else f'P{metric}'


def metric_key(setting: str, metric) -> str:
    """The JSON name of a (setting, metric) column: 'J-Agg/P1', 'J-Agg/P2', 'J-Agg/MPJVE'."""
    return f'{setting}/{_metric_name(metric)}'


def _rounded(values) -> list:
    """(K,) mm -> JSON numbers (4 decimals; null for nan: a group without a counted frame pair)."""
    return [None if math.isnan(v) else round(float(v), 4) for v in values]


def counting_tag(counting) -> str:
    """'protocol-original-b4' (P-Best per batch of -b 4 windows), 'protocol-original-bseq' (per
    sequence), 'protocol-per-frame'."""
    if counting.rule != ORIGINAL:
        return f'protocol-{counting.rule}'
    return f'protocol-{counting.rule}-b{counting.windows_per_batch or "seq"}'


def smoothing_tag(window) -> list:
    """The result files' name part for ``--smooth`` ('smooth9'), none without it."""
    return [] if window is None else [f'smooth{window}']


def result_file_stem(checkpoint_stem: str, settings, action_source: str, counting, *tags: str) -> str:
    """The name of an evaluation's tables: every setting that changes the numbers is in it, so
    evaluations of one checkpoint with different settings never overwrite each other.

    settings: ``evaluation.SamplingSettings``; action_source: 'gt' or 'none' (the prompts' action
    label); counting: ``evaluation.Counting`` (``counting_tag``); tags: the data and anything else
    that matters (e.g. 'cpn_ft_h36m_dbb', 'S9+S11', 'bf16', ``smoothing_tag``'s 'smooth9'). 'best_epoch',
    H=20, K=10, flip, seed 1, 'gt', the original's count at -b 4 ->
    'best_epoch_H20_K10_action-gt_flip_seed1_protocol-original-b4_...'.
    """
    parts = [checkpoint_stem, f'H{settings.num_hypotheses}', f'K{settings.num_steps}', f'action-{action_source}',
             'flip' if settings.flip else 'noflip', f'seed{settings.seed}', counting_tag(counting), *tags]
    return '_'.join(re.sub(r'[^\w.+=-]', '-', str(p)) for p in parts)


def _mean_pose_document(result) -> dict:
    """The JSON's 'mean_training_pose': {'source', 'average': {'P1': mm, ...}, 'groups': {group: {...}}},
    or {'absent': why}."""
    baseline = result.mean_pose_errors
    if baseline is None:
        return {'absent': result.mean_pose.source}

    def named(errors):
        return {_metric_name(metric): _rounded([value])[0] for metric, value in errors.items()}
    return {'source': result.mean_pose.source, 'average': named(baseline['average']),
            'groups': {str(group): named(errors) for group, errors in baseline['groups'].items()}}


def write_result_files(result, folder, stem: str, group_title: str, extra: dict) -> list:
    """``stem``.csv (long format: one row per group, setting, metric and step; ``protocol`` 1 or 2
    for the position errors, empty for MPJVE, ``metric`` MPJPE, P-MPJPE or MPJVE; an empty
    ``error_mm`` for a group without a counted frame pair; the baseline's rows, setting ``mean
    training pose``, have an empty ``step``: one value for every step) and ``stem``.json (the
    baseline under ``mean_training_pose``)."""
    folder = Path(folder)
    rows = []
    for group, errors in list(result.groups.items()) + [('Average', result.average)]:
        for (setting, metric), values in errors.items():
            for k, value in enumerate(_rounded(values)):
                rows.append({group_title: group, 'setting': setting, 'protocol': '' if metric == VELOCITY else metric,
                             'step': k + 1, 'error_mm': value, 'ground_truth_used': metrics.GROUND_TRUTH_USED[setting],
                             'metric': METRIC_NAMES[metric]})
    baseline = result.mean_pose_errors
    if baseline is not None:
        for group, errors in list(baseline['groups'].items()) + [('Average', baseline['average'])]:
            for metric, value in errors.items():
                rows.append({group_title: group, 'setting': MEAN_POSE_LABEL,
                             'protocol': '' if metric == VELOCITY else metric, 'step': '',
                             'error_mm': _rounded([value])[0], 'ground_truth_used': MEAN_POSE_GROUND_TRUTH,
                             'metric': METRIC_NAMES[metric]})
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    csv_path, json_path = folder / f'{stem}.csv', folder / f'{stem}.json'
    write_text_atomic(csv_path, buffer.getvalue())
    s, c = result.settings, result.counting
    document = {
        **extra,
        'num_hypotheses': s.num_hypotheses, 'num_steps': s.num_steps, 'test_time_flip': s.flip, 'seed': s.seed,
        'protocol': c.rule, 'p_best_windows': c.windows_per_batch, 'p_best_batch': p_best_batch_words(c),
        'average_over': f'every counted frame of every {group_title}' if c.pooled else f'{group_title}s',
        'counting': counting_notice(result, group_title).replace('\n', ' '),
        'velocity_counting': velocity_counting_notice(result),
        'smooth_window': result.smooth_window,
        'smoothing': smoothing_words(result.smooth_window) + (SMOOTHED_TABLES if result.smooth_window else ''),
        'ground_truth_used': dict(metrics.GROUND_TRUTH_USED),
        'average': {metric_key(x, m): _rounded(vals) for (x, m), vals in result.average.items()},
        'groups': {str(g): {'frames': result.frames[g], 'frame_pairs': result.pairs.get(g, 0),
                            **{metric_key(x, m): _rounded(vals) for (x, m), vals in e.items()}}
                   for g, e in result.groups.items()},
    }
    if result.mean_pose is not None:
        document['mean_training_pose'] = _mean_pose_document(result)
    write_text_atomic(json_path, json.dumps(document, indent=1))
    return [csv_path, json_path]

"""Every command of the READMEs runs as written, shrunk, on a tiny synthetic set.

The command lines are read from the Markdown files (indented code lines whose first word is a
program), so a command added to a README is picked up automatically. Each one runs in a fresh
process, in README order, in a temporary folder laid out like a checkout after the README's own
set-up (``data/`` holding a tiny synthetic set, ``checkpoint/``, the code linked in), with:

* flags that shrink it to seconds (``SHRINK``: 1 epoch, 27-frame clips, width 32, depth 2, the
  tiny text tower, 2 hypotheses and 2 DDIM steps, 5 rendered frames, one thread): set when the
  command gives them, added otherwise;
* ``-gpu LIST`` run as ``-gpu ''`` (the CPU), which the code accepts for every command;
* the files a newcomer brings (``_write_fixtures``): the official ``best_epoch_20_10.bin``
  checkpoints (tiny ones in the reference's layout), a video ``dance.mp4`` with its detector's
  COCO keypoint results ``results.json`` (a synthetic walk), at the README's
  ``path/to/mpi_inf_3dhp_test_set`` official-format annotations (``TS*/annot_data.mat``) of the
  synthetic test sequences, and the official releases in their exact formats (``support.releases``)
  at ``path/to/Human3.6M`` (CDF), ``path/to/h36m.zip`` (HDF5) and ``path/to/mpi_inf_3dhp``
  (``annot.mat``), the Human3.6M takes holding the synthetic set's poses.

Commands that need what this machine lacks are listed in ``SKIPPED`` with the reason and the
test that covers them instead. A command of any other form fails ``test_every_readme_command_
has_a_known_form``: teach ``RUNNERS`` to run it, or add it to ``SKIPPED`` saying why.
Python snippets (code blocks that import something) run as written too, unless they hold a
placeholder for the user's data (``= ...``).
"""
import json
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from common.data.video_io import Mp4Writer
from support.keypoint_files import COCO_NAMES, detector_results, in_format
from support.releases import (h36m_content, write_h36m_archive, write_h36m_source, write_mpi_train_release,
                              write_official_annotations)
from support.runs import REPO_ROOT

READMES = ('data/README.md', 'README.md', '3dhp_test/README.md', 'docs/*.md')      # set-up first
# First words that make an indented line a shell command (anything else is code or a listing).
PROGRAMS = ('python', 'python3', 'torchrun', 'pip', 'octave-cli', 'matlab', 'tensorboard', 'bash', 'sh', 'cd')
CODE_LINE = re.compile(r'^( {4,})(\S.*)$')
PLACEHOLDER = re.compile(r'=\s*\.\.\.')

# flag -> value (None: a switch). Set when given, added otherwise, for main.py and main_3dhp.py.
SHRINK = {'-e': '1', '-f': '27', '-cs': '32', '-dep': '2', '--text-tower': 'tiny', '-num_proposals': '2',
          '-sampling_timesteps': '2', '--val-batch-size': '16', '--threads': '1', '--no-progress': None}
SHRINK_DATASET = {'main.py': {'-str': 'S1', '-ste': 'S9', '-a': 'Walking'}, 'main_3dhp.py': {}}
SHRINK_RENDER = {'--viz-limit': '5'}          # only with --render (main.py refuses render flags without it)
CPU = {'-gpu': ''}

SKIPPED = {
    r'^python -m common\.demo': 'the demo trains for minutes; tests/entry_points/test_demo.py runs it shrunk',
    r'pip install': 'installs packages from the network; .ci/run runs this exact line '
                    '(tests/project/test_project.py)',
    r'^torchrun ': 'several processes or machines; tests/entry_points/test_training.py runs torchrun with 2 CPU '
                   'processes',
    r'^python tools/benchmark\.py': 'a benchmark of minutes; tests/project/test_benchmark.py runs a tiny row',
    r'--h36m-size': 'Human3.6M at its real size: a minute and 1.6 GB of memory, 0.9 GB on disk; '
                    'tests/synthetic/test_synthetic.py writes a small plan the same way',
    r'^python tools/(gpu_table|original_side_by_side)\.py': 'needs a GPU and the original code; '
                                                           'tests/project/test_gpu_table.py runs both on the CPU '
                                                           'with tiny rows and a stand-in of the original',
    r'^octave-cli ': 'needs GNU Octave, absent here; tests/evaluation/test_mpi_inf_3dhp_scoring.py checks the same '
                     'numbers',
    r'^venv-detector/': "the optional MediaPipe detector's own environment (numpy < 2) is not set up here; "
                        'tests/data/test_pose_detector.py runs in it',
    r'^venv-bpy/': "Blender's own environment (bpy, Python 3.11, about 1 GB) is not set up here; "
                   'tests/run/test_bvh_blender.py runs in it',
}
TINY_DATA = dict(seed=3, frames=40, takes=1)
ANNOTATIONS = 'path/to/mpi_inf_3dhp_test_set'      # the READMEs' placeholders, made real in the checkout
H36M_SOURCE, H36M_ARCHIVE, MPI_TRAIN_RELEASE = 'path/to/Human3.6M', 'path/to/h36m.zip', 'path/to/mpi_inf_3dhp'
TIMEOUT_S = 120


@dataclass(frozen=True)
class ReadmeItem:
    """One command line, or one Python snippet (a code block), of a README."""
    source: str           # 'README.md:42'
    text: str
    is_command: bool


def readme_files(readmes=READMES) -> list:
    """The Markdown files of ``readmes`` (names relative to the repository, or absolute; a name
    with ``*`` stands for the files it matches, in name order)."""
    names = []
    for pattern in map(str, readmes):
        if '*' in pattern:
            names += [match.relative_to(REPO_ROOT).as_posix() for match in sorted(REPO_ROOT.glob(pattern))]
        else:
            names.append(pattern)
    return names


def readme_items(readmes=READMES) -> list:
    """Commands and Python snippets of the READMEs, in reading order."""
    items = []
    for name in readme_files(readmes):
        lines = (REPO_ROOT / name).read_text().splitlines()      # an absolute name stays as it is
        block, start = [], 0
        for number, line in enumerate(lines + [''], start=1):
            match = CODE_LINE.match(line)
            if match and Path(match.group(2).split()[0]).name in PROGRAMS:       # venv/bin/python too
                items.append(ReadmeItem(f'{name}:{number}', match.group(2), True))
            elif match:
                block, start = block + [line], start or number
                continue
            elif not line.strip() and block:
                block.append('')
                continue
            if any(re.match(r'\s*(from|import) ', code) for code in block):
                indent = min(len(c) - len(c.lstrip()) for c in block if c.strip())
                items.append(ReadmeItem(f'{name}:{start}', '\n'.join(c[indent:] for c in block).strip() + '\n', False))
            block, start = [], 0
    return items


def _skip_reason(command: str):
    return next((reason for pattern, reason in SKIPPED.items() if re.search(pattern, command)), None)


def _set_flags(argv: list, flags: dict) -> list:
    """argv with each flag set to its value (replaced when present, appended otherwise)."""
    argv = list(argv)
    for flag, value in flags.items():
        if flag in argv:
            if value is not None:
                argv[argv.index(flag) + 1] = value
        else:
            argv += [flag] if value is None else [flag, value]
    return argv


def _shrunk_entry_point(argv: list) -> list:
    script = argv[1]
    flags = {**SHRINK, **SHRINK_DATASET[script], **(SHRINK_RENDER if '--render' in argv else {})}
    if '-gpu' in argv:
        flags.update(CPU)
    return _set_flags(argv, flags)


def _synthetic(argv: list) -> list:
    return _set_flags(argv, {'--frames': str(TINY_DATA['frames']), '--takes': str(TINY_DATA['takes']),
                             '--seed': str(TINY_DATA['seed'])})


def _as_written(argv: list) -> list:
    return argv


# Command form -> how to shrink it (argv in, argv out). The first matching form applies.
RUNNERS = {
    r'^python (main|main_3dhp)\.py ': _shrunk_entry_point,
    r'^python -m common\.synthetic ': _synthetic,
    r'^python -m common\.\w+ ': _as_written,
    r'^python 3dhp_test/score\.py ': _as_written,
}


def command_runner(command: str):
    """(argv -> argv) for a known runnable form, else None."""
    return next((runner for pattern, runner in RUNNERS.items() if re.search(pattern, command)), None)


def unknown_commands(items) -> list:
    """'source: command' of every command that is neither runnable nor skipped with a reason."""
    return [f'{item.source}: {item.text}' for item in items
            if item.is_command and _skip_reason(item.text) is None and command_runner(item.text) is None]


def test_every_readme_command_has_a_known_form():
    items = readme_items()
    assert sum(item.is_command for item in items) >= 8, items
    unknown = unknown_commands(items)
    assert not unknown, ('README commands of an unknown form; teach tests/entry_points/test_readme_commands.py to run '
                         'them (RUNNERS) or say why not (SKIPPED):\n' + '\n'.join(unknown))


def test_readme_parser_finds_commands_and_snippets(tmp_path):
    items = readme_items()
    texts = [item.text for item in items]
    assert 'python main.py -k cpn_ft_h36m_dbb -c checkpoint/model_h36m -gpu 0,1 --nolog' in texts
    assert any(not item.is_command and 'load_official_model' in item.text for item in items)
    (tmp_path / 'NEW.md').write_text('Intro\n\n    python tools/newtool.py --in x\n    python main.py -e 2\n\n'
                                     '1. Step:\n\n       import numpy as np\n       print(np.pi)\n\n   text\n')
    new = readme_items([tmp_path / 'NEW.md'])
    assert [(i.source.split('/')[-1], i.is_command) for i in new] == [('NEW.md:3', True), ('NEW.md:4', True),
                                                                      ('NEW.md:8', False)]
    assert new[2].text == 'import numpy as np\nprint(np.pi)\n'
    assert unknown_commands(new) == [f'{new[0].source}: python tools/newtool.py --in x']
    assert _set_flags(['python', 'main.py', '-e', '7', '-gpu', '0,1'], {'-e': '1', '--x': None, '-gpu': ''}) == \
        ['python', 'main.py', '-e', '1', '-gpu', '', '--x']


def _write_fixtures(root: Path):
    """What a newcomer brings besides the synthetic set: the official checkpoints the README
    evaluates (tiny, in the reference's layout), a video with its detector's keypoints, the
    official MPI-INF-3DHP test annotations (of the synthetic test sequences), and the official
    Human3.6M (both releases) and MPI-INF-3DHP training releases that ``prepare`` reads."""
    from common.model.clip_text import TEXT_TOWERS
    from common.model.build import ModelConfig, build_model
    from common.model.official_checkpoint import LAYOUT_SKELETONS, official_state_dict
    for layout, folder in (('h36m', 'model_h36m'), ('mpi_inf_3dhp', 'model_3dhp')):
        config = ModelConfig(layout=layout, num_frames=int(SHRINK['-f']), width=int(SHRINK['-cs']),
                             depth=int(SHRINK['-dep']), text_tower=TEXT_TOWERS[SHRINK['--text-tower']])
        mirror = LAYOUT_SKELETONS[layout].mirror_permutation()
        path = root / 'checkpoint' / folder / 'best_epoch_20_10.bin'
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({'epoch': 20, 'model_pos': official_state_dict(build_model(config, mirror, mirror))}, path)
    with np.load(root / 'data' / 'data_2d_h36m_gt.npz', allow_pickle=True) as f:
        walk = f['positions_2d'].item()['S9']['Walking'][0]             # pixels of a 1000 x 1002 camera
    coco = in_format(walk.astype(np.float64), COCO_NAMES)
    (root / 'results.json').write_text(json.dumps(detector_results(coco, range(len(coco)))))
    with Mp4Writer(root / 'dance.mp4', fps=50) as video:
        for _ in range(len(walk)):
            video.write(np.zeros((1002, 1000, 3), np.uint8))
    write_official_annotations(root / 'data' / 'data_test_3dhp_ori.npz', root / ANNOTATIONS)
    with np.load(root / 'data' / 'data_3d_h36m.npz', allow_pickle=True) as f:
        release = h36m_content(base=f['positions_3d'].item())
    write_h36m_source(root / H36M_SOURCE, release)
    write_h36m_archive(root / H36M_ARCHIVE, release)
    write_mpi_train_release(root / MPI_TRAIN_RELEASE, frames=TINY_DATA['frames'])


@pytest.fixture(scope='module')
def checkout(tmp_path_factory):
    """A folder laid out like the repository after the README's set-up, the code linked in."""
    from common.synthetic import writer as synthetic
    root = tmp_path_factory.mktemp('readme_checkout')
    for entry in REPO_ROOT.iterdir():
        if entry.name not in ('data', 'checkpoint') and not entry.name.startswith('.'):
            (root / entry.name).symlink_to(entry)
    synthetic.generate(root / 'data', **TINY_DATA)
    _write_fixtures(root)
    return root


def _run(argv: list, cwd: Path):
    env = {k: v for k, v in os.environ.items() if k not in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE')}
    env.update(OMP_NUM_THREADS='1', PYTHONPATH=str(REPO_ROOT), MPLBACKEND='Agg')
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)


def test_every_readme_command_runs_literally_shrunk(checkout):
    ran, failures = [], []
    for item in readme_items():
        if item.is_command:
            runner = command_runner(item.text)
            if _skip_reason(item.text) or runner is None:
                continue
            argv = runner(shlex.split(item.text, comments=True))
            argv[0] = sys.executable
        elif PLACEHOLDER.search(item.text):
            continue                       # the user's own data; _write_fixtures brings it
        else:
            argv = [sys.executable, '-c', item.text]
        start = time.perf_counter()
        result = _run(argv, checkout)
        ran.append(f'{item.source} {time.perf_counter() - start:.1f} s')
        if result.returncode != 0:
            failures.append(f'{item.source}: {shlex.join(argv[1:])}\n  exit {result.returncode}: '
                            f'{(result.stderr or result.stdout).strip()[-1500:]}')
    print('\n'.join(ran))
    assert not failures, '\n'.join(failures)
    assert len(ran) >= 7, ran
    # Bare output names land in the -c folder, not in the working folder.
    assert (checkout / 'checkpoint' / 'model_h36m' / 's9_walking.gif').is_file()
    assert not list(checkout.glob('*.gif')) and not list(checkout.glob('*.npy'))

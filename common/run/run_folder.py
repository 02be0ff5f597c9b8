"""The ``-c`` folder of a training run: one run per folder, never mixed.

A new training run (no ``-r``) refuses a folder that already holds checkpoints of an earlier run
(``last_epoch.bin``, ``best_epoch.bin``, ``epoch_N.bin``): the user continues that run with
``-r last_epoch.bin`` or starts over with ``--overwrite``, which first deletes the earlier run's
files of ours (those checkpoints, their evaluation tables, the 3DHP exports and score tables,
``training_curves.png``, the TensorBoard event files) and nothing else.
"""
import re
from pathlib import Path

from common.core.errors import UserError
from common.run.training import BEST_CHECKPOINT, LAST_CHECKPOINT

RUN_STEMS = rf'({re.escape(Path(LAST_CHECKPOINT).stem)}|{re.escape(Path(BEST_CHECKPOINT).stem)}|epoch_\d+)'
CHECKPOINT_NAME = re.compile(RUN_STEMS + r'\.bin')
# Files an evaluation of those checkpoints writes (report.result_file_stem; main_3dhp's exports and
# the official scorer's tables), and the training curves.
RESULT_NAMES = [
    re.compile(RUN_STEMS + r'_H\d+_K\d+(_[\w.,+=-]*)?\.(csv|json)'),
    re.compile(r'inference_data_[PJ]_(Agg|Best)\.mat'),
    re.compile(r'mpii_3dhp_evaluation_(sequencewise|activitywise)_\w+_t\d+\.csv'),
    re.compile(r'training_curves\.png'),
]
TENSORBOARD_FOLDER = 'tensorboard'
TENSORBOARD_EVENTS = re.compile(r'events\.out\.tfevents\..+')


def earlier_checkpoints(folder) -> list:
    """Our checkpoints in ``folder`` (sorted paths)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if CHECKPOINT_NAME.fullmatch(p.name) and p.is_file())


def run_files(folder) -> list:
    """Every file of ours a training run and its evaluations leave in ``folder``."""
    folder = Path(folder)
    files = earlier_checkpoints(folder)
    files += sorted(p for p in folder.iterdir() if p.is_file() and any(r.fullmatch(p.name) for r in RESULT_NAMES))
    events = folder / TENSORBOARD_FOLDER
    if events.is_dir():
        files += sorted(p for p in events.iterdir() if p.is_file() and TENSORBOARD_EVENTS.fullmatch(p.name))
    return files


def refuse_used_folder(folder, resuming: bool, overwrite: bool) -> list:
    """For a new run (not ``resuming``): the earlier run's checkpoints in ``folder``, to delete with
    ``delete_earlier_run`` when ``overwrite``; without it, they are a ``UserError`` naming them and
    the two ways forward, raised before anything in the folder changes."""
    found = [] if resuming else earlier_checkpoints(folder)
    if found and not overwrite:
        raise UserError(f'-c {folder} already holds checkpoints of an earlier run ({", ".join(p.name for p in found)}); '
                        f'continue that run with -r {LAST_CHECKPOINT}, or start over with --overwrite (deletes its '
                        'checkpoints and result files), or choose another -c')
    return found


def delete_earlier_run(folder) -> list:
    """Delete the files of ours an earlier run left in ``folder`` (``run_files``); returns them."""
    removed = run_files(folder)
    for path in removed:
        path.unlink()
    return removed

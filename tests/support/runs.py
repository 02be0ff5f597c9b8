"""The repository root, the flags of tiny end-to-end runs of the entry points (seconds on 2 cores), and
a command run in-process."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

TINY_DATA_FRAMES = 40
# A tiny model and data selection for end-to-end runs of the entry points.
TINY_RUN_FLAGS = ['-gpu', '', '-f', '9', '-b', '4', '-cs', '32', '-dep', '2', '--text-tower', 'tiny',
                  '--no-progress', '--val-batch-size', '8', '--threads', '1']
# main.py's data selection on the tiny synthetic set: one training and one test subject, two actions.
DATA_FLAGS = ['-k', 'synthetic_det', '-str', 'S1', '-ste', 'S9', '-a', 'Walking,Eating']
# Sampling of the custom-video runs: few hypotheses and steps, on the CPU.
SAMPLING = ['-num_proposals', '3', '-sampling_timesteps', '2', '-b', '2', '--no-progress', '-gpu', '']


def run_command(capsys, main, argv: list):
    """``main(argv)`` of a command line run in-process: (exit code, stdout, stderr); 0 when it returns."""
    try:
        main([str(arg) for arg in argv])
        code = 0
    except SystemExit as ended:
        code = ended.code
    out, err = capsys.readouterr()
    return code, out, err

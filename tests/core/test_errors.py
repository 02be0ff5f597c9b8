"""Entry points' one-line endings: a UserError exits 2, Ctrl-C exits 130 and SIGTERM 143, none with
a traceback, also while the entry point's modules are still being imported."""
import subprocess
import sys

import pytest

from common.core.errors import (EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USER_ERROR, Interrupted, Terminated, UserError,
                                exit_on_user_error, is_secondary_rank)
from support.runs import REPO_ROOT


@pytest.mark.parametrize('raised, code, err', [
    (UserError('-f 0: expected a positive integer'), EXIT_USER_ERROR, 'error: -f 0: expected a positive integer\n'),
    (KeyboardInterrupt(), EXIT_INTERRUPTED, 'interrupted (Ctrl-C); no file is left half-written\n'),
    (Terminated(), EXIT_TERMINATED, 'interrupted (SIGTERM); no file is left half-written\n'),
    (Interrupted('interrupted at epoch 2 step 3; ...'), EXIT_INTERRUPTED, 'interrupted at epoch 2 step 3; ...\n'),
    (Interrupted('interrupted at epoch 2 step 3; ...', EXIT_TERMINATED), EXIT_TERMINATED,
     'interrupted at epoch 2 step 3; ...\n'),
    (Interrupted(''), EXIT_INTERRUPTED, ''),            # torchrun's other ranks: rank 0 says it
])
def test_one_line_and_the_exit_status(capsys, raised, code, err):
    with pytest.raises(SystemExit) as exit_info:
        with exit_on_user_error():
            raise raised
    assert exit_info.value.code == code
    assert capsys.readouterr() == ('', err)


def test_other_exceptions_keep_their_traceback():
    with pytest.raises(ZeroDivisionError):
        with exit_on_user_error():
            1 / 0


def test_only_torchrun_processes_besides_rank_0_leave_the_saying_to_it():
    assert is_secondary_rank({'WORLD_SIZE': '2', 'RANK': '1'})
    assert not is_secondary_rank({'WORLD_SIZE': '2', 'RANK': '0'})
    assert not is_secondary_rank({'RANK': '1'}) and not is_secondary_rank({})     # one process: it says all


# Ctrl-C as numpy is first imported: every entry point imports it (main.py through torch).
CTRL_C_ON_IMPORT = '''
import runpy, sys
class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == 'numpy':
            raise KeyboardInterrupt
sys.meta_path.insert(0, CtrlC())
kind, target = sys.argv[1:3]
sys.argv = [target, '--help']
runpy.run_path(target, run_name='__main__') if kind == 'script' else runpy.run_module(target, run_name='__main__',
                                                                                       alter_sys=True)
'''


@pytest.mark.parametrize('kind, target', [('script', 'main.py'), ('script', 'main_3dhp.py'),
                                          ('script', '3dhp_test/score.py'), ('module', 'common.demo'),
                                          ('module', 'common.keypoints'), ('module', 'common.mpi_inf_3dhp'),
                                          ('module', 'common.h36m'), ('module', 'common.synthetic')])
def test_ctrl_c_while_the_modules_import_is_one_line(kind, target):
    """It was a 60-line traceback: Ctrl-C right after starting a command lands in its imports."""
    ended = subprocess.run([sys.executable, '-c', CTRL_C_ON_IMPORT, kind, target], cwd=REPO_ROOT, capture_output=True,
                           text=True, env={'PATH': '/usr/bin:/bin', 'PYTHONPATH': str(REPO_ROOT)}, timeout=60)
    assert ended.returncode == EXIT_INTERRUPTED
    assert ended.stderr == 'interrupted (Ctrl-C); no file is left half-written\n'

"""Entry points' one-line endings: a UserError exits 2, Ctrl-C exits 130, neither with a traceback."""
import pytest

from common.core.errors import EXIT_INTERRUPTED, EXIT_USER_ERROR, Interrupted, UserError, exit_on_user_error


@pytest.mark.parametrize('raised, code, err', [
    (UserError('-f 0: expected a positive integer'), EXIT_USER_ERROR, 'error: -f 0: expected a positive integer\n'),
    (KeyboardInterrupt(), EXIT_INTERRUPTED, 'interrupted (Ctrl-C); no file is left half-written\n'),
    (Interrupted('interrupted at epoch 2 step 3; ...'), EXIT_INTERRUPTED, 'interrupted at epoch 2 step 3; ...\n'),
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

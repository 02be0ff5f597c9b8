"""Project-level promises: the README's test command is what CI runs."""
import re

from support.runs import REPO_ROOT


def test_ci_runs_the_readme_test_command():
    readme = (REPO_ROOT / 'README.md').read_text()
    ci = (REPO_ROOT / '.ci' / 'run').read_text()
    commands = re.findall(r'^    (python -m pip install .*pytest.*)$', readme, flags=re.M)
    assert len(commands) == 1, commands
    assert commands[0] in ci.splitlines()


def test_requirements_pin_torch_and_avoid_torchvision():
    lines = [l.strip() for l in (REPO_ROOT / 'requirements.txt').read_text().splitlines()
             if l.strip() and not l.startswith('#')]
    assert 'torch==2.13.0' in lines
    assert not any(re.match(r'(timm|torchvision)\b', l) for l in lines)

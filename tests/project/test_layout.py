"""The layout of ``common/``: sub-packages by concern, each importing only from the ones below it; above
them the ``python -m`` commands (the modules directly in ``common/`` and a layer's ``__main__.py``), the only
modules with a command line (``main()`` under ``if __name__ == '__main__'``, an argparse parser; besides them
only ``common/run/arguments.py``, the flags of main.py and main_3dhp.py, builds a parser), which nothing in
``common/`` imports, nor main.py and main_3dhp.py. And of ``tests/``, which mirrors it: ``tests/<layer>/`` guards
``common/<layer>/``, ``tests/entry_points/`` and ``tests/project/`` hold the end-to-end runs and the project's
promises, ``tests/support/`` the helpers."""
import ast
import re

import pytest

from support.runs import REPO_ROOT

COMMON = REPO_ROOT / 'common'
TESTS = REPO_ROOT / 'tests'
# Lowest first: a module may import from its own package and the packages before it.
LAYERS = ('core', 'data', 'synthetic', 'model', 'evaluation', 'run')
# The scripts above common/ (main.py, main_3dhp.py): they import common, never the other way round.
SCRIPTS = tuple(sorted(path.stem for path in REPO_ROOT.glob('*.py')))
# The one layer module that builds an argparse parser: the flags of main.py and main_3dhp.py.
PARSER_MODULES = ('run/arguments.py',)
# Test folders besides the layers': end-to-end runs of the entry points and README commands; project-level promises.
TEST_FOLDERS_APART = ('entry_points', 'project')
# Files that may name test files by path: the documentation, CI, requirements and the code.
NAMING_TEST_PATHS = ('*.md', 'docs/*.md', 'data/*.md', '3dhp_test/*.md', 'requirements*.txt', '.ci/run', '*.py',
                     'common/**/*.py', 'tools/*.py', '3dhp_test/*.py', 'tests/**/*.py')
TEST_PATH = re.compile(r'\btests/[\w/]+\.py\b')


def _imported_modules(path):
    """The modules ``path`` imports: 'common.data.skeleton' for ``from common.data.skeleton import X`` or
    ``import common.data.skeleton``, 'common.X' for ``from common import X``, 'main' for ``import main``;
    '(relative import)' for ``from . import X``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            found.add('(relative import)')
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.update([f'common.{a.name}' for a in node.names] if node.module == 'common' else [node.module])
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def _is_command(module: str) -> bool:
    """'common.demo', 'common.synthetic.__main__': a ``python -m`` command, no layer module."""
    parts = module.split('.')
    return parts[0] == 'common' and ((len(parts) > 1 and parts[1] not in LAYERS) or '__main__' in parts)


def forbidden_imports(path, allowed_layers, scripts=SCRIPTS):
    """' -> module' for every import of ``path`` that reaches a layer not in ``allowed_layers``, the
    top-level ``common`` itself, a command or a script (main, main_3dhp)."""
    found = []
    for module in _imported_modules(path):
        parts = module.split('.')
        if module == '(relative import)' or parts[0] in scripts:
            found.append(f' -> {module}')
        elif parts[0] == 'common' and (_is_command(module) or len(parts) == 1 or parts[1] not in allowed_layers):
            found.append(f' -> common.{parts[1] if len(parts) > 1 else "<top level>"}'
                         + (f' (the command {module})' if '__main__' in parts else ''))
    return found


def upward_imports(package_dir, scripts=SCRIPTS):
    """'module -> package' for every import of a package above (or outside) the module's own layer, of a
    command or of a script."""
    allowed = LAYERS[:LAYERS.index(package_dir.name) + 1]
    return sorted(f'{path.relative_to(package_dir.parent)}{found}' for path in package_dir.rglob('*.py')
                  for found in forbidden_imports(path, allowed, scripts))


def command_modules(common_dir):
    """The ``python -m`` commands: the modules directly in ``common_dir`` and the layers' ``__main__.py``."""
    return sorted([path for path in common_dir.glob('*.py') if path.name != '__init__.py']
                  + list(common_dir.glob('*/__main__.py')))


def _runs_as_main(node) -> bool:
    """``if __name__ == '__main__':`` (either side)."""
    if not (isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and len(node.test.comparators) == 1):
        return False
    sides = {ast.dump(side) for side in (node.test.left, node.test.comparators[0])}
    return sides == {ast.dump(ast.Name('__name__', ast.Load())), ast.dump(ast.Constant('__main__'))}


def _builds_a_parser(node) -> bool:
    """A call of ``argparse.ArgumentParser`` (or of ``ArgumentParser`` imported by name)."""
    return isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Attribute) and node.func.attr == 'ArgumentParser')
        or (isinstance(node.func, ast.Name) and node.func.id == 'ArgumentParser'))


def command_line_code(path) -> list:
    """What makes ``path`` a command: 'if __name__ == "__main__" (line N)', 'argparse.ArgumentParser (line N)'."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if _runs_as_main(node):
            found.append(f'if __name__ == "__main__" (line {node.lineno})')
        elif _builds_a_parser(node):
            found.append(f'argparse.ArgumentParser (line {node.lineno})')
    return found


def command_line_code_in_layers(common_dir, parser_modules=PARSER_MODULES) -> list:
    """'module: what' for every ``if __name__ == '__main__'`` and argparse parser in a layer module that is
    no command (a layer's ``__main__.py`` is one); ``parser_modules`` may build a parser."""
    commands = set(command_modules(common_dir))
    return sorted(f'{path.relative_to(common_dir).as_posix()}: {found}'
                  for layer in LAYERS for path in (common_dir / layer).rglob('*.py') if path not in commands
                  for found in command_line_code(path)
                  if not (found.startswith('argparse') and path.relative_to(common_dir).as_posix() in parser_modules))


def command_flaws(path) -> list:
    """What a command module lacks: a module-level ``main()``, and ``if __name__ == '__main__'`` calling it."""
    tree = ast.parse(path.read_text(), str(path))
    flaws = []
    if not any(isinstance(node, ast.FunctionDef) and node.name == 'main' for node in tree.body):
        flaws.append('no def main()')
    guards = [node for node in tree.body if _runs_as_main(node)]
    if not any(isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == 'main'
               for guard in guards for call in ast.walk(guard)):
        flaws.append("no if __name__ == '__main__' that calls main()")
    return flaws


def command_imports(common_dir, scripts=SCRIPTS) -> list:
    """'command -> module' for every import of a command module that reaches a script or another command."""
    return sorted(f'{path.relative_to(common_dir).as_posix()}{found}' for path in command_modules(common_dir)
                  for found in forbidden_imports(path, LAYERS, scripts))


def test_every_folder_of_common_is_a_layer():
    folders = sorted(p.name for p in COMMON.iterdir() if p.is_dir() and p.name != '__pycache__')
    assert folders == sorted(LAYERS)


@pytest.mark.parametrize('layer', LAYERS)
def test_layer_says_what_it_owns_and_may_import(layer):
    docstring = ast.get_docstring(ast.parse((COMMON / layer / '__init__.py').read_text()))
    lines = [l for l in (docstring or '').splitlines() if l.strip()]
    assert 2 <= len(lines) <= 4, f'common/{layer}/__init__.py: expected a docstring of 2-3 lines, got {lines}'
    allowed = LAYERS[:LAYERS.index(layer)]
    assert all(f'common.{lower}' in docstring for lower in allowed), docstring


@pytest.mark.parametrize('layer', LAYERS)
def test_layer_imports_only_downwards(layer):
    assert upward_imports(COMMON / layer) == []


def test_an_upward_import_is_found(tmp_path):
    package = tmp_path / 'data'
    package.mkdir()
    (package / 'loader.py').write_text('from common.core.errors import UserError\n'
                                       'from common.model.build import ModelConfig\n')
    (package / 'cli.py').write_text('from common import demo\nimport common.run.training as training\n'
                                    'from common.data import skeleton\n')
    (package / 'flow.py').write_text('import main\nfrom main_3dhp import load_data\nimport common\n'
                                     'from common.keypoints import main as convert\n')
    assert upward_imports(package, scripts=('main', 'main_3dhp')) == [
        'data/cli.py -> common.demo', 'data/cli.py -> common.run', 'data/flow.py -> common.<top level>',
        'data/flow.py -> common.keypoints', 'data/flow.py -> main', 'data/flow.py -> main_3dhp',
        'data/loader.py -> common.model']
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'steps.py').write_text('from common.synthetic import writer\nfrom common.synthetic.__main__ import main\n')
    assert upward_imports(run) == ['run/steps.py -> common.synthetic (the command common.synthetic.__main__)']


def test_the_commands_are_the_top_level_modules_and_the_layers_main():
    commands = [path.relative_to(COMMON).as_posix() for path in command_modules(COMMON)]
    assert commands == ['demo.py', 'h36m.py', 'keypoints.py', 'mpi_inf_3dhp.py', 'synthetic/__main__.py']
    for path in command_modules(COMMON):
        assert command_flaws(path) == [], path
        assert any(found.startswith('argparse') for found in command_line_code(path)), path


def test_only_commands_have_a_command_line():
    assert command_line_code_in_layers(COMMON) == []


def test_no_command_imports_a_script_or_another_command():
    assert command_imports(COMMON) == []


def test_a_command_line_outside_the_commands_and_a_broken_command_are_found(tmp_path):
    common = tmp_path / 'common'
    for layer in LAYERS:
        (common / layer).mkdir(parents=True)
    (common / 'data' / 'tool.py').write_text('import argparse\n\ndef main():\n    argparse.ArgumentParser()\n\n\n'
                                             "if __name__ == '__main__':\n    main()\n")
    (common / 'run' / 'arguments.py').write_text('from argparse import ArgumentParser\nPARSER = ArgumentParser()\n')
    (common / 'run' / 'flags.py').write_text('from argparse import ArgumentParser\nPARSER = ArgumentParser()\n')
    (common / 'model' / '__main__.py').write_text("import argparse\nif '__main__' == __name__:\n    pass\n")
    (common / 'shim.py').write_text("import runpy\nif __name__ == '__main__':\n"
                                    "    runpy.run_module('common.data.tool', run_name='__main__')\n")
    (common / 'demo.py').write_text("import main\nfrom common import shim\n\n\ndef main():\n    pass\n\n\n"
                                    "if __name__ == '__main__':\n    main()\n")
    assert command_line_code_in_layers(common) == [
        'data/tool.py: argparse.ArgumentParser (line 4)', 'data/tool.py: if __name__ == "__main__" (line 7)',
        'run/flags.py: argparse.ArgumentParser (line 2)']
    assert [path.relative_to(common).as_posix() for path in command_modules(common)] == [
        'demo.py', 'model/__main__.py', 'shim.py']
    assert command_flaws(common / 'demo.py') == []
    assert command_flaws(common / 'model' / '__main__.py') == ['no def main()',
                                                              "no if __name__ == '__main__' that calls main()"]
    assert command_flaws(common / 'shim.py') == ['no def main()', "no if __name__ == '__main__' that calls main()"]
    assert command_imports(common, scripts=('main',)) == ['demo.py -> common.shim', 'demo.py -> main']


def misplaced_test_files(tests_dir):
    """Test files directly in ``tests_dir`` or in a folder that is no layer of common/ and not apart."""
    allowed = {(layer,) for layer in LAYERS + TEST_FOLDERS_APART}
    return sorted(path.relative_to(tests_dir).as_posix() for path in tests_dir.rglob('test_*.py')
                  if path.relative_to(tests_dir).parent.parts not in allowed)


def imports_of_test_files(tests_dir):
    """'file -> module' for every import, anywhere under ``tests_dir``, of a test file or of conftest
    (helpers shared by test files live in tests/support/)."""
    test_modules = {path.stem for path in tests_dir.rglob('test_*.py')} | {'conftest'}
    found = []
    for path in sorted(tests_dir.rglob('*.py')):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            found += [f'{path.relative_to(tests_dir).as_posix()} -> {name}' for name in names
                      if name.split('.')[0] in test_modules]
    return found


def test_every_test_file_sits_in_the_folder_of_a_layer_or_apart():
    assert misplaced_test_files(TESTS) == []
    assert sorted({path.parent.name for path in TESTS.rglob('test_*.py')}) == sorted(LAYERS + TEST_FOLDERS_APART)


def test_test_file_names_are_unique():
    """pytest's default import mode imports a test file by its name alone (the folders are no packages)."""
    names = [path.name for path in TESTS.rglob('test_*.py')]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_no_test_file_imports_another_test_file():
    assert imports_of_test_files(TESTS) == []


def test_misplaced_files_and_imports_of_test_files_are_found(tmp_path):
    for name in ('test_top.py', 'data/test_loader.py', 'utils/test_misc.py', 'run/extra/test_deep.py',
                 'project/test_promise.py', 'support/shared.py', 'conftest.py'):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text('import numpy\n')
    (tmp_path / 'data' / 'test_loader.py').write_text('from test_top import HELPER\nfrom support.shared import X\n')
    (tmp_path / 'support' / 'shared.py').write_text('def f():\n    import test_misc\n')
    (tmp_path / 'project' / 'test_promise.py').write_text('from conftest import REPO_ROOT\n')
    assert misplaced_test_files(tmp_path) == ['run/extra/test_deep.py', 'test_top.py', 'utils/test_misc.py']
    assert imports_of_test_files(tmp_path) == ['data/test_loader.py -> test_top', 'project/test_promise.py -> conftest',
                                           'support/shared.py -> test_misc']


def test_test_paths_named_in_the_docs_and_code_exist():
    named = {(path.relative_to(REPO_ROOT).as_posix(), match) for pattern in NAMING_TEST_PATHS
             for path in REPO_ROOT.glob(pattern) for match in TEST_PATH.findall(path.read_text())}
    assert any(match == 'tests/project/test_layout.py' for _, match in named)     # README's code layout
    assert sorted(f'{source}: {match}' for source, match in named if not (REPO_ROOT / match).is_file()) == []

"""The layout of ``common/``: sub-packages by concern, each importing only from the ones below it;
and of ``tests/``, which mirrors it: ``tests/<layer>/`` guards ``common/<layer>/``, ``tests/entry_points/``
and ``tests/project/`` hold the end-to-end runs and the project's promises, ``tests/support/`` the helpers."""
import ast
import re

import pytest

from support.runs import REPO_ROOT

COMMON = REPO_ROOT / 'common'
TESTS = REPO_ROOT / 'tests'
# Lowest first: a module may import from its own package and the packages before it.
LAYERS = ('core', 'data', 'synthetic', 'model', 'evaluation', 'run')
# Test folders besides the layers': end-to-end runs of the entry points and README commands; project-level promises.
TEST_FOLDERS_APART = ('entry_points', 'project')
# Files that may name test files by path: the documentation, CI, requirements and the code.
NAMING_TEST_PATHS = ('*.md', 'docs/*.md', 'data/*.md', '3dhp_test/*.md', 'requirements*.txt', '.ci/run', '*.py',
                     'common/**/*.py', 'tools/*.py', '3dhp_test/*.py', 'tests/**/*.py')
TEST_PATH = re.compile(r'\btests/[\w/]+\.py\b')


def _imported_packages(path):
    """The sub-packages of common that ``path`` imports from (``from common.X...``, ``import common.X``,
    ``from common import X``); '' for the top-level ``common`` itself."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level:
            found.add('(relative import)')
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
        if isinstance(node, ast.ImportFrom) and node.module == 'common':
            names = [f'common.{a.name}' for a in node.names]
        found.update(n.split('.')[1] if '.' in n else '' for n in names if n.split('.')[0] == 'common')
    return found


def upward_imports(package_dir):
    """'module -> package' for every import of a package above (or outside) the module's own layer."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    own = rank[package_dir.name]
    return sorted(f'{path.relative_to(package_dir.parent)} -> common.{imported or "<top level>"}'
                  for path in package_dir.rglob('*.py') for imported in _imported_packages(path)
                  if imported not in rank or rank[imported] > own)


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
    assert upward_imports(package) == ['data/cli.py -> common.demo', 'data/cli.py -> common.run',
                                       'data/loader.py -> common.model']


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

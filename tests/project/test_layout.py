"""The layout of ``common/``: sub-packages by concern, each importing only from the ones below it."""
import ast

import pytest

from support.runs import REPO_ROOT

COMMON = REPO_ROOT / 'common'
# Lowest first: a module may import from its own package and the packages before it.
LAYERS = ('core', 'data', 'synthetic', 'model', 'evaluation', 'run')
SHIM_MAX_LINES = 8     # the top-level modules only keep a README command ``python -m common.X`` working


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


def test_top_level_modules_are_entry_point_shims():
    for path in COMMON.glob('*.py'):
        if path.name == '__init__.py':
            continue
        text = path.read_text()
        assert len(text.splitlines()) <= SHIM_MAX_LINES and 'runpy.run_module' in text, path

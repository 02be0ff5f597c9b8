"""OpenAI's CLIP code as installed by ``clip-anytorch``, loaded file by file.

The ``clip`` package's ``__init__`` imports torchvision (for image transforms this project never
uses), so it is never imported. Instead ``clip_source_module('simple_tokenizer')`` and
``clip_source_module('model')`` execute those two files of the installed package on their own:
the tokenizer needs ftfy and regex, the model file torch and numpy. Our tokenizer and text tower
call that code, so their ids and layers are OpenAI's by construction.
"""
import importlib.util
import sys
from functools import lru_cache
from pathlib import Path

from common.core.errors import UserError

CLIP_DISTRIBUTION = 'clip-anytorch'
CLIP_PACKAGE = 'clip'
INSTALL_HINT = f'`python -m pip install --no-deps {CLIP_DISTRIBUTION}==2.6.0`'


def clip_package_dir() -> Path:
    """Folder of the installed ``clip`` package, located without running its ``__init__``."""
    spec = importlib.util.find_spec(CLIP_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f'the {CLIP_PACKAGE} package of {CLIP_DISTRIBUTION} is not installed: install it with {INSTALL_HINT}')
    return Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=None)
def clip_source_module(name: str):
    """Execute ``clip/<name>.py`` of the installed package as the standalone module
    ``common.model.openai_clip.<name>`` (registered in ``sys.modules``; loaded once per process)."""
    path = clip_package_dir() / f'{name}.py'
    if not path.is_file():
        raise UserError(f'{path} not found: the {CLIP_DISTRIBUTION} installation is incomplete; reinstall it with {INSTALL_HINT}')
    module_name = f'{__name__}.{name}'
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module

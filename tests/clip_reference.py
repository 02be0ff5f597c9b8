"""Load modules of the installed clip-anytorch by file path (never its package ``__init__``,
which imports torchvision), to compare our CLIP pieces with OpenAI's own code."""
import importlib.metadata
import importlib.util

import pytest


def load_clip_module(name: str):
    """Import ``clip/<name>.py`` of the clip-anytorch distribution as a standalone module."""
    try:
        path = importlib.metadata.distribution('clip-anytorch').locate_file(f'clip/{name}.py')
    except importlib.metadata.PackageNotFoundError:
        pytest.skip('clip-anytorch is not installed')
    spec = importlib.util.spec_from_file_location(f'openai_clip_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

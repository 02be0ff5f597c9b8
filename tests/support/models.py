"""Small model configurations shared by the network tests (narrow width, tiny CLIP-shaped tower),
and how their trained weights are compared."""
import warnings

from common.data.skeleton import H36M_17, MPI_INF_3DHP_17
from common.model.build import ModelConfig, build_model
from common.model.clip_text import TextTowerConfig

TINY_TOWER = TextTowerConfig(width=64, layers=2, heads=2, embed_dim=64)
WINDOW = 9                  # frames per clip of the tiny model


def tiny_config(**overrides) -> ModelConfig:
    settings = dict(num_frames=WINDOW, width=32, depth=2, heads=4, text_tower=TINY_TOWER)
    settings.update(overrides)
    return ModelConfig(**settings)


def build_tiny_model(**overrides):
    config = tiny_config(**overrides)
    skeleton = MPI_INF_3DHP_17 if config.layout == 'mpi_inf_3dhp' else H36M_17
    perm = skeleton.mirror_permutation()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # "CLIP weights not found": a random tower is intended here
        return build_model(config, perm, perm)


def without_key_biases(name, value):
    """Zero the attention key biases: softmax ignores a constant added to every score of a query,
    so their gradient is exactly zero in real arithmetic, and Adam's first step (about lr * g / |g|)
    turns the float noise of any summation order into a +-lr step. Every other weight must agree."""
    value = value.clone()
    if name.endswith('in_proj_bias') or name.endswith('qkv.bias'):
        width = value.shape[0] // 3
        value[width:2 * width] = 0
    elif name.endswith('prompt_attention.key.bias'):
        value.zero_()
    return value


def assert_same_updates(initial: dict, expected: dict, got: dict, rtol: float = 1e-3):
    """Two trainings from the same ``initial`` weights ({name: tensor}) moved every tensor alike:
    |change_got - change_expected| <= rtol |change_expected| (norms over the tensor, attention key
    biases zeroed). Norms, not elements: Adam moves an element with a near-zero gradient by about
    +-lr whatever its size, so float noise flips a few elements' steps (measured: 4e-5 relative
    on the tiny model), while other random draws (e.g. stochastic-depth masks) change most (0.4)."""
    assert expected.keys() == got.keys()
    worst = 0.0
    for name, start in initial.items():
        change_expected = without_key_biases(name, expected[name] - start)
        change_got = without_key_biases(name, got[name] - start)
        error = (change_got - change_expected).norm().item()
        assert error <= rtol * change_expected.norm().item(), \
            f'{name}: update differs by {error:.3g}, {rtol} x {change_expected.norm().item():.3g} allowed'
        if error > 0:
            worst = max(worst, error / change_expected.norm().item())
    print(f'largest relative update difference {worst:.2e}, largest weight difference '
          f'{max((got[n] - expected[n]).abs().max().item() for n in initial):.2e}')

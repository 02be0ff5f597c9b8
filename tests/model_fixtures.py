"""Small model configurations shared by the network tests (narrow width, tiny CLIP-shaped tower)."""
import warnings

from common.clip_text import TextTowerConfig
from common.model import ModelConfig, build_model
from common.skeleton import H36M_17, MPI_INF_3DHP_17

TINY_TOWER = TextTowerConfig(width=64, layers=2, heads=2, embed_dim=64)


def tiny_config(**overrides) -> ModelConfig:
    settings = dict(num_frames=9, width=32, depth=2, heads=4, text_tower=TINY_TOWER)
    settings.update(overrides)
    return ModelConfig(**settings)


def build_tiny_model(**overrides):
    config = tiny_config(**overrides)
    skeleton = MPI_INF_3DHP_17 if config.layout == 'mpi_inf_3dhp' else H36M_17
    perm = skeleton.mirror_permutation()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # "CLIP weights not found": a random tower is intended here
        return build_model(config, perm, perm)

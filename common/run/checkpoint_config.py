"""Our checkpoints carry their model configuration; the flags that would set it follow it.

``--evaluate``, ``-r`` and ``-d custom`` with one of our checkpoints take ``-f``, ``-cs``, ``-dep``,
``--drop-path``, ``-timestep``, ``-scale``, ``--learn-prompts``, ``--per-clip-prompts`` and
``--text-tower`` from the file.
A flag left at its default is set from it; a flag written on the command line with another value
is a ``UserError`` (``args.given``, see ``arguments.given_flags``, tells them apart).
"""
from common.core.errors import UserError
from common.model.build import ModelConfig
from common.model.clip_text import TEXT_TOWERS
from common.run.arguments import flag_names


# ModelConfig field -> the flag's destination in args (what model_config_from_args reads).
CONFIG_FLAGS = {'num_frames': 'number_of_frames', 'width': 'cs', 'depth': 'dep', 'drop_path': 'drop_path',
                'timesteps': 'timestep', 'scale': 'scale', 'learn_prompts': 'learn_prompts',
                'per_clip_prompts': 'per_clip_prompts', 'text_tower': 'text_tower'}
SWITCHES = ('learn_prompts', 'per_clip_prompts')     # shown in the line only when on (off: the reference)


def _flag_value(config: ModelConfig, field_name: str):
    value = getattr(config, field_name)
    if field_name == 'text_tower':
        return next((name for name, tower in TEXT_TOWERS.items() if tower == value), str(value))
    return value


def _flag_text(name: str, value) -> str:
    """How a setting reads on the command line: '-f 27', '--learn-prompts', 'no --learn-prompts'."""
    if isinstance(value, bool):
        return name if value else f'no {name}'
    return f'{name} {value:g}' if isinstance(value, float) else f'{name} {value}'


def adopt_checkpoint_config(args, config: ModelConfig, source) -> str:
    """Set the model flags of ``args`` to our checkpoint's configuration; a flag given explicitly
    with another value is a ``UserError``. Returns the one line that says so."""
    names = flag_names('h36m')
    for field_name, dest in CONFIG_FLAGS.items():
        value = _flag_value(config, field_name)
        if dest in args.given and getattr(args, dest) != value:
            raise UserError(f'{_flag_text(names[dest], getattr(args, dest))}: contradicts {source}, trained with '
                            f'{_flag_text(names[dest], value)}; drop the flag (our checkpoints carry their '
                            'configuration)')
        setattr(args, dest, value)
    shown = ' '.join(_flag_text(names[d], _flag_value(config, f)) for f, d in CONFIG_FLAGS.items()
                     if f not in SWITCHES or getattr(config, f))
    return f'Model configuration from {source} (flags not needed): {shown}'

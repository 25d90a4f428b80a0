"""T5 models: configs, the Flax module, parameter layouts and their logical axes."""

from prompt_tuning.models.config import CONFIGS, T5Config, config_from_params, get_config
from prompt_tuning.models.t5 import (
    T5,
    init_params,
    logical_axes,
    param_shapes,
    stack_layers,
    unstack_layers,
)

__all__ = [
    "CONFIGS",
    "T5",
    "T5Config",
    "config_from_params",
    "get_config",
    "init_params",
    "logical_axes",
    "param_shapes",
    "stack_layers",
    "unstack_layers",
]

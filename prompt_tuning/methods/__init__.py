"""The prompt-method family: plain prompts, prefix tuning, P-tuning, deep prompts.

Each method is a frozen dataclass (selectable in gin) with pure `init` and
`model_inputs`; see `base` for the protocol and the saved file format.
"""

from prompt_tuning.methods.base import (
    MODEL_INPUTS,
    InitContext,
    Method,
    ModelInputs,
    export,
    file_content,
    load_inputs,
)
from prompt_tuning.methods.deep_prompts import DeepPrompts
from prompt_tuning.methods.p_tuning import PTuning
from prompt_tuning.methods.prefix_tuning import PrefixTuning
from prompt_tuning.methods.prompt import PromptTuning

__all__ = [
    "MODEL_INPUTS",
    "DeepPrompts",
    "InitContext",
    "Method",
    "ModelInputs",
    "PTuning",
    "PrefixTuning",
    "PromptTuning",
    "export",
    "file_content",
    "load_inputs",
]

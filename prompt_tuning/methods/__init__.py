"""The prompt-method family: plain prompts, prefix tuning, P-tuning, deep prompts, multi-task prompts.

Each method is a frozen dataclass (selectable in gin) with pure `init` and
`model_inputs`; see `base` for the protocol and the saved file format.
"""

from prompt_tuning.methods.base import (
    MODEL_INPUTS,
    MULTI_TASK_ARRAYS,
    InitContext,
    Method,
    ModelInputs,
    export,
    file_content,
    load_inputs,
)
from prompt_tuning.methods.deep_prompts import DeepPrompts
from prompt_tuning.methods.multi_task import (
    TASK_INDEX,
    MultiTaskPrompts,
    bind_tasks,
    example_tasks,
    task_inputs,
)
from prompt_tuning.methods.p_tuning import PTuning
from prompt_tuning.methods.prefix_tuning import PrefixTuning
from prompt_tuning.methods.prompt import PromptTuning

__all__ = [
    "MODEL_INPUTS",
    "MULTI_TASK_ARRAYS",
    "TASK_INDEX",
    "DeepPrompts",
    "InitContext",
    "Method",
    "ModelInputs",
    "MultiTaskPrompts",
    "PTuning",
    "PrefixTuning",
    "PromptTuning",
    "bind_tasks",
    "example_tasks",
    "export",
    "file_content",
    "load_inputs",
    "task_inputs",
]

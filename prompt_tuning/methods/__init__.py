"""The prompt-method family: plain prompts, prefix tuning, P-tuning, deep prompts, multi-task
prompts, and the query-conditioned pools of continual learning (CODA-Prompt, L2P).

Each method is a frozen dataclass (selectable in gin) with pure `init` and
`model_inputs`; see `base` for the protocol and the saved file format.
"""

from prompt_tuning.methods.base import (
    CODA_ARRAYS,
    L2P_ARRAYS,
    MODEL_INPUTS,
    MULTI_TASK_ARRAYS,
    QUERY,
    InitContext,
    Method,
    ModelInputs,
    export,
    file_content,
    load_inputs,
)
from prompt_tuning.methods.coda_prompt import CodaPrompt
from prompt_tuning.methods.deep_prompts import DeepPrompts
from prompt_tuning.methods.l2p import L2PPrompt
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
from prompt_tuning.methods.query import add_query, is_query_file, penalty, pooled_query, resolve

__all__ = [
    "CODA_ARRAYS",
    "L2P_ARRAYS",
    "MODEL_INPUTS",
    "MULTI_TASK_ARRAYS",
    "QUERY",
    "TASK_INDEX",
    "CodaPrompt",
    "DeepPrompts",
    "InitContext",
    "L2PPrompt",
    "Method",
    "ModelInputs",
    "MultiTaskPrompts",
    "PTuning",
    "PrefixTuning",
    "PromptTuning",
    "add_query",
    "bind_tasks",
    "example_tasks",
    "export",
    "file_content",
    "is_query_file",
    "load_inputs",
    "penalty",
    "pooled_query",
    "resolve",
    "task_inputs",
]

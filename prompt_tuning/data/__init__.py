"""Task formats, data sources, metrics and the task registry.

  vocab                 t5_vocabulary(), output_features()
  readers / sources     original SuperGLUE / GLUE / MRQA files or TFDS, picked per run
  preprocessors         T5's text-to-text formats and the taskless / sentinel variants
  postprocessors        decoded text -> metric values
  metrics               official metric definitions (percent)
  registry              register_task / register_mixture, resolve_task_name, class_labels
  rank_classification   label_target_ids, rank_classify

The names below are importable from `prompt_tuning.data` directly. Submodules
load on first use, so `prompt_tuning.data.metrics` does not pull in TensorFlow.
Nothing here registers the shipped tasks: the entry points import
`prompt_tuning.tasks` for that, and `prompt_tuning.configurables` gives gin the
names `prompt_tuning.data.task_name` and `prompt_tuning.data.data_options`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "t5_vocabulary": "vocab",
    "output_features": "vocab",
    "register_task": "registry",
    "register_classification": "registry",
    "register_mixture": "registry",
    "resolve_task_name": "registry",
    "class_labels": "registry",
    "get_task_or_mixture": "registry",
    "registered_names": "registry",
    "UnknownTaskError": "registry",
    "OBJECTIVES": "registry",
    "data_options": "sources",
    "DataNotFoundError": "sources",
    "TaskSource": "sources",
    "label_target_ids": "rank_classification",
    "rank_classify": "rank_classification",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'prompt_tuning.data' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)

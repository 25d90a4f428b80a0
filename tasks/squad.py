"""SQuAD v1.1 under T5's names (TFDS squad/v1.1 3.0.0; splits `train`, `validation`).

  squad_v010_allanswers       "question: <q> context: <c>" -> the first answer, scored
                              against every answer (punctuation padded, as in MRQA)
  squad_v010                  the same format (T5's older name)
  squad_v010_context_free     "squad trivia question: <q>" -> the first answer
  squad_v010_allanswers_span  the same inputs -> "start: <i> end: <j>", the first answer's
                              word span in the context; questions without one are dropped

Each comes in the four variants of `prompt_tuning.data.registry`; only the
context-free inputs start with a task-name word, so the other `_taskless`
variants read like the plain ones.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from prompt_tuning.data import metrics, readers
from prompt_tuning.data import postprocessors as post
from prompt_tuning.data import preprocessors as pre
from prompt_tuning.data.metrics import MetricFn
from prompt_tuning.data.registry import register_task
from prompt_tuning.data.sources import TaskSource

TFDS_NAME = "squad/v1.1:3.0.0"


@dataclasses.dataclass(frozen=True)
class SquadFormat:
    """One of T5's SQuAD tasks: its format, scoring, and whether it names the task."""

    formatter: Callable[..., object]
    metric_fn: MetricFn = metrics.squad
    postprocess_fn: post.Postprocessor = post.qa
    task_prefix: bool = False


FORMATS = {
    "squad_v010_allanswers": SquadFormat(pre.squad),
    "squad_v010": SquadFormat(pre.squad),
    "squad_v010_context_free": SquadFormat(
        functools.partial(pre.squad, include_context=False), task_prefix=True
    ),
    "squad_v010_allanswers_span": SquadFormat(pre.squad_span, metrics.span_squad, post.span_qa),
}


def source() -> TaskSource:
    """SQuAD v1.1 from TFDS or the released JSON files."""
    return TaskSource(TFDS_NAME, readers.squad())


def _register_all() -> None:
    for name, spec in FORMATS.items():
        register_task(
            name,
            source(),
            [spec.formatter],
            metric_fns=(spec.metric_fn,),
            postprocess_fn=spec.postprocess_fn,
            task_prefix=spec.task_prefix,
        )


_register_all()

"""GLUE tasks under T5's names (`glue_<task>_v002`: TFDS glue 2.0.0).

Each is registered in four variants (see `prompt_tuning.data.registry`). MNLI
has the splits `train`, `validation_matched`, `validation_mismatched`,
`test_matched`, `test_mismatched`; its evaluation sets are also tasks of their
own, `glue_mnli_matched_v002` and `glue_mnli_mismatched_v002` (`validation`,
`test`). AX (the diagnostic set) has only `test`. `glue_wnli_v002_simple_eval`
is WNLI's `validation` and `test` in T5's WSC-style generation format
(`prompt_tuning.data.wnli_simple`), for models trained on WSC simple.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from prompt_tuning.data import metrics, readers
from prompt_tuning.data import postprocessors as post
from prompt_tuning.data import preprocessors as pre
from prompt_tuning.data.metrics import MetricFn
from prompt_tuning.data.registry import register_classification, register_task
from prompt_tuning.data.sources import TaskSource

TFDS_VERSION = "2.0.0"


@dataclasses.dataclass(frozen=True)
class GlueFormat:
    """T5's format of a GLUE classification task."""

    prefix: str
    keys: tuple[str, ...]
    metric_fns: tuple[MetricFn, ...]


_PAIR_METRICS = (metrics.f1_with_invalid, metrics.accuracy)
FORMATS = {
    "cola": GlueFormat("cola", ("sentence",), (metrics.matthews_corrcoef,)),
    "sst2": GlueFormat("sst2", ("sentence",), (metrics.accuracy,)),
    "mrpc": GlueFormat("mrpc", ("sentence1", "sentence2"), _PAIR_METRICS),
    "qqp": GlueFormat("qqp", ("question1", "question2"), _PAIR_METRICS),
    "mnli": GlueFormat("mnli", ("hypothesis", "premise"), (metrics.accuracy,)),
    "mnli_matched": GlueFormat("mnli", ("hypothesis", "premise"), (metrics.accuracy,)),
    "mnli_mismatched": GlueFormat("mnli", ("hypothesis", "premise"), (metrics.accuracy,)),
    "qnli": GlueFormat("qnli", ("question", "sentence"), (metrics.accuracy,)),
    "rte": GlueFormat("rte", ("sentence1", "sentence2"), (metrics.accuracy,)),
    "wnli": GlueFormat("wnli", ("sentence1", "sentence2"), (metrics.accuracy,)),
    # T5 casts the diagnostic set as MNLI; it is unlabelled, so it has no metrics.
    "ax": GlueFormat("mnli", ("hypothesis", "premise"), ()),
}


def source(config: str, splits: Sequence[str] | None = None) -> TaskSource:
    """The GLUE `config` from TFDS or the GLUE files, optionally fewer splits."""
    raw = readers.glue(config)
    if splits is not None:
        raw = dataclasses.replace(raw, files={s: raw.files[s] for s in splits})
    return TaskSource(f"glue/{config}:{TFDS_VERSION}", raw)


def register_glue_classification(
    config: str,
    base: str | None = None,
    *,
    splits: Sequence[str] | None = None,
    predicted_labels: Sequence[str] | None = None,
) -> list[str]:
    """Registers GLUE task `config` (default name `glue_<config>_v002`).

    `splits` and `predicted_labels` serve zero-shot evaluation of a prompt
    trained on another task (see `register_classification`).
    """
    spec = FORMATS[config]
    return register_classification(
        base or f"glue_{config}_v002",
        source(config, splits),
        prefix=spec.prefix,
        keys=spec.keys,
        label_names=readers.GLUE[config].label_names,
        metric_fns=spec.metric_fns,
        predicted_labels=predicted_labels,
    )


def _register_all() -> None:
    for config in FORMATS:
        register_glue_classification(config)
    register_task(
        "glue_stsb_v002",
        source("stsb"),
        [pre.stsb],
        metric_fns=(metrics.pearson_corrcoef, metrics.spearman_corrcoef),
        postprocess_fn=post.to_float,
    )
    register_task(
        "glue_wnli_v002_simple_eval",
        source("wnli", ["validation", "test"]),
        [pre.wnli_simple],
        metric_fns=(metrics.accuracy,),
        postprocess_fn=post.wsc_simple,
    )


_register_all()

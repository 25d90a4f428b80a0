"""SuperGLUE tasks under T5's names (`super_glue_<task>_v102`: TFDS super_glue 1.0.2).

Each is registered in four variants (see `prompt_tuning.data.registry`), e.g.
`super_glue_rte_v102`, `super_glue_rte_v102_taskless`, `super_glue_rte_v102_sentinel`,
`super_glue_rte_v102_taskless_sentinel`. WSC comes as classification
(`super_glue_wsc_v102`) and as T5's "simple" generation task: train on
`super_glue_wsc_v102_simple_train`, evaluate on `super_glue_wsc_v102_simple_eval`,
or use the mixture `super_glue_wsc_and_dev_v102_simple`.

Every task T5 registers here (all but WSC as classification) also has T5's own
sentinel twin under T5's name: `super_glue_rte_v102_1_sentinel`,
`super_glue_wsc_v102_simple_1_sentinel_train`, ... (see the registry).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import seqio

from prompt_tuning.data import metrics, readers
from prompt_tuning.data import postprocessors as post
from prompt_tuning.data import preprocessors as pre
from prompt_tuning.data.registry import register_classification, register_mixture, register_task
from prompt_tuning.data.sources import TaskSource

TFDS_VERSION = "1.0.2"


def source(config: str, splits: Sequence[str] | None = None) -> TaskSource:
    """The SuperGLUE `config` from TFDS or the SuperGLUE files, optionally fewer splits."""
    raw = readers.super_glue(config)
    if splits is not None:
        raw = dataclasses.replace(raw, files={s: raw.files[s] for s in splits})
    return TaskSource(f"super_glue/{config}:{TFDS_VERSION}", raw)


def _register_classification_tasks() -> None:
    # (task, text fields in T5's order, metrics); T5 sorts the fields by name
    # except for MultiRC and WiC.
    for task, keys, metric_fns in (
        ("boolq", ("passage", "question"), (metrics.accuracy,)),
        ("cb", ("hypothesis", "premise"), (metrics.macro_f1(3), metrics.accuracy)),
        ("copa", ("choice1", "choice2", "premise", "question"), (metrics.accuracy,)),
        ("rte", ("hypothesis", "premise"), (metrics.accuracy,)),
        ("wic", ("sentence1", "sentence2", "word"), (metrics.accuracy,)),
        ("axg", ("hypothesis", "premise"), (metrics.accuracy,)),
    ):
        register_classification(
            f"super_glue_{task}_v102",
            source(task),
            # T5 casts the diagnostics as RTE.
            prefix="rte" if task == "axg" else task,
            keys=keys,
            label_names=readers.SUPER_GLUE[task].label_names,
            metric_fns=metric_fns,
            t5_sentinel=True,
        )
    # AX-b names its fields like GLUE; T5 renames them to RTE's premise/hypothesis.
    register_classification(
        "super_glue_axb_v102",
        source("axb"),
        prefix="rte",
        keys=("hypothesis", "premise"),
        label_names=readers.SUPER_GLUE["axb"].label_names,
        metric_fns=(metrics.matthews_corrcoef,),
        t5_sentinel=True,
        preformat=(
            functools.partial(
                seqio.preprocessors.rekey,
                key_map={
                    "premise": "sentence1",
                    "hypothesis": "sentence2",
                    "label": "label",
                    "idx": "idx",
                },
            ),
        ),
    )


def _register_structured_tasks() -> None:
    register_task(
        "super_glue_multirc_v102",
        source("multirc"),
        [pre.multirc],
        metric_fns=(metrics.multirc,),
        postprocess_fn=post.multirc,
        class_labels=readers.BOOL_LABELS,
        t5_sentinel=True,
    )
    register_task(
        "super_glue_record_v102",
        source("record"),
        [pre.record],
        metric_fns=(metrics.record,),
        postprocess_fn=post.record,
        t5_sentinel=True,
    )
    register_task(
        "super_glue_wsc_v102",
        source("wsc.fixed"),
        [pre.wsc],
        metric_fns=(metrics.accuracy,),
        postprocess_fn=post.class_id(readers.BOOL_LABELS),
        class_labels=readers.BOOL_LABELS,
    )


def _register_wsc_simple() -> None:
    register_task(
        "super_glue_wsc_v102_simple_train",
        source("wsc.fixed", ["train"]),
        [functools.partial(pre.wsc_simple, correct_referent_only=True)],
        t5_sentinel=True,
    )
    register_task(
        "super_glue_wsc_v102_simple_eval",
        source("wsc.fixed", ["validation", "test"]),
        [functools.partial(pre.wsc_simple, correct_referent_only=False)],
        metric_fns=(metrics.accuracy,),
        postprocess_fn=post.wsc_simple,
        t5_sentinel=True,
    )
    register_mixture(
        "super_glue_wsc_and_dev_v102_simple",
        ["super_glue_wsc_v102_simple_train", "super_glue_wsc_v102_simple_eval"],
    )


_register_classification_tasks()
_register_structured_tasks()
_register_wsc_simple()

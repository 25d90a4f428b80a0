"""MRQA 2019 tasks (`mrqa_<dataset>_v100`: TFDS mrqa 1.0.0), in T5's SQuAD format.

In-domain (train + validation): squad, news_qa, trivia_qa, search_qa, hotpot_qa,
natural_questions. Out-of-domain (validation only, TFDS's `test`): bio_asq, drop,
duo_rc, race, relation_extraction, textbook_qa. The format has no task-name
word, so each `_taskless` variant reads like the plain one.
"""

from __future__ import annotations

from prompt_tuning.data import metrics, readers
from prompt_tuning.data import postprocessors as post
from prompt_tuning.data import preprocessors as pre
from prompt_tuning.data.registry import register_task
from prompt_tuning.data.sources import TaskSource

TFDS_VERSION = "1.0.0"
OUT_OF_DOMAIN = tuple(c for c in readers.MRQA_FILES if c not in readers.MRQA_IN_DOMAIN)


def task(config: str) -> str:
    """The registered base name of MRQA dataset `config`."""
    return f"mrqa_{config}_v100"


def source(config: str) -> TaskSource:
    """MRQA `config` from TFDS or the MRQA release files."""
    # TFDS serves the out-of-domain dev files as its `test` split.
    tfds_splits = None if config in readers.MRQA_IN_DOMAIN else {"validation": "test"}
    return TaskSource(f"mrqa/{config}:{TFDS_VERSION}", readers.mrqa(config), tfds_splits)


def _register_all() -> None:
    for config in readers.MRQA_FILES:
        register_task(
            task(config),
            source(config),
            [pre.mrqa],
            metric_fns=(metrics.squad,),
            postprocess_fn=post.qa,
            task_prefix=False,
        )


_register_all()

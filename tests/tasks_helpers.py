"""Helpers for the task tests: run a registered task on the small files in tests/data.

The files under tests/data are written by hand in the exact layouts of the
official SuperGLUE / GLUE / MRQA downloads (see tests/data/README.md).
"""

from __future__ import annotations

import contextlib
import gzip
import os
import pathlib
import shutil
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import seqio
import tensorflow as tf

DATA = pathlib.Path(__file__).resolve().parent / "data"
EOS = 1
SENTINEL_0 = 32099  # <extra_id_0> with 100 extra ids


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Sets (or, for None, removes) environment variables inside the block."""
    saved = {key: os.environ.get(key) for key in values}
    try:
        for key, value in values.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def raw_files(root: pathlib.Path | str) -> contextlib.AbstractContextManager[None]:
    """Reads every task from the original files under `root`."""
    return environment(PROMPT_TUNING_DATA_SOURCE="files", PROMPT_TUNING_DATA_DIR=str(root))


def make_release_root(target: pathlib.Path) -> pathlib.Path:
    """tests/data with MRQA gzipped as in the release (`.jsonl.gz`)."""
    for name in ("super_glue", "glue"):
        (target / name).symlink_to(DATA / name, target_is_directory=True)
    for plain in (DATA / "mrqa").glob("*/*.jsonl"):
        out = target / "mrqa" / plain.parent.name / (plain.name + ".gz")
        out.parent.mkdir(parents=True, exist_ok=True)
        with plain.open("rb") as src, gzip.open(out, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return target


def run_task(name: str, split: str) -> list[dict]:
    """All examples of a task split, unshuffled, untrimmed, as numpy values."""
    task = seqio.get_mixture_or_task(name)
    dataset = task.get_dataset(sequence_length=None, split=split, shuffle=False)
    return list(dataset.as_numpy_iterator())


def run_on(
    name: str, dataset: tf.data.Dataset, sequence_length: Mapping[str, int] | None = None
) -> list[dict]:
    """A task's preprocessors applied to `dataset` (raw examples), as numpy values."""
    task = seqio.get_mixture_or_task(name)
    examples = task.preprocess_postcache(task.preprocess_precache(dataset), sequence_length)
    return list(examples.as_numpy_iterator())


def rows_dataset(name: str, rows: Sequence[dict]) -> tf.data.Dataset:
    """`rows`, shaped as the examples of task `name`'s source, as a dataset."""
    signature = seqio.get_mixture_or_task(name).source.raw.signature
    return tf.data.Dataset.from_generator(lambda: iter(rows), output_signature=dict(signature))


def texts(examples: Sequence[dict]) -> list[tuple[str, str]]:
    """(inputs, targets) strings of preprocessed examples."""
    return [
        (ex["inputs_pretokenized"].decode(), ex["targets_pretokenized"].decode()) for ex in examples
    ]


def drop_first_word(text: str) -> str:
    """The taskless form of a T5 input: everything after the first space."""
    return text.split(" ", 1)[1]


def check_tokens(
    examples: Sequence[dict],
    expected: Sequence[tuple[str, str]],
    vocabulary: seqio.Vocabulary,
    sentinel: bool,
) -> None:
    """Token ids are the real SentencePiece encoding + EOS (sentinel first if asked)."""
    assert len(examples) == len(expected)
    for example, (inputs, targets) in zip(examples, expected, strict=True):
        np.testing.assert_array_equal(example["inputs"], [*vocabulary.encode(inputs), EOS])
        prefix = [SENTINEL_0] if sentinel else []
        np.testing.assert_array_equal(
            example["targets"], [*prefix, *vocabulary.encode(targets), EOS]
        )


def check_variants(
    base: str,
    split: str,
    expected: Sequence[tuple[str, str]],
    vocabulary: seqio.Vocabulary,
    task_prefix: bool = True,
) -> None:
    """The taskless / sentinel variants of `base` give `expected` (the plain format) in their form."""
    taskless = [(drop_first_word(i) if task_prefix else i, t) for i, t in expected]
    for suffix, want, sentinel in (
        ("_taskless", taskless, False),
        ("_sentinel", expected, True),
        ("_taskless_sentinel", taskless, True),
    ):
        examples = run_task(base + suffix, split)
        assert texts(examples) == list(want), base + suffix
        check_tokens(examples, want, vocabulary, sentinel)
        if sentinel:
            decoded = vocabulary.decode(examples[0]["targets"].tolist())
            assert decoded.startswith("<extra_id_0>"), decoded


def score(name: str, examples: Sequence[dict], predictions: Sequence[str]) -> dict[str, float]:
    """The task's metrics for predicted texts, postprocessed as the task defines."""
    task = seqio.get_mixture_or_task(name)
    targets = [
        task.postprocess_fn(ex["targets_pretokenized"].decode(), example=ex, is_target=True)
        for ex in examples
    ]
    predicted = [
        task.postprocess_fn(text, example=ex, is_target=False)
        for ex, text in zip(examples, predictions, strict=True)
    ]
    results: dict[str, float] = {}
    for metric in task.predict_metric_fns:
        results.update(metric(targets, predicted))
    return results

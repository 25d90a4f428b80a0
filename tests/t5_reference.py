"""The t5 library's outputs on the hand-written raw examples: `python tests/t5_reference.py OUT`.

Runs in its own process because the t5 library registers its tasks under the
same seqio names as this project. For every t5 task of the GLUE, SuperGLUE and
SQuAD families it writes, to the pickle file OUT, `{task name: [example, ...]}`
with each example's `inputs_pretokenized`, `targets_pretokenized` (bytes) and
`inputs`, `targets` (token id lists), exactly as t5's registered preprocessors
make them. MRQA is not in the t5 library: its reference (`mrqa_reference`) is
the original prompt-tuning code's `mrqa` recipe run with t5's own
`_pad_punctuation` and `_string_join` helpers.
"""

from __future__ import annotations

import os
import pickle
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import seqio
import t5.data
import t5_reference_examples as raw
import tensorflow as tf

from prompt_tuning.data.vocab import default_vocab_path

# t5 reads its vocabulary from gs://t5-data; the shipped copy is the same file
# (tests/test_tasks_registry.py compares it with the fixture), and this machine
# may not reach GCS. get_default_vocabulary() reads its module's global at call time
# (`t5.data.utils` itself is shadowed by seqio's `utils`, star-imported into t5.data).
sys.modules["t5.data.utils"].DEFAULT_SPM_PATH = default_vocab_path()

import t5.data.preprocessors as t5_pre  # noqa: E402
import t5.data.tasks  # noqa: E402, F401  (registers t5's tasks)

FAMILIES = ("glue_", "super_glue_", "squad_")
KEYS = ("inputs_pretokenized", "targets_pretokenized", "inputs", "targets")
MRQA_REFERENCE = "mrqa_reference"


def t5_task_names() -> list[str]:
    """Every task the t5 library registers for GLUE, SuperGLUE and SQuAD."""
    return sorted(n for n in seqio.TaskRegistry.names() if n.startswith(FAMILIES))


def _as_lists(examples: tf.data.Dataset) -> list[dict]:
    return [
        {
            key: (value if isinstance(value, bytes) else value.tolist())
            for key, value in ex.items()
            if key in KEYS
        }
        for ex in examples.as_numpy_iterator()
    ]


def run(task: seqio.Task, dataset: tf.data.Dataset) -> list[dict]:
    """`dataset` through the task's preprocessors, as `Task.get_dataset` applies them."""
    dataset = task.preprocess_precache(dataset)
    return _as_lists(task.preprocess_postcache(dataset, sequence_length=None))


@seqio.map_over_dataset
def _mrqa(example: dict) -> dict:
    # The original prompt-tuning `mrqa` preprocessor's recipe, with t5's helpers.
    question = t5_pre._pad_punctuation(example["question"])
    context = t5_pre._pad_punctuation(example["context"])
    return {
        "inputs": t5_pre._string_join(["question:", question, "context:", context]),
        "targets": t5_pre._pad_punctuation(example["answers"][0]),
    }


def mrqa_reference() -> list[dict]:
    """The MRQA raw examples formatted by t5's helpers, tokenised like a t5 task."""
    template = seqio.TaskRegistry.get("squad_v010_allanswers")
    task = seqio.Task(
        MRQA_REFERENCE,
        source=template.source,
        preprocessors=[_mrqa, *template.preprocessors[1:]],
        output_features=template.output_features,
    )
    return run(task, raw.dataset("mrqa/squad"))


def main(out: str) -> None:
    results = {}
    for name in t5_task_names():
        task = seqio.TaskRegistry.get(name)
        results[name] = run(task, raw.dataset(raw.tfds_name(task.source.tfds_dataset.name)))
    results[MRQA_REFERENCE] = mrqa_reference()
    with open(out, "wb") as f:
        pickle.dump(results, f)


if __name__ == "__main__":
    main(sys.argv[1])

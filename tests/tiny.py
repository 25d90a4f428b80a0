"""A tiny random T5 checkpoint and a tiny registered task for engine tests.

`import tiny` (from a gin file, with tests/ on PYTHONPATH) registers the task,
so CLI subprocesses see it too.
"""

from __future__ import annotations

import pathlib

import gin
import jax
import seqio
import tensorflow as tf

from prompt_tuning import checkpoints
from prompt_tuning.models import T5Config, init_params

VOCAB_PATH = pathlib.Path(__file__).resolve().parents[2] / "shared/fixtures/vocab/t5_cc_all.32000.spiece.model"
TASK = "tiny_polarity_test"
LABELS = ("negative", "positive")

# Dimensions chosen so that no activation shares a weight's shape (see test_train).
CONFIG = T5Config(
    vocab_size=32128, d_model=16, num_heads=4, d_kv=6, d_ff=40,
    num_encoder_layers=2, num_decoder_layers=2, relative_attention_num_buckets=8,
)

_GOOD = ("great", "wonderful", "superb", "moving", "delightful", "brilliant", "charming", "fun")
_BAD = ("awful", "boring", "dull", "terrible", "clumsy", "tedious", "bland", "painful")
_NOUNS = ("film", "plot", "cast", "script", "ending", "score", "story", "pacing")


def _examples(split: str) -> dict[str, list[str]]:
    """Short reviews with one sentiment word; train and validation use disjoint nouns."""
    nouns = _NOUNS[:6] if split == "train" else _NOUNS[6:]
    texts, labels = [], []
    for noun in nouns:
        for good, bad in zip(_GOOD, _BAD, strict=True):
            texts += [f"the {noun} was {good}", f"the {noun} was {bad}"]
            labels += ["positive", "negative"]
    return {"sentence": texts, "label": labels}


def _dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
    del shuffle_files, seed
    return tf.data.Dataset.from_tensor_slices(_examples(split))


def _format(dataset: tf.data.Dataset) -> tf.data.Dataset:
    return dataset.map(
        lambda ex: {"inputs": tf.strings.join(["polarity sentence: ", ex["sentence"]]),
                    "targets": ex["label"]}
    )


def _accuracy(targets, predictions):
    return {"accuracy": 100.0 * sum(t == p for t, p in zip(targets, predictions, strict=True)) / len(targets)}


def register() -> None:
    if TASK in seqio.TaskRegistry.names():
        return
    vocabulary = seqio.SentencePieceVocabulary(str(VOCAB_PATH), extra_ids=100)
    features = {
        "inputs": seqio.Feature(vocabulary, add_eos=True),
        "targets": seqio.Feature(vocabulary, add_eos=True),
    }
    seqio.TaskRegistry.add(
        TASK,
        source=seqio.FunctionDataSource(_dataset_fn, splits=["train", "validation"]),
        preprocessors=[_format, seqio.preprocessors.tokenize, seqio.preprocessors.append_eos],
        output_features=features,
        metric_fns=[_accuracy],
    )
    from prompt_tuning.data import register_class_labels

    register_class_labels(TASK, LABELS)


def write_checkpoint(model_dir: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """A random-init T5X checkpoint of CONFIG; returns the checkpoint_0 folder."""
    params = init_params(CONFIG, jax.random.key(seed))
    return pathlib.Path(checkpoints.save_t5x(params, model_dir, step=0))


def exploding_learning_rate(after: int = 4) -> object:
    """A schedule that is sane for `after` steps, then large enough to overflow the prompt."""
    import jax.numpy as jnp

    return lambda count: jnp.where(count < after, 0.3, 1e30)


register()
gin.external_configurable(exploding_learning_rate, "exploding_learning_rate")


"""A tiny random T5 checkpoint and a tiny registered task for engine tests.

`import tiny` (from a gin file, with tests/ on PYTHONPATH) registers the task,
so CLI subprocesses see it too.
"""

from __future__ import annotations

import pathlib

import gin
import jax
import numpy as np
import seqio
import tensorflow as tf

from prompt_tuning import checkpoints
from prompt_tuning.data.registry import register_classification
from prompt_tuning.models import T5Config, init_params

TASK = "tiny_polarity_test"
LABELS = ("negative", "positive")

# Dimensions chosen so that no activation shares a weight's shape (see test_train).
CONFIG = T5Config(
    vocab_size=32128,
    d_model=16,
    num_heads=4,
    d_kv=6,
    d_ff=40,
    num_encoder_layers=2,
    num_decoder_layers=2,
    relative_attention_num_buckets=8,
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
    examples = _examples(split)
    label_ids = [LABELS.index(label) for label in examples["label"]]
    return tf.data.Dataset.from_tensor_slices(
        {"sentence": examples["sentence"], "label": label_ids}
    )


def register() -> None:
    if TASK in seqio.TaskRegistry.names():
        return
    register_classification(
        TASK,
        seqio.FunctionDataSource(_dataset_fn, splits=["train", "validation"]),
        prefix="polarity",
        keys=("sentence",),
        label_names=LABELS,
    )


def write_checkpoint(model_dir: pathlib.Path, seed: int = 0) -> pathlib.Path:
    """A random-init T5X checkpoint of CONFIG; returns the checkpoint_0 folder."""
    params = init_params(CONFIG, jax.random.key(seed))
    return pathlib.Path(checkpoints.save_t5x(params, model_dir, step=0))


def exploding_learning_rate(after: int = 4) -> object:
    """A schedule that is sane for `after` steps, then infinite (the prompt becomes Inf, the loss NaN)."""
    import jax.numpy as jnp

    return lambda count: jnp.where(count < after, 0.3, jnp.inf)


register()
gin.external_configurable(exploding_learning_rate, "exploding_learning_rate")


def assert_trains_only_the_method(step, state, params, batches, num_steps: int = 30) -> None:
    """Runs a jitted train `step` `num_steps` times on `batches`.

    Asserts that the frozen `params` stay bit-identical, that every trainable leaf
    of `state.params` changes, and that the loss falls by more than 0.5.
    """
    before = jax.tree.map(np.array, params)
    initial = jax.tree.map(np.array, state.params)
    losses = []
    for _ in range(num_steps):
        state, metrics = step(state, params, next(batches), jax.random.key(0))
        losses.append(float(metrics["loss"]))
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), params, before)
    changed = jax.tree.map(lambda a, b: not np.array_equal(np.asarray(a), b), state.params, initial)
    assert all(jax.tree.leaves(changed)), changed
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5, losses

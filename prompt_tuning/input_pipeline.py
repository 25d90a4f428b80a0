"""SeqIO tasks -> host-local numpy batches -> global, data-sharded jax.Arrays.

Each process reads only its own shard of the data (`seqio.ShardInfo`), batches
`global_batch // process_count` examples, and the per-host batches are joined
into one global array sharded over the mesh's 'data' axis. The pipeline is
deterministic given the seed, so a resumed run skips exactly the batches it
already consumed and sees the same data as an uninterrupted run.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping

import jax
import numpy as np
import seqio
import tensorflow as tf
from jax.sharding import NamedSharding

FEATURES = (
    "encoder_input_tokens",
    "decoder_input_tokens",
    "decoder_target_tokens",
    "decoder_loss_weights",
)


def get_task_or_mixture(name: str) -> seqio.Task | seqio.Mixture:
    """Looks a name up in seqio's registries, with a helpful error if absent."""
    # Importing registers the project's tasks.
    import prompt_tuning.tasks  # noqa: F401

    if name in seqio.TaskRegistry.names():
        return seqio.TaskRegistry.get(name)
    if name in seqio.MixtureRegistry.names():
        return seqio.MixtureRegistry.get(name)
    known = sorted(set(seqio.TaskRegistry.names()) | set(seqio.MixtureRegistry.names()))
    near = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f" Closest registered names: {', '.join(near)}." if near else ""
    raise ValueError(
        f"Task or mixture {name!r} is not registered.{hint} Register it in a module under "
        "tasks/ (imported by prompt_tuning.tasks) or pick one from `python -m "
        "prompt_tuning.show_task --list`."
    )


def per_host_batch_size(global_batch_size: int) -> int:
    processes = jax.process_count()
    if global_batch_size % processes:
        raise ValueError(
            f"Global batch size {global_batch_size} is not divisible by the "
            f"{processes} processes."
        )
    return global_batch_size // processes


def train_dataset(
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    global_batch_size: int,
    *,
    seed: int,
    start_step: int = 0,
    split: str = "train",
) -> tf.data.Dataset:
    """Infinite, shuffled, host-local batches, resuming after `start_step` batches.

    Returns batches `{feature: [global_batch / processes, length]}` as produced by
    seqio's `EncDecFeatureConverter` without packing.
    """
    get_task_or_mixture(mixture_or_task_name)
    dataset = seqio.get_dataset(
        mixture_or_task_name,
        task_feature_lengths=dict(task_feature_lengths),
        feature_converter=seqio.EncDecFeatureConverter(pack=False),
        dataset_split=split,
        shuffle=True,
        num_epochs=None,
        shard_info=seqio.ShardInfo(jax.process_index(), jax.process_count()),
        seed=seed,
        verbose=False,
    )
    dataset = dataset.batch(per_host_batch_size(global_batch_size), drop_remainder=True)
    return dataset.skip(start_step).prefetch(tf.data.AUTOTUNE)


def to_global(batch: Mapping[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
    """Joins every process's local batch into one global array per feature."""
    return {
        name: jax.make_array_from_process_local_data(sharding, np.asarray(batch[name]))
        for name in FEATURES
    }


def global_batches(
    dataset: tf.data.Dataset, sharding: NamedSharding
) -> Iterator[dict[str, jax.Array]]:
    """Iterates a host-local dataset as global, sharded batches."""
    for batch in dataset.as_numpy_iterator():
        yield to_global(batch, sharding)

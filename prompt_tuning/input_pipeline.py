"""SeqIO tasks -> host-local numpy batches -> global, data-sharded jax.Arrays.

Each process reads only its own shards of the data (`seqio.ShardInfo`), builds
its `global_batch // process_count` rows, and the per-host batches are joined
into one global array sharded over the mesh's 'data' axis. The pipeline is
deterministic given the seed, so a resumed run skips exactly the batches it
already consumed and sees the same data as an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import jax
import numpy as np
import seqio
import tensorflow as tf
from jax.sharding import NamedSharding

# Registers the project's tasks (and their gin knobs) before any gin parsing.
import prompt_tuning.tasks  # noqa: F401
from prompt_tuning.data import get_task_or_mixture

FEATURES = (
    "encoder_input_tokens",
    "decoder_input_tokens",
    "decoder_target_tokens",
    "decoder_loss_weights",
)


def _local_shards(num_shards: int) -> range:
    """The data shards this process reads: a contiguous block, in global batch order."""
    processes = jax.process_count()
    if num_shards % processes:
        raise ValueError(
            f"{num_shards} data shards cannot be split evenly over {processes} processes; "
            "set DataSpec.data_shards to a multiple of the process count."
        )
    per_process = num_shards // processes
    return range(jax.process_index() * per_process, (jax.process_index() + 1) * per_process)


class EmptySplitError(ValueError):
    """A task's split exists but yields no examples."""


def check_split(mixture_or_task_name: str, split: str) -> None:
    """Opens `split` of the task (or of every task in a mixture) and reads one example.

    Jobs call this before writing anything, so a missing data directory or an
    empty split fails the run while MODEL_DIR is still untouched.
    """
    task_or_mixture = get_task_or_mixture(mixture_or_task_name)
    tasks = getattr(task_or_mixture, "tasks", [task_or_mixture])
    for task in tasks:
        dataset = task.get_dataset(sequence_length=None, split=split, shuffle=False)
        if not any(True for _ in dataset.take(1).as_numpy_iterator()):
            raise EmptySplitError(
                f"Split {split!r} of task {task.name} holds no examples: check the data "
                "files or the split name (DataSpec.train_split / DataSpec.eval_split)."
            )


def train_dataset(
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    global_batch_size: int,
    *,
    seed: int,
    start_step: int = 0,
    split: str = "train",
    num_shards: int | None = None,
) -> tf.data.Dataset:
    """Infinite, shuffled, host-local batches, resuming after `start_step` batches.

    The data is cut into `num_shards` (default: one per process) independent,
    deterministic streams; rows `[s * b, (s + 1) * b)` of every global batch come
    from shard `s` (`b = global_batch_size / num_shards`). Each process reads only
    its own block of shards, so with a fixed `num_shards` the global batches, and
    hence the trained prompt, do not depend on how many processes run the job.

    Returns batches `{feature: [global_batch / processes, length]}` as produced by
    seqio's `EncDecFeatureConverter` without packing.
    """
    get_task_or_mixture(mixture_or_task_name)
    num_shards = num_shards or jax.process_count()
    if global_batch_size % num_shards:
        raise ValueError(
            f"Global batch size {global_batch_size} is not divisible by {num_shards} data shards."
        )
    shard_batch = global_batch_size // num_shards

    def shard(index: int) -> tf.data.Dataset:
        dataset = seqio.get_dataset(
            mixture_or_task_name,
            task_feature_lengths=dict(task_feature_lengths),
            feature_converter=seqio.EncDecFeatureConverter(pack=False),
            dataset_split=split,
            shuffle=True,
            num_epochs=None,
            shard_info=seqio.ShardInfo(index, num_shards),
            seed=seed + index,
            verbose=False,
        )
        return dataset.batch(shard_batch, drop_remainder=True)

    local = [shard(i) for i in _local_shards(num_shards)]
    dataset = tf.data.Dataset.zip(tuple(local)).map(
        lambda *parts: {k: tf.concat([p[k] for p in parts], axis=0) for k in parts[0]}
    )
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

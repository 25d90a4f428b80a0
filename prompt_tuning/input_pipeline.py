"""SeqIO tasks -> host-local numpy batches -> global, data-sharded jax.Arrays.

Each process reads only its own shards of the data (`seqio.ShardInfo`), builds
its `global_batch // process_count` rows, and the per-host batches are joined
into one global array sharded over the mesh's 'data' axis. The pipeline is
deterministic given the seed, so a resumed run skips exactly the batches it
already consumed and sees the same data as an uninterrupted run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence

import jax
import numpy as np
import seqio
import tensorflow as tf
from jax.sharding import NamedSharding, PartitionSpec

# Registers the project's tasks (and their gin knobs) before any gin parsing.
import prompt_tuning.tasks  # noqa: F401
from prompt_tuning.data import get_task_or_mixture
from prompt_tuning.methods import TASK_INDEX

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
    """A task's split is missing or yields no examples."""


def check_split(mixture_or_task_name: str, split: str) -> None:
    """Opens `split` of the task (or of every task in a mixture) and reads one example.

    Jobs call this before writing anything, so a missing data directory or an
    empty split fails the run while MODEL_DIR is still untouched. A mixture's
    sub-tasks without the split are skipped, as seqio skips them when mixing.
    """
    task_or_mixture = get_task_or_mixture(mixture_or_task_name)
    tasks = getattr(task_or_mixture, "tasks", [task_or_mixture])
    with_split = [task for task in tasks if split in task.splits]
    if not with_split:
        raise EmptySplitError(
            f"{mixture_or_task_name} has no {split!r} split (its splits: "
            f"{sorted({s for task in tasks for s in task.splits})}): check "
            "DataSpec.train_split / DataSpec.eval_split."
        )
    for task in with_split:
        dataset = task.get_dataset(sequence_length=None, split=split, shuffle=False)
        if not any(True for _ in dataset.take(1).as_numpy_iterator()):
            raise EmptySplitError(
                f"Split {split!r} of task {task.name} holds no examples: check the data "
                "files or the split name (DataSpec.train_split / DataSpec.eval_split)."
            )


def _with_task_index(dataset: tf.data.Dataset, index: int) -> tf.data.Dataset:
    return dataset.map(lambda ex: {**ex, TASK_INDEX: tf.constant(index, tf.int32)})


def _tagged_mixture(
    read: Callable[[str], tf.data.Dataset],
    mixture_or_task_name: str,
    split: str,
    task_names: Sequence[str],
    seed: int,
) -> tf.data.Dataset:
    """The mixture's examples, each with its `task_index` (its sub-task's place in `task_names`).

    Mixed as seqio mixes: every sub-task that has `split`, read on its own by
    `read`, sampled at the mixture's rate.
    """
    task_or_mixture = get_task_or_mixture(mixture_or_task_name)
    tasks = [t for t in getattr(task_or_mixture, "tasks", [task_or_mixture]) if split in t.splits]
    unknown = [t.name for t in tasks if t.name not in task_names]
    if unknown or not tasks:
        raise ValueError(
            f"{mixture_or_task_name!r}: the sub-tasks with a {split!r} split are "
            f"{[t.name for t in tasks]}, and each needs a place in the tasks {list(task_names)}."
        )
    datasets = [_with_task_index(read(t.name), list(task_names).index(t.name)) for t in tasks]
    if len(datasets) == 1:
        return datasets[0]
    rates = [float(task_or_mixture.get_rate(t)) for t in tasks]
    return tf.data.Dataset.sample_from_datasets(datasets, weights=rates, seed=seed)


def train_dataset(
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    global_batch_size: int,
    *,
    seed: int,
    start_step: int = 0,
    split: str = "train",
    num_shards: int | None = None,
    task_names: Sequence[str] | None = None,
) -> tf.data.Dataset:
    """Infinite, shuffled, host-local batches, resuming after `start_step` batches.

    The data is cut into `num_shards` (default: one per process) independent,
    deterministic streams; rows `[s * b, (s + 1) * b)` of every global batch come
    from shard `s` (`b = global_batch_size / num_shards`). Each process reads only
    its own block of shards, so with a fixed `num_shards` the global batches, and
    hence the trained prompt, do not depend on how many processes run the job.

    Returns batches `{feature: [global_batch / processes, length]}` as produced by
    seqio's `EncDecFeatureConverter` without packing; with `task_names` (a
    multi-task method's tasks) also `task_index [global_batch / processes]`.
    """
    get_task_or_mixture(mixture_or_task_name)
    num_shards = num_shards or jax.process_count()
    if global_batch_size % num_shards:
        raise ValueError(
            f"Global batch size {global_batch_size} is not divisible by {num_shards} data shards."
        )
    shard_batch = global_batch_size // num_shards

    def shard(index: int) -> tf.data.Dataset:
        read = functools.partial(
            seqio.get_dataset,
            task_feature_lengths=dict(task_feature_lengths),
            feature_converter=seqio.EncDecFeatureConverter(pack=False),
            dataset_split=split,
            shuffle=True,
            num_epochs=None,
            shard_info=seqio.ShardInfo(index, num_shards),
            seed=seed + index,
            verbose=False,
        )
        if task_names is None:
            dataset = read(mixture_or_task_name)
        else:
            dataset = _tagged_mixture(read, mixture_or_task_name, split, task_names, seed + index)
        return dataset.batch(shard_batch, drop_remainder=True)

    local = [shard(i) for i in _local_shards(num_shards)]
    dataset = tf.data.Dataset.zip(tuple(local)).map(
        lambda *parts: {k: tf.concat([p[k] for p in parts], axis=0) for k in parts[0]}
    )
    return dataset.skip(start_step).prefetch(tf.data.AUTOTUNE)


def feature_shardings(sharding: NamedSharding, tagged: bool) -> dict[str, NamedSharding]:
    """Each feature's sharding: `sharding` for `[batch, length]`, its batch axis for `task_index`."""
    shardings = dict.fromkeys(FEATURES, sharding)
    if tagged:
        shardings[TASK_INDEX] = NamedSharding(sharding.mesh, PartitionSpec(sharding.spec[0]))
    return shardings


def to_global(batch: Mapping[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
    """Joins every process's local batch into one global array per feature."""
    return {
        name: jax.make_array_from_process_local_data(feature_sharding, np.asarray(batch[name]))
        for name, feature_sharding in feature_shardings(sharding, TASK_INDEX in batch).items()
    }


def global_batches(
    dataset: tf.data.Dataset, sharding: NamedSharding
) -> Iterator[dict[str, jax.Array]]:
    """Iterates a host-local dataset as global, sharded batches."""
    for batch in dataset.as_numpy_iterator():
        yield to_global(batch, sharding)

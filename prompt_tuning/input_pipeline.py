"""SeqIO tasks -> host-local numpy batches -> global, data-sharded jax.Arrays.

Each process reads only its own shards of the data (`seqio.ShardInfo`), builds
its `global_batch // process_count` rows, and the per-host batches are joined
into one global array sharded over the mesh's 'data' axis. The pipeline is
deterministic given the seed, and `TrainBatches` saves each data shard's
tf.data iterator with the train state, so a resumed run continues exactly where
the saved one stopped, at a cost that does not grow with the step (T5X's
approach). A pipeline tf.data cannot checkpoint (a Python-generator source)
resumes by skipping the consumed batches instead, with the same data.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import jax
import numpy as np
import seqio
import tensorflow as tf
from jax.sharding import NamedSharding, PartitionSpec

from prompt_tuning.data import get_task_or_mixture
from prompt_tuning.errors import InputError
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
        raise InputError(
            f"{num_shards} data shards cannot be split evenly over {processes} processes; "
            "set DataSpec.data_shards to a multiple of the process count."
        )
    per_process = num_shards // processes
    return range(jax.process_index() * per_process, (jax.process_index() + 1) * per_process)


class EmptySplitError(InputError):
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
        raise InputError(
            f"{mixture_or_task_name!r}: the sub-tasks with a {split!r} split are "
            f"{[t.name for t in tasks]}, and each needs a place in the tasks {list(task_names)}."
        )
    datasets = [_with_task_index(read(t.name), list(task_names).index(t.name)) for t in tasks]
    if len(datasets) == 1:
        return datasets[0]
    rates = [float(task_or_mixture.get_rate(t)) for t in tasks]
    return tf.data.Dataset.sample_from_datasets(datasets, weights=rates, seed=seed)


def shard_datasets(
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    global_batch_size: int,
    *,
    seed: int,
    split: str = "train",
    num_shards: int | None = None,
    task_names: Sequence[str] | None = None,
) -> dict[int, tf.data.Dataset]:
    """This process's data shards: `{shard index: infinite, shuffled batches of that shard}`.

    The data is cut into `num_shards` (default: one per process) independent,
    deterministic streams; rows `[s * b, (s + 1) * b)` of every global batch come
    from shard `s` (`b = global_batch_size / num_shards`). Each process reads only
    its own block of shards, so with a fixed `num_shards` the global batches, and
    hence the trained prompt, do not depend on how many processes run the job.

    Each shard yields `{feature: [b, length]}` as seqio's `EncDecFeatureConverter`
    produces them without packing; with `task_names` (a multi-task method's
    tasks) also `task_index [b]`.
    """
    get_task_or_mixture(mixture_or_task_name)
    num_shards = num_shards or jax.process_count()
    if global_batch_size % num_shards:
        raise InputError(
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

    return {index: shard(index) for index in _local_shards(num_shards)}


def train_dataset(
    mixture_or_task_name: str,
    task_feature_lengths: Mapping[str, int],
    global_batch_size: int,
    **options: object,
) -> tf.data.Dataset:
    """This process's rows of every global batch, `{feature: [global_batch / processes, length]}`.

    The local shards of `shard_datasets` (same arguments) zipped and joined in
    shard order: the batches `TrainBatches` yields, as one dataset.
    """
    local = tuple(
        shard_datasets(
            mixture_or_task_name, task_feature_lengths, global_batch_size, **options
        ).values()
    )
    return tf.data.Dataset.zip(local).map(
        lambda *parts: {k: tf.concat([p[k] for p in parts], axis=0) for k in parts[0]}
    )


def _checkpointable(iterator: tf.data.Iterator) -> bool:
    """Whether tf.data can save `iterator`'s state (not when it reads a Python generator)."""
    with tempfile.TemporaryDirectory() as directory:
        try:
            tf.train.Checkpoint(iterator=iterator).write(f"{directory}/probe")
        except tf.errors.FailedPreconditionError:
            return False
    return True


class TrainBatches:
    """Iterates this process's rows of each global batch; its position saves and restores.

    One tf.data iterator per local data shard. `save` writes each shard's
    iterator state (shuffle buffers and read offsets: what the next batches
    depend on) as `shard_<s>` files; `restore` reads them back, so resuming costs
    the same at any step. Shards are named by their global index, so a run
    resumed on another number of processes (same `data_shards`) finds its own.
    """

    def __init__(self, shards: Mapping[int, tf.data.Dataset]):
        self._datasets = {s: d.prefetch(tf.data.AUTOTUNE) for s, d in shards.items()}
        self._iterators = {s: iter(d) for s, d in self._datasets.items()}
        self._read = False
        self._probed: bool | None = None

    @property
    def checkpointable(self) -> bool:
        """Whether tf.data can save the iterators' state.

        Probed on the iterator itself (a second one, dropped half-read, makes TF warn), and
        settled only once a batch has been read: a Python-generator source's unsaveable
        state exists only from then on.
        """
        if self._probed is not None:
            return self._probed
        result = _checkpointable(next(iter(self._iterators.values())))
        if self._read:
            self._probed = result
        return result

    def __iter__(self) -> TrainBatches:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        """The next local batch, `{feature: [rows of this process, length]}`."""
        parts = [next(iterator) for iterator in self._iterators.values()]
        self._read = True
        return {k: np.concatenate([p[k].numpy() for p in parts]) for k in parts[0]}

    def skip(self, batches: int) -> None:
        """Starts over after `batches` batches: the fallback for an unsaved position (O(batches))."""
        self._iterators = {s: iter(d.skip(batches)) for s, d in self._datasets.items()}

    def save(self, directory: str) -> None:
        """Writes every local shard's iterator state under `directory`."""
        for shard, iterator in self._iterators.items():
            tf.train.Checkpoint(iterator=iterator).write(f"{directory}/shard_{shard}")

    def restore(self, directory: str) -> None:
        """Continues every local shard from the state `save` wrote under `directory`."""
        for shard, iterator in self._iterators.items():
            tf.train.Checkpoint(iterator=iterator).read(
                f"{directory}/shard_{shard}"
            ).assert_consumed()


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
    batches: Iterable[Mapping[str, np.ndarray]], sharding: NamedSharding
) -> Iterator[dict[str, jax.Array]]:
    """Iterates host-local batches (e.g. `TrainBatches`) as global, sharded batches."""
    for batch in batches:
        yield to_global(batch, sharding)

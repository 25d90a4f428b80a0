"""Where a task's examples come from: a TFDS builder or the original download.

One switch picks the source for every task of a run, read when a dataset is
built (so gin bindings and environment variables set before that count):

  PROMPT_TUNING_DATA_SOURCE  `tfds`, `files` or `auto` (default: `files` when a
                             data root is set, else `tfds`)
  PROMPT_TUNING_DATA_DIR     root of the original files (local or gs://), laid
                             out as described in `prompt_tuning.data.readers`
  TFDS_DATA_DIR              TFDS's own variable for prepared datasets

and, in a job, the gin equivalents `prompt_tuning.data.data_options.source /
.data_dir / .tfds_data_dir`, which win over the environment (the job layer's
`prompt_tuning.configurables` registers them and hands TaskSource the gin-bound
`data_options` with `set_options_resolver`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence

import seqio
import tensorflow as tf
import tensorflow_datasets as tfds

from prompt_tuning.data.readers import RawDataset
from prompt_tuning.errors import InputError

ENV_SOURCE = "PROMPT_TUNING_DATA_SOURCE"
ENV_DATA_DIR = "PROMPT_TUNING_DATA_DIR"
ENV_TFDS_DATA_DIR = "TFDS_DATA_DIR"
SOURCES = ("auto", "tfds", "files")
# Raw files are read in order; shuffle within this many examples (all of most
# GLUE / SuperGLUE training sets) before the Task's own shuffle.
RAW_SHUFFLE_BUFFER = 65_536


class DataNotFoundError(FileNotFoundError):
    """A task's data is not where the configuration says it is."""


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """The resolved data source: `kind` is `tfds` or `files`."""

    kind: str
    data_dir: str | None
    tfds_data_dir: str | None


def data_options(
    source: str | None = None, data_dir: str | None = None, tfds_data_dir: str | None = None
) -> DataOptions:
    """Resolves the data source from the arguments, then the environment.

    Args:
      source: `tfds`, `files` or `auto`; None reads `PROMPT_TUNING_DATA_SOURCE`.
      data_dir: root of the original files; None reads `PROMPT_TUNING_DATA_DIR`.
      tfds_data_dir: TFDS data directory; None reads `TFDS_DATA_DIR` (TFDS's
        default when that is unset too).
    """
    source = source or os.environ.get(ENV_SOURCE) or "auto"
    if source not in SOURCES:
        raise InputError(
            f"Data source {source!r} (from gin `data_options.source` or ${ENV_SOURCE}) is not "
            f"one of {SOURCES}."
        )
    data_dir = data_dir or os.environ.get(ENV_DATA_DIR) or None
    if source == "auto":
        source = "files" if data_dir else "tfds"
    if source == "files" and not data_dir:
        raise DataNotFoundError(
            f"The data source is 'files' but no data root is set: export {ENV_DATA_DIR}=DIR "
            "(or bind prompt_tuning.data.data_options.data_dir) to the folder holding "
            "super_glue/, glue/, mrqa/ and squad/ as unzipped from the official downloads."
        )
    # Read here rather than left to TFDS, which reads it once, at import.
    tfds_data_dir = tfds_data_dir or os.environ.get(ENV_TFDS_DATA_DIR) or None
    return DataOptions(kind=source, data_dir=data_dir, tfds_data_dir=tfds_data_dir)


# What TaskSource calls for its options when it builds a dataset, so settings made
# before that count; a job replaces it with the gin-bound `data_options`.
_resolve_options: Callable[[], DataOptions] = data_options


def set_options_resolver(resolve: Callable[[], DataOptions]) -> None:
    """Makes every TaskSource read its data options from `resolve()` (default: `data_options`)."""
    global _resolve_options
    _resolve_options = resolve


def _how_to_provide(raw: RawDataset, tfds_name: str) -> str:
    expected = ", ".join(f"DIR/{path}" for path in raw.files.values())
    return (
        f"Provide it either as the original files under {ENV_DATA_DIR}=DIR (expected: {expected}; "
        f"{raw.origin}), or as the TFDS dataset {tfds_name} prepared under {ENV_TFDS_DATA_DIR} "
        f"with {ENV_SOURCE}=tfds."
    )


class TaskSource(seqio.DataSource):
    """A seqio source that reads a dataset from TFDS or from the original files.

    The choice is made per `get_dataset` call (see `set_options_resolver`).
    """

    def __init__(
        self, tfds_name: str, raw: RawDataset, tfds_splits: Mapping[str, str] | None = None
    ):
        """Builds the source.

        Args:
          tfds_name: `name/config:version`, e.g. `super_glue/rte:1.0.2`.
          raw: the same dataset in its original files; its splits are the task's.
          tfds_splits: task split -> TFDS split where the names differ.
        """
        self._tfds_name = tfds_name
        self._raw = raw
        self._tfds_splits = {split: split for split in raw.files} | dict(tfds_splits or {})
        super().__init__(splits=tuple(raw.files))

    @property
    def tfds_name(self) -> str:
        return self._tfds_name

    @property
    def raw(self) -> RawDataset:
        return self._raw

    @property
    def supports_arbitrary_sharding(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"TaskSource({self._tfds_name!r}, splits={self.splits})"

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise InputError(
                f"{self._raw.name} has no split {split!r}; its splits are {list(self.splits)}."
            )

    def _tfds_source(self, options: DataOptions) -> seqio.TfdsDataSource:
        builder = tfds.builder(self._tfds_name, data_dir=options.tfds_data_dir)
        if not builder.is_prepared():
            raise DataNotFoundError(
                f"TFDS dataset {self._tfds_name} is not prepared in {builder.data_dir_root}. "
                + _how_to_provide(self._raw, self._tfds_name)
            )
        return seqio.TfdsDataSource(
            self._tfds_name,
            tfds_data_dir=options.tfds_data_dir,
            splits=self._tfds_splits,
            read_only=True,
        )

    def raw_path(self, split: str, data_dir: str) -> str:
        """The existing file of `split` under `data_dir` (a gunzipped copy also counts)."""
        self._check_split(split)
        path = os.path.join(data_dir, self._raw.files[split])
        candidates = [path, path.removesuffix(".gz")] if path.endswith(".gz") else [path]
        for candidate in candidates:
            if tf.io.gfile.exists(candidate):
                return candidate
        raise DataNotFoundError(
            f"No file for split {split!r} of {self._raw.name}: {path} does not exist. "
            + _how_to_provide(self._raw, self._tfds_name)
        )

    def _raw_dataset(
        self, split: str, data_dir: str, shuffle: bool, seed: int | None
    ) -> tf.data.Dataset:
        path = self.raw_path(split, data_dir)
        dataset = tf.data.Dataset.from_generator(
            lambda: self._raw.read(path), output_signature=dict(self._raw.signature)
        )
        if shuffle:
            dataset = dataset.shuffle(RAW_SHUFFLE_BUFFER, seed=seed)
        return dataset

    def get_dataset(
        self,
        split: str = "train",
        shuffle: bool = True,
        seed: int | None = None,
        shard_info: seqio.ShardInfo | None = None,
        *,
        sequence_length: Mapping[str, int] | None = None,
        use_cached: bool = False,
        num_epochs: int | None = 1,
    ) -> tf.data.Dataset:
        """Raw examples of `split` from the configured source (see `data_options`)."""
        del sequence_length, use_cached, num_epochs  # Handled by the Task.
        self._check_split(split)
        options = _resolve_options()
        if options.kind == "tfds":
            return self._tfds_source(options).get_dataset(
                split, shuffle=shuffle, seed=seed, shard_info=shard_info
            )
        dataset = self._raw_dataset(split, options.data_dir, shuffle, seed)
        if shard_info is not None:
            dataset = dataset.shard(shard_info.num_shards, shard_info.index)
        return dataset

    def list_shards(self, split: str) -> Sequence[str]:
        # The Task shards examples itself when a source lists fewer shards than
        # processes; one shard per split keeps that path for both kinds.
        return [split]

    def num_input_examples(self, split: str) -> int | None:  # noqa: ARG002  (seqio interface)
        return None

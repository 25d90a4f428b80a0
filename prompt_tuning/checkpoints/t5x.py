"""T5X checkpoints in their native layout: a msgpack `checkpoint` file + zarr arrays.

`MODEL_DIR/checkpoint_<step>/checkpoint` is the flax msgpack of
`{'version': 3, 'optimizer': {'target': params, 'state': {'step', 'param_states'}}}`.
Each leaf is either an inline array or a tensorstore spec dict pointing at a
zarr array whose kvstore path is relative to the step folder, e.g.
`checkpoint_3/target.encoder.layers_0.attention.query.kernel/`. The recorded
kvstore driver ('file', 'gfile' or 'gcs') says where the writer ran, not where
the checkpoint is now, so the reader takes the driver from the step folder.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorstore as ts
from flax import serialization

from prompt_tuning.checkpoints import paths
from prompt_tuning.checkpoints.errors import CheckpointError
from prompt_tuning.checkpoints.lazy import Index, LazyArray, in_memory

CHECKPOINT_FILE = "checkpoint"
VERSION = 3
_KVSTORE_DRIVERS = ("file", "gfile", "gcs")
# T5X aims for 64 MiB chunks: large enough for object stores, small enough that
# every common partitioning reads whole chunks.
_CHUNK_BYTES = 64 * 1024 * 1024


def is_step_dir(path: paths.PathLike) -> bool:
    """Whether `path` holds a msgpack T5X checkpoint (`path/checkpoint` file)."""
    return paths.as_epath(paths.join(path, CHECKPOINT_FILE)).is_file()


def read_params(step_dir: paths.PathLike) -> dict[str, Any]:
    """Opens the model parameters (`optimizer/target`) of a msgpack T5X checkpoint.

    Args:
      step_dir: a `checkpoint_<step>` folder (local, `file://` or `gs://`).

    Returns:
      Nested dict of `LazyArray` with T5X names (`encoder/layers_0/...`); zarr
      leaves are opened (shape and dtype known) but not yet read.

    Raises:
      CheckpointError: when the file is not a T5X checkpoint or an array is
        missing or malformed.
    """
    location = paths.normalize(step_dir)
    msgpack_path = paths.join(location, CHECKPOINT_FILE)
    try:
        contents = serialization.msgpack_restore(paths.as_epath(msgpack_path).read_bytes())
    except FileNotFoundError as e:
        raise CheckpointError(f"{location}: no T5X `{CHECKPOINT_FILE}` file.") from e
    except Exception as e:  # msgpack raises several unrelated types on bad bytes
        raise CheckpointError(f"{msgpack_path}: not a flax msgpack file ({e}).") from e
    # Version 0 files hold the optimizer state at the top level.
    optimizer = contents.get("optimizer", contents) if isinstance(contents, Mapping) else None
    if not isinstance(optimizer, Mapping) or not isinstance(optimizer.get("target"), Mapping):
        raise CheckpointError(
            f"{msgpack_path}: no 'optimizer/target' parameter tree; this is not a T5X checkpoint."
        )
    return _open_tree(optimizer["target"], location, ())


def _is_spec(node: Any) -> bool:
    return isinstance(node, Mapping) and {"driver", "kvstore"} <= set(node)


def _open_tree(node: Mapping, step_dir: str, prefix: tuple[str, ...]) -> dict[str, Any]:
    opened = {}
    for key, value in node.items():
        path = (*prefix, key)
        if _is_spec(value):
            opened[key] = _open_zarr(value, step_dir, "/".join(path))
        elif isinstance(value, Mapping):
            opened[key] = _open_tree(value, step_dir, path)
        else:
            opened[key] = in_memory("/".join(path), value)
    return opened


def zarr_location(step_dir: str, spec: Mapping[str, Any], name: str) -> str:
    """Absolute location of a zarr leaf whose spec holds a path relative to `step_dir`.

    The recorded kvstore driver is checked but not used: the location (and so
    the tensorstore driver, via `paths.kvstore_spec`) follows `step_dir`.
    """
    kvstore = spec["kvstore"]
    relative = kvstore.get("path", spec.get("path"))  # tensorstore < 0.1.14 kept it top-level
    if kvstore.get("driver") not in _KVSTORE_DRIVERS or not relative:
        raise CheckpointError(
            f"{step_dir}: parameter {name} has an unsupported tensorstore spec {dict(spec)}."
        )
    return paths.join(step_dir, relative)


def _open_zarr(spec: Mapping[str, Any], step_dir: str, name: str) -> LazyArray:
    """Opens one zarr leaf (metadata only; values are read region by region later)."""
    where = zarr_location(step_dir, spec, name)
    store = _open_store(where, name)
    expected = spec.get("metadata", {}).get("shape")
    if expected is not None and tuple(expected) != tuple(store.shape):
        raise CheckpointError(
            f"{where}: parameter {name} has shape {tuple(store.shape)} on disk but "
            f"{tuple(expected)} in the msgpack file."
        )
    return LazyArray(
        name=f"{name} ({where})",
        shape=tuple(store.shape),
        dtype=np.dtype(store.dtype.numpy_dtype),
        read=functools.partial(_read_region, store, where, name),
    )


def _open_store(where: str, name: str) -> ts.TensorStore:
    spec = {"driver": "zarr", "kvstore": paths.kvstore_spec(where)}
    try:
        # T5X writes no fill value, so every chunk must exist: a missing chunk is
        # a truncated copy and must fail rather than read back as zeros.
        store = ts.open({**spec, "fill_missing_data_reads": False}, read=True).result()
        if store.fill_value is not None:
            store = ts.open(spec, read=True).result()
    except ValueError as e:
        raise CheckpointError(f"{where}: cannot open the zarr array of {name}: {e}") from e
    return store


def _read_region(store: ts.TensorStore, where: str, name: str, index: Index) -> np.ndarray:
    try:
        return store[index].read().result()
    except ValueError as e:
        raise CheckpointError(
            f"{where}: the zarr array of {name} is truncated or corrupt: {e}"
        ) from e


def save_t5x(params: Mapping[str, Any], model_dir: paths.PathLike, step: int) -> str:
    """Writes `params` as `model_dir/checkpoint_<step>` in the T5X v3 layout.

    Matrices and larger go to gzip-compressed zarr arrays next to the msgpack
    file (as T5X does for partitioned parameters); vectors stay inline. The
    optimizer state holds only the step (`param_states` is empty): this is a
    model checkpoint, not a resumable T5X training state. Single-process writer.

    Args:
      params: nested dict of arrays with T5X names, no 'target' prefix.
      model_dir: the T5X model directory (local, `file://` or `gs://`).
      step: the step number of the folder name.

    Returns:
      The path of the new `checkpoint_<step>` folder.
    """
    final = paths.join(model_dir, f"checkpoint_{step}")
    with paths.staged_directory(final) as staging:
        target = _write_tree(params, staging, ("target",))
        contents = {
            "version": VERSION,
            "optimizer": {
                "target": target,
                "state": {"step": np.asarray(step, np.int32), "param_states": {}},
            },
        }
        # Written last: on GCS, where folders cannot be renamed, the msgpack
        # file is what marks the checkpoint complete.
        paths.as_epath(paths.join(staging, CHECKPOINT_FILE)).write_bytes(
            serialization.msgpack_serialize(contents)
        )
    return final


def _write_tree(node: Mapping[str, Any], step_dir: str, prefix: tuple[str, ...]) -> dict:
    written = {}
    for key, value in node.items():
        path = (*prefix, key)
        if isinstance(value, Mapping):
            written[key] = _write_tree(value, step_dir, path)
            continue
        array = np.asarray(value)
        written[key] = _write_zarr(array, step_dir, ".".join(path)) if array.ndim >= 2 else array
    return written


def _write_zarr(array: np.ndarray, step_dir: str, relative: str) -> dict[str, Any]:
    """Writes one zarr array; returns the relative spec that goes into the msgpack file."""
    metadata = {
        "shape": list(array.shape),
        "chunks": chunk_shape(array.shape, array.dtype.itemsize),
        "compressor": {"id": "gzip"},
    }
    spec = {"driver": "zarr", "dtype": array.dtype.name, "metadata": metadata}
    store = ts.open(
        {**spec, "kvstore": paths.kvstore_spec(paths.join(step_dir, relative))},
        create=True,
    ).result()
    store.write(array).result()
    return {**spec, "kvstore": {"driver": "file", "path": relative}}


def chunk_shape(shape: tuple[int, ...], itemsize: int, max_bytes: int = _CHUNK_BYTES) -> list[int]:
    """Largest chunk that divides `shape` evenly and fits in `max_bytes`.

    Repeatedly splits the currently largest chunk dimension by its smallest
    prime factor, so chunks stay as square as the shape allows.
    """
    chunks = list(shape)
    while int(np.prod(chunks)) * itemsize > max_bytes and max(chunks) > 1:
        axis = int(np.argmax(chunks))
        chunks[axis] //= _smallest_factor(chunks[axis])
    return chunks


def _smallest_factor(n: int) -> int:
    return next((f for f in range(2, int(n**0.5) + 1) if n % f == 0), n)

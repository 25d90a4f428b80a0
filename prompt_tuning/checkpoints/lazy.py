"""Arrays that stay on disk until a region of them is asked for.

Readers return trees of `LazyArray`: the shapes alone tell the architecture
(`models.config_from_params` reads only `.shape`), and `materialize` then reads
each leaf either whole into host memory or shard by shard straight into a
sharded `jax.Array`, so no process ever holds a full copy of an 11B model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Index = tuple[slice, ...]


@dataclasses.dataclass(frozen=True)
class LazyArray:
    """An array known by shape and dtype, read one region at a time.

    Attributes:
      name: where the array lives, for error messages.
      shape: full shape.
      dtype: dtype on disk.
      read: returns the region `index` (a tuple of slices, one per axis).
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    read: Callable[[Index], np.ndarray]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def T(self) -> LazyArray:  # numpy's name for the transposed view
        """The transpose, still lazy: a region of it is the transposed mirror region."""
        return LazyArray(
            name=f"{self.name}.T",
            shape=self.shape[::-1],
            dtype=self.dtype,
            read=lambda index: self.read(_full(self.ndim, index)[::-1]).T,
        )

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        del copy  # every read returns a fresh array
        whole = self.read(_full(self.ndim, ()))
        return whole if dtype is None else whole.astype(dtype)


def _full(ndim: int, index: Index) -> Index:
    """Pads `index` with whole-axis slices up to `ndim` entries."""
    return tuple(index) + (slice(None),) * (ndim - len(index))


def in_memory(name: str, array: np.ndarray) -> LazyArray:
    """Wraps an array that is already in host memory (e.g. inline msgpack leaves)."""
    array = np.asarray(array)
    return LazyArray(name, array.shape, array.dtype, lambda index: array[index])


def _cast(array: np.ndarray, dtype: Any) -> np.ndarray:
    return array if dtype is None else np.asarray(array).astype(jnp.dtype(dtype), copy=False)


def materialize(tree: Any, shardings: Any = None, dtype: Any = None) -> Any:
    """Reads every `LazyArray` of `tree`.

    Args:
      tree: nested dict of `LazyArray`.
      shardings: `None` for host `np.ndarray`s, or a matching tree of
        `jax.sharding.Sharding`s: each device then reads only its own shard.
      dtype: cast every leaf to this dtype (e.g. `"bfloat16"`); `None` keeps
        the dtype on disk, bit for bit.

    Returns:
      The same tree with `np.ndarray` (no shardings) or `jax.Array` leaves.
    """
    is_lazy = lambda x: isinstance(x, LazyArray)  # noqa: E731
    if shardings is None:
        return jax.tree.map(lambda a: _cast(np.asarray(a), dtype), tree, is_leaf=is_lazy)

    def read_sharded(array: LazyArray, sharding: jax.sharding.Sharding) -> jax.Array:
        return jax.make_array_from_callback(
            array.shape, sharding, lambda index: _cast(array.read(_full(array.ndim, index)), dtype)
        )

    return jax.tree.map(read_sharded, tree, shardings, is_leaf=is_lazy)

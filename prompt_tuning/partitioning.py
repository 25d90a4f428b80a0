"""Device mesh, logical-axis rules and the shardings of params, prompt and batch.

Every parameter and activation is annotated with *logical* axis names
('embed', 'mlp', 'heads', ...). The rules below map them onto the two *mesh*
axes, 'data' and 'model', exactly as T5X's default rules do, so a gin file
changes parallelism by changing the mesh shape alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from prompt_tuning.errors import InputError, RunError

if TYPE_CHECKING:
    from prompt_tuning.models import T5Config

MESH_AXES = ("data", "model")

LogicalRules = Sequence[tuple[str, str | None]]

DEFAULT_RULES: LogicalRules = (
    ("batch", "data"),
    ("vocab", "model"),
    ("mlp", "model"),
    ("heads", "model"),
    ("joined_kv", "model"),
    ("embed", None),
    ("kv", None),
    ("length", None),
    ("relpos_buckets", None),
    ("layers", None),
)
# The trainable state (the prompt, a method's parameters) has no logical axes: it is
# replicated (`trainer.jit_train_step`), so that a prompt checkpoint is one small array.


def make_mesh(
    mesh_shape: Sequence[int] = (-1, 1),
    axis_names: Sequence[str] = MESH_AXES,
    devices: Sequence[jax.Device] | None = None,
) -> Mesh:
    """Builds a mesh over all (global) devices; one `-1` entry takes the rest.

    Args:
      mesh_shape: size of each mesh axis, e.g. `(4, 2)` for data=4, model=2.
      axis_names: names of the mesh axes.
      devices: defaults to `jax.devices()`, i.e. every device of every process.
    """
    devices = list(jax.devices() if devices is None else devices)
    shape = list(mesh_shape)
    if shape.count(-1) > 1:
        raise InputError(f"mesh_shape {tuple(mesh_shape)} has more than one -1.")
    known = int(np.prod([s for s in shape if s != -1]))
    if -1 in shape:
        if len(devices) % known:
            raise InputError(f"{len(devices)} devices do not divide into mesh {tuple(mesh_shape)}.")
        shape[shape.index(-1)] = len(devices) // known
    if int(np.prod(shape)) != len(devices):
        raise InputError(
            f"mesh_shape {tuple(mesh_shape)} needs {int(np.prod(shape))} devices, "
            f"but {len(devices)} are available."
        )
    # Auto axes: shardings follow the logical-axis annotations and XLA's
    # propagation (GSPMD), as in T5X, rather than explicit per-op sharding types.
    auto = (jax.sharding.AxisType.Auto,) * len(shape)
    return jax.make_mesh(tuple(shape), tuple(axis_names), axis_types=auto, devices=devices)


@contextlib.contextmanager
def activation_sharding(mesh: Mesh, rules: LogicalRules = DEFAULT_RULES) -> Iterator[None]:
    """The mesh and the logical-axis rules, for tracing a step inside the `with` block.

    The model's `nn.with_logical_constraint` calls are no-ops unless rules are
    active when the step is traced; with them, XLA keeps activations sharded as
    the rules say (T5X's behaviour) instead of choosing on its own.
    """
    with jax.set_mesh(mesh), nn.logical_axis_rules(list(rules)):
        yield


def _sharded_sizes(config: T5Config) -> dict[str, tuple[int, str]]:
    """Each logical axis the rules may shard: (its size in `config`, the field it comes from)."""
    return {
        "vocab": (config.vocab_size, "vocab_size"),
        "mlp": (config.d_ff, "d_ff"),
        "heads": (config.num_heads, "num_heads"),
        "joined_kv": (config.num_heads * config.d_kv, "num_heads * d_kv"),
    }


def check_mesh_fits(config: T5Config, mesh: Mesh, rules: LogicalRules = DEFAULT_RULES) -> None:
    """Raises `RunError` naming the mesh axis and the dimension when one does not divide the other.

    Checked before anything is placed on devices, so the run stops with this
    message rather than a device_put or compilation failure.
    """
    mapping = dict(rules)
    for logical, (size, field) in _sharded_sizes(config).items():
        axis = mapping.get(logical)
        devices = mesh.shape.get(axis, 1) if axis else 1
        if size % devices:
            raise RunError(
                f"Mesh axis {axis!r} has {devices} devices, which does not divide the model's "
                f"{logical} dimension ({field} = {size}): use a mesh whose {axis!r} size "
                f"divides {size} (make_mesh.mesh_shape in gin/hardware/*.gin)."
            )


def check_batch_fits(batch_size: int, mesh: Mesh, rules: LogicalRules = DEFAULT_RULES) -> None:
    """Raises `RunError` when the mesh axis that splits the batch does not divide it."""
    axis = dict(rules).get("batch")
    devices = mesh.shape.get(axis, 1) if axis else 1
    if batch_size % devices:
        raise RunError(
            f"Mesh axis {axis!r} has {devices} devices, which does not divide the batch size "
            f"(BATCH_SIZE = {batch_size}): use a batch size that is a multiple of {devices}."
        )


def logical_to_sharding(logical_axes: Any, mesh: Mesh, rules: LogicalRules = DEFAULT_RULES) -> Any:
    """Maps a pytree of logical `PartitionSpec`s to a pytree of `NamedSharding`s."""
    return nn.logical_to_mesh_sharding(logical_axes, mesh, list(rules))


def replicated(mesh: Mesh) -> NamedSharding:
    """A sharding that holds a full copy on every device (used for the prompt)."""
    return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh, rules: LogicalRules = DEFAULT_RULES) -> NamedSharding:
    """Sharding of a `[batch, length]` input array: batch split over 'data'."""
    return logical_to_sharding(PartitionSpec("batch", "length"), mesh, rules)


def host_to_global(tree: Any, sharding: NamedSharding) -> Any:
    """Global arrays from host values that every process holds identically.

    Unlike `jax.device_put`, this works when the sharding spans devices of other
    processes: each process fills only its own devices' shards.
    """

    def put(x: Any) -> jax.Array:
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

    return jax.tree.map(put, tree)


def fetch_replicated(tree: Any) -> Any:
    """Host copies of replicated global arrays, read from this process's first shard."""
    return jax.tree.map(
        lambda x: np.asarray(x.addressable_data(0)) if isinstance(x, jax.Array) else x, tree
    )


def fetch_global(x: jax.Array) -> np.ndarray:
    """The full value of a possibly sharded global array on every process."""
    from jax.experimental import multihost_utils

    if x.is_fully_addressable:
        return np.asarray(jax.device_get(x))
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))

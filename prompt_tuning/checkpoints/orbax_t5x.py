"""T5X checkpoints written with Orbax: `MODEL_DIR/checkpoint_<step>/state/`.

Newer T5X saves its train state through an Orbax `CheckpointManager` with
step prefix `checkpoint` and one item, `state`: a PyTree checkpoint (OCDBT,
`_METADATA`) of `{'target': params, 'state': {'step', 'param_states'}}`.
Only `target` is read; Orbax restores each array straight into its shards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from prompt_tuning.checkpoints import paths
from prompt_tuning.checkpoints.errors import CheckpointError

STATE_ITEM = "state"
_TARGET = "target"


def is_step_dir(path: paths.PathLike) -> bool:
    """Whether `path` is a `checkpoint_<step>` folder of an Orbax-saved T5X run."""
    return paths.as_epath(paths.join(path, STATE_ITEM)).is_dir()


def _state_dir(step_dir: paths.PathLike):
    return paths.as_epath(paths.join(step_dir, STATE_ITEM))


def read_shapes(step_dir: paths.PathLike) -> dict[str, Any]:
    """Shapes and dtypes of the saved params, read from Orbax metadata only.

    Returns:
      Nested dict of `jax.ShapeDtypeStruct` with T5X names (no 'target').

    Raises:
      CheckpointError: when the metadata is unreadable or has no 'target' tree.
    """
    state_dir = _state_dir(step_dir)
    try:
        tree = ocp.PyTreeCheckpointHandler().metadata(state_dir).tree
    except Exception as e:  # Orbax raises many types for a damaged folder
        raise CheckpointError(f"{state_dir}: unreadable Orbax checkpoint metadata ({e}).") from e
    if not isinstance(tree, Mapping) or _TARGET not in tree:
        keys = sorted(tree) if isinstance(tree, Mapping) else type(tree).__name__
        raise CheckpointError(
            f"{state_dir}: Orbax checkpoint has no '{_TARGET}' parameter tree (found {keys})."
        )
    return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype), tree[_TARGET])


def read_params(
    step_dir: paths.PathLike, shapes: Any, shardings: Any = None, dtype: Any = None
) -> dict[str, Any]:
    """Restores the params (`target`) of an Orbax T5X checkpoint.

    Args:
      step_dir: the `checkpoint_<step>` folder.
      shapes: the tree returned by `read_shapes`.
      shardings: `None` for host `np.ndarray`s, or a matching tree of
        shardings: Orbax then reads each device's shard only.
      dtype: cast every leaf to this dtype; `None` keeps the saved dtype.

    Raises:
      CheckpointError: when an array cannot be read.
    """
    cast = None if dtype is None else jnp.dtype(dtype)
    if shardings is None:
        args = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray, dtype=cast), shapes)
    else:
        args = jax.tree.map(lambda s: ocp.ArrayRestoreArgs(sharding=s, dtype=cast), shardings)
    state_dir = _state_dir(step_dir)
    restore = ocp.args.PyTreeRestore(
        item={_TARGET: shapes}, restore_args={_TARGET: args}, partial_restore=True
    )
    try:
        return ocp.PyTreeCheckpointHandler().restore(state_dir, args=restore)[_TARGET]
    except Exception as e:  # tensorstore / OCDBT errors surface as several types
        raise CheckpointError(f"{state_dir}: cannot restore the parameters ({e}).") from e


def save_orbax_t5x(params: Mapping[str, Any], model_dir: paths.PathLike, step: int) -> str:
    """Writes `params` as T5X's Orbax layout, `model_dir/checkpoint_<step>/state/`.

    The state tree is `{'target': params, 'state': {'step': step, 'param_states': {}}}`,
    i.e. a model checkpoint without optimizer slots. Orbax commits the step
    folder atomically itself.

    Returns:
      The path of the new `checkpoint_<step>` folder.
    """
    final = paths.join(model_dir, f"checkpoint_{step}")
    if paths.as_epath(final).exists():
        raise CheckpointError(f"{final}: already exists; refusing to overwrite it.")
    state = {
        _TARGET: params,
        "state": {"step": np.asarray(step, np.int32), "param_states": {}},
    }
    options = ocp.CheckpointManagerOptions(step_prefix="checkpoint", create=True)
    with ocp.CheckpointManager(
        paths.as_epath(model_dir), item_names=(STATE_ITEM,), options=options
    ) as manager:
        manager.save(step, args=ocp.args.Composite(**{STATE_ITEM: ocp.args.PyTreeSave(state)}))
        manager.wait_until_finished()
    return final

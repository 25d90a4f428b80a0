"""`load`: any supported checkpoint path -> `(T5Config, params)` with T5X names.

Supported paths (local, `file://` or `gs://`):
- a T5X model dir holding `checkpoint_<step>` folders (latest step, or `step=`);
- a `checkpoint_<step>` folder, msgpack + zarr (`checkpoint` file) or Orbax (`state/`);
- an HF T5 folder (`config.json` + safetensors / `pytorch_model.bin`, sharded or not).

Reading is two-phase: open every array lazily, infer the config from the
shapes (or read it from `config.json`), and only then read the values,
straight into their shards when a mesh is given.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Literal

import jax.numpy as jnp
from jax.sharding import Mesh

from prompt_tuning import models, partitioning
from prompt_tuning.checkpoints import hf, hf_files, orbax_t5x, paths, t5x
from prompt_tuning.checkpoints.errors import CheckpointError
from prompt_tuning.checkpoints.lazy import LazyArray, materialize
from prompt_tuning.models.config import T5Config, config_from_params

Format = Literal["t5x", "orbax_t5x", "hf"]
_STEP_DIR = re.compile(r"^checkpoint_(\d+)$")


@dataclasses.dataclass(frozen=True)
class Source:
    """A resolved checkpoint: its format, its folder and (T5X only) its step."""

    format: Format
    path: str
    step: int | None = None


def _step_format(step_dir: str) -> Format | None:
    if t5x.is_step_dir(step_dir):
        return "t5x"
    if orbax_t5x.is_step_dir(step_dir):
        return "orbax_t5x"
    return None


def all_steps(model_dir: paths.PathLike) -> list[int]:
    """Steps of the complete `checkpoint_<step>` folders under a T5X model dir, ascending.

    A folder counts once its commit marker exists (the msgpack `checkpoint`
    file or Orbax's `state/`), so half-written or temporary folders are skipped.
    """
    location = paths.as_epath(model_dir)
    if not location.is_dir():
        return []
    steps = []
    for child in location.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and _step_format(paths.join(model_dir, child.name)):
            steps.append(int(match.group(1)))
    return sorted(steps)


def resolve(path: paths.PathLike, step: int | None = None) -> Source:
    """Finds which checkpoint `path` (and `step`) name.

    Raises:
      CheckpointError: when the path is missing, is not a checkpoint (the
        message lists what was looked for) or the step does not exist (the
        message lists the available steps).
    """
    location = paths.normalize(path)
    paths.require_exists(location)
    name = paths.as_epath(location).name
    step_format = _step_format(location)
    if step_format:
        match = _STEP_DIR.match(name)
        own_step = int(match.group(1)) if match else None
        if step is not None and own_step is not None and step != own_step:
            raise CheckpointError(
                f"{location}: is the checkpoint of step {own_step}, but step={step} was asked for."
            )
        return Source(step_format, location, own_step)
    if hf_files.is_hf_dir(location):
        if step is not None:
            raise CheckpointError(f"{location}: an HF model folder has no steps (step={step}).")
        return Source("hf", location)
    steps = all_steps(location)
    if not steps:
        raise CheckpointError(
            f"{location}: not a checkpoint. Looked for a T5X `checkpoint` file, an Orbax "
            "`state/` folder, `checkpoint_<step>/` folders holding either, and an HF "
            "`config.json`."
        )
    chosen = steps[-1] if step is None else step
    if chosen not in steps:
        raise CheckpointError(
            f"{location}: has no checkpoint for step {step}; available steps: {steps}."
        )
    step_dir = paths.join(location, f"checkpoint_{chosen}")
    return Source(_step_format(step_dir), step_dir, chosen)


def load(
    path: paths.PathLike,
    *,
    step: int | None = None,
    dtype: Any = None,
    mesh: Mesh | None = None,
    rules: partitioning.LogicalRules | None = None,
) -> tuple[T5Config, dict[str, Any]]:
    """Loads a T5 checkpoint of any supported format.

    Args:
      path: T5X model dir, `checkpoint_<step>` folder (msgpack or Orbax) or
        HF model folder; local, `file://` or `gs://`.
      step: for a T5X model dir, the step to load (default: the latest).
      dtype: cast every parameter to this dtype (e.g. `"bfloat16"`); also
        recorded as the config's `param_dtype`. `None` keeps the stored dtype.
      mesh: when given, every parameter is read straight into its shards,
        sharded by `models.logical_axes(config)` under `rules`.
      rules: logical-axis rules; default `partitioning.DEFAULT_RULES`.

    Returns:
      `(config, params)`: params is a nested dict with T5X names (no
      'target'), unscanned; `np.ndarray` leaves without a mesh, sharded
      `jax.Array` leaves with one.

    Raises:
      CheckpointError: for a missing path, an unknown layout, a missing step,
        corrupt arrays or a config that disagrees with the weights.
    """
    source = resolve(path, step)
    if source.format == "hf":
        config, tree = _open_hf(source.path)
    else:
        read = orbax_t5x.read_shapes if source.format == "orbax_t5x" else t5x.read_params
        tree = read(source.path)
        config = _config_from_shapes(tree, source.path)
    if dtype is not None:
        config = config.replace(param_dtype=jnp.dtype(dtype).name)
    shardings = _shardings(config, mesh, rules)
    if source.format == "orbax_t5x":  # Orbax reads its arrays itself, shard by shard
        return config, orbax_t5x.read_params(source.path, tree, shardings, dtype)
    return config, materialize(tree, shardings, dtype)


def _config_from_shapes(tree: Any, where: str) -> T5Config:
    try:
        return config_from_params(tree)
    except ValueError as e:
        raise CheckpointError(f"{where}: {e}") from e


def _open_hf(model_dir: str) -> tuple[T5Config, dict[str, LazyArray]]:
    """Config from `config.json`, params as lazy T5X-named views of the HF tensors."""
    try:
        config = hf.config_from_hf_dict(hf_files.read_config(model_dir))
        return config, hf.params_from_hf_state_dict(hf_files.read_weights(model_dir), config)
    except CheckpointError:
        raise
    except ValueError as e:  # the mapping's own errors name the tensor, not the folder
        raise CheckpointError(f"{model_dir}: {e}") from e


def _shardings(config: T5Config, mesh: Mesh | None, rules: Any) -> Any:
    if mesh is None:
        return None
    rules = partitioning.DEFAULT_RULES if rules is None else rules
    partitioning.check_mesh_fits(config, mesh, rules)
    return partitioning.logical_to_sharding(models.logical_axes(config), mesh, rules)

"""The prompt-tuning train step as the benchmarks compile it.

Shared by `memory.py` (abstract inputs, compile only) and `train_step.py` (real
inputs, timed): the step is `trainer.make_train_step` jitted by
`trainer.jit_train_step`, the functions `experiment.train` calls (replicated
prompt state, frozen params sharded by their logical axes, batch split over
'data', the state donated), so what the benchmarks measure is what a training
run executes.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from prompt_tuning import partitioning, trainer
from prompt_tuning.models import T5, T5Config, logical_axes, param_shapes, stack_layers

Batch = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Shapes:
    """One global batch: `batch` rows of `input_length` tokens (+ the prompt) and targets."""

    batch: int
    input_length: int
    target_length: int
    prompt_length: int

    @property
    def encoder_length(self) -> int:
        """Encoder positions the model runs over: the prompt joins the input."""
        return self.input_length + self.prompt_length

    def describe(self) -> str:
        return (
            f"batch {self.batch} x ({self.input_length} input + {self.prompt_length} prompt) "
            f"tokens, {self.target_length} targets"
        )


def parse_mesh(text: str) -> tuple[int, int]:
    """`"2x4"` -> `(2, 4)`: the sizes of the ('data', 'model') mesh axes.

    Raises:
      ValueError: naming `text` when it is not two positive integers joined by 'x'.
    """
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"Mesh {text!r} is not DATAxMODEL with positive sizes, e.g. '1x8'.")
    return int(parts[0]), int(parts[1])


def make_mesh(mesh_shape: tuple[int, int], devices: list[jax.Device] | None = None) -> Mesh:
    """A ('data', 'model') mesh over the first `data * model` devices.

    Raises:
      ValueError: when fewer devices exist than the mesh needs.
    """
    devices = list(jax.devices() if devices is None else devices)
    needed = mesh_shape[0] * mesh_shape[1]
    if needed > len(devices):
        raise ValueError(
            f"Mesh {mesh_shape[0]}x{mesh_shape[1]} needs {needed} devices; "
            f"{len(devices)} {devices[0].platform} devices are available."
        )
    return partitioning.make_mesh(mesh_shape, devices=devices[:needed])


def _divisible(sharding: NamedSharding, shape: tuple[int, ...]) -> NamedSharding:
    """`sharding` with every mesh axis that does not divide its dimension dropped.

    jit rejects uneven input shardings; a dimension such as the tiny model's 4
    heads on an 8-way 'model' axis is then replicated, as a user would have to.
    """
    mesh = sharding.mesh
    spec = list(sharding.spec) + [None] * (len(shape) - len(sharding.spec))
    for i, axes in enumerate(spec):
        names = (axes,) if isinstance(axes, str) else tuple(axes or ())
        ways = int(np.prod([mesh.shape[name] for name in names]))
        if shape[i] % ways:
            spec[i] = None
    return NamedSharding(mesh, PartitionSpec(*spec))


@functools.cache
def frozen_layout(config: T5Config) -> Any:
    """`ShapeDtypeStruct`s of the frozen params in the layout `config` runs (scanned or not).

    Cached: tracing the model's initialisers takes seconds for the large sizes.
    """
    shapes = param_shapes(config)
    if config.scan_layers:
        shapes = jax.eval_shape(functools.partial(stack_layers, config=config), shapes)
    return shapes


def frozen_shardings(config: T5Config, mesh: Mesh) -> Any:
    """Shardings of the frozen params by `partitioning.DEFAULT_RULES`, made even."""
    logical = logical_axes(config, scanned=config.scan_layers)
    shardings = partitioning.logical_to_sharding(logical, mesh)
    return jax.tree.map(lambda s, x: _divisible(s, x.shape), shardings, frozen_layout(config))


def jit_train_step(
    config: T5Config, mesh: Mesh, optimizer: Any
) -> Callable[..., tuple[trainer.TrainState, dict[str, jax.Array]]]:
    """The prompt-tuning step built and jitted by the training job's own functions.

    `trainer.jit_train_step` is what `experiment.train` calls (a test checks
    the identity); only the frozen shardings differ, made even for meshes whose
    'model' axis does not divide the tiny model's heads.
    """
    step_fn = trainer.make_train_step(trainer.prompt_objective(T5(config)), optimizer)
    return trainer.jit_train_step(step_fn, mesh, frozen_shardings(config, mesh))


def abstract_step_inputs(
    config: T5Config, shapes: Shapes, mesh: Mesh, optimizer: Any
) -> tuple[Any, Any, Batch, jax.ShapeDtypeStruct]:
    """`(state, frozen, batch, rng)` as sharded `ShapeDtypeStruct`s: nothing is allocated."""
    replicated = partitioning.replicated(mesh)

    def placed(tree: Any, shardings: Any) -> Any:
        return jax.tree.map(
            lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings
        )

    prompt = jax.ShapeDtypeStruct((shapes.prompt_length, config.d_model), jnp.float32)
    state = jax.eval_shape(lambda p: trainer.init_state(p, optimizer), prompt)
    state = placed(state, jax.tree.map(lambda _: replicated, state))
    frozen = placed(frozen_layout(config), frozen_shardings(config, mesh))
    rows = partitioning.batch_sharding(mesh)
    batch = {
        name: jax.ShapeDtypeStruct(shape, jnp.int32, sharding=rows)
        for name, shape in batch_shapes(shapes).items()
    }
    rng = jax.ShapeDtypeStruct((2,), jnp.uint32, sharding=replicated)
    return state, frozen, batch, rng


def batch_shapes(shapes: Shapes) -> dict[str, tuple[int, int]]:
    """The shape of each int32 feature of seqio's `EncDecFeatureConverter`.

    Inputs are `[batch, input_length]` (the model adds the prompt), targets
    `[batch, target_length]`.
    """
    inputs = (shapes.batch, shapes.input_length)
    targets = (shapes.batch, shapes.target_length)
    return {
        "encoder_input_tokens": inputs,
        "decoder_input_tokens": targets,
        "decoder_target_tokens": targets,
        "decoder_loss_weights": targets,
    }


def random_batch(shapes: Shapes, vocab_size: int, rng: np.random.Generator) -> Batch:
    """A full batch of random ids in `[2, vocab)` (no padding, no EOS), shaped as
    `batch_shapes`, every target token weighted."""
    targets = rng.integers(2, vocab_size, (shapes.batch, shapes.target_length), dtype=np.int32)
    return {
        "encoder_input_tokens": rng.integers(
            2, vocab_size, (shapes.batch, shapes.input_length), dtype=np.int32
        ),
        "decoder_input_tokens": np.pad(targets[:, :-1], ((0, 0), (1, 0))),
        "decoder_target_tokens": targets,
        "decoder_loss_weights": np.ones_like(targets),
    }

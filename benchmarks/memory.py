"""Compiled memory of one prompt-tuning train step for every named T5 size.

  python benchmarks/memory.py [--sizes t5_1_1_xxl ...] [--remat none full ...]
      [--meshes 1x1 8x1 1x8] [--batch 32] [--inputs 512] [--prompt 100] [--targets 8]
      [--dtype bfloat16] [--no-scan_layers]

Nothing is allocated: the frozen params, prompt state and batch are sharded
`jax.ShapeDtypeStruct`s, and `jit(step).lower(...).compile().memory_analysis()`
gives XLA's buffer assignment for one device of the mesh: arguments (frozen
params, prompt state, batch), outputs, aliased (donated) bytes and
temporaries; peak = arguments + outputs - aliased + temporaries. Meshes are
('data', 'model') on the host's CPU devices (8 virtual ones are created).

XLA:CPU has no bfloat16 matmul: it computes in float32, and its loop-invariant
code motion hoists the float32 conversion of every stacked (scanned) weight out
of the layer loop, so the program it compiles holds a float32 copy of the
weights that a bfloat16 accelerator program does not. Each row therefore gives
two peaks: as compiled, and compiled without `while-loop-invariant-code-motion`
(no hoisted weight copies; the intermediates are still float32 on CPU, so this
too is an upper bound for an accelerator).
"""

from __future__ import annotations

import os

# The sharded rows need 8 devices; on CPU that must be asked for before jax starts.
_DEVICES_FLAG = "--xla_force_host_platform_device_count"
if _DEVICES_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_DEVICES_FLAG}=8".strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import time  # noqa: E402
import typing  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402
from step_setup import (  # noqa: E402
    Shapes,
    abstract_step_inputs,
    jit_train_step,
    make_mesh,
    parse_mesh,
)

from prompt_tuning import partitioning, trainer  # noqa: E402
from prompt_tuning.models import CONFIGS, T5Config, param_shapes  # noqa: E402
from prompt_tuning.models.config import RematPolicy  # noqa: E402

GIB = 2**30
# Compared against 80e9 bytes, a little under the 80 GiB that 80 GB cards hold.
DEVICE_BYTES = 80e9
NO_HOISTING = {"xla_disable_hlo_passes": "while-loop-invariant-code-motion"}


@dataclasses.dataclass(frozen=True)
class StepMemory:
    """Bytes one device needs for one train step, from XLA's buffer assignment."""

    arguments: int
    outputs: int
    aliased: int
    temporaries: int
    compile_s: float  # lowered -> compiled

    @property
    def peak(self) -> int:
        """Everything live at once: donated inputs are reused as outputs."""
        return self.arguments + self.outputs - self.aliased + self.temporaries


def lower_step(config: T5Config, shapes: Shapes, mesh_shape: tuple[int, int]) -> Any:
    """The prompt-tuning train step lowered for abstract inputs (no array is allocated).

    Args:
      config: the model, with the dtypes, remat policy and layer scan to measure.
      shapes: the global batch.
      mesh_shape: ('data', 'model') sizes; the step is lowered for that many devices.
    """
    mesh = make_mesh(mesh_shape)
    optimizer = trainer.make_optimizer()
    # Shapes and shardings come from `eval_shape` of the model's init, which
    # must run outside the activation rules; only the step's trace needs them.
    step = jit_train_step(config, mesh, optimizer)
    inputs = abstract_step_inputs(config, shapes, mesh, optimizer)
    with partitioning.activation_sharding(mesh):
        return step.lower(*inputs)


def step_memory(lowered: Any, *, hoisting: bool = True) -> StepMemory:
    """Compiles a lowered step and reads XLA's per-device memory analysis.

    `hoisting=False` compiles without loop-invariant code motion (see the module doc).
    """
    start = time.perf_counter()
    compiled = lowered.compile(compiler_options=None if hoisting else NO_HOISTING)
    seconds = time.perf_counter() - start
    stats = compiled.memory_analysis()
    return StepMemory(
        arguments=stats.argument_size_in_bytes,
        outputs=stats.output_size_in_bytes,
        aliased=stats.alias_size_in_bytes,
        temporaries=stats.temp_size_in_bytes,
        compile_s=seconds,
    )


def parameter_count(config: T5Config) -> int:
    """Number of frozen parameters."""
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(param_shapes(config)))


def unique_sizes(names: list[str]) -> dict[T5Config, list[str]]:
    """Groups names whose architectures are identical (e.g. T5 1.1 and its LM-adapted twin).

    Raises:
      ValueError: naming an unknown size.
    """
    groups: dict[T5Config, list[str]] = {}
    for name in names:
        if name not in CONFIGS:
            raise ValueError(f"Unknown size {name!r}; known: {', '.join(sorted(CONFIGS))}.")
        groups.setdefault(CONFIGS[name], []).append(name)
    return groups


def _fits(compiled: StepMemory, unhoisted: StepMemory) -> str:
    if compiled.peak <= DEVICE_BYTES:
        return "yes"
    return "without hoisting" if unhoisted.peak <= DEVICE_BYTES else "no"


def _gib(n: float) -> str:
    return f"{n / GIB:.2f}"


def main() -> None:
    remat_policies = list(typing.get_args(RematPolicy))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(CONFIGS), help="CONFIGS names")
    parser.add_argument("--remat", nargs="+", default=remat_policies, choices=remat_policies)
    parser.add_argument("--meshes", nargs="+", default=["1x1", "8x1", "1x8"], help="DATAxMODEL")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--inputs", type=int, default=512)
    parser.add_argument("--prompt", type=int, default=100)
    parser.add_argument("--targets", type=int, default=8)
    parser.add_argument("--dtype", default="bfloat16", help="frozen weights and activations")
    parser.add_argument(
        "--scan_layers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="scan over layers (compiles in seconds even for XXL)",
    )
    args = parser.parse_args()
    try:
        meshes = [parse_mesh(m) for m in args.meshes]
        groups = unique_sizes(args.sizes)
    except ValueError as e:
        parser.error(str(e))
    shapes = Shapes(args.batch, args.inputs, args.targets, args.prompt)
    print(
        f"Prompt-tuning train step, {shapes.describe()}; weights and activations "
        f"{args.dtype}, scan_layers={args.scan_layers}; per-device GiB from XLA's memory "
        f"analysis on {jax.devices()[0].platform} (jax {jax.__version__}); 'fits': peak <= "
        f"{DEVICE_BYTES / 1e9:.0f}e9 bytes."
    )
    print(
        "| size | params | mesh | remat | arguments | outputs | aliased | temporaries | "
        "peak | peak, no hoisting | fits | compile (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    verdicts = []
    for base, names in groups.items():
        for mesh_shape in meshes:
            for remat in args.remat:
                config = base.replace(
                    dtype=args.dtype,
                    param_dtype=args.dtype,
                    remat_policy=remat,
                    scan_layers=args.scan_layers,
                )
                start = time.perf_counter()
                lowered = lower_step(config, shapes, mesh_shape)
                lower_s = time.perf_counter() - start
                compiled = step_memory(lowered)
                unhoisted = step_memory(lowered, hoisting=False)
                fits = _fits(compiled, unhoisted)
                print(
                    f"| {' = '.join(names)} | {parameter_count(base) / 1e9:.3g}B | "
                    f"{mesh_shape[0]}x{mesh_shape[1]} | {remat} | {_gib(compiled.arguments)} | "
                    f"{_gib(compiled.outputs)} | {_gib(compiled.aliased)} | "
                    f"{_gib(compiled.temporaries)} | {_gib(compiled.peak)} | "
                    f"{_gib(unhoisted.peak)} | {fits} | "
                    f"{lower_s + compiled.compile_s:.1f} |",
                    flush=True,
                )
                if "t5_1_1_xxl" in names and mesh_shape == (1, 1):
                    verdicts.append(
                        f"T5 1.1 XXL on one device, remat {remat}: peak {_gib(compiled.peak)} "
                        f"GiB as compiled, {_gib(unhoisted.peak)} GiB without hoisting; "
                        f"fits in 80 GB: {fits}."
                    )
    for line in verdicts:
        print(line)


if __name__ == "__main__":
    main()

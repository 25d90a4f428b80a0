"""The measurements behind `gpu_check.py`'s table (imported once jax can see the GPU)."""

from __future__ import annotations

import time

import flops
import jax
import jax.numpy as jnp
import memory
import numpy as np
import step_setup

from prompt_tuning import partitioning, trainer
from prompt_tuning.models import T5, T5Config, get_config, init_params

# Dense bfloat16 FLOP/s by device kind, from NVIDIA's data sheets (SXM parts, no sparsity).
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L4": 121e12}
OUTPUT_ULPS = 64  # tests/tolerances.py's bound for a float32 forward summed in another order
Row = tuple[str, str, str]
PAPER_SHAPES = step_setup.Shapes(batch=32, input_length=512, target_length=8, prompt_length=100)
DRY_SHAPES = step_setup.Shapes(batch=4, input_length=32, target_length=4, prompt_length=5)


def logits_parity(config: T5Config, device: jax.Device) -> str:
    """Largest |logit difference| between `device` and the CPU, in ulps of the largest logit."""
    rng = np.random.default_rng(0)
    inputs = rng.integers(2, config.vocab_size, (4, 64), dtype=np.int32)
    targets = rng.integers(2, config.vocab_size, (4, 8), dtype=np.int32)
    params = init_params(config, jax.random.key(0))

    def logits_on(target: jax.Device) -> np.ndarray:
        placed = jax.device_put(({"params": params}, inputs, targets), target)
        with jax.default_matmul_precision("highest"):
            return np.asarray(jax.jit(T5(config).apply)(*placed))

    expected = logits_on(jax.devices("cpu")[0])
    ulp = np.spacing(np.float32(np.max(np.abs(expected))))
    ulps = float(np.max(np.abs(logits_on(device) - expected)) / ulp)
    return f"{ulps:.1f} ulps of max |logit| ({'ok' if ulps <= OUTPUT_ULPS else 'FAIL'})"


def train_speed(config: T5Config, shapes: step_setup.Shapes, steps: int) -> str:
    """Steps/s of the prompt-tuning step on one device, and its MFU against `PEAK_BF16`."""
    mesh = step_setup.make_mesh((1, 1))
    optimizer = trainer.make_optimizer()
    frozen = jax.device_put(
        jax.tree.map(
            lambda x: x.astype(config.param_dtype), init_params(config, jax.random.key(0))
        ),
        step_setup.frozen_shardings(config, mesh),
    )
    batch = step_setup.random_batch(shapes, config.vocab_size, np.random.default_rng(0))
    prompt = jnp.zeros((shapes.prompt_length, config.d_model), jnp.float32)
    state = trainer.init_state(prompt, optimizer)
    step = step_setup.jit_train_step(config, mesh, optimizer)
    with partitioning.activation_sharding(mesh):
        rng = jax.random.PRNGKey(0)
        for _ in range(2):  # compilation, then one more untimed step
            state, metrics = step(state, frozen, batch, rng)
        jax.block_until_ready(metrics)
        start = time.perf_counter()
        for _ in range(steps):
            state, metrics = step(state, frozen, batch, rng)
        jax.block_until_ready(metrics)
    per_s = steps / (time.perf_counter() - start)
    peak = next((v for k, v in PEAK_BF16.items() if k in jax.devices()[0].device_kind), None)
    achieved = flops.step_flops(config, shapes).total * per_s
    mfu = f", MFU {achieved / peak:.1%}" if peak else ", MFU ? (device peak not listed)"
    return f"{per_s:.2f} steps/s{mfu}"


def compiled_memory(config: T5Config, shapes: step_setup.Shapes) -> str:
    """Peak bytes of one device for one step, from XLA's buffer assignment."""
    used = memory.step_memory(memory.lower_step(config, shapes, (1, 1)))
    return f"{used.peak / memory.GIB:.1f} GiB peak (compiled in {used.compile_s:.0f} s)"


def table(*, dry_run: bool, steps: int) -> list[Row]:
    """Every row of the check; `dry_run` swaps in the tiny model and small shapes on the CPU."""
    device = jax.devices()[0]
    small = "t5_1_1_tiny"
    parity = [small] if dry_run else [small, "t5_1_1_base"]
    speed = [small] if dry_run else ["t5_1_1_base", "t5_1_1_xl"]
    biggest = small if dry_run else "t5_1_1_xxl"
    shapes = DRY_SHAPES if dry_run else PAPER_SHAPES
    bf16 = {"dtype": "bfloat16", "param_dtype": "bfloat16"}
    rows: list[Row] = [("check", "model", f"result on {device.device_kind} ({device.platform})")]
    rows += [
        ("logits parity vs CPU", name, logits_parity(get_config(name), device)) for name in parity
    ]
    rows += [
        (
            "train (bf16), " + shapes.describe(),
            name,
            train_speed(get_config(name, **bf16), shapes, steps),
        )
        for name in speed
    ]
    remat = get_config(biggest, remat_policy="full", scan_layers=True, **bf16)
    rows.append(("compiled memory, full remat", biggest, compiled_memory(remat, shapes)))
    return rows

"""Pretraining speed and checkpoint size of candidate tiny T5 sizes on this machine.

  python benchmarks/pretrain_throughput.py [--steps 10] [--batch 64] [--sizes 128x512 256x1024]

For each size (`d_model x d_ff`, 4 heads x d_kv 64, 4+4 layers, the 32,128-row
T5 vocabulary) it times the jitted full-parameter train step on batches of
the span-corruption shape (inputs 128, targets 32 of which 29 carry loss),
exports the params with `save_t5x` in float32 and bfloat16 and reports the
folder sizes. It also times the real input pipeline alone. Prints a Markdown
table (the numbers in docs/pretraining.md come from it).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import prompt_tuning.tasks  # noqa: F401  (registers the pretraining tasks it reads)
from prompt_tuning import input_pipeline, partitioning, trainer
from prompt_tuning.models import T5, T5Config, init_params
from prompt_tuning.pretraining import full_training

INPUTS, TARGETS, TARGET_TOKENS = 128, 32, 29


def _config(size: str, layers: int, dtype: str) -> T5Config:
    d_model, d_ff = (int(x) for x in size.split("x"))
    return T5Config(
        d_model=d_model,
        d_ff=d_ff,
        num_heads=4,
        d_kv=64,
        num_encoder_layers=layers,
        num_decoder_layers=layers,
        dtype=dtype,
    )


def _batch(batch: int, vocab: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    targets = rng.integers(2, vocab, (batch, TARGETS), dtype=np.int32)
    weights = np.zeros((batch, TARGETS), np.int32)
    weights[:, :TARGET_TOKENS] = 1
    return {
        "encoder_input_tokens": rng.integers(2, vocab, (batch, INPUTS), dtype=np.int32),
        "decoder_input_tokens": np.pad(targets[:, :-1], ((0, 0), (1, 0))),
        "decoder_target_tokens": targets * weights,
        "decoder_loss_weights": weights,
    }


def _folder_mb(path: str) -> float:
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
    return total / 2**20


def measure(config: T5Config, batch: int, steps: int) -> dict[str, float]:
    """Seconds per step (median of `steps` after compiling) and export sizes."""
    optimizer = full_training.make_pretraining_optimizer()
    params = init_params(config, jax.random.key(0))
    count = sum(x.size for x in jax.tree.leaves(params))
    embed = 2 * config.vocab_size * config.d_model
    state = trainer.init_state(params, optimizer)
    mesh = partitioning.make_mesh()
    # The pretraining job's own step: full objective, nothing frozen, jitted as the job does.
    step = trainer.jit_train_step(
        trainer.make_train_step(trainer.full_objective(T5(config)), optimizer), mesh, {}
    )
    data = _batch(batch, config.vocab_size, np.random.default_rng(0))
    rng = jax.random.PRNGKey(0)
    with partitioning.activation_sharding(mesh):
        start = time.perf_counter()
        state, metrics = step(state, {}, data, rng)
        jax.block_until_ready(metrics)
        compile_s = time.perf_counter() - start
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            state, metrics = step(state, {}, data, rng)
            jax.block_until_ready(metrics)
            times.append(time.perf_counter() - start)
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float32", "bfloat16"):
            path = full_training.export(state.params, os.path.join(tmp, dtype), 1, dtype)
            sizes[dtype] = _folder_mb(path)
    return {
        "params_m": count / 1e6,
        "embed_m": embed / 1e6,
        "compile_s": compile_s,
        "step_s": float(np.median(times)),
        "best_step_s": float(np.min(times)),
        **{f"mb_{k}": v for k, v in sizes.items()},
    }


def pipeline_batches_per_s(task: str, batch: int, count: int) -> float:
    """Batches per second of the real seqio pipeline (tokenising, chunking, corrupting)."""
    dataset = input_pipeline.train_dataset(
        task, {"inputs": INPUTS, "targets": TARGETS}, batch, seed=0
    )
    iterator = dataset.as_numpy_iterator()
    next(iterator)
    start = time.perf_counter()
    for _ in range(count):
        next(iterator)
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["128x512", "256x1024"])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--dtype", default="float32", help="activation dtype")
    parser.add_argument("--pipeline", action="store_true", help="also time the input pipeline")
    args = parser.parse_args()
    print(
        f"{jax.devices()[0].device_kind}, {os.cpu_count()} cores, batch {args.batch}, "
        f"inputs {INPUTS} / targets {TARGETS}, {args.layers}+{args.layers} layers, {args.dtype}"
    )
    print(
        "| d_model x d_ff | params (M) | of which embed+logits (M) | compile (s) | s/step "
        "(median) | s/step (best) | "
        "steps/s | input tokens/s | target tokens/s | export f32 (MB) | export bf16 (MB) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        r = measure(_config(size, args.layers, args.dtype), args.batch, args.steps)
        print(
            f"| {size} | {r['params_m']:.1f} | {r['embed_m']:.1f} | {r['compile_s']:.0f} | "
            f"{r['step_s']:.2f} | {r['best_step_s']:.2f} | {1 / r['step_s']:.2f} | "
            f"{args.batch * INPUTS / r['step_s']:,.0f} | "
            f"{args.batch * TARGET_TOKENS / r['step_s']:,.0f} | "
            f"{r['mb_float32']:.1f} | {r['mb_bfloat16']:.1f} |",
            flush=True,
        )
    if args.pipeline:
        for task in ("corpus_span_corruption", "corpus_lm_adaptation"):
            rate = pipeline_batches_per_s(task, args.batch, 50)
            print(f"input pipeline {task}: {rate:.1f} batches/s of {args.batch}")


if __name__ == "__main__":
    jnp.zeros(())  # initialise the backend before timing anything
    main()

"""Prompt-tuning speed, ours (JAX) against Hugging Face PEFT, side by side in one run.

  python benchmarks/train_step.py [--sizes t5_1_1_tiny t5_1_1_small] [--steps 20]
      [--warmup 3] [--batch 32] [--inputs 128] [--prompt 20] [--targets 16]
      [--dtype float32] [--scan_layers] [--remat none] [--eval_examples 256]
  python benchmarks/train_step.py --compile_time [--compile_size t5_1_1_base]

For each size a randomly initialised HF `T5ForConditionalGeneration` is saved
and read back by our converter (`checkpoints.load`), so both frameworks hold
the same weights. Both train the same `[P, d]` prompt on the same batch with
Adafactor set up alike (constant lr 0.3, decay 0.8, clipping 1, weight decay
1e-5, no parameter scaling), gradients for the prompt only. Warm-up steps
(compilation included) are not timed. Printed per framework: train steps/s,
tokens/s (input + target tokens; the prompt is not data), achieved matmul
FLOP/s (`flops.step_flops`: forward + backward through activations) and its
fraction of this CPU's estimated peak, and rank-classification eval
examples/s (two labels; no FLOP rate, because ours encodes each input once for
all its labels and PEFT once per label: different work for the same scores);
then the ratios ours / PEFT. The first step's
cross-entropy and the eval scores of both are compared as a check that the
two models are the same.

`--compile_time` instead compiles the first train step of `--compile_size`
(default T5 1.1 base) on abstract inputs, with and without the layer scan.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import typing
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import peft
import torch
import transformers
from flops import host_cpu, step_flops
from peft import PromptTuningConfig, TaskType, get_peft_model
from step_setup import (
    Shapes,
    abstract_step_inputs,
    frozen_shardings,
    jit_train_step,
    make_mesh,
    random_batch,
)
from transformers import T5Config as HFConfig
from transformers import T5ForConditionalGeneration
from transformers.optimization import Adafactor

from prompt_tuning import checkpoints, evaluation, partitioning, trainer
from prompt_tuning.checkpoints import hf
from prompt_tuning.models import CONFIGS, T5, T5Config, get_config, stack_layers
from prompt_tuning.models.config import RematPolicy

LEARNING_RATE, DECAY_RATE, CLIPPING, WEIGHT_DECAY = 0.3, 0.8, 1.0, 1e-5
EOS_ID = 1
NUM_LABELS = 2


def label_ids(vocab_size: int) -> tuple[tuple[int, int], ...]:
    """Two one-token labels plus EOS, like "positive" / "negative" in T5's vocabulary."""
    return tuple((vocab_size // 2 + i, EOS_ID) for i in range(NUM_LABELS))


def random_hf_model(config: T5Config, seed: int) -> T5ForConditionalGeneration:
    """A randomly initialised float32 HF T5 with `config`'s architecture."""
    torch.manual_seed(seed)
    hf_config = HFConfig(**hf.hf_dict_from_config(config))
    # transformers 5.x ties whatever the constructor is told; untie afterwards.
    hf_config.tie_word_embeddings = config.logits_via_embedding
    model = T5ForConditionalGeneration(hf_config)
    model.set_input_embeddings(model.shared)  # T5 has one embedding table
    return model


def converted(model: T5ForConditionalGeneration, dtype: str) -> tuple[T5Config, Any]:
    """`model`'s weights read by our converter, as `(config, params)` in `dtype`."""
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        return checkpoints.load(tmp, dtype=dtype)


def _timed(run_step: Callable[[], Any], steps: int, finish: Callable[[Any], Any]) -> float:
    """Seconds per call of `run_step` over `steps` calls; `finish` waits for the last."""
    start = time.perf_counter()
    for _ in range(steps):
        out = run_step()
    finish(out)
    return (time.perf_counter() - start) / steps


def ours_train(
    config: T5Config, params: Any, batch: dict, prompt: np.ndarray, steps: int, warmup: int
) -> tuple[float, float]:
    """`(seconds per step, first step's cross-entropy)` of our jitted train step.

    `params` are in the layout `config` runs (scanned or not). Params and batch
    are placed on the device once (as a prefetching pipeline leaves them); the
    timed loop only dispatches, and waits for the last step.
    """
    mesh = make_mesh((1, 1))
    optimizer = trainer.make_optimizer(
        learning_rate=LEARNING_RATE,
        decay_rate=DECAY_RATE,
        weight_decay_rate=WEIGHT_DECAY,
        clipping_threshold=CLIPPING,
    )
    frozen = jax.device_put(params, frozen_shardings(config, mesh))
    device_batch = jax.device_put(batch, partitioning.batch_sharding(mesh))
    replicated = partitioning.replicated(mesh)
    state = jax.device_put(trainer.init_state(prompt, optimizer), replicated)
    rng = jax.device_put(jax.random.PRNGKey(0), replicated)
    step = jit_train_step(config, mesh, optimizer)
    with jax.set_mesh(mesh):
        state, metrics = step(state, frozen, device_batch, rng)
        first_cross_entropy = float(metrics["cross_entropy"])
        for _ in range(warmup - 1):
            state, metrics = step(state, frozen, device_batch, rng)
        jax.block_until_ready(metrics)

        def run() -> Any:
            nonlocal state
            state, out = step(state, frozen, device_batch, rng)
            return out

        return _timed(run, steps, jax.block_until_ready), first_cross_entropy


def peft_model(model: T5ForConditionalGeneration, num_virtual_tokens: int) -> peft.PeftModel:
    """`model` wrapped for PEFT seq2seq prompt tuning (its weights frozen)."""
    config = PromptTuningConfig(
        task_type=TaskType.SEQ_2_SEQ_LM, num_virtual_tokens=num_virtual_tokens
    )
    return get_peft_model(model, config)


def set_peft_prompt(model: peft.PeftModel, prompt: np.ndarray) -> None:
    """Sets the encoder prompt of a PEFT prompt-tuning model to `prompt` `[P, d]`."""
    embedding = model.prompt_encoder["default"].embedding.weight
    with torch.no_grad():
        # Seq2seq allocates encoder and decoder rows; only the first P reach the encoder.
        embedding[: len(prompt)] = torch.from_numpy(prompt).to(embedding.dtype)


def _torch_batch(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    inputs = torch.from_numpy(batch["encoder_input_tokens"]).long()
    return {
        "input_ids": inputs,
        "attention_mask": (inputs != 0).long(),
        "decoder_input_ids": torch.from_numpy(batch["decoder_input_tokens"]).long(),
    }


def peft_train(model: peft.PeftModel, batch: dict, steps: int, warmup: int) -> tuple[float, float]:
    """`(seconds per step, first step's cross-entropy)` of PEFT's prompt-tuning step.

    HF's Adafactor factors the second moment of the 2-D prompt where ours keeps
    it whole; either way the optimizer is a negligible part of a step.
    """
    model.train()
    optimizer = Adafactor(
        [p for p in model.parameters() if p.requires_grad],
        lr=LEARNING_RATE,
        clip_threshold=CLIPPING,
        decay_rate=-DECAY_RATE,  # HF writes the exponent of 1 - t^-0.8 with its sign
        weight_decay=WEIGHT_DECAY,
        scale_parameter=False,
        relative_step=False,
    )
    inputs = _torch_batch(batch)
    labels = torch.from_numpy(batch["decoder_target_tokens"]).long()

    def run() -> torch.Tensor:
        loss = model(**inputs, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return loss

    first_cross_entropy = run().item()
    for _ in range(warmup - 1):
        run()
    return _timed(run, steps, lambda loss: loss.item()), first_cross_entropy


def eval_examples(shapes: Shapes, count: int, vocab_size: int) -> list[evaluation.Example]:
    """`count` full-length random inputs to rank-classify."""
    rng = np.random.default_rng(1)
    tokens = rng.integers(2, vocab_size, (count, shapes.input_length), dtype=np.int32)
    return [evaluation.Example(inputs=row, target_text="", raw={}) for row in tokens]


def ours_eval(
    config: T5Config,
    params: Any,
    prompt: np.ndarray,
    examples: Sequence[evaluation.Example],
    batch_size: int,
) -> tuple[float, np.ndarray]:
    """`(seconds, [n, labels] scores)` of `evaluation.rank_classify`, after a warm-up batch.

    `params` are in the layout `config` runs (scanned or not).
    """
    frozen = jax.device_put(params)
    length = len(examples[0].inputs)

    def run(chunk: Sequence[evaluation.Example]) -> np.ndarray:
        return evaluation.rank_classify(
            T5(config),
            frozen,
            prompt[None],
            chunk,
            label_ids(config.vocab_size),
            input_length=length,
            batch_size=batch_size,
        )[0]

    run(examples[:batch_size])
    start = time.perf_counter()
    scores = run(examples)
    return time.perf_counter() - start, scores


def peft_eval(
    model: peft.PeftModel, examples: Sequence[evaluation.Example], batch_size: int
) -> tuple[float, np.ndarray]:
    """`(seconds, [n, labels] scores)` of the same scoring rows through PEFT's forward."""
    model.eval()
    length = len(examples[0].inputs)
    labels = label_ids(model.config.vocab_size)

    def score(chunk: Sequence[evaluation.Example]) -> np.ndarray:
        batch = evaluation.scoring_batch([ex.inputs for ex in chunk], labels, length)
        with torch.inference_mode():
            logits = model(**_torch_batch(batch)).logits.float()
        targets = torch.from_numpy(batch["decoder_target_tokens"]).long()
        log_probs = torch.log_softmax(logits, dim=-1).gather(-1, targets[..., None])[..., 0]
        weights = torch.from_numpy(batch["decoder_loss_weights"])
        return (log_probs * weights).sum(-1).numpy().reshape(len(chunk), NUM_LABELS)

    def run(chunk: Sequence[evaluation.Example]) -> np.ndarray:
        return np.concatenate(
            [score(chunk[i : i + batch_size]) for i in range(0, len(chunk), batch_size)]
        )

    run(examples[:batch_size])
    start = time.perf_counter()
    scores = run(examples)
    return time.perf_counter() - start, scores


def compare(architecture: T5Config, args: argparse.Namespace, shapes: Shapes) -> dict[str, Any]:
    """Train and eval timings of both frameworks for one architecture (random weights)."""
    model = random_hf_model(architecture, seed=0)
    config, params = converted(model, args.dtype)
    config = config.replace(dtype=args.dtype, remat_policy=args.remat, scan_layers=args.scan_layers)
    if args.dtype != "float32":
        model = model.to(getattr(torch, args.dtype))
    if config.scan_layers:
        params = stack_layers(params, config)
    prompt = np.random.default_rng(0).uniform(-0.5, 0.5, (shapes.prompt_length, config.d_model))
    prompt = prompt.astype(np.float32)
    batch = random_batch(shapes, config.vocab_size, np.random.default_rng(0))
    examples = eval_examples(shapes, args.eval_examples, config.vocab_size)

    ours_s, ours_ce = ours_train(config, params, batch, prompt, args.steps, args.warmup)
    ours_eval_s, ours_scores = ours_eval(config, params, prompt, examples, args.eval_batch)
    wrapped = peft_model(model, shapes.prompt_length)
    set_peft_prompt(wrapped, prompt)
    peft_s, peft_ce = peft_train(wrapped, batch, args.steps, args.warmup)
    # Training moved PEFT's prompt: score with the initial one again, like ours.
    set_peft_prompt(wrapped, prompt)
    peft_eval_s, peft_scores = peft_eval(wrapped, examples, args.eval_batch)
    return {
        "config": config,
        "train_s": {"ours": ours_s, "PEFT": peft_s},
        "eval_s": {"ours": ours_eval_s, "PEFT": peft_eval_s},
        "first_cross_entropy": {"ours": ours_ce, "PEFT": peft_ce},
        "score_difference": float(np.abs(ours_scores - peft_scores).max()),
    }


def print_comparison(
    name: str, result: dict[str, Any], shapes: Shapes, args: argparse.Namespace
) -> None:
    """One table row per framework, then the ratios and the same-model checks."""
    config = result["config"]
    step = step_flops(config, shapes).total
    peak = host_cpu().peak_flops
    tokens = shapes.batch * (shapes.input_length + shapes.target_length)
    for framework in ("ours", "PEFT"):
        train_s, eval_s = result["train_s"][framework], result["eval_s"][framework]
        print(
            f"| {name} | {framework} | {1 / train_s:.3f} | {tokens / train_s:,.0f} | "
            f"{step / train_s / 1e9:.1f} | {100 * step / train_s / peak:.1f}% | "
            f"{args.eval_examples / eval_s:.1f} |",
            flush=True,
        )
    train_ratio = result["train_s"]["PEFT"] / result["train_s"]["ours"]
    eval_ratio = result["eval_s"]["PEFT"] / result["eval_s"]["ours"]
    ce = result["first_cross_entropy"]
    print(
        f"| {name} | ours / PEFT | {train_ratio:.2f}x | | | | {eval_ratio:.2f}x |\n"
        f"<!-- {name} same model: first-step cross-entropy ours {ce['ours']:.5f}, "
        f"PEFT {ce['PEFT']:.5f}; eval scores differ by at most "
        f"{result['score_difference']:.2e} -->",
        flush=True,
    )


def compile_seconds(config: T5Config, shapes: Shapes) -> tuple[float, float]:
    """`(trace + lower, compile)` seconds of the first train step on abstract inputs.

    The inputs' shapes and shardings are built before the clock starts.
    """
    mesh = make_mesh((1, 1))
    optimizer = trainer.make_optimizer()
    inputs = abstract_step_inputs(config, shapes, mesh, optimizer)
    start = time.perf_counter()
    with jax.set_mesh(mesh):
        lowered = jit_train_step(config, mesh, optimizer).lower(*inputs)
    lowered_at = time.perf_counter()
    lowered.compile()
    return lowered_at - start, time.perf_counter() - lowered_at


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["t5_1_1_tiny", "t5_1_1_small"])
    parser.add_argument("--steps", type=int, default=20, help="timed train steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (>= 1)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--inputs", type=int, default=128)
    parser.add_argument("--prompt", type=int, default=20)
    parser.add_argument("--targets", type=int, default=16)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument(
        "--remat", default="none", choices=typing.get_args(RematPolicy), help="ours only"
    )
    parser.add_argument("--scan_layers", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--eval_examples", type=int, default=256)
    parser.add_argument("--eval_batch", type=int, default=32, help="examples per eval batch")
    parser.add_argument("--compile_time", action="store_true", help="only time compilation")
    parser.add_argument("--compile_size", default="t5_1_1_base")
    return parser


def main() -> None:
    transformers.utils.logging.disable_progress_bar()  # save_pretrained's shard bar
    parser = _parser()
    args = parser.parse_args()
    if args.warmup < 1 or args.steps < 1:
        parser.error(f"--steps ({args.steps}) and --warmup ({args.warmup}) must be >= 1.")
    for name in (*args.sizes, args.compile_size):
        if name not in CONFIGS:
            parser.error(f"Unknown size {name!r}; known: {', '.join(sorted(CONFIGS))}.")
    shapes = Shapes(args.batch, args.inputs, args.targets, args.prompt)
    print(
        f"{host_cpu().describe()}; jax {jax.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), transformers {transformers.__version__}, "
        f"peft {peft.__version__}; {shapes.describe()}"
    )
    if args.compile_time:
        print(f"First train step of {args.compile_size}, {args.dtype}, remat {args.remat}:")
        print("| layers | trace + lower (s) | compile (s) |\n| --- | --- | --- |")
        compile_seconds(get_config("t5_1_1_tiny"), shapes)  # JAX's one-time start-up costs
        for scan in (True, False):
            config = get_config(
                args.compile_size,
                dtype=args.dtype,
                param_dtype=args.dtype,
                remat_policy=args.remat,
                scan_layers=scan,
            )
            lower_s, compile_s = compile_seconds(config, shapes)
            print(f"| {'scanned' if scan else 'unrolled'} | {lower_s:.1f} | {compile_s:.1f} |")
        return
    print(
        f"{args.dtype} weights and activations, remat {args.remat}, scan_layers "
        f"{args.scan_layers}; {args.warmup} warm-up + {args.steps} timed steps; eval: "
        f"{args.eval_examples} examples x {NUM_LABELS} labels in batches of {args.eval_batch}"
    )
    print(
        "| size | framework | train steps/s | tokens/s | GFLOP/s | of peak | "
        "eval examples/s |\n| --- | --- | --- | --- | --- | --- | --- |"
    )
    for name in args.sizes:
        print_comparison(name, compare(get_config(name), args, shapes), shapes, args)


if __name__ == "__main__":
    main()

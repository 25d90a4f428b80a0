"""`make demo`: prompt-tune a frozen T5 on movie-review sentiment and print real scores.

Until the project's own pretrained small T5 ships, the frozen model here is a
*randomly initialised* small T5 (a smoke run: it shows the whole pipeline, and
how much a prompt alone can do on a frozen random network). Every number is
computed on the spot: the majority-class baseline, the frozen model without a
prompt (rank classification), the prompt-tuned model on movie reviews, and the
same prompt zero-shot on product reviews and tweets.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gin
import jax

from prompt_tuning import checkpoints, experiment, gin_utils
from prompt_tuning.models import T5Config, init_params

SMOKE_CONFIG = T5Config(
    d_model=64, num_heads=4, d_kv=16, d_ff=128, num_encoder_layers=2, num_decoder_layers=2
)
LENGTHS = {"inputs": 64, "targets": 4}
EVAL_TASKS = (
    ("movie reviews (validation)", "movie_sentiment"),
    ("product reviews, zero-shot", "product_sentiment"),
    ("tweets, zero-shot", "tweet_sentiment"),
)


def smoke_checkpoint(cache: pathlib.Path) -> pathlib.Path:
    """A random-init T5 1.1-style checkpoint, written once to the cache."""
    model_dir = cache / "random_t5_smoke"
    if not (model_dir / "checkpoint_0" / "checkpoint").exists():
        params = init_params(SMOKE_CONFIG, jax.random.key(0))
        checkpoints.save_t5x(params, model_dir, step=0)
    return model_dir / "checkpoint_0"


def _bindings(checkpoint: pathlib.Path, task: str, steps: int, model_dir: str) -> list[str]:
    return [
        f"INITIAL_CHECKPOINT_PATH = '{checkpoint}'",
        f"MIXTURE_OR_TASK_NAME = '{task}'",
        f"MODEL_DIR = '{model_dir}'",
        f"TASK_FEATURE_LENGTHS = {LENGTHS}",
        f"TRAIN_STEPS = {steps}",
        "BATCH_SIZE = 32",
        "PROMPT_LENGTH = 20",
        "ModelSpec.dtype = 'float32'",
        "ModelSpec.dropout_rate = 0.0",
        f"train.save_every = {steps}",
        "train.log_every = 25",
        "train.eval_every = 0",
    ]


def _accuracy(checkpoint, task, model_dir, prompt_files) -> tuple[float, float]:
    gin_utils.parse(["runs/prompt_eval.gin"], [
        *_bindings(checkpoint, task, 1, model_dir)[:4], "BATCH_SIZE = 32",
        "ModelSpec.dtype = 'float32'", f"evaluate.prompt_files = {list(prompt_files)}",
        "evaluate.output_dir = None", "evaluate.decode_classification = False",
    ])
    try:
        metrics = experiment.evaluate(print_fn=lambda _: None).per_prompt[0]
    finally:
        gin.clear_config()
    return metrics["majority_baseline"], metrics["accuracy"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--model_dir", default=None, help="where the prompt run is written")
    args = parser.parse_args(argv)
    cache = pathlib.Path(os.environ.get("PROMPT_TUNING_CACHE", pathlib.Path.home() / ".cache/prompt_tuning"))
    checkpoint = smoke_checkpoint(cache)
    model_dir = args.model_dir or tempfile.mkdtemp(prefix="prompt_tuning_demo_")
    print(f"Frozen model: random-init T5 1.1-style smoke model ({checkpoint}).")
    print(f"Prompt tuning on movie_sentiment for {args.steps} steps -> {model_dir}")
    start = time.perf_counter()
    gin_utils.parse(
        ["runs/prompt_finetune.gin", "prompts/class_labels.gin"],
        _bindings(checkpoint, "movie_sentiment", args.steps, model_dir),
    )
    try:
        experiment.train()
    finally:
        gin.clear_config()
    prompt_file = str(pathlib.Path(model_dir) / "prompts" / f"prompt_{args.steps}.npy")
    rows = []
    for label, task in EVAL_TASKS:
        baseline, no_prompt = _accuracy(checkpoint, task, model_dir, [])
        _, tuned = _accuracy(checkpoint, task, model_dir, [prompt_file])
        rows.append((label, baseline, no_prompt, tuned))
    print(f"\nAccuracy (%), {time.perf_counter() - start:.0f} s in all:")
    print(f"| {'evaluation set':<28} | majority class | frozen, no prompt | prompt-tuned |")
    print(f"|{'-' * 30}|----------------|-------------------|--------------|")
    for label, baseline, no_prompt, tuned in rows:
        print(f"| {label:<28} | {baseline:14.1f} | {no_prompt:17.1f} | {tuned:12.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make demo`: prompt-tune the shipped small T5 on movie-review sentiment and print real scores.

The frozen model is the project's own small T5 (`gin/models/t5_tiny_multitask.gin`,
model card in `prompt_tuning/assets/models/`). The prompt is trained with
exactly the command-line recipe (`python -m prompt_tuning.train` with the model
file, `prompts/class_labels.gin` and `runs/prompt_finetune.gin`: 20 vectors,
300 steps, batch 32, inputs 64), and every number is computed on the spot:

  majority class        the most frequent label of the evaluation set
  no prompt             the frozen model on the task's own inputs (rank classification)
  hand-written prompt   prompt design: the best of HAND_WRITTEN, chosen on movie *train*
                        examples, prepended as text (its token embeddings)
  soft prompt           the trained prompt

Each evaluation set is marked by what pretraining saw of it: product-review
labels were in the pretraining mixture, tweets were not (zero-shot).
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

from prompt_tuning import console

console.quiet()  # before TensorFlow and JAX load

import gin  # noqa: E402
import numpy as np  # noqa: E402

import prompt_tuning.tasks  # noqa: E402, F401  (registers the tasks the demo trains and scores)
from prompt_tuning import checkpoints, experiment, gin_utils  # noqa: E402
from prompt_tuning.data import t5_vocabulary  # noqa: E402

SHIPPED_MODEL = "t5_tiny_multitask"
TRAIN_TASK = "movie_sentiment"
STEPS, PROMPT_LENGTH, BATCH_SIZE = 300, 20, 32
LENGTHS = {"inputs": 64, "targets": 4}
# (row, task, what pretraining saw of it)
EVAL_SETS = (
    ("movie reviews (validation)", "movie_sentiment", "no (the prompt's task)"),
    ("product reviews", "product_sentiment", "yes: not zero-shot"),
    ("tweets", "tweet_sentiment", "no: zero-shot"),
)
EVAL_MIXTURE = "movie_sentiment_transfer"
# Prompt design candidates, written before looking at any score.
HAND_WRITTEN = (
    "Is this movie review positive or negative?",
    "movie review:",
    "product review:",
    "tone text:",
    "polarity of this review:",
    "The sentiment of this review is",
)
SELECTION_EXAMPLES = 500


def recipe_files(model: str = SHIPPED_MODEL) -> list[str]:
    """The gin files of the prompt-tuning recipe: model, class-label init, run defaults."""
    return [f"models/{model}.gin", "prompts/class_labels.gin", "runs/prompt_finetune.gin"]


def recipe_bindings(model_dir: str, steps: int, checkpoint: str | None) -> list[str]:
    """The command line's `--gin.` overrides of the recipe (and a checkpoint other than the shipped)."""
    bindings = [
        f"MIXTURE_OR_TASK_NAME = '{TRAIN_TASK}'",
        f"MODEL_DIR = '{model_dir}'",
        f"TASK_FEATURE_LENGTHS = {LENGTHS}",
        f"TRAIN_STEPS = {steps}",
        f"BATCH_SIZE = {BATCH_SIZE}",
        f"PROMPT_LENGTH = {PROMPT_LENGTH}",
        f"train.save_every = {steps}",
        "train.eval_every = 0",
        "train.log_every = 50",
    ]
    return bindings + ([f"INITIAL_CHECKPOINT_PATH = '{checkpoint}'"] if checkpoint else [])


def evaluate(
    task: str, prompt_files: list[str], checkpoint: str | None, split: str = "validation",
    max_examples: int | None = None,
) -> dict[str, float]:  # fmt: skip
    """Rank-classification metrics of one prompt (or none) through the eval job."""
    bindings = [
        f"MIXTURE_OR_TASK_NAME = '{task}'",
        f"TASK_FEATURE_LENGTHS = {LENGTHS}",
        f"evaluate.prompt_files = {prompt_files}",
        "evaluate.output_dir = None",
        "evaluate.decode_classification = False",
        f"evaluate.max_examples = {max_examples}",
        f"DataSpec.eval_split = '{split}'",
    ]
    if checkpoint:
        bindings.append(f"INITIAL_CHECKPOINT_PATH = '{checkpoint}'")
    gin_utils.parse([f"models/{SHIPPED_MODEL}.gin", "runs/prompt_eval.gin"], bindings)
    try:
        return experiment.evaluate(print_fn=lambda _: None).per_prompt[0]
    finally:
        gin.clear_config()


def text_prompt(text: str, embedding: np.ndarray, path: pathlib.Path) -> str:
    """Writes `text`'s token embeddings `[tokens, d]` as a prompt file: the text, prepended."""
    np.save(path, embedding[list(t5_vocabulary().encode(text))])
    return str(path)


def best_hand_written(checkpoint: str, directory: pathlib.Path) -> tuple[str, str]:
    """The candidate with the best accuracy on SELECTION_EXAMPLES movie train examples."""
    _, params = checkpoints.load(checkpoint)
    embedding = np.asarray(params["token_embedder"]["embedding"], np.float32)
    scored = []
    for i, text in enumerate(HAND_WRITTEN):
        path = text_prompt(text, embedding, directory / f"hand_written_{i}.npy")
        metrics = evaluate(TRAIN_TASK, [path], checkpoint, "train", SELECTION_EXAMPLES)
        print(
            f"  hand-written {text!r}: {metrics['accuracy']:.1f}% on {SELECTION_EXAMPLES} train examples"
        )
        scored.append((metrics["accuracy"], text, path))
    _, text, path = max(scored, key=lambda s: s[0])
    return text, path


def _row(metrics: dict[str, float], task: str, key: str) -> float:
    return metrics[f"{task}/{key}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--model_dir", default=None, help="where the prompt run is written")
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="a T5X checkpoint of the same architecture instead of the shipped one (e.g. the 2,500-step export)",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    checkpoint = args.checkpoint or checkpoints.shipped_checkpoint(SHIPPED_MODEL)
    model_dir = pathlib.Path(args.model_dir or tempfile.mkdtemp(prefix="prompt_tuning_demo_"))
    print(f"Frozen model: {checkpoint}")
    print(
        f"Prompt tuning on {TRAIN_TASK}: {PROMPT_LENGTH} vectors, {args.steps} steps -> {model_dir}"
    )
    gin_utils.parse(recipe_files(), recipe_bindings(str(model_dir), args.steps, args.checkpoint))
    try:
        experiment.train()
    finally:
        gin.clear_config()
    soft = str(model_dir / "prompts" / f"prompt_{args.steps}.npy")
    print("Choosing the hand-written prompt:")
    text, hand = best_hand_written(checkpoint, model_dir)
    results = {
        name: evaluate(EVAL_MIXTURE, files, checkpoint)
        for name, files in (("none", []), ("hand", [hand]), ("soft", [soft]))
    }
    print(f"\nAccuracy (%) of the frozen model, {time.perf_counter() - start:.0f} s in all.")
    print(f"Hand-written prompt: {text!r}.")
    header = (
        "evaluation set",
        "labels in pretraining",
        "majority",
        "no prompt",
        "hand-written",
        "soft prompt",
    )
    widths = (26, 22, 8, 9, 12, 11)
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for label, task, seen in EVAL_SETS:
        cells = [label, seen, f"{_row(results['none'], task, 'majority_baseline'):.1f}"]
        cells += [f"{_row(results[k], task, 'accuracy'):.1f}" for k in ("none", "hand", "soft")]
        print("| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

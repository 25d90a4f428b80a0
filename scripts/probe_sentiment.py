"""How much of a classification task a frozen model's features carry: a ridge probe.

  python scripts/probe_sentiment.py CHECKPOINT [--task movie_sentiment] \
      [--train_examples 3000] [--eval_examples 1000] [--embeddings]

Mean-pools the frozen encoder's output (or, with `--embeddings`, the input token
embeddings) over each input's tokens, standardises the features on the train
examples, fits ridge regression to the ±1 labels, and prints validation accuracy
for a few ridge strengths beside the majority class. A prompt can hardly do
better than what the encoder makes linearly readable, so this is the go/no-go
measure while pretraining the small model (docs/pretraining.md): about a minute
per checkpoint on 2 CPU cores. Binary tasks only.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

import prompt_tuning.tasks  # noqa: F401  (registers the bundled tasks)
from prompt_tuning import checkpoints, evaluation, input_pipeline
from prompt_tuning.models import T5

INPUT_LENGTH = 64
BATCH = 64
RIDGE_STRENGTHS = (1.0, 10.0, 100.0)


def pooled_features(
    model: T5, params, tokens: np.ndarray, *, embeddings: bool = False
) -> np.ndarray:
    """`[n, length]` token ids (0 = padding) -> `[n, d_model]` means over the real tokens."""
    if embeddings:
        hidden = np.asarray(params["token_embedder"]["embedding"], np.float32)[tokens]
    else:
        encoded, _ = jax.jit(lambda t: model.apply({"params": params}, t, method="encode"))(
            jnp.asarray(tokens)
        )
        hidden = np.asarray(encoded, np.float32)
    mask = (tokens > 0).astype(np.float32)[..., None]
    return (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1.0)


def ridge_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    eval_x: np.ndarray,
    eval_y: np.ndarray,
    strength: float,
) -> float:
    """Accuracy on `eval` of ridge regression to ±1 targets fit on standardised `train` features.

    `*_x` are `[n, features]`, `*_y` `[n]` booleans.
    """
    mean, scale = train_x.mean(0), train_x.std(0) + 1e-6
    a, b = (train_x - mean) / scale, (eval_x - mean) / scale
    a, b = np.hstack([a, np.ones((len(a), 1))]), np.hstack([b, np.ones((len(b), 1))])
    weights = np.linalg.solve(a.T @ a + strength * np.eye(a.shape[1]), a.T @ (2.0 * train_y - 1.0))
    return float(((b @ weights > 0) == eval_y).mean())


def _labelled(task, split: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    examples = evaluation.load_examples(task, split, INPUT_LENGTH, count)
    targets = [ex.target_text for ex in examples]
    classes = sorted(set(targets))
    if len(classes) != 2:
        raise ValueError(f"{task.name} {split}: the probe needs two classes, found {classes}.")
    tokens = evaluation.pad([ex.inputs for ex in examples], INPUT_LENGTH)
    return tokens, np.array([t == classes[1] for t in targets])


def _features(model: T5, params, tokens: np.ndarray, embeddings: bool) -> np.ndarray:
    parts = []
    for start in range(0, len(tokens), BATCH):
        chunk = tokens[start : start + BATCH]
        padded = np.pad(chunk, ((0, BATCH - len(chunk)), (0, 0)))  # one compiled shape
        parts.append(pooled_features(model, params, padded, embeddings=embeddings)[: len(chunk)])
    return np.concatenate(parts)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", help="a T5X, Orbax or HF checkpoint folder")
    parser.add_argument("--task", default="movie_sentiment")
    parser.add_argument("--train_examples", type=int, default=3000)
    parser.add_argument("--eval_examples", type=int, default=1000)
    parser.add_argument("--embeddings", action="store_true", help="probe input embeddings")
    args = parser.parse_args(argv)
    config, params = checkpoints.load(args.checkpoint, dtype="float32")
    task = input_pipeline.get_task_or_mixture(args.task)
    train_tokens, train_y = _labelled(task, "train", args.train_examples)
    eval_tokens, eval_y = _labelled(task, "validation", args.eval_examples)
    model = T5(config)
    train_x = _features(model, params, train_tokens, args.embeddings)
    eval_x = _features(model, params, eval_tokens, args.embeddings)
    what = "input embeddings" if args.embeddings else "encoder output"
    majority = 100 * max(eval_y.mean(), 1 - eval_y.mean())
    print(
        f"{args.checkpoint}: ridge probe on mean-pooled {what}, {args.task}, "
        f"{len(train_y)} train / {len(eval_y)} validation examples; majority class {majority:.1f}%"
    )
    for strength in RIDGE_STRENGTHS:
        accuracy = ridge_accuracy(train_x, train_y, eval_x, eval_y, strength)
        print(f"  ridge {strength:g}: validation accuracy {100 * accuracy:.1f}%")


if __name__ == "__main__":
    main()

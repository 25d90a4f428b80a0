"""What a learned prompt is close to in the model's vocabulary.

Lester et al. read a prompt by the nearest token embeddings of each of its
vectors (cosine similarity); with class-label initialisation the label words
often stay among the neighbours.

    python -m prompt_tuning.interpret --prompt P.npy --checkpoint C [-k 5] [--task T | --labels a,b]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import numpy as np

import prompt_tuning.tasks  # noqa: F401  (registers the tasks --task names)
from prompt_tuning import checkpoints, prompts
from prompt_tuning.data import class_labels, t5_vocabulary
from prompt_tuning.errors import InputError, ToolExit


def nearest_tokens(
    prompt: np.ndarray, embedding: np.ndarray, k: int = 5
) -> tuple[np.ndarray, np.ndarray]:
    """The `k` vocabulary rows most cosine-similar to each prompt vector.

    Args:
      prompt: `[P, d]` prompt vectors.
      embedding: `[vocab, d]` token embedding table.
      k: neighbours per vector.

    Returns:
      `(ids [P, k], similarities [P, k])`, most similar first.
    """
    if prompt.shape[1] != embedding.shape[1]:
        raise InputError(
            f"Prompt width {prompt.shape[1]} differs from the embedding width {embedding.shape[1]}."
        )
    p = prompt / np.maximum(np.linalg.norm(prompt, axis=1, keepdims=True), 1e-12)
    e = embedding / np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
    similarity = p @ e.T  # [P, vocab]
    ids = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(similarity, ids, axis=1)


def label_persistence(
    neighbour_ids: np.ndarray, label_token_ids: Sequence[Sequence[int]]
) -> dict[int, list[int]]:
    """For each label, the prompt positions whose neighbours include one of its tokens."""
    return {
        label: [int(row) for row in range(len(neighbour_ids)) if set(neighbour_ids[row]) & set(ids)]
        for label, ids in enumerate(label_token_ids)
    }


def describe(
    prompt: np.ndarray,
    embedding: np.ndarray,
    decode: Callable[[int], str],
    k: int,
    labels: Sequence[str] = (),
    label_token_ids: Sequence[Sequence[int]] = (),
) -> list[str]:
    """Report lines: each prompt row's `k` nearest tokens, then where each label persists."""
    ids, similarities = nearest_tokens(prompt, embedding, k)
    lines = [
        f"prompt[{row}]: "
        + ", ".join(f"{decode(int(i))!r} {s:.3f}" for i, s in zip(*pair, strict=True))
        for row, pair in enumerate(zip(ids, similarities, strict=True))
    ]
    persistence = label_persistence(ids, label_token_ids)
    lines += [
        f"label {label!r}: among the nearest tokens of prompt rows {persistence[i]}"
        for i, label in enumerate(labels)
    ]
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m prompt_tuning.interpret",
        description="Nearest vocabulary tokens (cosine) of each prompt vector, and label persistence.",
    )
    parser.add_argument("--prompt", required=True, help="[P, d] prompt .npy")
    parser.add_argument("--checkpoint", required=True, help="the frozen model (T5X or HF)")
    parser.add_argument("-k", type=int, default=5, help="neighbours per prompt vector")
    labels = parser.add_mutually_exclusive_group()
    labels.add_argument("--task", help="report whether this task's class labels persist")
    labels.add_argument("--labels", help="comma-separated label strings to look for")
    parser.add_argument("--vocabulary", help="SentencePiece model (default: the shipped T5 one)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; prints one line per prompt row and per label."""
    args = _parser().parse_args(argv)
    if args.k < 1:
        raise ToolExit("interpret", f"-k must be at least 1, got {args.k}.")
    try:
        prompt = prompts.load_prompt(args.prompt)
        _, params = checkpoints.load(args.checkpoint)
        labels = class_labels(args.task) if args.task else (args.labels or "").split(",")
    except (ValueError, FileNotFoundError, KeyError, checkpoints.CheckpointError) as e:
        raise ToolExit("interpret", e) from e
    vocabulary = t5_vocabulary(args.vocabulary)
    # Checkpoints pad the table beyond the vocabulary; those rows are no tokens.
    embedding = np.asarray(params["token_embedder"]["embedding"], np.float32)
    embedding = embedding[: vocabulary.vocab_size]
    labels = [label for label in labels if label]
    label_ids = [list(vocabulary.encode(label)) for label in labels]
    try:
        lines = describe(
            prompt, embedding, lambda i: vocabulary.decode([i]), args.k, labels, label_ids
        )
    except ValueError as e:
        raise ToolExit("interpret", f"{args.prompt}: {e}") from e
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

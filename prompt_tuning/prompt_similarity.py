"""Rank source prompts by their similarity to a target task's prompt (SPoT's transfer signal).

    python -m prompt_tuning.prompt_similarity --target T.npy --sources A.npy B.npy ...
        [--metric average_tokens|per_token_average]

Vu et al. (2022, SPoT) found that the cosine similarity of prompts tuned on two
tasks predicts how well a prompt from one initialises the other; the best source
then initialises the target run (`--gin_file=prompts/from_file.gin
--gin.from_file_init.path='A.npy'`). The two measures of the paper:

- `average_tokens`: cosine of the two prompts' mean tokens;
- `per_token_average`: mean cosine over every (target token, source token) pair.

Prompts are `[P, d]` `.npy` files of one width; lengths may differ.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from prompt_tuning import prompts
from prompt_tuning.errors import InputError, ToolExit


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def average_tokens(target: np.ndarray, source: np.ndarray) -> float:
    """Cosine similarity of the mean tokens of `target [P, d]` and `source [Q, d]`."""
    return float(_unit_rows(target.mean(0)) @ _unit_rows(source.mean(0)))


def per_token_average(target: np.ndarray, source: np.ndarray) -> float:
    """Mean cosine similarity over all `P * Q` token pairs of `target [P, d]`, `source [Q, d]`."""
    return float((_unit_rows(target) @ _unit_rows(source).T).mean())


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "average_tokens": average_tokens,
    "per_token_average": per_token_average,
}


def rank_sources(
    target: np.ndarray, sources: Mapping[str, np.ndarray], metric: str = "average_tokens"
) -> list[tuple[str, float]]:
    """`(name, similarity)` of every source prompt, most similar first.

    Raises:
      ValueError: for an unknown metric, or a source whose width differs from the target's.
    """
    if metric not in METRICS:
        raise InputError(f"Unknown metric {metric!r}; choose one of {sorted(METRICS)}.")
    for name, source in sources.items():
        if source.shape[1] != target.shape[1]:
            raise InputError(
                f"Source prompt {name} has width {source.shape[1]}; the target's is {target.shape[1]}."
            )
    scores = [(name, METRICS[metric](target, source)) for name, source in sources.items()]
    return sorted(scores, key=lambda item: -item[1])


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point: prints one `similarity  path` line per source, best first."""
    parser = argparse.ArgumentParser(
        prog="python -m prompt_tuning.prompt_similarity",
        description="Rank source prompts by cosine similarity to a target prompt (SPoT).",
    )
    parser.add_argument("--target", required=True, help="[P, d] prompt .npy of the target task")
    parser.add_argument(
        "--sources", required=True, nargs="+", help="[Q, d] source prompt .npy files"
    )
    parser.add_argument("--metric", default="average_tokens", choices=sorted(METRICS))
    args = parser.parse_args(argv)
    try:
        target = prompts.load_prompt(args.target)
        ranked = rank_sources(
            target, {path: prompts.load_prompt(path) for path in args.sources}, args.metric
        )
    except (ValueError, FileNotFoundError) as e:
        raise ToolExit("prompt_similarity", e) from e
    for path, similarity in ranked:
        print(f"{similarity:+.4f}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The figures of docs/results.md: bar charts with every seed shown, and a similarity heat map."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt


def bars(
    labels: Sequence[str],
    per_seed: Sequence[Sequence[float]],
    path: Path,
    ylabel: str,
    baseline: float | None = None,
    title: str = "",
) -> None:
    """Mean bars with every seed as a dot, and the majority class as a dashed line."""
    fig, ax = plt.subplots(figsize=(max(5, 1.3 * len(labels)), 3.8))
    x = np.arange(len(labels))
    ax.bar(x, [np.mean(v) for v in per_seed], color="#9ecae1", edgecolor="#3182bd")
    for i, values in enumerate(per_seed):
        ax.scatter([i] * len(values), values, color="#08519c", s=14, zorder=3)
    if baseline is not None:
        ax.axhline(baseline, ls="--", color="grey", label=f"majority class {baseline:.1f}")
        ax.legend(fontsize="small", loc="lower right")
    low = min(min(v) for v in per_seed) if baseline is None else min(baseline, *map(min, per_seed))
    ax.set_ylim(max(0, low - 5), min(100, max(max(v) for v in per_seed) + 5))
    ax.set_xticks(x, labels, fontsize="small", rotation=15, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title or "mean (bar) and each seed (dots)", fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def grouped_bars(rows, domains, path: Path, majority_key: str) -> None:
    """Accuracy per domain (groups) and method (bars), the majority class dashed."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    width = 0.8 / len(rows)
    for i, (label, _, ms) in enumerate(rows):
        x = np.arange(len(domains)) + (i - (len(rows) - 1) / 2) * width
        ax.bar(
            x,
            [np.mean([m[f"{d}/accuracy"] for m in ms]) for d, _ in domains],
            width,
            label=label[:32],
        )
    first = rows[0][2][0]
    for j, (d, _) in enumerate(domains):
        ax.hlines(first[f"{d}/{majority_key}"], j - 0.45, j + 0.45, colors="grey", linestyles="--")
    ax.set_xticks(np.arange(len(domains)), [label for _, label in domains])
    ax.set_ylim(40, 100)
    ax.set_ylabel("accuracy (%); dashed: majority class")
    ax.legend(fontsize="x-small", loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def label_heatmap(prompt, embedding, label_ids, labels, path: Path) -> None:
    """Cosine similarity of each prompt row `[P, d]` to each label's embedding and to its nearest token."""
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    label_rows = np.stack([embedding[ids].mean(axis=0) for ids in label_ids])
    nearest = (unit(prompt) @ unit(embedding).T).max(axis=1, keepdims=True)
    grid = np.concatenate([unit(prompt) @ unit(label_rows).T, nearest], axis=1)
    fig, ax = plt.subplots(figsize=(4, 6))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [*labels, "nearest token"], fontsize="small")
    ax.set_ylabel("prompt row (seed 0)")
    fig.colorbar(image, label="cosine similarity")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

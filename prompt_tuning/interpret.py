"""What a learned prompt is close to in the model's vocabulary.

Lester et al. read a prompt by the nearest token embeddings of each of its
vectors (cosine similarity); with class-label initialisation the label words
often stay among the neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
        raise ValueError(
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

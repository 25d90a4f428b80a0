"""The model-free parts of rank classification.

Rank classification scores every label string of a classification task as the
target of each example and predicts the most likely one, so the model cannot
answer outside the label set. The engine computes the scores (log-likelihood
of each label's target tokens); this module says what to score and how to turn
the scores into predictions the task's postprocessor and metrics accept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import seqio

from prompt_tuning.data import registry
from prompt_tuning.data.vocab import sentinel_id, t5_vocabulary


def label_target_ids(
    name: str, vocabulary: seqio.Vocabulary | None = None
) -> list[list[int]] | None:
    """Target token ids of each class label, exactly as the task's targets are built.

    `[<extra_id_0>]` first for sentinel variants, then the label's pieces, then
    EOS. None for tasks without class labels.
    """
    labels = registry.class_labels(name)
    if labels is None:
        return None
    vocabulary = vocabulary or t5_vocabulary()
    prefix = [sentinel_id(vocabulary)] if registry.is_sentinel_variant(name) else []
    return [[*prefix, *vocabulary.encode(label), vocabulary.eos_id] for label in labels]


def rank_classify(scores: np.ndarray, labels: Sequence[str]) -> list[str]:
    """The best-scoring label per example.

    Args:
      scores: `[num_examples, num_labels]` log-likelihoods, columns in `labels` order.
      labels: the label strings.

    Returns:
      `num_examples` label strings (ties go to the earlier label).
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] != len(labels):
        raise ValueError(
            f"scores must be [num_examples, {len(labels)}] for labels {list(labels)}; "
            f"got shape {scores.shape}."
        )
    return [labels[i] for i in np.argmax(scores, axis=1)]

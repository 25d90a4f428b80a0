"""Evaluation of prompts on a task: rank classification, decoding, metrics.

Rank classification scores every label string of a classification task under
the model and predicts the best; several prompts (an ensemble) are scored in
one forward pass by folding the prompt axis into the batch.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import seqio

from prompt_tuning import decoding
from prompt_tuning.models import T5
from prompt_tuning.trainer import sequence_log_likelihoods

EOS_ID = 1


@dataclasses.dataclass(frozen=True)
class Example:
    """One evaluation example: its input tokens and the raw fields for metrics."""

    inputs: np.ndarray  # [length] int32, no padding
    target_text: str
    raw: Mapping[str, Any]


def load_examples(
    task: seqio.Task, split: str, input_length: int, max_examples: int | None = None
) -> list[Example]:
    """Tokenised, unshuffled examples of a task split (inputs cut to `input_length`)."""
    dataset = task.get_dataset(
        sequence_length={"inputs": input_length, "targets": 1024},
        split=split,
        shuffle=False,
        num_epochs=1,
    )
    if max_examples is not None:
        dataset = dataset.take(max_examples)
    examples = []
    for ex in dataset.as_numpy_iterator():
        target = ex.get("targets_pretokenized", b"")
        examples.append(
            Example(
                inputs=np.asarray(ex["inputs"][:input_length], np.int32),
                target_text=target.decode() if isinstance(target, bytes) else str(target),
                raw=ex,
            )
        )
    if not examples:
        raise ValueError(f"Split {split!r} of task {task.name!r} has no examples.")
    return examples


def _pad(rows: Sequence[np.ndarray], length: int) -> np.ndarray:
    out = np.zeros((len(rows), length), np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row[:length]
    return out


def scoring_batch(
    inputs: Sequence[np.ndarray], label_ids: Sequence[Sequence[int]], input_length: int
) -> dict[str, np.ndarray]:
    """Pairs each input with each label: rows `[example * num_labels + label]`.

    `label_ids` are the full target ids of each label (EOS included). Returns
    `encoder_input_tokens [n*L, input_length]`, `decoder_target_tokens`,
    `decoder_input_tokens` (targets shifted right with BOS 0) and
    `decoder_loss_weights`, each `[n*L, max_label_length]`.
    """
    target_length = max(len(ids) for ids in label_ids)
    encoder = _pad([x for x in inputs for _ in label_ids], input_length)
    targets = _pad([np.asarray(ids) for _ in inputs for ids in label_ids], target_length)
    decoder_inputs = np.concatenate([np.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)
    return {
        "encoder_input_tokens": encoder,
        "decoder_input_tokens": decoder_inputs,
        "decoder_target_tokens": targets,
        "decoder_loss_weights": (targets > 0).astype(np.float32),
    }


@functools.partial(jax.jit, static_argnames=("model", "prompt_position"))
def _ensemble_log_likelihoods(model, prompts, frozen, batch, prompt_position):
    """`prompts [N, P, d]` (or None) x `batch [R, ...]` -> `[N, R]` log-likelihoods."""
    if prompts is None:
        return sequence_log_likelihoods(model, None, frozen, batch)[None]
    num_prompts, rows = prompts.shape[0], batch["encoder_input_tokens"].shape[0]
    tiled = jax.tree.map(lambda x: jnp.tile(x, (num_prompts,) + (1,) * (x.ndim - 1)), batch)
    per_row = jnp.repeat(prompts, rows, axis=0)  # [N * R, P, d], prompt-major like `tiled`
    scores = sequence_log_likelihoods(
        model, per_row, frozen, tiled, prompt_position=prompt_position
    )
    return scores.reshape(num_prompts, rows)


def rank_classify(
    model: T5,
    frozen: Any,
    prompts: jax.Array | None,
    examples: Sequence[Example],
    label_ids: Sequence[Sequence[int]],
    *,
    input_length: int,
    batch_size: int = 32,
    prompt_position: str = "prefix",
) -> np.ndarray:
    """Log-likelihood of every label for every example and prompt.

    Args:
      prompts: `[N, P, d]` prompts scored together, or None for the bare model.

    Returns:
      `[N, num_examples, num_labels]` log-likelihoods (`N = 1` without prompts).
    """
    num_labels = len(label_ids)
    scores = []
    for start in range(0, len(examples), batch_size):
        chunk = [ex.inputs for ex in examples[start : start + batch_size]]
        # Pad the last chunk to a full batch so every call reuses one compilation.
        padded = chunk + [chunk[-1]] * (batch_size - len(chunk))
        batch = scoring_batch(padded, label_ids, input_length)
        out = np.asarray(_ensemble_log_likelihoods(model, prompts, frozen, batch, prompt_position))
        scores.append(out.reshape(out.shape[0], batch_size, num_labels)[:, : len(chunk)])
    return np.concatenate(scores, axis=1)


def majority_vote(predictions: np.ndarray) -> np.ndarray:
    """`[N, n]` label indices -> `[n]`; ties go to the earliest prompt's choice."""
    voted = []
    for column in predictions.T:
        counts = Counter(column.tolist())
        best = max(counts.values())
        voted.append(next(p for p in column.tolist() if counts[p] == best))
    return np.asarray(voted)


def greedy_predictions(
    model: T5,
    frozen: Any,
    prompt: jax.Array | None,
    examples: Sequence[Example],
    vocabulary: seqio.Vocabulary,
    *,
    input_length: int,
    max_decode_length: int,
    batch_size: int = 32,
) -> list[str]:
    """Greedy-decoded text for each example."""
    texts = []
    for start in range(0, len(examples), batch_size):
        chunk = [ex.inputs for ex in examples[start : start + batch_size]]
        padded = chunk + [chunk[-1]] * (batch_size - len(chunk))
        tokens = decoding.greedy_decode(
            model, frozen, jnp.asarray(_pad(padded, input_length)),
            max_decode_length=max_decode_length, prompt=prompt,
        )
        for row in np.asarray(tokens)[: len(chunk)]:
            row = row.tolist()
            texts.append(vocabulary.decode(row[: row.index(EOS_ID)] if EOS_ID in row else row))
    return texts


def task_metrics(
    task: seqio.Task, examples: Sequence[Example], predicted_texts: Iterable[str]
) -> dict[str, float]:
    """The task's own metrics on postprocessed predictions and targets."""
    postprocess: Callable[..., Any] = task.postprocess_fn or (lambda x, **_: x)
    targets = [postprocess(ex.target_text, example=ex.raw, is_target=True) for ex in examples]
    predictions = [
        postprocess(text, example=ex.raw, is_target=False)
        for ex, text in zip(examples, predicted_texts, strict=True)
    ]
    metrics: dict[str, float] = {}
    for metric_fn in task.predict_metric_fns:
        metrics.update({k: float(v) for k, v in metric_fn(targets, predictions).items()})
    return metrics


def majority_class_accuracy(examples: Sequence[Example]) -> float:
    """Accuracy of always predicting the most frequent target (in percent)."""
    counts = Counter(ex.target_text for ex in examples)
    return 100.0 * max(counts.values()) / len(examples)

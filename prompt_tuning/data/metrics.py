"""Evaluation metrics with the official definitions, in percent (as T5 reports them).

Every metric takes `(targets, predictions)` — the postprocessed values of one
split, in order — and returns `{name: value}`, which is the signature seqio
expects of a Task's `metric_fns`. Class metrics take integer class ids where an
unparseable prediction is -1: it counts as wrong, never as a class.
"""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import numpy as np

MetricFn = Callable[[Sequence[Any], Sequence[Any]], dict[str, float]]

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _check_lengths(targets: Sequence[Any], predictions: Sequence[Any]) -> None:
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} targets but {len(predictions)} predictions.")
    if not len(targets):
        raise ValueError("Metrics need at least one example; got none.")


def accuracy(targets: Sequence[Any], predictions: Sequence[Any]) -> dict[str, float]:
    """Percentage of predictions equal to their target."""
    _check_lengths(targets, predictions)
    hits = [t == p for t, p in zip(targets, predictions, strict=True)]
    return {"accuracy": 100.0 * float(np.mean(hits))}


def _f1_from_counts(tp: int, fp: int, fn: int) -> float:
    # An empty class (no positives in targets or predictions) scores 0, as sklearn does.
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator else 0.0


def _binary_f1(targets: np.ndarray, predictions: np.ndarray) -> float:
    """F1 of class 1; predictions other than 0/1 are flipped to the wrong class."""
    predictions = np.where(np.isin(predictions, (0, 1)), predictions, 1 - targets)
    tp = int(np.sum((predictions == 1) & (targets == 1)))
    fp = int(np.sum((predictions == 1) & (targets == 0)))
    fn = int(np.sum((predictions == 0) & (targets == 1)))
    return _f1_from_counts(tp, fp, fn)


def f1_with_invalid(targets: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
    """Binary F1 of the positive class (1), as GLUE reports for MRPC and QQP."""
    _check_lengths(targets, predictions)
    return {"f1": 100.0 * _binary_f1(np.asarray(targets), np.asarray(predictions))}


def macro_f1(num_classes: int) -> MetricFn:
    """Unweighted mean over classes `0..num_classes-1` of per-class F1 (CB's F1)."""

    def macro_f1_metric(targets: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
        _check_lengths(targets, predictions)
        t, p = np.asarray(targets), np.asarray(predictions)
        scores = [
            _f1_from_counts(
                int(np.sum((p == c) & (t == c))),
                int(np.sum((p == c) & (t != c))),
                int(np.sum((p != c) & (t == c))),
            )
            for c in range(num_classes)
        ]
        return {"macro_f1": 100.0 * float(np.mean(scores))}

    return macro_f1_metric


def matthews_corrcoef(targets: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
    """Matthews correlation (multi-class form of Gorodkin 2004), 0 when undefined."""
    _check_lengths(targets, predictions)
    classes = sorted(set(targets) | set(predictions))
    index = {c: i for i, c in enumerate(classes)}
    confusion = np.zeros((len(classes), len(classes)), np.float64)
    for t, p in zip(targets, predictions, strict=True):
        confusion[index[t], index[p]] += 1
    n = confusion.sum()
    true_totals, predicted_totals = confusion.sum(axis=1), confusion.sum(axis=0)
    covariance = np.trace(confusion) * n - true_totals @ predicted_totals
    true_var = n * n - true_totals @ true_totals
    predicted_var = n * n - predicted_totals @ predicted_totals
    if true_var * predicted_var == 0:
        return {"matthews_corrcoef": 0.0}
    return {"matthews_corrcoef": 100.0 * covariance / np.sqrt(true_var * predicted_var)}


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / denominator) if denominator else float("nan")


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks where tied values share the mean of their ranks."""
    values = np.asarray(values, np.float64)
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts_group = np.r_[True, ordered[1:] != ordered[:-1]]
    group = np.cumsum(starts_group) - 1
    starts = np.flatnonzero(starts_group)
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    ranks[order] = ((starts + ends - 1) / 2 + 1)[group]
    return ranks


def pearson_corrcoef(targets: Sequence[float], predictions: Sequence[float]) -> dict[str, float]:
    """Pearson correlation (STS-B), in percent."""
    _check_lengths(targets, predictions)
    value = _pearson(np.asarray(targets, np.float64), np.asarray(predictions, np.float64))
    return {"pearson_corrcoef": 100.0 * value}


def spearman_corrcoef(targets: Sequence[float], predictions: Sequence[float]) -> dict[str, float]:
    """Spearman rank correlation (Pearson of tie-averaged ranks), in percent."""
    _check_lengths(targets, predictions)
    value = _pearson(average_ranks(targets), average_ranks(predictions))
    return {"spearman_corrcoef": 100.0 * value}


# ---------------------------------------------------------------------------
# Question answering (SQuAD v1.1 official evaluation, also used by ReCoRD and MRQA)


def normalize_answer(text: str) -> str:
    """Lower-cases, drops punctuation and the articles a/an/the, collapses spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answer: str) -> float:
    """1.0 when the normalised strings are equal."""
    return float(normalize_answer(prediction) == normalize_answer(answer))


def token_f1(prediction: str, answer: str) -> float:
    """F1 of the bags of normalised tokens."""
    predicted, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    common = sum((collections.Counter(predicted) & collections.Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def _max_over_answers(
    score: Callable[[str, str], float], prediction: str, answers: Sequence[str]
) -> float:
    if not len(answers):
        raise ValueError(f"No reference answers to score the prediction {prediction!r} against.")
    return max(score(prediction, answer) for answer in answers)


def squad(targets: Sequence[Sequence[str]], predictions: Sequence[str]) -> dict[str, float]:
    """SQuAD EM and F1: each prediction scored against its best reference answer.

    Args:
      targets: for every example, the list of acceptable answers.
      predictions: one answer string per example.
    """
    _check_lengths(targets, predictions)
    em = [_max_over_answers(exact_match, p, t) for t, p in zip(targets, predictions, strict=True)]
    f1 = [_max_over_answers(token_f1, p, t) for t, p in zip(targets, predictions, strict=True)]
    return {"em": 100.0 * float(np.mean(em)), "f1": 100.0 * float(np.mean(f1))}


def _span_text(context: str, prediction: str) -> str:
    """The context words a `"start: i end: j"` prediction points at; "" when it is malformed.

    Positions count words as the span targets do (`preprocessors.squad_span`):
    ASCII non-word characters become spaces and every single space separates.
    """
    words = re.sub(r"\W", " ", prediction).split()
    if len(words) < 4:
        return ""
    try:
        start, end = int(words[1]), int(words[3])
    except ValueError:
        return ""
    return " ".join(re.sub(r"[^0-9A-Za-z_]", " ", context).split(" ")[start : end + 1])


def span_squad(
    targets: Sequence[Mapping[str, Any]], predictions: Sequence[str]
) -> dict[str, float]:
    """SQuAD EM and F1 of span predictions (`"start: 3 end: 6"`), each against its best answer.

    Args:
      targets: `{"answers": [...], "context": padded context}` per example.
      predictions: one span string per example, in the context's word positions.

    T5's own span metric splits the context without the empty words its targets
    count, so a prediction equal to the target can miss; here the two agree.
    """
    _check_lengths(targets, predictions)
    texts = [_span_text(t["context"], p) for t, p in zip(targets, predictions, strict=True)]
    return squad([t["answers"] for t in targets], texts)


def record(targets: Sequence[Mapping[str, Any]], predictions: Sequence[str]) -> dict[str, float]:
    """ReCoRD EM/F1: one score per query, max over its answers.

    The ReCoRD format emits one example per correct answer, all with the same
    input, so only the first example of each query (`target["group"]`) counts.

    Args:
      targets: `{"group": query key, "answers": [answer, ...]}` per example.
      predictions: the predicted entity per example.
    """
    _check_lengths(targets, predictions)
    seen: set[Hashable] = set()
    kept_targets, kept_predictions = [], []
    for target, prediction in zip(targets, predictions, strict=True):
        if target["group"] not in seen:
            seen.add(target["group"])
            kept_targets.append(target["answers"])
            kept_predictions.append(prediction)
    return squad(kept_targets, kept_predictions)


def multirc(
    targets: Sequence[Mapping[str, Any]], predictions: Sequence[Mapping[str, Any]]
) -> dict[str, float]:
    """MultiRC F1a (F1 over all answer options) and exact match (per question).

    Args:
      targets: `{"value": 0|1, "group": question key}` per answer option.
      predictions: `{"value": 0|1|-1}` per answer option.

    Returns:
      `{"f1a": …, "exact_match": …}`: exact match is the percentage of questions
      whose answer options are all labelled correctly.
    """
    _check_lengths(targets, predictions)
    t = np.asarray([x["value"] for x in targets])
    p = np.asarray([x["value"] for x in predictions])
    all_right: dict[Hashable, bool] = {}
    for target, truth, guess in zip(targets, t, p, strict=True):
        all_right[target["group"]] = all_right.get(target["group"], True) and truth == guess
    return {
        "f1a": 100.0 * _binary_f1(t, p),
        "exact_match": 100.0 * float(np.mean(list(all_right.values()))),
    }

"""Turn decoded text (and target strings) into the values the metrics compare.

A postprocessor has seqio's signature `fn(text, example=None, is_target=False)`:
`example` is the preprocessed example as numpy values (strings as bytes), which
is how the target side reaches fields such as all ReCoRD answers or a MultiRC
question id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

Postprocessor = Callable[..., Any]

SENTINEL_0 = "<extra_id_0>"
# Words dropped before comparing a WSC referent with a prediction (as T5 does), so
# "the bunny" and "bunny" match.
_DETERMINERS = frozenset(
    [
        "a",
        "an",
        "few",
        "her",
        "his",
        "each",
        "every",
        "many",
        "much",
        "my",
        "our",
        "some",
        "that",
        "the",
        "their",
        "these",
        "this",
        "those",
        "which",
        "whose",
        "your",
    ]
)


def as_text(value: Any) -> str:
    """bytes (as numpy gives strings) or str -> str."""
    # numpy's bytes_ is a bytes subclass.
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def strip_sentinel(text: str, **_: Any) -> str:
    """Drops a leading `<extra_id_0>` (the sentinel-variant's target prefix)."""
    text = as_text(text)
    return text[len(SENTINEL_0) :].lstrip() if text.startswith(SENTINEL_0) else text


def chain(*postprocessors: Postprocessor) -> Postprocessor:
    """Applies postprocessors left to right, passing `example`/`is_target` to each."""

    def chained(text: Any, example: Mapping[str, Any] | None = None, is_target: bool = False):
        for fn in postprocessors:
            text = fn(text, example=example, is_target=is_target)
        return text

    return chained


def class_id(label_names: Sequence[str]) -> Postprocessor:
    """Label string -> its index in `label_names`; anything else -> -1."""
    names = tuple(label_names)

    def to_class_id(text: Any, **_: Any) -> int:
        text = as_text(text).strip()
        return names.index(text) if text in names else -1

    return to_class_id


def to_float(text: Any, **_: Any) -> float:
    """STS-B score string -> float; unparseable predictions score -1."""
    try:
        return float(as_text(text))
    except ValueError:
        return -1.0


def translate_labels(mapping: Mapping[str, str]) -> Postprocessor:
    """Rewrites a prediction made in one task's label words into another's.

    Used for zero-shot transfer (a QQP prompt says `duplicate`, MRPC expects
    `equivalent`). Targets are already in the target task's words and strings
    outside `mapping` pass through, so applying it to both sides is safe.
    """
    table = dict(mapping)

    def translate(text: Any, **_: Any) -> str:
        text = as_text(text).strip()
        return table.get(text, text)

    return translate


def multirc(
    text: Any, example: Mapping[str, Any] | None = None, is_target: bool = False
) -> dict[str, Any]:
    """`{"value": class id}`, plus the question key on targets for exact match."""
    value = {"value": class_id(("False", "True"))(text)}
    if is_target:
        value["group"] = (int(example["idx/paragraph"]), int(example["idx/question"]))
    return value


def record(text: Any, example: Mapping[str, Any] | None = None, is_target: bool = False) -> Any:
    """Predictions stay strings; targets become `{"group", "answers"}` (all answers)."""
    if not is_target:
        return as_text(text)
    return {
        "group": (int(example["idx/passage"]), int(example["idx/query"])),
        "answers": [as_text(a) for a in example["answers"]],
    }


def qa(text: Any, example: Mapping[str, Any] | None = None, is_target: bool = False) -> Any:
    """Predictions stay strings; targets become the list of every acceptable answer."""
    if not is_target:
        return as_text(text)
    return [as_text(a) for a in example["answers"]]


def span_qa(text: Any, example: Mapping[str, Any] | None = None, is_target: bool = False) -> Any:
    """Predictions stay strings; targets become `{"answers", "context"}` (the span metric's input)."""
    if not is_target:
        return as_text(text)
    return {
        "answers": [as_text(a) for a in example["answers"]],
        "context": as_text(example["context"]),
    }


def _referent_words(text: str) -> str:
    return " ".join(w for w in text.strip().lower().split(" ") if w not in _DETERMINERS)


def wsc_simple(text: Any, example: Mapping[str, Any] | None = None, is_target: bool = False) -> int:
    """WSC (simple): 1 when the generated referent is the candidate in the example.

    Targets are the example's label (is the candidate the pronoun's referent?);
    a prediction "predicts the candidate" when one word set contains the other,
    after lower-casing and dropping determiners, and both or neither are
    possessive (so "Bob" does not match "Bob's hat").
    """
    if is_target:
        return int(example["label"])
    candidate = _referent_words(as_text(example["targets_pretokenized"]))
    prediction = _referent_words(as_text(text))
    if ("'" in prediction) != ("'" in candidate):
        return 0
    predicted, expected = set(prediction.split(" ")), set(candidate.split(" "))
    return int(predicted <= expected or expected <= predicted)

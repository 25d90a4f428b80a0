"""T5's "simple" WNLI format: a WNLI pair turned into a WSC-style question (evaluation only).

WNLI pairs a premise holding a pronoun with a hypothesis that replaces the
pronoun by a candidate. T5 recovers both with a word-overlap heuristic:

  premise     The trophy doesn't fit into the brown suitcase because it is too large.
  hypothesis  The trophy is too large.
  inputs      wsc: The trophy doesn't fit into the brown suitcase because *it* is too large.
  targets     The trophy

Of the premise's pronouns, the one whose neighbouring words overlap the
hypothesis the most (the first on ties) is marked; the candidate is what the
hypothesis has between those neighbours. Every step follows the t5 library's
`wnli_simple`, quirks included (the neighbour words go into the regular
expression unescaped), so the strings are T5's byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

PRONOUNS = frozenset({"he", "she", "they", "it", "her", "his", "their", "them", "him"})
ARTICLES = ("a", "an", "the")
END_PUNCTUATION = (".", ",", "!", "?")
LABEL = "wsc:"


class NoPronounError(ValueError):
    """A WNLI premise without a pronoun to resolve, or a hypothesis without the candidate."""


def _clean_words(text: str) -> list[str]:
    """Lower-cased words split on single spaces, one final `.,?!` dropped, empty words dropped."""
    words = (re.sub(r"[.,?!]$", "", word) for word in text.strip().lower().split(" "))
    return [word for word in words if word]


def _overlap(words: Sequence[str], text: str) -> int:
    """How many leading `words`, joined by spaces, are a substring of `text`."""
    count = 0
    while count < len(words) and " ".join(words[: count + 1]) in text:
        count += 1
    return count


def _candidate(premise: list[str], hypothesis: list[str], index: int) -> tuple[int, str]:
    """(overlap score, candidate) for the pronoun at word `index` of the premise."""
    before, after = premise[:index], premise[index + 1 :]
    n_before = _overlap(before[::-1], " ".join(hypothesis[::-1]))
    n_after = _overlap(after, " ".join(hypothesis))
    score = n_before + n_after
    if not score:
        return 0, ""
    left, right = before[len(before) - n_before :], after[:n_after]
    text = " ".join(hypothesis)
    # The candidate sits between the neighbours, or at the start or end of the hypothesis.
    for pattern in ([*left, "(.+)", *right], ["^(.+)", *right], [*left, "(.+)$"]):
        match = re.search(" ".join(pattern), text)
        if match:
            return score, match.group(1)
    return score, ""


def _mark(sentence: str, index: int) -> str:
    """`*word*` for word `index` (split on single spaces), final punctuation left outside."""
    words = sentence.split(" ")
    word = words[index]
    if word[-1:] in END_PUNCTUATION:
        words[index] = f"*{word[:-1]}* {word[-1]}"
    else:
        words[index] = f"*{word}*"
    return " ".join(words)


def _as_written(candidate: str, hypothesis: str) -> str:
    """The candidate as the hypothesis writes it: from its last article on, not possessive."""
    words = candidate.split(" ")
    start = max([words.index(a) for a in ARTICLES if a in words] or [0])
    words = words[start:]
    pattern = "(" + " ".join(re.escape(w) + r"(?:\.|,|\?|\!)?" for w in words) + ")"
    match = re.search(pattern, hypothesis, re.IGNORECASE)
    if not match:
        raise NoPronounError(
            f'WNLI: candidate "{" ".join(words)}" is not in hypothesis "{hypothesis}".'
        )
    found = match.group(1)
    if found[-1:] in END_PUNCTUATION:
        found = found[:-1]
    if found.endswith("'"):
        return found[:-1]
    return found[:-2] if found.endswith("'s") else found


def format_pair(premise: str, hypothesis: str) -> tuple[str, str]:
    """`(inputs, targets)` of T5's simple WNLI format for one premise/hypothesis pair."""
    premise_words, hypothesis_words = _clean_words(premise), _clean_words(hypothesis)
    pronouns = [i for i, word in enumerate(premise_words) if word in PRONOUNS]
    if not pronouns:
        raise NoPronounError(f'WNLI: premise "{premise}" has no pronoun ({sorted(PRONOUNS)}).')
    scored = [(*_candidate(premise_words, hypothesis_words, i), i) for i in pronouns]
    best = max(scored, key=lambda s: s[0])  # the first of the best, as T5's max()
    _, candidate, index = best
    return f"{LABEL} {_mark(premise, index)}", _as_written(candidate, hypothesis)

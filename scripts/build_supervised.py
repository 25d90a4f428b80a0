"""Builds the supervised part of the shipped model's T5 1.0-style pretraining mixture.

    python scripts/build_supervised.py [--out corpus/supervised] [--downloads DIR]

Three TSV files (columns `idx, id, label, rating, text`, as the bundled sentiment
tasks); the first two from the `vaderSentiment==3.3.2` sdist (MIT, pinned by sha256):

  polarity_word.tsv   single words of VADER's lexicon (`vader_lexicon.txt`: each word's
                      mean of ten human valence ratings, -4..+4) with |mean| >= WORD_THRESHOLD;
                      a word rating, not a sentence label of any bundled task
  tone_text.tsv       sentences of the general corpus (Brown, State of the Union, Moby Dick,
                      WordNet; never the movie-review text) pseudo-labelled by VADER's own
                      rule-based analyser (compound score >= +TONE_THRESHOLD positive,
                      <= -TONE_THRESHOLD negative), as PPT pseudo-labels general text;
                      classes balanced by keeping the first rows of each in hash order

and one from Debian's `wordnet-base` (the corpus's own pinned archive):

  gloss_category.tsv  each noun and verb synset's lemmas and definition (no example
                      sentences), labelled with the word of its lexicographer file
                      (noun.person -> person, verb.motion -> motion; the `rating` column
                      holds the file's name); noun.Tops, adjectives and adverbs left out;
                      at most CATEGORY_PER_CLASS rows per label, in hash order. Its 36
                      label words teach a decoder to name many classes (the second
                      pretraining stage, tasks/pretraining.py: label_words_mixture)

The last supervised task of the mixture, product reviews, reads the bundled
`tasks/data/sentiment/product_*.tsv` files as they are. The movie-review labels
and any label computed on movie-review text never enter: `movie_train.txt` is
not read here. Needs the corpus (`python scripts/build_corpus.py`) first, in
`corpus/` or `$PROMPT_TUNING_CORPUS_DIR`. The
output is a pure function of the pinned archive and the corpus files, whose
sha256s the manifest records: a rebuild is byte-identical.
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from _sources import fetch, read_text, run_build, sha256_file, unpack, write_text
from build_corpus import WORDNET, synset, synset_lines
from build_sentiment import VADER

REPO = Path(__file__).resolve().parent.parent
# The corpus folder the pretraining tasks read (tasks/pretraining.py: the same variable).
CORPUS = Path(os.environ.get("PROMPT_TUNING_CORPUS_DIR") or REPO / "corpus")
DEFAULT_OUT = CORPUS / "supervised"
# The general-text corpus files the tone task reads: every corpus file but the movie reviews.
TONE_SOURCES = ("brown.txt", "sotu.txt", "moby_dick.txt", "wordnet.txt")
COLUMNS = ("idx", "id", "label", "rating", "text")
SALT = "prompt-tuning-supervised-0"

WORD_THRESHOLD = 1.0
WORD_PATTERN = re.compile(r"^[a-z][a-z'-]*[a-z]$")
TONE_THRESHOLD = 0.5
TONE_MIN_WORDS, TONE_MAX_WORDS = 6, 40
TONE_PER_CLASS = 20_000
CATEGORY_PER_CLASS = 1000
# WordNet's lexicographer files (lexnames(5WN)) that label gloss_category: the nouns
# after noun.Tops (3) and the verbs; their word after the dot is the label.
LEXICOGRAPHER_FILES = {
    number: name
    for number, name in enumerate(
        [
            "adj.all",
            "adj.pert",
            "adv.all",
            "noun.Tops",
            "noun.act",
            "noun.animal",
            "noun.artifact",
            "noun.attribute",
            "noun.body",
            "noun.cognition",
            "noun.communication",
            "noun.event",
            "noun.feeling",
            "noun.food",
            "noun.group",
            "noun.location",
            "noun.motive",
            "noun.object",
            "noun.person",
            "noun.phenomenon",
            "noun.plant",
            "noun.possession",
            "noun.process",
            "noun.quantity",
            "noun.relation",
            "noun.shape",
            "noun.state",
            "noun.substance",
            "noun.time",
            "verb.body",
            "verb.change",
            "verb.cognition",
            "verb.communication",
            "verb.competition",
            "verb.consumption",
            "verb.contact",
            "verb.creation",
            "verb.emotion",
            "verb.motion",
            "verb.perception",
            "verb.possession",
            "verb.social",
            "verb.stative",
            "verb.weather",
        ]
    )
    if number > 3 and name.startswith(("noun.", "verb."))
}
# A sentence ends at . ! or ? followed by space and an upper-case letter or a quote.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z])")


def _hash(*parts: str) -> str:
    return hashlib.sha256("\t".join((SALT, *parts)).encode()).hexdigest()


def _label(value: float, threshold: float) -> str | None:
    if value >= threshold:
        return "positive"
    if value <= -threshold:
        return "negative"
    return None


def word_rows(lexicon: Path) -> list[tuple[str, str, str, str]]:
    """`(id, label, rating, word)` for each clearly rated word of VADER's lexicon, in hash order."""
    rows = []
    for number, line in enumerate(read_text(lexicon).split("\n"), start=1):
        fields = line.split("\t")
        if len(fields) < 2 or not WORD_PATTERN.match(fields[0]):
            continue
        label = _label(float(fields[1]), WORD_THRESHOLD)
        if label:
            rows.append((f"vader_lexicon:{number}", label, fields[1], fields[0]))
    return sorted(rows, key=lambda row: _hash("word", row[0]))


def sentences(corpus: Path) -> Iterator[tuple[str, str]]:
    """`(id, sentence)` for each sentence of the tone sources with an allowed word count."""
    for name in TONE_SOURCES:
        for number, line in enumerate(read_text(corpus / name).split("\n"), start=1):
            for k, sentence in enumerate(SENTENCE_END.split(line.strip())):
                if TONE_MIN_WORDS <= len(sentence.split()) <= TONE_MAX_WORDS:
                    yield f"{name}:{number}:{k}", sentence


def tone_rows(corpus: Path, analyser) -> list[tuple[str, str, str, str]]:
    """`(id, label, compound, sentence)`, at most TONE_PER_CLASS per class, in hash order."""
    by_label: dict[str, list] = collections.defaultdict(list)
    for row_id, sentence in sentences(corpus):
        compound = analyser.polarity_scores(sentence)["compound"]
        label = _label(compound, TONE_THRESHOLD)
        if label:
            by_label[label].append((row_id, label, f"{compound:.4f}", sentence))
    per_class = min(TONE_PER_CLASS, *(len(rows) for rows in by_label.values()))
    kept = []
    for rows in by_label.values():
        kept += sorted(rows, key=lambda row: _hash("tone", row[0]))[:per_class]
    return sorted(kept, key=lambda row: _hash("tone", row[0]))


def category_rows(wordnet_root: Path) -> list[tuple[str, str, str, str]]:
    """`(id, label, lexicographer file, 'lemmas: definition')`, at most CATEGORY_PER_CLASS a label.

    The examples after the definition are dropped: they are sentences of the
    corpus's own WordNet lines, and the definition alone names the category.
    """
    by_label: dict[str, list] = collections.defaultdict(list)
    for line in synset_lines(wordnet_root, ("noun", "verb")):
        entry = synset(line)
        lexname = LEXICOGRAPHER_FILES.get(entry.lexicographer_file)
        if lexname is None:
            continue
        label = lexname.split(".")[1]
        definition = entry.gloss.split('; "')[0].strip()
        row_id = f"data.{entry.pos}:{entry.offset}"
        by_label[label].append((row_id, label, lexname, f"{', '.join(entry.lemmas)}: {definition}"))
    kept = []
    for rows in by_label.values():
        kept += sorted(rows, key=lambda row: _hash("category", row[0]))[:CATEGORY_PER_CLASS]
    return sorted(kept, key=lambda row: _hash("category", row[0]))


def to_tsv(rows: Sequence[tuple[str, str, str, str]]) -> str:
    """Header plus `idx, id, label, rating, text` lines; texts hold no tabs or newlines."""
    lines = ["\t".join(COLUMNS)]
    for idx, (row_id, label, rating, text) in enumerate(rows):
        if any(c in text for c in "\t\r\n"):
            raise ValueError(f"{row_id}: text contains a tab or newline.")
        lines.append("\t".join((str(idx), row_id, label, rating, text)))
    return "\n".join(lines) + "\n"


def _load_analyser(package_dir: Path):
    """VADER's SentimentIntensityAnalyzer from the pinned sdist (it reads its lexicon beside it)."""
    path = package_dir / "vaderSentiment" / "vaderSentiment.py"
    spec = importlib.util.spec_from_file_location("pinned_vader", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SentimentIntensityAnalyzer()


def build(out: Path, downloads: Path) -> dict:
    """Writes the three TSVs and manifest.json into `out`; returns the manifest."""
    missing = [name for name in TONE_SOURCES if not (CORPUS / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Corpus files {missing} are missing in {CORPUS}: run `python scripts/build_corpus.py`."
        )
    package_dir = unpack(fetch(VADER, downloads), downloads / "vader") / (
        f"{VADER.name}-{VADER.version}"
    )
    wordnet_root = unpack(fetch(WORDNET, downloads), downloads / "wordnet")
    files = {
        "polarity_word.tsv": word_rows(package_dir / "vaderSentiment" / "vader_lexicon.txt"),
        "tone_text.tsv": tone_rows(CORPUS, _load_analyser(package_dir)),
        "gloss_category.tsv": category_rows(wordnet_root),
    }
    manifest: dict = {
        "source": {"registry": VADER.registry, "package": VADER.spec, "sha256": VADER.sha256,
                   "licence": VADER.licence},
        "category_source": {"registry": WORDNET.registry, "package": WORDNET.spec,
                            "sha256": WORDNET.sha256, "licence": WORDNET.licence},
        "corpus_sha256": {name: sha256_file(CORPUS / name) for name in TONE_SOURCES},
        "thresholds": {"word": WORD_THRESHOLD, "tone": TONE_THRESHOLD},
        "columns": list(COLUMNS),
        "files": {},
    }  # fmt: skip
    for name, rows in files.items():
        write_text(out / name, to_tsv(rows))
        labels = collections.Counter(row[1] for row in rows)
        manifest["files"][name] = {
            "examples": len(rows),
            "labels": dict(sorted(labels.items())),
            "sha256": sha256_file(out / name),
        }
    write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: Sequence[str] | None = None) -> None:
    manifest = run_build(__doc__, DEFAULT_OUT, build, argv)
    for name, entry in manifest["files"].items():
        print(f"{name}: {entry['examples']} examples, {len(entry['labels'])} labels")


if __name__ == "__main__":
    main()

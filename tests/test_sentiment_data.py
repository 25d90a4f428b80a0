"""The bundled sentiment data: shipped files, split hygiene, rebuild and seqio tasks."""

from __future__ import annotations

import collections
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tasks" / "data" / "sentiment"
SCRIPTS = REPO / "scripts"
MANIFEST = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
LABELS = ("negative", "positive")
# Row counts the dataset's authors publish in hutto_ICWSM_2014/_README_.txt.
PUBLISHED_ROWS = {"movie": 10_605, "product": 3_708, "tweet": 4_200}


def read_split(name: str) -> list[dict[str, str]]:
    lines = (DATA / name).read_bytes().decode("utf-8").split("\n")
    assert lines[-1] == "", f"{name} does not end with a newline"
    header = lines[0].split("\t")
    assert header == MANIFEST["columns"]
    rows = [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:-1]]
    return rows


def splits(domain: str) -> dict[str, list[dict[str, str]]]:
    entries = MANIFEST["domains"][domain]["splits"]
    return {split: read_split(entry["file"]) for split, entry in entries.items()}


def text_key(text: str) -> str:
    return " ".join(text.lower().split())


@pytest.fixture
def scripts_path(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))


@pytest.mark.parametrize("domain", sorted(PUBLISHED_ROWS))
def test_files_match_manifest_and_published_counts(domain):
    entry = MANIFEST["domains"][domain]
    assert entry["source_rows"] == PUBLISHED_ROWS[domain]
    kept = 0
    for split, rows in splits(domain).items():
        stats = entry["splits"][split]
        digest = hashlib.sha256((DATA / stats["file"]).read_bytes()).hexdigest()
        assert digest == stats["sha256"], f"{stats['file']} differs from its manifest entry"
        labels = collections.Counter(row["label"] for row in rows)
        assert set(labels) == set(LABELS)
        assert (len(rows), labels["negative"], labels["positive"]) == (
            stats["examples"], stats["negative"], stats["positive"],
        )  # fmt: skip
        assert [row["idx"] for row in rows] == [str(i) for i in range(len(rows))]
        kept += len(rows)
    assert kept + entry["dropped_neutral"] == PUBLISHED_ROWS[domain]


@pytest.mark.parametrize("domain", sorted(PUBLISHED_ROWS))
def test_labels_follow_ratings_and_middle_band_is_dropped(domain):
    threshold = MANIFEST["threshold"]
    for rows in splits(domain).values():
        for row in rows:
            rating = float(row["rating"])
            assert abs(rating) >= threshold, row
            assert row["label"] == ("positive" if rating > 0 else "negative"), row
            assert row["text"] and row["text"] == row["text"].strip()


@pytest.mark.parametrize("domain", sorted(PUBLISHED_ROWS))
def test_splits_share_no_text_or_id(domain):
    by_split = splits(domain)
    names = sorted(by_split)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            texts_a = {text_key(r["text"]) for r in by_split[a]}
            texts_b = {text_key(r["text"]) for r in by_split[b]}
            assert not texts_a & texts_b, f"{domain}: {a} and {b} share texts"
            assert not {r["id"] for r in by_split[a]} & {r["id"] for r in by_split[b]}
    ids = [r["id"] for rows in by_split.values() for r in rows]
    assert len(ids) == len(set(ids))


def test_product_reviews_stay_in_one_split():
    review_splits = collections.defaultdict(set)
    for split, rows in splits("product").items():
        for row in rows:
            review_splits[row["id"].split("_")[0]].add(split)
    assert all(len(s) == 1 for s in review_splits.values())


@pytest.mark.parametrize("domain", sorted(PUBLISHED_ROWS))
def test_split_sizes_follow_fractions(domain):
    by_split = splits(domain)
    total = sum(len(rows) for rows in by_split.values())
    for split, rows in by_split.items():
        fraction = MANIFEST["domains"][domain]["splits"][split]["fraction"]
        # Whole review/duplicate groups move together, so allow a little slack.
        assert abs(len(rows) / total - fraction) < 0.01, (split, len(rows), total)


def test_label_balance():
    # The movie snippets come from a balanced positive/negative review set.
    for split, rows in splits("movie").items():
        positive = sum(r["label"] == "positive" for r in rows) / len(rows)
        assert 0.45 < positive < 0.55, (split, positive)
    # The transfer sets lean positive but keep a substantial negative class.
    for domain in ("product", "tweet"):
        for split, rows in splits(domain).items():
            negative = sum(r["label"] == "negative" for r in rows) / len(rows)
            assert 0.25 < negative < 0.5, (domain, split, negative)


def test_train_rows_are_not_in_source_order():
    # The source lists positive movie reviews before negative ones; a streaming
    # shuffle buffer only mixes well if the file itself is mixed.
    rows = read_split("movie_train.tsv")
    first_tenth = rows[: len(rows) // 10]
    positive = sum(r["label"] == "positive" for r in first_tenth) / len(first_tenth)
    assert 0.4 < positive < 0.6


def test_linked_groups_and_split_assignment(scripts_path):
    import build_sentiment as bs

    assert bs.linked_groups([["a"], ["b"], ["a", "c"], ["c"], ["d", "b"]]) == [[0, 2, 3], [1, 4]]
    rows = [
        bs.Row(f"{r}_{s}", "1.0", f"review {r} sentence {s}") for r in range(40) for s in range(3)
    ]
    rows.append(bs.Row("99_1", "-1.0", "Review 0 sentence 0"))  # same text as 0_0
    domain = bs.Domain("x", "x.txt", "test rows", (("a", 0.5), ("b", 0.5)), group_by_review=True)
    assigned = bs.assign_splits(domain, rows)
    assert sorted(r.id for split in assigned.values() for r in split) == sorted(r.id for r in rows)
    where = {r.id: name for name, split in assigned.items() for r in split}
    assert where["99_1"] == where["0_0"]
    for r in range(40):
        assert where[f"{r}_0"] == where[f"{r}_1"] == where[f"{r}_2"]
    assert abs(len(assigned["a"]) - len(assigned["b"])) <= 8


def test_parse_ground_truth_errors(scripts_path, tmp_path):
    import build_sentiment as bs

    good = tmp_path / "good.txt"
    good.write_bytes("1\t0.7\t  Fine fïlm. \r\n2\t-0.2\tMeh\r\n".encode())
    rows = bs.parse_ground_truth(good)
    assert rows == [bs.Row("1", "0.7", "Fine fïlm."), bs.Row("2", "-0.2", "Meh")]
    assert [r.label for r in rows] == ["positive", None]
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"1\tnot-a-number\ttext\r\n")
    with pytest.raises(ValueError, match=r"bad.txt:1: rating 'not-a-number'"):
        bs.parse_ground_truth(bad)
    bad.write_bytes(b"1\t0.5\n")
    with pytest.raises(ValueError, match="expected 3 tab-separated fields"):
        bs.parse_ground_truth(bad)


@pytest.mark.slow
def test_registered_tasks():
    """Imports every task registration (TensorFlow, seqio): about 15 s."""
    import seqio

    from prompt_tuning.data import class_labels
    from prompt_tuning.tasks import sentiment

    for name in ("movie_sentiment", "product_sentiment_taskless", "movie_to_tweet_sentiment"):
        assert class_labels(name) == LABELS
    assert seqio.get_mixture_or_task("product_sentiment").splits == ("validation", "test")
    mixture = seqio.get_mixture_or_task("movie_sentiment_transfer")
    assert sorted(t.name for t in mixture.tasks) == [
        "movie_sentiment", "product_sentiment", "tweet_sentiment",
    ]  # fmt: skip

    task = seqio.get_mixture_or_task("tweet_sentiment")
    expected = read_split("tweet_validation.tsv")[:3]
    dataset = task.get_dataset({"inputs": 128, "targets": 4}, split="validation", shuffle=False)
    vocabulary = task.output_features["targets"].vocabulary
    for row, example in zip(expected, dataset.take(3).as_numpy_iterator(), strict=True):
        assert example["inputs_pretokenized"].decode() == f"sentiment sentence: {row['text']}"
        assert example["targets_pretokenized"].decode() == row["label"]
        assert vocabulary.decode(example["targets"].tolist()) == row["label"]
        assert example["idx"] == int(row["idx"])
    assert sentiment.MANIFEST == MANIFEST


@pytest.mark.slow
def test_rebuild_is_byte_identical(tmp_path):
    """Downloads vaderSentiment from PyPI and rebuilds every shipped file."""
    out = tmp_path / "sentiment"
    subprocess.run(
        [sys.executable, str(SCRIPTS / "build_sentiment.py"), "--out", str(out)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    shipped = sorted(p.name for p in DATA.iterdir())
    assert sorted(p.name for p in out.iterdir()) == shipped
    for name in shipped:
        assert (out / name).read_bytes() == (DATA / name).read_bytes(), name

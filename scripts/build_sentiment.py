"""Builds the bundled sentiment tasks from the VADER ground truth (Hutto & Gilbert, 2014).

    python scripts/build_sentiment.py [--out tasks/data/sentiment] [--downloads DIR]

Downloads the `vaderSentiment==3.3.2` sdist from PyPI (pinned by sha256), reads
the human ratings in `additional_resources/hutto_ICWSM_2014.tar.gz`, keeps the
clearly polar snippets (mean rating >= +0.5 positive, <= -0.5 negative) and
writes one TSV per split plus `manifest.json`, `LICENSE` and `NOTICE`. The
output is a pure function of the pinned archive: a rebuild is byte-identical.

Splits are drawn by hashing, not by a random generator, so they do not depend
on the Python version. Rows that share a text (case and spacing ignored) or,
for product reviews, a source review always land in the same split, so no
text, and no review, is seen on both sides of a split. Within a file rows are
in hash order too: the source lists all positive movie reviews first, which a
streaming shuffle buffer would not undo.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from _sources import Package, fetch, read_text, run_build, sha256_file, unpack, write_text

VADER = Package(
    registry="pip",
    name="vaderSentiment",
    version="3.3.2",
    sha256="5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9",
    licence="MIT (package); snippet texts remain their authors'",
)
RESOURCES = "additional_resources/hutto_ICWSM_2014.tar.gz"
GROUND_TRUTH_DIR = "hutto_ICWSM_2014"

# Mean ratings in (-THRESHOLD, THRESHOLD) are too close to neutral to label.
THRESHOLD = 0.5
# Salt of the split hash: changing it redraws every split.
SPLIT_SEED = "prompt-tuning-sentiment-0"
COLUMNS = ("idx", "id", "label", "rating", "text")
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "tasks" / "data" / "sentiment"


@dataclasses.dataclass(frozen=True)
class Domain:
    """One ground-truth file and how its polar snippets are split.

    Attributes:
      name: prefix of the output files (`{name}_{split}.tsv`).
      source: file name inside `hutto_ICWSM_2014/`.
      description: one line for the NOTICE.
      splits: `(split, fraction)` pairs; fractions sum to 1.
      group_by_review: ids look like `review_sentence`; keep a review together.
    """

    name: str
    source: str
    description: str
    splits: tuple[tuple[str, float], ...]
    group_by_review: bool = False


DOMAINS = (
    Domain(
        name="movie",
        source="movieReviewSnippets_GroundTruth.txt",
        description="sentence-level snippets of movie reviews from rottentomatoes.com "
        "(the review sentences of Pang & Lee)",
        splits=(("train", 0.8), ("validation", 0.1), ("test", 0.1)),
    ),
    Domain(
        name="product",
        source="amazonReviewSnippets_GroundTruth.txt",
        description="sentence-level snippets of 309 Amazon customer reviews of 5 products "
        "(Hu & Liu, 2004)",
        splits=(("validation", 0.5), ("test", 0.5)),
        group_by_review=True,
    ),
    Domain(
        name="tweet",
        source="tweets_GroundTruth.txt",
        description="tweet-like texts: 4,000 inspired by tweets from Twitter's public "
        "timeline (user names and URLs anonymised) plus 200 contrived by the authors",
        splits=(("validation", 0.5), ("test", 0.5)),
    ),
)


@dataclasses.dataclass(frozen=True)
class Row:
    """One rated snippet; `rating` keeps the source's exact digits."""

    id: str
    rating: str
    text: str

    @property
    def label(self) -> str | None:
        """'positive' / 'negative', or None inside the neutral band."""
        value = float(self.rating)
        if value >= THRESHOLD:
            return "positive"
        if value <= -THRESHOLD:
            return "negative"
        return None


def parse_ground_truth(path: Path) -> list[Row]:
    """Reads `id<TAB>mean rating<TAB>text` lines (UTF-8, CRLF in the source)."""
    rows = []
    for number, line in enumerate(read_text(path).split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise ValueError(
                f"{path}:{number}: expected 3 tab-separated fields, got {len(fields)}."
            )
        row_id, rating, text = fields[0], fields[1], fields[2].strip()
        try:
            float(rating)
        except ValueError:
            raise ValueError(f"{path}:{number}: rating {rating!r} is not a number.") from None
        if not text or any(c in text for c in "\r\n\t"):
            raise ValueError(f"{path}:{number}: text is empty or contains a control separator.")
        rows.append(Row(row_id, rating, text))
    ids = [row.id for row in rows]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: ids are not unique.")
    return rows


def text_key(text: str) -> str:
    """The form under which two texts count as the same (case and spacing ignored)."""
    return " ".join(text.lower().split())


def linked_groups(keys: Sequence[Sequence[str]]) -> list[list[int]]:
    """Connected components of rows that share any key, each in row order.

    Args:
      keys: for each row, the keys that tie it to other rows.
    """
    parent = list(range(len(keys)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_row: dict[str, int] = {}
    for i, row_keys in enumerate(keys):
        for key in row_keys:
            parent[root(i)] = root(first_row.setdefault(key, i))
    groups: dict[int, list[int]] = collections.defaultdict(list)
    for i in range(len(keys)):
        groups[root(i)].append(i)
    return sorted(groups.values())


def hash_order(salt: str, row_id: str) -> str:
    """Sort key that orders rows pseudo-randomly, fixed by the salt and the source's id."""
    return hashlib.sha256(f"{SPLIT_SEED}\t{salt}\t{row_id}".encode()).hexdigest()


def assign_splits(domain: Domain, rows: Sequence[Row]) -> dict[str, list[Row]]:
    """Splits rows by the domain's fractions, whole groups at a time, each in hash order."""
    keys = [
        ["text:" + text_key(row.text)]
        + (["review:" + row.id.split("_")[0]] if domain.group_by_review else [])
        for row in rows
    ]
    groups = linked_groups(keys)
    # A group is named by its first row's id, which the source fixes.
    groups.sort(key=lambda g: hash_order("group", rows[g[0]].id))
    names = [name for name, _ in domain.splits]
    boundaries, total = [], 0.0
    for _, fraction in domain.splits:
        total += fraction
        boundaries.append(total * len(rows))
    chosen: dict[str, list[int]] = {name: [] for name in names}
    assigned = 0
    for group in groups:
        split = next(n for n, b in zip(names, boundaries, strict=True) if assigned < b)
        chosen[split].extend(group)
        assigned += len(group)
    return {
        name: sorted((rows[i] for i in indices), key=lambda row: hash_order("row", row.id))
        for name, indices in chosen.items()
    }


def to_tsv(rows: Sequence[Row]) -> str:
    """Header plus one `idx, id, label, rating, text` line per row (`idx` counts from 0)."""
    lines = ["\t".join(COLUMNS)]
    lines += [
        "\t".join((str(idx), row.id, row.label, row.rating, row.text))
        for idx, row in enumerate(rows)
    ]
    return "\n".join(lines) + "\n"


def notice(source_hashes: dict[str, str]) -> str:
    """The NOTICE shipped beside the TSVs: provenance, derivation and rights."""
    domains = "\n".join(
        f"  - {d.name}_*.tsv: {GROUND_TRUTH_DIR}/{d.source} (sha256 {source_hashes[d.source]}),\n"
        f"    {d.description}."
        for d in DOMAINS
    )
    return f"""\
Sentiment data derived from the VADER sentiment ground truth
=============================================================

Source: the PyPI source distribution {VADER.name}=={VADER.version}
(sha256 {VADER.sha256}), file {RESOURCES},
released by C.J. Hutto under the MIT License (copy in LICENSE). Please cite

  Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for
  Sentiment Analysis of Social Media Text. Eighth International Conference on
  Weblogs and Social Media (ICWSM-14). Ann Arbor, MI, June 2014.

Each snippet carries the mean of at least 20 independent human ratings on a scale
from -4 (extremely negative) to +4 (extremely positive). The snippet texts belong
to their original authors (the reviewers and Twitter users; the movie and product
reviews were collected by Pang & Lee, 2004, and Hu & Liu, 2004); they are
redistributed here, unchanged apart from trimmed surrounding spaces, for research
on sentiment classification, as in the upstream package.

Files:
{domains}

Derivation (scripts/build_sentiment.py rebuilds every file byte for byte):
  - label: mean rating >= {THRESHOLD} -> positive, <= -{THRESHOLD} -> negative; snippets
    in between are dropped. `rating` keeps the source's digits.
  - splits: rows sharing a text (ignoring case and spacing), and product-review
    snippets of the same review, are kept together; groups are ordered by
    sha256("{SPLIT_SEED}\\tgroup\\t<id of the group's first row>") and cut at
    the fractions in manifest.json. Within a file rows are ordered by
    sha256("{SPLIT_SEED}\\trow\\t<id>"); `idx` numbers them from 0, `id` is the
    source's id.
  - format: UTF-8, '\\n' newlines, tab-separated columns {", ".join(COLUMNS)}, one
    header line; texts contain no tabs or newlines.
"""


def build(out: Path, downloads: Path) -> dict:
    """Writes the TSVs, manifest.json, LICENSE and NOTICE into `out`; returns the manifest."""
    sdist = unpack(fetch(VADER, downloads), downloads / "vader")
    package_dir = sdist / f"{VADER.name}-{VADER.version}"
    resources = unpack(package_dir / RESOURCES, downloads / "resources") / GROUND_TRUTH_DIR
    manifest: dict = {
        "source": {"registry": VADER.registry, "package": VADER.spec, "sha256": VADER.sha256,
                   "archive": RESOURCES, "licence": VADER.licence},
        "threshold": THRESHOLD,
        "split_seed": SPLIT_SEED,
        "columns": list(COLUMNS),
        "domains": {},
    }  # fmt: skip
    source_hashes = {}
    for domain in DOMAINS:
        path = resources / domain.source
        source_hashes[domain.source] = sha256_file(path)
        rows = parse_ground_truth(path)
        polar = [row for row in rows if row.label is not None]
        entry: dict = {
            "source": f"{GROUND_TRUTH_DIR}/{domain.source}",
            "source_sha256": source_hashes[domain.source],
            "source_rows": len(rows),
            "dropped_neutral": len(rows) - len(polar),
            "splits": {},
        }
        for split, split_rows in assign_splits(domain, polar).items():
            name = f"{domain.name}_{split}.tsv"
            write_text(out / name, to_tsv(split_rows))
            labels = collections.Counter(row.label for row in split_rows)
            entry["splits"][split] = {
                "file": name,
                "fraction": dict(domain.splits)[split],
                "examples": len(split_rows),
                "negative": labels["negative"],
                "positive": labels["positive"],
                "sha256": sha256_file(out / name),
            }
        manifest["domains"][domain.name] = entry
    write_text(out / "LICENSE", read_text(package_dir / "LICENSE.txt").replace("\r\n", "\n"))
    write_text(out / "NOTICE", notice(source_hashes))
    write_text(out / "manifest.json", json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return manifest


def main(argv: Sequence[str] | None = None) -> None:
    manifest = run_build(__doc__, DEFAULT_OUT, build, argv)
    for name, entry in manifest["domains"].items():
        counts = ", ".join(
            f"{split} {s['examples']} (+{s['positive']}/-{s['negative']})"
            for split, s in entry["splits"].items()
        )
        print(f"{name}: {entry['source_rows']} rated, {entry['dropped_neutral']} neutral dropped; "
              f"{counts}")  # fmt: skip


if __name__ == "__main__":
    main()

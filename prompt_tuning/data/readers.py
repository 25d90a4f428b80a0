"""Readers for the original distribution files of SuperGLUE, GLUE, MRQA and SQuAD.

Each reader turns one file into examples with exactly the features (names,
dtypes, label encoding, index) that the TFDS builder of the same dataset
produces, so one preprocessor serves both sources. Layouts follow the official
downloads, under one data root:

  super_glue/<Task>/{train,val,test}.jsonl      the SuperGLUE zips (BoolQ.zip, CB.zip, ...)
  super_glue/AX-b/AX-b.jsonl, super_glue/AX-g/AX-g.jsonl
  glue/<TASK>/{train,dev,test}.tsv              the GLUE zips (CoLA, SST-2, MRPC, QQP, STS-B, QNLI, RTE, WNLI)
  glue/MNLI/{train,dev_matched,dev_mismatched,test_matched,test_mismatched}.tsv
  glue/diagnostic/diagnostic.tsv                the GLUE diagnostic set (AX)
  mrqa/{train,dev}/<Dataset>.jsonl.gz           the MRQA 2019 release (gunzipped .jsonl also read)
  squad/{train,dev}-v1.1.json                   SQuAD v1.1
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import tensorflow as tf

from prompt_tuning.errors import InputError

Example = dict[str, Any]
TEXT = tf.TensorSpec([], tf.string)
TEXTS = tf.TensorSpec([None], tf.string)
INT32 = tf.TensorSpec([], tf.int32)
LABEL = tf.TensorSpec([], tf.int64)  # TFDS ClassLabel
FLOAT = tf.TensorSpec([], tf.float32)

BOOL_LABELS = ("False", "True")


@dataclasses.dataclass(frozen=True)
class RawDataset:
    """Where the original download keeps one dataset and how to read it.

    Attributes:
      name: the dataset, as people know it (`super_glue/rte`).
      files: split -> path of its file relative to the data root.
      read: path -> examples shaped like the TFDS builder's.
      signature: the `tf.TensorSpec`s of one example.
      origin: what to download, for error messages.
      aliases: column names of the original files -> feature names, which a
        user's own rows (`infer.input_file`) may use too.
    """

    name: str
    files: Mapping[str, str]
    read: Callable[[str], Iterator[Example]]
    signature: Mapping[str, Any]
    origin: str
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)


def read_lines(path: str) -> Iterator[str]:
    """Lines of a local or gs:// UTF-8 file (`.gz` decompressed), without line endings."""
    with tf.io.gfile.GFile(path, "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
        for n, line in enumerate(stream):
            text = line.decode("utf-8").rstrip("\r\n")
            # Some GLUE/MRPC files start with a byte-order mark.
            yield text.removeprefix("\ufeff") if n == 0 else text


def _jsonl(path: str) -> Iterator[dict[str, Any]]:
    for line in read_lines(path):
        if line.strip():
            yield json.loads(line)


def _label_index(value: Any, label_names: Sequence[str]) -> int:
    """A JSON label (string or bool) -> its class index."""
    name = ("True" if value else "False") if isinstance(value, bool) else str(value)
    if name not in label_names:
        raise InputError(f"Label {value!r} is not one of {list(label_names)}.")
    return label_names.index(name)


# ---------------------------------------------------------------------------
# SuperGLUE


@dataclasses.dataclass(frozen=True)
class SuperGlueTask:
    """One SuperGLUE task: TFDS config name, folder in the zip, text fields, labels."""

    config: str
    folder: str
    fields: tuple[str, ...]
    label_names: tuple[str, ...] = BOOL_LABELS


SUPER_GLUE = {
    t.config: t
    for t in (
        SuperGlueTask("boolq", "BoolQ", ("question", "passage")),
        SuperGlueTask(
            "cb", "CB", ("premise", "hypothesis"), ("entailment", "contradiction", "neutral")
        ),
        SuperGlueTask(
            "copa", "COPA", ("premise", "choice1", "choice2", "question"), ("choice1", "choice2")
        ),
        SuperGlueTask("multirc", "MultiRC", ("paragraph", "question", "answer")),
        SuperGlueTask("record", "ReCoRD", ("passage", "query"), ()),
        SuperGlueTask("rte", "RTE", ("premise", "hypothesis"), ("entailment", "not_entailment")),
        SuperGlueTask("wic", "WiC", ("word", "sentence1", "sentence2")),
        SuperGlueTask("wsc.fixed", "WSC", ("text", "span1_text", "span2_text")),
        SuperGlueTask("axb", "AX-b", ("sentence1", "sentence2"), ("entailment", "not_entailment")),
        SuperGlueTask("axg", "AX-g", ("premise", "hypothesis"), ("entailment", "not_entailment")),
    )
}
_SUPER_GLUE_INT_FIELDS = {
    "wic": ("start1", "start2", "end1", "end2"),
    "wsc.fixed": ("span1_index", "span2_index"),
}
# Spans TFDS's wsc.fixed leaves alone: the mention is split by other words.
_UNFIXABLE_WSC_SPANS = ("Kamenev and Zinoviev", "Kamenev, Zinoviev, and Stalin")


def _fix_wsc_span(example: Example, key: str) -> None:
    """TFDS `wsc.fixed`: makes a span a substring of the text where it is not.

    The first letter's case follows the word at the span's index, a trailing
    period goes and newlines become spaces.
    """
    span, text = example[f"{key}_text"], example["text"]
    if span in text or span in _UNFIXABLE_WSC_SPANS:
        return
    if "theyscold" in span:
        # The one span whose index is off as well; TFDS corrects only the index.
        example["span2_index"] = 10
    first_word = text.split()[example[f"{key}_index"]]
    span = (span[0].lower() if first_word[0].islower() else span[0].upper()) + span[1:]
    example[f"{key}_text"] = span.rstrip(".").replace("\n", " ")


def _record_rows(row: dict[str, Any]) -> Iterator[Example]:
    passage = row["passage"]
    text = passage["text"]
    # Entity offsets are inclusive at both ends.
    entities = sorted({text[e["start"] : e["end"] + 1] for e in passage["entities"]})
    for qa in row["qas"]:
        yield {
            "passage": text,
            "query": qa["query"],
            "entities": entities,
            "answers": sorted({a["text"] for a in qa.get("answers", [])}),
            "idx": {"passage": row["idx"], "query": qa["idx"]},
        }


def _multirc_rows(row: dict[str, Any]) -> Iterator[Example]:
    for question in row["passage"]["questions"]:
        for answer in question["answers"]:
            label = answer.get("label")
            yield {
                "paragraph": row["passage"]["text"],
                "question": question["question"],
                "answer": answer["text"],
                "label": -1 if label is None else _label_index(bool(label), BOOL_LABELS),
                "idx": {
                    "paragraph": row["idx"],
                    "question": question["idx"],
                    "answer": answer["idx"],
                },
            }


def _super_glue_example(task: SuperGlueTask, row: dict[str, Any]) -> Example:
    """One example of a task with one example per JSON line."""
    if task.config == "wsc.fixed":
        row = {**row, **row["target"]}
    example = {f: row[f] for f in task.fields + _SUPER_GLUE_INT_FIELDS.get(task.config, ())}
    if task.config == "wsc.fixed":
        _fix_wsc_span(example, "span1")
        _fix_wsc_span(example, "span2")
    example["idx"] = row["idx"]
    if "label" not in row:
        example["label"] = -1
    elif task.config == "copa":
        example["label"] = int(bool(row["label"]))  # 0 -> choice1, 1 -> choice2
    else:
        example["label"] = _label_index(row["label"], task.label_names)
    return example


def _super_glue_signature(task: SuperGlueTask) -> dict[str, Any]:
    signature: dict[str, Any] = {f: TEXT for f in task.fields}
    signature.update({f: INT32 for f in _SUPER_GLUE_INT_FIELDS.get(task.config, ())})
    if task.config == "record":
        signature.update(entities=TEXTS, answers=TEXTS)
        signature["idx"] = {"passage": INT32, "query": INT32}
        return signature
    if task.config == "multirc":
        signature["idx"] = {"paragraph": INT32, "question": INT32, "answer": INT32}
    else:
        signature["idx"] = INT32
    signature["label"] = LABEL
    return signature


def super_glue(config: str) -> RawDataset:
    """The SuperGLUE task `config` (a TFDS config name: `rte`, `wsc.fixed`, `axb`, ...)."""
    task = SUPER_GLUE[config]
    if config in ("axb", "axg"):
        files = {"test": f"super_glue/{task.folder}/{task.folder}.jsonl"}
    else:
        stem = f"super_glue/{task.folder}"
        files = {
            "train": f"{stem}/train.jsonl",
            "validation": f"{stem}/val.jsonl",
            "test": f"{stem}/test.jsonl",
        }

    def read(path: str) -> Iterator[Example]:
        for row in _jsonl(path):
            if task.config == "multirc":
                yield from _multirc_rows(row)
            elif task.config == "record":
                yield from _record_rows(row)
            else:
                yield _super_glue_example(task, row)

    return RawDataset(
        name=f"super_glue/{config}",
        files=files,
        read=read,
        signature=_super_glue_signature(task),
        origin=f"unzipped from {task.folder}.zip of https://super.gluebenchmark.com/tasks",
    )


# ---------------------------------------------------------------------------
# GLUE


@dataclasses.dataclass(frozen=True)
class GlueTask:
    """One GLUE task as laid out by the GLUE download script.

    Attributes:
      config: TFDS config name.
      folder: folder under `glue/`.
      columns: feature -> TSV column holding it.
      label_column: TSV column of the label ('' for unlabelled sets).
      label_names: class names, or () for STS-B's float score.
      files: split -> file name in `folder`.
    """

    config: str
    folder: str
    columns: Mapping[str, str]
    label_column: str
    label_names: tuple[str, ...]
    files: Mapping[str, str] = dataclasses.field(
        default_factory=lambda: {"train": "train.tsv", "validation": "dev.tsv", "test": "test.tsv"}
    )


_NLI3 = ("entailment", "neutral", "contradiction")
_NLI2 = ("entailment", "not_entailment")
_MNLI_FILES = {
    "train": "train.tsv",
    "validation_matched": "dev_matched.tsv",
    "validation_mismatched": "dev_mismatched.tsv",
    "test_matched": "test_matched.tsv",
    "test_mismatched": "test_mismatched.tsv",
}
_PAIR = {"sentence1": "sentence1", "sentence2": "sentence2"}
GLUE = {
    t.config: t
    for t in (
        GlueTask(
            "cola",
            "CoLA",
            {"sentence": "sentence"},
            "is_acceptable",
            ("unacceptable", "acceptable"),
        ),
        GlueTask("sst2", "SST-2", {"sentence": "sentence"}, "label", ("negative", "positive")),
        GlueTask(
            "mrpc",
            "MRPC",
            {"sentence1": "#1 String", "sentence2": "#2 String"},
            "Quality",
            ("not_equivalent", "equivalent"),
        ),
        GlueTask(
            "qqp",
            "QQP",
            {"question1": "question1", "question2": "question2"},
            "is_duplicate",
            ("not_duplicate", "duplicate"),
        ),
        GlueTask("stsb", "STS-B", _PAIR, "score", ()),
        GlueTask(
            "mnli",
            "MNLI",
            {"premise": "sentence1", "hypothesis": "sentence2"},
            "gold_label",
            _NLI3,
            _MNLI_FILES,
        ),
        # TFDS's MNLI evaluation sets on their own (T5's glue_mnli_{matched,mismatched}_v002).
        *(
            GlueTask(
                f"mnli_{kind}",
                "MNLI",
                {"premise": "sentence1", "hypothesis": "sentence2"},
                "gold_label",
                _NLI3,
                {"validation": f"dev_{kind}.tsv", "test": f"test_{kind}.tsv"},
            )
            for kind in ("matched", "mismatched")
        ),
        GlueTask("qnli", "QNLI", {"question": "question", "sentence": "sentence"}, "label", _NLI2),
        GlueTask("rte", "RTE", _PAIR, "label", _NLI2),
        GlueTask("wnli", "WNLI", _PAIR, "label", ("not_entailment", "entailment")),
        GlueTask(
            "ax",
            "diagnostic",
            {"premise": "sentence1", "hypothesis": "sentence2"},
            "",
            _NLI3,
            {"test": "diagnostic.tsv"},
        ),
    )
}


def _glue_rows(task: GlueTask, path: str) -> Iterator[dict[str, str]]:
    """TSV rows as dicts (CoLA's labelled files have no header: source, label, _, sentence)."""
    # Some GLUE fields are longer than csv's default limit of 128 KiB.
    csv.field_size_limit(2**31 - 1)
    lines = read_lines(path)
    if task.config == "cola" and not path.endswith("test.tsv"):
        for row in csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE):
            yield {"sentence": row[3], "is_acceptable": row[1]}
    else:
        yield from csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)


def _glue_label(task: GlueTask, row: Mapping[str, str]) -> float | int | None:
    """The label as TFDS encodes it: class index, float score, -1 when unlabelled, None if corrupt."""
    if task.label_column not in row:
        return -1.0 if not task.label_names else -1
    value = row[task.label_column]
    if not task.label_names:
        return float(value)
    if value in task.label_names:
        return task.label_names.index(value)
    return int(value) if value else None


def glue(config: str) -> RawDataset:
    """The GLUE task `config` (a TFDS config name: `cola`, `mnli`, `ax`, ...)."""
    task = GLUE[config]

    def read(path: str) -> Iterator[Example]:
        for n, row in enumerate(_glue_rows(task, path)):
            example: Example = {
                feature: row.get(column) for feature, column in task.columns.items()
            }
            example["label"] = _glue_label(task, row)
            # Like TFDS, skip rows that lack a field (a few QQP lines are broken) but
            # keep counting them, so `idx` is the row number in the file.
            if all(v is not None for v in example.values()):
                example["idx"] = n
                yield example

    signature: dict[str, Any] = {feature: TEXT for feature in task.columns}
    signature.update(label=LABEL if task.label_names else FLOAT, idx=INT32)
    return RawDataset(
        name=f"glue/{config}",
        files={split: f"glue/{task.folder}/{name}" for split, name in task.files.items()},
        read=read,
        signature=signature,
        origin=f"the {task.folder} folder of the GLUE download, https://gluebenchmark.com/tasks",
        aliases=_glue_aliases(task),
    )


def _glue_aliases(task: GlueTask) -> dict[str, str]:
    """The GLUE files' column names that differ from the features (`#1 String`, `Quality`)."""
    aliases = {column: feature for feature, column in task.columns.items() if column != feature}
    if task.label_column and task.label_column != "label":
        aliases[task.label_column] = "label"
    return aliases


# ---------------------------------------------------------------------------
# MRQA 2019

# TFDS config -> file name in the MRQA release (without .jsonl.gz). The first six
# have train and dev files; the out-of-domain six only dev files (TFDS: `test`).
MRQA_FILES = {
    "squad": "SQuAD",
    "news_qa": "NewsQA",
    "trivia_qa": "TriviaQA-web",
    "search_qa": "SearchQA",
    "hotpot_qa": "HotpotQA",
    "natural_questions": "NaturalQuestionsShort",
    "bio_asq": "BioASQ",
    "drop": "DROP",
    "duo_rc": "DuoRC.ParaphraseRC",
    "race": "RACE",
    "relation_extraction": "RelationExtraction",
    "textbook_qa": "TextbookQA",
}
MRQA_IN_DOMAIN = ("squad", "news_qa", "trivia_qa", "search_qa", "hotpot_qa", "natural_questions")
MRQA_SIGNATURE = {"subset": TEXT, "qid": TEXT, "question": TEXT, "context": TEXT, "answers": TEXTS}


def _mrqa_examples(path: str) -> Iterator[Example]:
    rows = _jsonl(path)
    # The first line is a header naming the dataset.
    subset = next(rows)["header"]["dataset"]
    for paragraph in rows:
        context = paragraph["context"].strip()
        for qa in paragraph["qas"]:
            yield {
                "subset": subset,
                "qid": qa["qid"],
                "question": qa["question"].strip(),
                "context": context,
                "answers": list(qa["answers"]),
            }


def mrqa(config: str) -> RawDataset:
    """The MRQA dataset `config` (a TFDS config name: `squad`, `bio_asq`, ...).

    Out-of-domain sets are MRQA's dev files, served as `validation` (TFDS calls
    that split `test`).
    """
    stem = MRQA_FILES[config]
    files = {"validation": f"mrqa/dev/{stem}.jsonl.gz"}
    if config in MRQA_IN_DOMAIN:
        files["train"] = f"mrqa/train/{stem}.jsonl.gz"
    return RawDataset(
        name=f"mrqa/{config}",
        files=files,
        read=_mrqa_examples,
        signature=MRQA_SIGNATURE,
        origin=f"{stem}.jsonl.gz of the MRQA release, https://github.com/mrqa/MRQA-Shared-Task-2019",
    )


# ---------------------------------------------------------------------------
# SQuAD v1.1

SQUAD_SIGNATURE = {
    "id": TEXT,
    "title": TEXT,
    "context": TEXT,
    "question": TEXT,
    "answers": {"text": TEXTS, "answer_start": tf.TensorSpec([None], tf.int32)},
}


def _squad_examples(path: str) -> Iterator[Example]:
    """TFDS `squad/v1.1` examples: one per question id, its answers gathered."""
    with tf.io.gfile.GFile(path, "rb") as f:
        articles = json.load(f)["data"]
    by_id: dict[str, Example] = {}
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                example = by_id.setdefault(
                    qa["id"],
                    {
                        "id": qa["id"],
                        "title": article.get("title", ""),
                        "context": paragraph["context"],
                        "question": qa["question"],
                        "answers": {"text": [], "answer_start": []},
                    },
                )
                for answer in qa["answers"]:
                    example["answers"]["text"].append(answer["text"])
                    example["answers"]["answer_start"].append(answer["answer_start"])
    yield from by_id.values()


def squad() -> RawDataset:
    """SQuAD v1.1 as released (`train-v1.1.json`, `dev-v1.1.json`), shaped like TFDS's."""
    return RawDataset(
        name="squad/v1.1",
        files={"train": "squad/train-v1.1.json", "validation": "squad/dev-v1.1.json"},
        read=_squad_examples,
        signature=SQUAD_SIGNATURE,
        origin="train-v1.1.json and dev-v1.1.json of https://rajpurkar.github.io/SQuAD-explorer/",
    )

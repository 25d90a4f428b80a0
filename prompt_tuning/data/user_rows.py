"""A user's own rows (`.jsonl`, or `.tsv` with a header) as the examples of a registered task.

Rows enter a task where its source-format parsing ends: they carry the fields
the task's formatter reads (`UserRows.signature`, the shape of the examples its
source yields after parsing), and the task's own format, tokenisation and
postprocessing run on them unchanged. So a prediction on a row copied from a
task's validation split equals `eval`'s prediction on that example.

Each mistake in the file is one `UserRowsError` naming the file, and the line
where one line is at fault.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import seqio
import tensorflow as tf

from prompt_tuning.errors import InputError

# Fields a row may leave out: targets (inference rows are usually unlabelled), ids and titles.
OPTIONAL = ("label", "answers", "idx", "qid", "subset", "id", "title")
SPLIT = "user"
# Marks a preprocessor that parses a source's records (e.g. TSV lines) into examples.
PARSES_SOURCE = "parses_source_records"


class UserRowsError(InputError):
    """A user's row file that cannot be read as examples of the task."""


@dataclasses.dataclass(frozen=True)
class UserRows:
    """How user rows become a task's examples.

    Attributes:
      signature: feature -> `tf.TensorSpec` (or a dict of them) of one example
        as the task's formatter receives it.
      label_names: class names by label index, for rows that name their label.
      aliases: column names of the task's own files -> feature names.
      skip: how many of the task's first preprocessors parse the source's
        records (dropped: user rows arrive parsed).
    """

    signature: Mapping[str, Any]
    label_names: tuple[str, ...] = ()
    aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)
    skip: int = 0

    @property
    def required(self) -> list[str]:
        """The fields every row must have."""
        return [name for name in self.signature if name not in OPTIONAL]


def parses_source(preprocessor: Callable[..., Any]) -> Callable[..., Any]:
    """Marks `preprocessor` as parsing source records: user rows enter after it."""
    setattr(preprocessor, PARSES_SOURCE, True)
    return preprocessor


def source_format(steps: Sequence[Callable[..., Any]]) -> tuple[int, dict[str, str]]:
    """How many leading `steps` parse source records, and the file columns they rename.

    A parsing step's `text_fields` keyword (file column -> feature) names
    columns that user rows may use as well, so lines copied from the task's
    own files read as they are.
    """
    skip, aliases = 0, {}
    for step in steps:
        if not getattr(getattr(step, "func", step), PARSES_SOURCE, False):
            break
        skip += 1
        aliases.update(getattr(step, "keywords", {}).get("text_fields", {}))
    return skip, aliases


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of the user's file and the line it came from."""

    line: int
    fields: dict[str, Any]


def read_rows(path: str) -> list[Row]:
    """The rows of a `.jsonl` file, or of a `.tsv` file whose first line names the fields."""
    from etils import epath

    if not path.endswith((".jsonl", ".tsv")):
        raise UserRowsError(
            f"Input file {path} must be .jsonl or .tsv (with a header row of field names)."
        )
    try:
        text = epath.Path(path).read_text()
    except (FileNotFoundError, IsADirectoryError) as e:
        raise UserRowsError(f"Input file {path} cannot be read: {e.strerror or e}.") from e
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    rows = _jsonl_rows(path, numbered) if path.endswith(".jsonl") else _tsv_rows(path, numbered)
    if not rows:
        raise UserRowsError(f"Input file {path} holds no rows.")
    return rows


def _jsonl_rows(path: str, lines: Sequence[tuple[int, str]]) -> list[Row]:
    rows = []
    for n, line in lines:
        try:
            fields = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserRowsError(f"Input file {path} line {n} is not JSON: {e.msg}.") from e
        if not isinstance(fields, dict):
            raise UserRowsError(f"Input file {path} line {n} is not a JSON object of fields.")
        rows.append(Row(n, fields))
    return rows


def _tsv_rows(path: str, lines: Sequence[tuple[int, str]]) -> list[Row]:
    if not lines:
        return []
    (_, header), *body = lines
    names = header.split("\t")
    rows = []
    for n, line in body:
        cells = line.split("\t")
        if len(cells) != len(names):
            raise UserRowsError(
                f"Input file {path} line {n} has {len(cells)} tab-separated cells but the header "
                f"names {len(names)} fields ({', '.join(names)})."
            )
        rows.append(Row(n, dict(zip(names, cells, strict=True))))
    return rows


def _renamed(rows: Sequence[Row], aliases: Mapping[str, str]) -> list[Row]:
    """Rows with the task files' column names turned into feature names."""
    return [
        Row(row.line, {aliases.get(name, name): value for name, value in row.fields.items()})
        for row in rows
    ]


def _check_fields(path: str, rows: Sequence[Row], spec: UserRows, task: str) -> None:
    for row in rows:
        missing = [name for name in spec.required if name not in row.fields]
        if missing:
            optional = [name for name in spec.signature if name in OPTIONAL]
            raise UserRowsError(
                f"Input file {path} line {row.line} (fields: {', '.join(row.fields)}) lacks "
                f"{', '.join(missing)}, which task {task} needs; it expects "
                f"{', '.join(spec.required)}"
                + (f" (optional: {', '.join(optional)})." if optional else ".")
            )


def _label(value: Any, spec: UserRows, where: str) -> int:
    """A label given as a class name, an index, or a JSON boolean -> the class index."""
    if isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value in spec.label_names:
        return spec.label_names.index(value)
    if isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?\d+", value)):
        return int(value)
    names = f"one of {list(spec.label_names)} or " if spec.label_names else ""
    raise UserRowsError(f"{where}: label {value!r} is not {names}a class index.")


def _value(name: str, value: Any, spec: Any, row_spec: UserRows, where: str) -> Any:
    """One field's value as the signature's dtype and shape."""
    if isinstance(spec, Mapping):
        if not isinstance(value, Mapping):
            raise UserRowsError(f"{where}: field {name} must be an object with {', '.join(spec)}.")
        return {key: _value(key, value.get(key, 0), s, row_spec, where) for key, s in spec.items()}
    if isinstance(value, Mapping):
        # E.g. a TFDS SQuAD record ({"text": [...], ...} answers) given to an MRQA task.
        kind = "a list of values" if spec.shape.rank == 1 else "one value"
        raise UserRowsError(
            f"{where}: field {name} must be {kind}, not an object ({', '.join(value)}); "
            f"task fields: {', '.join(row_spec.signature)}."
        )
    if spec.shape.rank == 1:
        items = value if isinstance(value, list) else [value]
        if spec.dtype == tf.string:
            return [str(v) for v in items]
        return [_value(name, v, tf.TensorSpec([], spec.dtype), row_spec, where) for v in items]
    if name == "label" and spec.dtype.is_integer:
        return _label(value, row_spec, where)
    try:
        return spec.dtype.as_numpy_dtype(value) if spec.dtype != tf.string else str(value)
    except (TypeError, ValueError) as e:
        raise UserRowsError(f"{where}: field {name} = {value!r} is not a {spec.dtype.name}.") from e


def _default(name: str, spec: Any, index: int) -> Any:
    """An optional field's value when the row leaves it out (unlabelled: -1, as in T5)."""
    if isinstance(spec, Mapping):
        return {key: _default(key, s, index) for key, s in spec.items()}
    if spec.shape.rank == 1:
        # One empty answer, so formats that take the first answer still run.
        return [""] if spec.dtype == tf.string else [0]
    if name == "label":
        return -1
    if name == "idx":
        return index
    return str(index) if spec.dtype == tf.string else 0


def _example(path: str, index: int, row: Row, spec: UserRows) -> dict[str, Any]:
    where = f"Input file {path} line {row.line}"
    return {
        name: _value(name, row.fields[name], s, spec, where)
        if name in row.fields
        else _default(name, s, index)
        for name, s in spec.signature.items()
    }


def task_on_rows(task: seqio.Task, spec: UserRows, path: str) -> seqio.Task:
    """`task` reading the rows of `path` (split `user`).

    Raises:
      UserRowsError: a file that is not .jsonl/.tsv, is empty, has a row shorter
        than its header, lacks a field the task needs, or holds a value of the
        wrong kind.
    """
    rows = _renamed(read_rows(path), spec.aliases)
    _check_fields(path, rows, spec, task.name)
    examples = [_example(path, i, row, spec) for i, row in enumerate(rows)]

    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        del split, shuffle_files, seed
        return tf.data.Dataset.from_generator(
            lambda: iter(examples), output_signature=dict(spec.signature)
        )

    source = seqio.FunctionDataSource(dataset_fn, splits=[SPLIT])
    return task.replace(
        name=f"{task.name}_user_input", source=source, preprocessors=task.preprocessors[spec.skip :]
    )

"""Labelled data shipped inside the package, read as seqio sources.

A bundled dataset is a folder `tasks/data/<name>/` (installed as
`prompt_tuning/tasks/data/<name>/`) holding one UTF-8 TSV file per split, each
with a header line, plus a `manifest.json` written by the script that built
them (see docs/data.md). Texts contain no tabs or newlines, so a line is an
example and `tf.io.decode_csv` parses it without quoting rules.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import seqio
import tensorflow as tf

from prompt_tuning.data import metrics
from prompt_tuning.data.metrics import MetricFn
from prompt_tuning.data.registry import register_classification
from prompt_tuning.data.user_rows import parses_source


def bundled_dir(name: str) -> Path:
    """The installed folder of bundled dataset `name` (`prompt_tuning/tasks/data/<name>`)."""
    # Located, not imported: importing the tasks package would register every task.
    tasks = importlib.util.find_spec("prompt_tuning.tasks")
    path = Path(tasks.origin).parent / "data" / name
    if not path.is_dir():
        raise FileNotFoundError(
            f"Bundled dataset folder {path} is missing; reinstall prompt_tuning (its package "
            "data ships tasks/data/**) or rebuild it with the script named in docs/data.md."
        )
    return path


def read_manifest(directory: Path) -> dict[str, Any]:
    """`manifest.json` of a bundled dataset folder."""
    path = directory / "manifest.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"Cannot read the bundled-data manifest {path}: {e}") from e


def tsv_source(
    files: Mapping[str, Path], num_examples: Mapping[str, int] | None = None
) -> seqio.TextLineDataSource:
    """A seqio source yielding each TSV line (header skipped) as a `string` tensor.

    Args:
      files: split -> TSV file.
      num_examples: split -> number of data lines, when known.
    """
    for split, path in files.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"TSV file {path} of split {split!r} does not exist.")
    return seqio.TextLineDataSource(
        {split: str(path) for split, path in files.items()},
        skip_header_lines=1,
        num_input_examples=dict(num_examples) if num_examples else None,
    )


def _label_index(label: tf.Tensor, label_names: Sequence[str]) -> tf.Tensor:
    """Label string -> its int64 index in `label_names`; an unknown label fails the pipeline."""
    matches = tf.equal(tf.constant(list(label_names)), label)
    check = tf.debugging.assert_equal(
        tf.reduce_any(matches), True, message=f"TSV label is not one of {list(label_names)}"
    )
    with tf.control_dependencies([check]):
        return tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int64)


@parses_source
@seqio.map_over_dataset
def parse_tsv(
    line: tf.Tensor,
    columns: Sequence[str],
    text_fields: Mapping[str, str],
    label_names: Sequence[str],
) -> dict[str, tf.Tensor]:
    """One TSV line -> `{feature: text, ..., "label": int64, "idx": int32}`.

    The shape `prompt_tuning.data.registry.register_classification` expects.
    Marked as source parsing: a user's rows (`infer.input_file`) enter after it,
    and may name the text by its file column (`text_fields`) or its feature.

    Args:
      line: a scalar string, the TSV line.
      columns: the file's header; it must include `idx` and `label`.
      text_fields: TSV column -> feature name for each text to keep.
      label_names: class names; the `label` column holds one of them.
    """
    fields = dict(
        zip(
            columns,
            tf.io.decode_csv(line, [""] * len(columns), field_delim="\t", use_quote_delim=False),
            strict=True,
        )
    )
    example = {feature: fields[column] for column, feature in text_fields.items()}
    example["label"] = _label_index(fields["label"], label_names)
    example["idx"] = tf.strings.to_number(fields["idx"], tf.int32)
    return example


def register_tsv_classification(
    name: str,
    source: seqio.DataSource,
    *,
    prefix: str,
    field: str,
    columns: Sequence[str],
    label_names: Sequence[str],
    metric_fns: Sequence[MetricFn] = (metrics.accuracy,),
) -> None:
    """Registers a bundled TSV file set as `"<prefix> <field>: <text>"` -> a label name.

    The rows of `source` have `columns`; their `text` column becomes `field` and
    their label name its index in `label_names` (see `parse_tsv`).
    """
    register_classification(
        name,
        source,
        prefix=prefix,
        keys=(field,),
        label_names=label_names,
        metric_fns=metric_fns,
        preformat=(
            functools.partial(
                parse_tsv,
                columns=tuple(columns),
                text_fields={"text": field},
                label_names=label_names,
            ),
        ),
    )

"""Bundled tasks of the continual-learning sequence (see docs/continual.md).

  question_type   train / validation / test: TREC questions -> abbreviation |
                  description | entity | human | location | number
  spam_email      train / validation / test: a mail's subject and text start -> ham | spam

With `movie_sentiment` they make a sequence of three classification tasks with
their own inputs and labels: `python -m prompt_tuning.continual --tasks
movie_sentiment,question_type,spam_email`. The files are rebuilt by
`scripts/build_continual_fairness_data.py`; counts are in each `manifest.json`.
"""

from __future__ import annotations

from prompt_tuning.data import metrics
from prompt_tuning.data.bundled import (
    bundled_dir,
    read_manifest,
    register_tsv_classification,
    tsv_source,
)

# task -> (input prefix, text field)
TASKS = {"question_type": ("trec", "question"), "spam_email": ("spam", "email")}


def register(name: str, prefix: str, field: str) -> None:
    """Registers bundled dataset `name` as a classification task over its manifest's labels."""
    directory = bundled_dir(name)
    manifest = read_manifest(directory)
    splits = manifest["splits"]
    labels = tuple(manifest["labels"])
    register_tsv_classification(
        name,
        tsv_source(
            {split: directory / entry["file"] for split, entry in splits.items()},
            {split: entry["examples"] for split, entry in splits.items()},
        ),
        prefix=prefix,
        field=field,
        columns=manifest["columns"],
        label_names=labels,
        metric_fns=(metrics.accuracy, metrics.macro_f1(len(labels))),
    )


for _name, (_prefix, _field) in TASKS.items():
    register(_name, _prefix, _field)

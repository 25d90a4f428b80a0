"""A user's own rows (`infer.input_file`) read as examples of every kind of registered task.

Rows copied from a task's validation split (its own files' columns, or the
fields its examples hold) give that split's examples, and `infer` on them gives
`eval`'s predictions.
"""

from __future__ import annotations

import csv
import json
import pathlib
import re

import numpy as np
import pytest
import tasks_helpers
import tiny

from prompt_tuning import eval as eval_cli
from prompt_tuning import experiment, infer
from prompt_tuning.data import get_task_or_mixture, readers, registry, user_rows
from prompt_tuning.data.bundled import bundled_dir

DATA = tasks_helpers.DATA
ROWS = 6  # rows copied from each validation split


def _tsv_rows(path: pathlib.Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[:ROWS]


def _mrqa_rows() -> list[dict]:
    examples = readers.mrqa("squad").read(str(DATA / "mrqa" / "dev" / "SQuAD.jsonl"))
    return [
        {"question": ex["question"], "context": ex["context"], "answers": ex["answers"]}
        for ex, _ in zip(examples, range(ROWS), strict=False)
    ]


# Task -> rows copied from its validation split, as a user would (the files' own columns).
COPIED = {
    "movie_sentiment": lambda: _tsv_rows(bundled_dir("sentiment") / "movie_validation.tsv"),
    "tweet_sentiment": lambda: _tsv_rows(bundled_dir("sentiment") / "tweet_validation.tsv"),
    "glue_rte_v002": lambda: _tsv_rows(DATA / "glue" / "RTE" / "dev.tsv"),
    "mrqa_squad_v100": _mrqa_rows,
}


def write_rows(rows: list[dict], path: pathlib.Path) -> pathlib.Path:
    """`rows` as `.jsonl`, or as `.tsv` (a list keeps its first item: one answer per cell)."""
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        lines = [list(rows[0])] + [
            [v[0] if isinstance(v, list) else str(v) for v in row.values()] for row in rows
        ]
        path.write_text("".join("\t".join(cells) + "\n" for cells in lines))
    return path


@pytest.fixture(autouse=True)
def _original_files():
    with tasks_helpers.raw_files(DATA):
        yield


def _user_examples(name: str, path: pathlib.Path) -> list[dict]:
    task = user_rows.task_on_rows(get_task_or_mixture(name), registry.user_rows(name), str(path))
    return list(task.get_dataset(None, split=user_rows.SPLIT, shuffle=False).as_numpy_iterator())


@pytest.mark.parametrize("suffix", [".tsv", ".jsonl"])
@pytest.mark.parametrize("name", sorted(COPIED))
def test_copied_rows_read_as_the_validation_examples(name, suffix, tmp_path):
    path = write_rows(COPIED[name](), tmp_path / f"rows{suffix}")
    validation = tasks_helpers.run_task(name, "validation")[:ROWS]
    assert tasks_helpers.texts(_user_examples(name, path)) == tasks_helpers.texts(validation)


@pytest.mark.parametrize(
    "name",
    [
        "super_glue_rte_v102",
        "super_glue_boolq_v102",
        "glue_mrpc_v002",
        "super_glue_wsc_v102",
        "super_glue_multirc_v102",
        "super_glue_record_v102",
        "glue_stsb_v002",
        tiny.TASK,
    ],
)
def test_every_kind_of_task_takes_rows_with_its_required_fields(name, tmp_path):
    spec = registry.user_rows(name)
    row = {field: 1 if spec.signature[field].dtype.is_integer else "x" for field in spec.required}
    if "entities" in row:
        row["entities"] = ["x"]
    examples = _user_examples(name, write_rows([row], tmp_path / "rows.jsonl"))
    assert len(examples) == 1
    # Unlabelled (the record row names its one entity as the answer it lacks).
    assert examples[0]["targets_pretokenized"].decode() in (*experiment.UNLABELLED_TARGETS, "x")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("premise\thypothesis\nA\tB\n", "premise, hypothesis) lacks sentence1, sentence2"),
        ("sentence1\tsentence2\nA\n", "line 2 has 1 tab-separated cells but the header names 2"),
        ("sentence1\tsentence2\tlabel\nA\tB\tmaybe\n", "label 'maybe' is not one of"),
        ("sentence1\tsentence2\n", "holds no rows"),
    ],
)
def test_a_bad_row_file_is_named_with_its_line(text, message, tmp_path):
    path = tmp_path / "rows.tsv"
    path.write_text(text)
    with pytest.raises(user_rows.UserRowsError, match=re.escape(message)) as raised:
        _user_examples("glue_rte_v002", path)
    assert str(path) in str(raised.value)


# ------------------------------------------------------------- infer == eval


@pytest.fixture(scope="module")
def run_files(tmp_path_factory):
    """The tiny checkpoint and a random prompt for it."""
    root = tmp_path_factory.mktemp("user_rows")
    prompt = root / "prompt.npy"
    np.save(prompt, np.random.default_rng(0).uniform(-0.5, 0.5, (5, 16)).astype(np.float32))
    return tiny.write_checkpoint(root / "ckpt"), prompt


def _flags(name: str, checkpoint, prompt, model_dir) -> list[str]:
    return [
        f"--gin.INITIAL_CHECKPOINT_PATH='{checkpoint}'",
        f"--gin.MIXTURE_OR_TASK_NAME='{name}'",
        f"--gin.MODEL_DIR='{model_dir}'",
        f"--gin.PROMPT_FILE='{prompt}'",
        "--gin.TASK_FEATURE_LENGTHS={'inputs': 128, 'targets': 4}",
        "--gin.ModelSpec.dtype='float32'",
    ]


def _predictions(path: pathlib.Path) -> list[str]:
    return [json.loads(line)["prediction"] for line in path.read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COPIED))
def test_infer_on_copied_rows_predicts_what_eval_does(name, run_files, tmp_path):
    flags = _flags(name, *run_files, tmp_path)
    argv = ["--gin_file=runs/prompt_eval.gin", *flags, f"--gin.evaluate.max_examples={ROWS}"]
    assert eval_cli.main(argv) == 0
    expected = _predictions(next((tmp_path / "eval").glob("*.predictions.jsonl")))
    for suffix in (".tsv", ".jsonl"):
        rows = write_rows(COPIED[name](), tmp_path / f"rows{suffix}")
        argv = ["--gin_file=runs/prompt_infer.gin", *flags, f"--gin.infer.input_file='{rows}'"]
        assert infer.main(argv) == 0
        written = sorted((tmp_path / "infer").glob("*.jsonl"))[-1]
        assert _predictions(written) == expected, suffix
        written.unlink()


@pytest.mark.slow
def test_an_unlabelled_row_reports_no_target(run_files, tmp_path):
    rows = write_rows(
        [
            {"sentence": "the plot was dull"},
            {"sentence": "the cast was great", "label": "positive"},
        ],
        tmp_path / "rows.jsonl",
    )
    argv = [
        "--gin_file=runs/prompt_infer.gin",
        *_flags(tiny.TASK, *run_files, tmp_path),
        f"--gin.infer.input_file='{rows}'",
    ]
    assert infer.main(argv) == 0
    written = [json.loads(line) for line in next((tmp_path / "infer").glob("*.jsonl")).open()]
    assert "target" not in written[0]
    assert written[1]["target"] == "positive"


# ------------------------------------------------------------- beam search


@pytest.mark.slow
def test_infer_beam_size_reaches_the_decoder_of_a_generative_task(run_files, tmp_path, monkeypatch):
    from prompt_tuning import evaluation

    calls = []
    decode = evaluation.decoded_predictions

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return decode(*args, **kwargs)

    monkeypatch.setattr(evaluation, "decoded_predictions", spy)
    rows = write_rows(_mrqa_rows()[:3], tmp_path / "rows.jsonl")
    flags = _flags("mrqa_squad_v100", *run_files, tmp_path)
    argv = ["--gin_file=runs/prompt_infer.gin", *flags, f"--gin.infer.input_file='{rows}'"]
    assert infer.main([*argv, "--gin.infer.beam_size=3", "--gin.BATCH_SIZE=8"]) == 0
    assert [(c["num_beams"], c["batch_size"]) for c in calls] == [(3, 8)]
    assert _predictions(next((tmp_path / "infer").glob("*.jsonl")))


@pytest.mark.parametrize("beam_size", [0, -2])
def test_a_bad_beam_size_is_refused_before_anything_is_written(run_files, tmp_path, beam_size):
    argv = ["--gin_file=runs/prompt_infer.gin", *_flags("movie_sentiment", *run_files, tmp_path)]
    assert infer.main([*argv, f"--gin.infer.beam_size={beam_size}"]) != 0
    assert not (tmp_path / "infer").exists()

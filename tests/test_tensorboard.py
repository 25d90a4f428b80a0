"""A run's metrics as TensorBoard event files: MODEL_DIR/train and MODEL_DIR/eval (T5X's layout)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf
import tiny
from test_train import tiny_run_bindings
from train_cli import train_in_process


def _scalars(folder: pathlib.Path) -> dict[str, dict[int, float]]:
    """Every scalar of the event files in `folder`: {tag: {step: value}}."""
    scalars: dict[str, dict[int, float]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                assert value.metadata.plugin_data.plugin_name == "scalars", value.tag
                scalars.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return scalars


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> pathlib.Path:
    model_dir = tmp_path_factory.mktemp("run")
    checkpoint = tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))
    train_in_process(
        ["runs/prompt_finetune.gin", "prompts/random_uniform.gin"],
        [
            *tiny_run_bindings(model_dir, checkpoint, 4, 5, 4),
            "train.eval_every = 2",
            "train.log_every = 2",
            "train.max_eval_examples = 8",
        ],
    )
    return model_dir


def test_train_and_eval_scalars_are_event_files(run):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = _scalars(run / "train")
    for name in ("loss", "learning_rate", "param_norm", "grad_norm", "token_accuracy"):
        assert sorted(train[name]) == [1, 2, 3, 4], name
    # The throughput of each log window (every 2 steps) is written at its last step.
    assert sorted(train["steps_per_s"]) == sorted(train["tokens_per_s"]) == [2, 4]
    assert train["learning_rate"] == dict.fromkeys([1, 2, 3, 4], pytest.approx(0.3))
    # The same values as metrics.jsonl, record for record.
    for record in records:
        kind = _scalars(run / record["kind"]) if record["kind"] == "eval" else train
        for name, value in record.items():
            if name not in ("step", "kind"):
                assert kind[name][record["step"]] == pytest.approx(value, rel=1e-6), name
    evals = _scalars(run / "eval")
    assert sorted(evals["accuracy"]) == [2, 4]
    assert np.isfinite(list(train["param_norm"].values())).all()

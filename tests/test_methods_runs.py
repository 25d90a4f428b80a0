"""Prompt methods through the gin jobs: train saves the method's file, eval and infer load it."""

from __future__ import annotations

import json

import gin
import numpy as np
import pytest
import tiny
from test_evaluation import _common
from test_train import tiny_run_bindings
from train_cli import train_in_process

from prompt_tuning import eval as eval_cli
from prompt_tuning import gin_utils, infer, methods
from prompt_tuning.checkpoints import state as run_state


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))


def _recipe(model_dir, checkpoint, method_gin, steps, extra=()) -> tuple[list[str], list[str]]:
    """Gin files and bindings of a tiny run of the method in `method_gin`."""
    return (
        ["runs/prompt_finetune.gin", "prompts/random_uniform.gin", method_gin],
        [*tiny_run_bindings(model_dir, checkpoint, steps, 4, 2), *extra],
    )


def _train(model_dir, checkpoint, method_gin, steps, extra=()):
    return train_in_process(*_recipe(model_dir, checkpoint, method_gin, steps, extra))


@pytest.mark.parametrize(
    ("method_gin", "name"),
    [
        ("methods/prompt_tuning.gin", "PromptTuning"),
        ("methods/prefix_tuning.gin", "PrefixTuning"),
        ("methods/p_tuning.gin", "PTuning"),
        ("methods/deep_prompts.gin", "DeepPrompts"),
        ("methods/multi_task.gin", "MultiTaskPrompts"),
    ],
)
def test_each_method_gin_file_selects_its_method(tmp_path, method_gin, name):
    gin_utils.parse(*_recipe(tmp_path, "unused", method_gin, 1))
    try:
        assert str(gin.query_parameter("train.method")) == f"@{name}()"
    finally:
        gin.clear_config()


def test_prefix_tuning_run_saves_an_npz_that_eval_and_infer_load(checkpoint, tmp_path):
    model_dir = tmp_path / "run"
    final = _train(
        model_dir,
        checkpoint,
        "methods/prefix_tuning.gin",
        4,
        ["PrefixTuning.decoder = True", "PrefixTuning.hidden = 32"],
    )
    assert sorted(final) == ["decoder_prefix", "encoder_prefix"]
    path = run_state.prompt_path(model_dir, 4, ".npz")
    assert run_state.saved_prompt_steps(model_dir) == [2, 4]
    assert run_state.verify_prompt(path) is None
    saved = methods.load_inputs(path)
    cfg = tiny.CONFIG
    assert saved["encoder_prefix"].shape == (2, 2, 4, cfg.num_heads, cfg.d_kv)
    for name, x in final.items():
        np.testing.assert_array_equal(saved[name], x)

    common = _common(checkpoint, tmp_path)
    assert (
        eval_cli.main(["--gin_file=runs/prompt_eval.gin", *common, f"--gin.PROMPT_FILE='{path}'"])
        == 0
    )
    metrics = json.loads((tmp_path / "eval" / f"{tiny.TASK}.validation.metrics.json").read_text())
    assert 0 <= metrics[str(path)]["accuracy"] <= 100
    assert "decode/accuracy" in metrics[str(path)]  # greedy decoding reads the decoder prefix
    assert (
        infer.main(["--gin_file=runs/prompt_infer.gin", *common, f"--gin.PROMPT_FILE='{path}'"])
        == 0
    )
    rows = next((tmp_path / "infer").glob("*.jsonl")).read_text().splitlines()
    assert {json.loads(row)["prediction"] for row in rows} <= {"negative", "positive"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method_gin", "extra"),
    [
        ("methods/deep_prompts.gin", ["DeepPrompts.lengths = (4, 2)", "DeepPrompts.add = True"]),
        ("methods/p_tuning.gin", ["PTuning.encoder = 'mlp'", "PTuning.hidden = 12"]),
    ],
)
def test_a_method_run_resumes_exactly(checkpoint, tmp_path, method_gin, extra):
    straight = _train(tmp_path / "straight", checkpoint, method_gin, 4, extra)
    _train(tmp_path / "split", checkpoint, method_gin, 2, extra)
    resumed = _train(tmp_path / "split", checkpoint, method_gin, 4, extra)
    if isinstance(straight, dict):
        for name in straight:
            np.testing.assert_array_equal(resumed[name], straight[name])
    else:
        np.testing.assert_array_equal(resumed, straight)

"""CODA-Prompt and L2P through the gin jobs: earlier components frozen, files eval/infer read."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny
from test_evaluation import _common
from test_methods_runs import _train

from prompt_tuning import eval as eval_cli
from prompt_tuning import infer, methods
from prompt_tuning.checkpoints import state as run_state
from prompt_tuning.methods import coda_prompt, l2p


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.mark.slow
def test_earlier_components_stay_bit_identical_while_a_new_task_trains(checkpoint, tmp_path):
    first = _train(tmp_path / "task0", checkpoint, "methods/coda_prompt.gin", 3,
                   ["CodaPrompt.components_per_task = 2"])  # fmt: skip
    path0 = run_state.prompt_path(tmp_path / "task0", 3, ".npz")
    second = _train(
        tmp_path / "task1",
        checkpoint,
        "methods/coda_prompt.gin",
        4,
        ["CodaPrompt.components_per_task = 3", f"CodaPrompt.previous = '{path0}'"],
    )
    assert second["coda_components"].shape[0] == 5
    for name in methods.CODA_ARRAYS:
        np.testing.assert_array_equal(second[name][:2], first[name])  # bit-identical
        # The new rows did train (a control: the run changed what it may change).
        saved_mid = methods.load_inputs(run_state.prompt_path(tmp_path / "task1", 2, ".npz"))
        assert not np.array_equal(saved_mid[name][2:], second[name][2:])


def test_orthogonality_penalty_pushes_rows_apart():
    method = methods.CodaPrompt(components_per_task=2, ortho_weight=1.0)
    params = {
        "components": jnp.ones((2, 3, 4)) + jnp.arange(24.0).reshape(2, 3, 4),
        "keys": jnp.eye(2, 5),
        "attention": jnp.asarray([[1.0, 0, 0, 0, 0], [1.0, 1.0, 0, 0, 0]]),
    }
    grads = jax.grad(lambda p: method.penalty(p, {}))(params)
    # Attention rows 45 degrees apart are pushed apart.
    assert float(jnp.abs(grads["attention"]).max()) > 0.1
    # Orthonormal keys are already at the penalty's minimum.
    assert float(jnp.abs(grads["keys"]).max()) < 1e-6


def test_each_input_gets_its_own_weighted_prompt():
    arrays = {
        "coda_components": jnp.stack([jnp.ones((2, 3)), -jnp.ones((2, 3))]),
        "coda_keys": jnp.asarray([[1.0, 0.0], [0.0, 1.0]]),
        "coda_attention": jnp.ones((2, 2)),
    }
    prompts = coda_prompt.compose(arrays, jnp.asarray([[2.0, 0.0], [0.0, 3.0]]))
    np.testing.assert_allclose(prompts[0], np.ones((2, 3)))  # alpha = (1, 0)
    np.testing.assert_allclose(prompts[1], -np.ones((2, 3)))  # alpha = (0, 1)


def test_l2p_picks_the_nearest_keys():
    arrays = {
        "l2p_prompts": jnp.arange(3.0)[:, None, None] * jnp.ones((3, 1, 2)),
        "l2p_keys": jnp.asarray([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]),
        "l2p_top_k": jnp.arange(2),
    }
    prompt = l2p.compose(arrays, jnp.asarray([[1.0, 0.1]]))
    np.testing.assert_array_equal(prompt[0, :, 0], [0.0, 1.0])  # keys 0 then 1


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method_gin", "extra"),
    [
        ("methods/coda_prompt.gin", ["CodaPrompt.components_per_task = 2"]),
        ("methods/l2p.gin", ["L2PPrompt.pool_size = 3", "L2PPrompt.top_k = 2"]),
    ],
)
def test_a_pool_file_is_read_by_eval_and_infer(checkpoint, tmp_path, method_gin, extra):
    _train(tmp_path / "run", checkpoint, method_gin, 2, extra)
    path = run_state.prompt_path(tmp_path / "run", 2, ".npz")
    assert methods.is_query_file(methods.load_inputs(path))
    common = _common(checkpoint, tmp_path)
    args = ["--gin_file=runs/prompt_eval.gin", *common, f"--gin.PROMPT_FILE='{path}'"]
    assert eval_cli.main(args) == 0
    metrics = json.loads((tmp_path / "eval" / f"{tiny.TASK}.validation.metrics.json").read_text())
    assert 0 <= metrics[str(path)]["accuracy"] <= 100
    assert "decode/accuracy" in metrics[str(path)]  # greedy decoding composes the prompt too
    args = ["--gin_file=runs/prompt_infer.gin", *common, f"--gin.PROMPT_FILE='{path}'"]
    assert infer.main(args) == 0
    rows = next((tmp_path / "infer").glob("*.jsonl")).read_text().splitlines()
    assert {json.loads(row)["prediction"] for row in rows} <= {"negative", "positive"}

"""Evaluation: batched prompt ensembles, the eval and infer CLIs' outputs."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
import tiny
import tolerances

from prompt_tuning import eval as eval_cli
from prompt_tuning import evaluation, infer
from prompt_tuning.data import get_task_or_mixture, label_target_ids
from prompt_tuning.models import T5, init_params


def test_ensemble_scores_equal_each_prompt_alone():
    params = init_params(tiny.CONFIG, jax.random.key(0))
    model = T5(tiny.CONFIG)
    task = get_task_or_mixture(tiny.TASK)
    examples = evaluation.load_examples(task, "validation", 16)
    ids = label_target_ids(tiny.TASK)
    stack = jax.random.uniform(
        jax.random.key(2), (3, 5, tiny.CONFIG.d_model), minval=-0.5, maxval=0.5
    )
    together = evaluation.rank_classify(
        model, params, stack, examples, ids, input_length=16, batch_size=8
    )
    assert together.shape == (3, len(examples), 2)
    alone = [
        evaluation.rank_classify(
            model, params, stack[i : i + 1], examples, ids, input_length=16, batch_size=8
        )[0]
        for i in range(3)
    ]
    # Batches of three prompts add in another order than batches of one: equal up to rounding.
    atol = tolerances.reordered_output_atol(together)
    for i in range(3):
        np.testing.assert_allclose(together[i], alone[i], rtol=0, atol=atol)
        assert (together[i].argmax(-1) == alone[i].argmax(-1)).all()
        # The control: the next prompt's scores (prompts mixed up) are far outside the tolerance.
        tolerances.assert_tolerance_catches(together[(i + 1) % 3], alone[i], atol)


def test_majority_vote_breaks_ties_by_first_prompt():
    votes = np.array([[0, 1, 1], [1, 1, 0], [1, 0, 0]])
    np.testing.assert_array_equal(evaluation.majority_vote(votes), [1, 1, 0])
    np.testing.assert_array_equal(evaluation.majority_vote(np.array([[0, 1], [1, 0]])), [0, 1])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))


def _common(checkpoint, model_dir):
    return [
        f"--gin.INITIAL_CHECKPOINT_PATH='{checkpoint}'",
        f"--gin.MIXTURE_OR_TASK_NAME='{tiny.TASK}'",
        f"--gin.MODEL_DIR='{model_dir}'",
        "--gin.TASK_FEATURE_LENGTHS={'inputs': 16, 'targets': 4}",
        "--gin.ModelSpec.dtype='float32'",
    ]


def test_eval_cli_writes_metrics_and_predictions_for_an_ensemble(checkpoint, tmp_path):
    files = []
    for i in range(3):
        path = tmp_path / f"p{i}.npy"
        np.save(path, np.random.default_rng(i).uniform(-0.5, 0.5, (5, 16)).astype(np.float32))
        files.append(str(path))
    argv = [
        "--gin_file=runs/prompt_eval.gin",
        *_common(checkpoint, tmp_path),
        f"--gin.evaluate.prompt_files={files}",
    ]
    assert eval_cli.main(argv) == 0
    metrics = json.loads((tmp_path / "eval" / f"{tiny.TASK}.validation.metrics.json").read_text())
    assert set(metrics) == {*files, "ensemble (majority vote)"}
    for values in metrics.values():
        assert values["majority_baseline"] == 50.0
        assert 0 <= values["accuracy"] <= 100
    assert "decode/accuracy" in metrics[files[0]]
    lines = (
        (tmp_path / "eval" / f"{tiny.TASK}.validation.predictions.jsonl").read_text().splitlines()
    )
    records = [json.loads(line) for line in lines]
    assert len(records) == 3 * 32  # 3 prompts x the 32 validation examples
    assert {r["prediction"] for r in records} <= {"negative", "positive"}
    # A second evaluation never overwrites the first.
    assert eval_cli.main(argv) == 0
    assert (tmp_path / "eval" / f"{tiny.TASK}.validation.1.metrics.json").exists()


def test_infer_on_a_users_jsonl_file(checkpoint, tmp_path):
    rows = tmp_path / "mine.jsonl"
    rows.write_text(
        '{"sentence": "the film was great", "label": 1}\n{"sentence": "dull", "label": 0}\n'
    )
    prompt = tmp_path / "p.npy"
    np.save(prompt, np.zeros((5, 16), np.float32))
    argv = [
        "--gin_file=runs/prompt_infer.gin",
        *_common(checkpoint, tmp_path),
        f"--gin.PROMPT_FILE='{prompt}'",
        f"--gin.infer.input_file='{rows}'",
    ]
    assert infer.main(argv) == 0
    out = [
        json.loads(line)
        for line in next((tmp_path / "infer").glob("*.jsonl")).read_text().splitlines()
    ]
    assert [r["inputs"] for r in out] == [
        "polarity sentence: the film was great",
        "polarity sentence: dull",
    ]
    assert all(set(r["scores"]) == {"negative", "positive"} for r in out)

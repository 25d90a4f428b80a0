"""Mixed-task inference: one batch, examples of different tasks with their own prompts and labels."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import tiny
import tolerances

from prompt_tuning import evaluation
from prompt_tuning.data import get_task_or_mixture, label_target_ids
from prompt_tuning.models import T5, init_params

INPUT_LENGTH = 24
# A second task with three labels of different lengths, so label sets differ in size and width.
OTHER_LABELS = [[1465, 1], [2841, 2841, 1], [3, 5, 7, 9, 1]]


@pytest.fixture(scope="module")
def setup():
    params = init_params(tiny.CONFIG, jax.random.key(0))
    first = evaluation.load_examples(get_task_or_mixture(tiny.TASK), "validation", INPUT_LENGTH, 6)
    second = evaluation.load_examples(
        get_task_or_mixture("movie_sentiment"), "validation", INPUT_LENGTH, 6
    )
    prompts = jax.random.uniform(
        jax.random.key(1), (2, 4, tiny.CONFIG.d_model), minval=-0.5, maxval=0.5
    )
    return T5(tiny.CONFIG), params, first, second, prompts


@pytest.mark.parametrize("position", ["prefix", pytest.param("suffix", marks=pytest.mark.slow)])
def test_mixed_batch_matches_single_task_batches(setup, position):
    model, params, first, second, prompts = setup
    tasks = [(first, label_target_ids(tiny.TASK)), (second, OTHER_LABELS)]

    def scored_alone(t: int, prompt: int) -> np.ndarray:
        """Task `t`'s examples in a batch of their own, with prompt number `prompt`."""
        examples, labels = tasks[t]
        return evaluation.rank_classify(
            model,
            params,
            prompts[prompt : prompt + 1],
            examples,
            labels,
            input_length=INPUT_LENGTH,
            batch_size=len(examples),
            prompt_position=position,
        )[0]

    alone = [scored_alone(t, prompt=t) for t in range(len(tasks))]
    # Interleave the tasks: example i of the mixed batch is (task i % 2, index i // 2).
    order = [(i % 2, i // 2) for i in range(2 * len(first))]
    mixed = evaluation.rank_classify_mixed(
        model,
        params,
        prompts[np.array([t for t, _ in order])],
        [tasks[t][0][j] for t, j in order],
        [tasks[t][1] for t, _ in order],
        input_length=INPUT_LENGTH,
        prompt_position=position,
    )
    # A mixed batch adds in another order than a single-task one: equal up to rounding.
    atol = tolerances.reordered_output_atol(np.concatenate([a.ravel() for a in alone]))
    for (t, j), scores in zip(order, mixed, strict=True):
        assert scores.shape == (len(tasks[t][1]),)
        np.testing.assert_allclose(scores, alone[t][j], rtol=0, atol=atol)
        assert scores.argmax() == alone[t][j].argmax()
    # The control: the other task's prompt (per-example prompts off by one) is far outside it.
    for t in range(len(tasks)):
        tolerances.assert_tolerance_catches(scored_alone(t, prompt=1 - t), alone[t], atol)


def test_each_example_needs_its_own_prompt_and_labels(setup):
    model, params, first, _, prompts = setup
    with pytest.raises(ValueError, match=r"got prompts \(2, 4, 16\), 3 examples, 3 label sets"):
        evaluation.rank_classify_mixed(
            model, params, prompts, first[:3], [OTHER_LABELS] * 3, input_length=INPUT_LENGTH
        )

"""The demo's recipe on the shipped model: the trained prompt steers the frozen model."""

from __future__ import annotations

import pytest
from train_cli import train_in_process

from prompt_tuning import demo

STEPS = 100
SLICE = 300


@pytest.mark.slow
def test_prompt_tuning_the_shipped_model_beats_the_majority_on_a_validation_slice(tmp_path):
    """The README's recipe, shortened to STEPS steps, on the first SLICE validation examples.

    The full demo (300 steps, all 1,007 examples) is what `make demo` prints; this
    guards against a model or recipe change that leaves the prompt at chance.
    """
    train_in_process(demo.recipe_files(), demo.recipe_bindings(str(tmp_path), STEPS, None))
    prompt = str(tmp_path / "prompts" / f"prompt_{STEPS}.npy")
    tuned = demo.evaluate(demo.TRAIN_TASK, [prompt], None, max_examples=SLICE)
    bare = demo.evaluate(demo.TRAIN_TASK, [], None, max_examples=SLICE)
    assert tuned["accuracy"] >= tuned["majority_baseline"] + 5, (tuned, bare)
    assert tuned["accuracy"] > bare["accuracy"], (tuned, bare)

"""Prompt extraction from a run's resumable Orbax state."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import tiny
from train_cli import train_in_process

from prompt_tuning import extract_prompt
from prompt_tuning.checkpoints import CheckpointError


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A 10-step tiny run saving its state (and prompt .npy) at steps 5 and 10."""
    root = tmp_path_factory.mktemp("extract")
    checkpoint = tiny.write_checkpoint(root / "ckpt")
    train_in_process(
        ["runs/prompt_finetune.gin", "prompts/random_uniform.gin"],
        [
            f"MODEL_DIR = '{root / 'run'}'",
            f"INITIAL_CHECKPOINT_PATH = '{checkpoint}'",
            f"MIXTURE_OR_TASK_NAME = '{tiny.TASK}'",
            "TASK_FEATURE_LENGTHS = {'inputs': 16, 'targets': 4}",
            "TRAIN_STEPS = 10",
            "BATCH_SIZE = 8",
            "PROMPT_LENGTH = 5",
            "ModelSpec.dtype = 'float32'",
            "train.save_every = 5",
            "train.eval_every = 0",
        ],
    )
    return root / "run"


@pytest.mark.slow
def test_every_saved_step_gives_the_prompt_written_at_that_step(model_dir, tmp_path):
    assert extract_prompt.saved_steps(model_dir) == [5, 10]
    for step in (5, 10):
        out = tmp_path / f"p{step}.npy"
        argv = ["--model_dir", str(model_dir), "--step", str(step), "--out", str(out)]
        assert extract_prompt.main(argv) == 0
        expected = np.load(model_dir / "prompts" / f"prompt_{step}.npy")
        np.testing.assert_array_equal(np.load(out), expected)
    assert not np.array_equal(np.load(tmp_path / "p5.npy"), np.load(tmp_path / "p10.npy"))
    assert extract_prompt.extract_prompt(model_dir)[0] == 10  # latest by default
    with pytest.raises(CheckpointError, match=r"no saved state for step 7; saved steps: \[5, 10\]"):
        extract_prompt.extract_prompt(model_dir, 7)


@pytest.mark.slow
def test_a_damaged_step_is_refused(model_dir, tmp_path):
    damaged = tmp_path / "run"
    shutil.copytree(model_dir, damaged)
    data_files = [p for p in (damaged / "state" / "5" / "state").rglob("*") if p.is_file()]
    victim = max(data_files, key=lambda p: p.stat().st_size)
    data = victim.read_bytes()
    victim.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # flip the last byte
    with pytest.raises(CheckpointError, match="failed verification"):
        extract_prompt.extract_prompt(damaged, 5)
    assert extract_prompt.extract_prompt(damaged, 10)[0] == 10


def test_missing_state_and_bad_output_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="no saved train state"):
        extract_prompt.extract_prompt(tmp_path)
    with pytest.raises(SystemExit, match=r"must end in \.npy"):
        extract_prompt.main(["--model_dir", str(tmp_path), "--out", str(tmp_path / "p.txt")])

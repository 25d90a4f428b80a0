"""Training as separate processes: killed and resumed, and split over two JAX processes."""

from __future__ import annotations

import pathlib
import signal
import subprocess
import time

import numpy as np
import pytest
import tiny
import tolerances
from train_cli import start_processes, subprocess_env, train_command

pytestmark = pytest.mark.slow


STEPS = 30


def _command(model_dir, checkpoint, save_every=5):
    return train_command(
        model_dir, checkpoint,
        "--gin_file=hardware/cpu.gin",
        "--gin.ModelSpec.dropout_rate=0.1",
        "--gin.train.log_every=5",
        "--gin.DataSpec.data_shards=2",
        steps=STEPS, save_every=save_every,
    )  # fmt: skip


_env = subprocess_env


def _final_prompt(model_dir, step=STEPS) -> np.ndarray:
    return np.load(pathlib.Path(model_dir) / "prompts" / f"prompt_{step}.npy")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, checkpoint) -> pathlib.Path:
    """MODEL_DIR of one uninterrupted run, saved at the last step and the one before it."""
    model_dir = tmp_path_factory.mktemp("straight")
    subprocess.run(
        _command(model_dir, checkpoint, save_every=STEPS - 1),
        env=_env(8),
        check=True,
        capture_output=True,
    )
    return model_dir


def test_sigkill_then_same_command_gives_the_same_prompt(tmp_path, checkpoint, uninterrupted):
    command, env = _command(tmp_path, checkpoint), _env(8)
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while not (tmp_path / "prompts" / "prompt_10.npy").exists():
        assert process.poll() is None and time.monotonic() < deadline, "run ended before step 10"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "prompts" / f"prompt_{STEPS}.npy").exists()
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert "Resuming from step" in resumed.stdout
    np.testing.assert_array_equal(_final_prompt(tmp_path), _final_prompt(uninterrupted))


def test_two_processes_of_four_devices_match_one_of_eight(tmp_path, checkpoint, uninterrupted):
    processes = start_processes(_command(tmp_path, checkpoint), 2, 4)
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], "\n\n".join(outputs)
    # The gradient's cross-process sum adds in another order than the in-process one.
    expected = _final_prompt(uninterrupted)
    atol = tolerances.reordered_training_atol(STEPS, learning_rate=0.3)  # prompt_finetune.gin
    np.testing.assert_allclose(_final_prompt(tmp_path), expected, rtol=0, atol=atol)
    # The control: a run that skipped one step is far outside the tolerance.
    one_step_short = _final_prompt(uninterrupted, STEPS - 1)
    tolerances.assert_tolerance_catches(one_step_short, expected, atol)

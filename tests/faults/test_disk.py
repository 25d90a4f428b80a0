"""A full disk during a save, and a MODEL_DIR turned read-only mid-run (`disk.py` injects both).

Each run must stop with one `error:` line naming the cause and the last good
state, leave every file a resumed run reads intact, and the same command,
re-run on a healthy disk, must resume and end on the uninterrupted run's prompt.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest
import tiny
import train_cli
from disk import FAILING_STEP, READ_ONLY_AFTER

from prompt_tuning.checkpoints import state as run_state

pytestmark = pytest.mark.slow

STEPS, SAVE_EVERY = 12, 4
TIMEOUT_S = 170
DISK = pathlib.Path(__file__).with_name("disk.py")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))


def _args(model_dir, checkpoint) -> list[str]:
    return train_cli.train_args(
        model_dir, checkpoint, "--gin.train.log_every=4", steps=STEPS, save_every=SAVE_EVERY
    )


def _env() -> dict[str, str]:
    env = train_cli.subprocess_env(1)
    env["PYTHONPATH"] += os.pathsep + str(DISK.parent)
    return env


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, checkpoint) -> bytes:
    model_dir = tmp_path_factory.mktemp("straight")
    command = [sys.executable, "-m", "prompt_tuning.train", *_args(model_dir, checkpoint)]
    subprocess.run(command, env=_env(), check=True, capture_output=True, timeout=TIMEOUT_S)
    return run_state.prompt_path(model_dir, STEPS).read_bytes()


@pytest.mark.parametrize(
    "mode, cause, last_good, last_prompt",
    [
        ("state_full", "No space left on device", FAILING_STEP - SAVE_EVERY, 4),
        # The state of step 8 was saved before its prompt: the resumed run writes the prompt.
        ("prompt_full", "No space left on device", FAILING_STEP, 4),
        ("read_only", "Read-only file system", READ_ONLY_AFTER, READ_ONLY_AFTER),
    ],
)
def test_disk_fault_stops_cleanly_and_a_later_run_resumes(
    mode, cause, last_good, last_prompt, tmp_path, checkpoint, uninterrupted
):
    model_dir = tmp_path / "run"
    args = _args(model_dir, checkpoint)
    faulty = subprocess.run(
        [sys.executable, str(DISK), mode, str(model_dir), "--", *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert faulty.returncode == 2, faulty.stdout + faulty.stderr
    errors = [line for line in faulty.stdout.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in faulty.stderr, faulty.stdout + faulty.stderr
    assert cause in errors[0] and f"The last good state (step {last_good}) is kept" in errors[0]
    # What a resumed run reads is intact: the last good state and its prompt verify.
    assert run_state.verify_state_step(model_dir / "state" / str(last_good)) is None
    assert run_state.verify_prompt(run_state.prompt_path(model_dir, last_prompt)) is None

    resumed = subprocess.run(
        [sys.executable, "-m", "prompt_tuning.train", *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"Resuming from step {last_good}" in resumed.stdout
    assert run_state.prompt_path(model_dir, STEPS).read_bytes() == uninterrupted

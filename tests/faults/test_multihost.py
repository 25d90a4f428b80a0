"""A 2-process x 4-device job with one process SIGKILLed mid-run.

The survivor must exit non-zero with one message within a bounded time (no
hang in a collective or at shutdown), and running both processes again must
resume from the last saved state and end on the prompt of an uninterrupted
2-process run, bit for bit.
"""

from __future__ import annotations

import pathlib
import signal
import subprocess
import time

import pytest
import tiny
import train_cli

from prompt_tuning import cli
from prompt_tuning.checkpoints import state as run_state

pytestmark = pytest.mark.slow

STEPS, SAVE_EVERY = 12, 4
HEARTBEAT_S = 20  # the coordination service's timeout for a silent process
RUN_TIMEOUT_S = 170


def _start(model_dir: pathlib.Path, checkpoint) -> list[subprocess.Popen]:
    """Both processes of the job, each with 4 CPU devices."""
    command = train_cli.train_command(
        model_dir, checkpoint,
        "--gin_file=hardware/cpu.gin", "--gin.train.log_every=2", "--gin.DataSpec.data_shards=2",
        steps=STEPS, save_every=SAVE_EVERY,
    )  # fmt: skip
    return train_cli.start_processes(command, 2, 4, **{cli.HEARTBEAT_ENV: str(HEARTBEAT_S)})


def _finish(processes: list[subprocess.Popen]) -> list[str]:
    outputs = [p.communicate(timeout=RUN_TIMEOUT_S)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], "\n\n".join(outputs)
    return outputs


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, checkpoint) -> bytes:
    """The final prompt file of an uninterrupted 2-process run."""
    model_dir = tmp_path_factory.mktemp("straight")
    _finish(_start(model_dir, checkpoint))
    return run_state.prompt_path(model_dir, STEPS).read_bytes()


def test_killed_process_stops_the_other_and_both_resume(tmp_path, checkpoint, uninterrupted):
    model_dir = tmp_path / "run"
    processes = _start(model_dir, checkpoint)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not run_state.prompt_path(model_dir, SAVE_EVERY).exists():
        assert all(p.poll() is None for p in processes), "a process ended before the kill"
        assert time.monotonic() < deadline, "no first save"
        time.sleep(0.05)
    # The worker dies; the coordinator (process 0, which holds the lock) must notice.
    processes[1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    survivor = processes[0]
    # Bounded: the heartbeat timeout, then the shutdown path; never a hang.
    output = survivor.communicate(timeout=HEARTBEAT_S * 4 + 30)[0]
    waited = time.monotonic() - killed_at
    processes[1].wait()
    assert survivor.returncode != 0, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    # Which layer notices first depends on timing: the job's own error line, JAX's
    # coordination service, or Gloo's transport aborting on the dead peer's socket (a C++
    # abort no Python handler can turn into the job's own line).
    aborts = ("Terminating process because", "gloo::EnforceNotMet")
    assert errors or any(a in output for a in aborts), output
    assert not run_state.prompt_path(model_dir, STEPS).exists()
    print(f"survivor exited {survivor.returncode} after {waited:.1f} s")

    outputs = _finish(_start(model_dir, checkpoint))
    assert "Resuming from step" in outputs[0], outputs[0]
    assert run_state.prompt_path(model_dir, STEPS).read_bytes() == uninterrupted

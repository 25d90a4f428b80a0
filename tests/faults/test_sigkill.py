"""Fault injection: SIGKILL training at many moments, resume with the same command.

All kills hit one MODEL_DIR in turn, as on preemptible capacity: each run of
the same command is killed at a chosen moment (while a state step or a prompt
is being written, right after a commit, or after a seeded random delay), and
the next run resumes from what the previous one left. After every kill, every
file that a resumed run would read must verify and every saved prompt must
equal, byte for byte, the one of an uninterrupted run; the last run finishes
and all its prompts must equal the uninterrupted run's.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import random
import signal
import subprocess
import time
from collections.abc import Callable

import pytest
import tiny
import train_cli

from prompt_tuning.checkpoints import state as run_state

pytestmark = pytest.mark.slow

STEPS, SAVE_EVERY = 24, 4
SAVED_STEPS = list(range(SAVE_EVERY, STEPS + 1, SAVE_EVERY))
TIMEOUT_S = 300


def _names(directory: pathlib.Path) -> list[str]:
    try:
        return os.listdir(directory)
    except FileNotFoundError:
        return []


@dataclasses.dataclass(frozen=True)
class Kill:
    """When to kill: `due(model_dir, time since start)` turns true.

    Time is counted in units of the uninterrupted run's wall time, so that a
    delay lands at the same point of a run on a fast CPU as on a slow one (in
    seconds, a CPU a few times faster than this test's first one would finish
    a resumed run before a kill at 8 s).
    """

    name: str
    due: Callable[[pathlib.Path, float], bool]


def writing_state(step: int) -> Kill:
    """While Orbax writes `step` into its temporary directory.

    A write can be over between two polls; then the kill lands right after the
    commit instead, so a fast machine never lets the run slip past its kill.
    """
    return Kill(
        f"writing state {step}",
        lambda d, _: (
            (d / "state" / str(step)).is_dir()
            or any(n.startswith(f"{step}.orbax-checkpoint-tmp") for n in _names(d / "state"))
        ),
    )


def committed_state(step: int) -> Kill:
    """As soon as state `step` is committed, before or while its manifest is written."""
    return Kill(f"state {step} committed", lambda d, _: (d / "state" / str(step)).is_dir())


def writing_prompt(step: int) -> Kill:
    """While the prompt of `step` or its digest is in a temporary file (or, if
    that moment falls between two polls, right after the prompt is written)."""
    prefix = f".tmp_prompt_{step}.npy"
    return Kill(
        f"writing prompt {step}",
        lambda d, _: (
            (d / "prompts" / f"prompt_{step}.npy").exists()
            or any(n.startswith(prefix) for n in _names(d / "prompts"))
        ),
    )


def after(fraction: float) -> Kill:
    """After `fraction` of the time an uninterrupted run takes."""
    return Kill(f"after {fraction:.0%} of a run", lambda _, t: t >= fraction)


_delays = random.Random(9)
# In order of the run's progress, so that every kill has something left to interrupt.
# Delays are fractions of a run; a resumed run takes about as long as a fresh one
# (start-up and compilation dominate), so a kill at <40% always finds it running.
KILLS: list[Kill] = [
    after(_delays.uniform(0.03, 0.2)),
    writing_state(4),
    committed_state(4),
    writing_prompt(8),
    writing_state(12),
    after(_delays.uniform(0.2, 0.4)),
    committed_state(16),
    writing_prompt(16),
    writing_state(20),
    writing_prompt(20),
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))


def _command(model_dir, checkpoint) -> list[str]:
    return train_cli.train_command(
        model_dir,
        checkpoint,
        "--gin.ModelSpec.dropout_rate=0.1",
        "--gin.train.log_every=4",
        steps=STEPS,
        save_every=SAVE_EVERY,
    )


@dataclasses.dataclass(frozen=True)
class Reference:
    """One uninterrupted run: its prompt file bytes by step, and its wall time."""

    prompts: dict[int, bytes]
    seconds: float


@pytest.fixture(scope="module")
def reference(tmp_path_factory, checkpoint) -> Reference:
    model_dir = tmp_path_factory.mktemp("uninterrupted")
    start = time.monotonic()
    subprocess.run(
        _command(model_dir, checkpoint),
        env=train_cli.subprocess_env(),
        check=True,
        capture_output=True,
        timeout=TIMEOUT_S,
    )
    return Reference(
        {s: run_state.prompt_path(model_dir, s).read_bytes() for s in SAVED_STEPS},
        time.monotonic() - start,
    )


def _run_until(command: list[str], model_dir: pathlib.Path, kill: Kill, run_seconds: float) -> bool:
    """Starts `command`; SIGKILLs it when `kill` is due. False if it finished first.

    `run_seconds` is the wall time of an uninterrupted run, the unit of `kill`'s time.
    """
    process = subprocess.Popen(
        command,
        env=train_cli.subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    start = time.monotonic()
    while process.poll() is None:
        elapsed = time.monotonic() - start
        assert elapsed < TIMEOUT_S, f"no exit and no kill ({kill.name}) in {TIMEOUT_S} s"
        if kill.due(model_dir, elapsed / run_seconds):
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.001)
    return False


def _unverified_files_in_use(model_dir: pathlib.Path) -> list[str]:
    """Prompts and state steps that a resumed run would read and that fail verification.

    The newest state step may lack its manifest (killed right after Orbax's
    commit): the resumed run rejects it, so it is not in use.
    """
    bad = [
        f"{p.name}: {problem}"
        for p in sorted((model_dir / "prompts").glob("prompt_*.npy"))
        if (problem := run_state.verify_prompt(p))
    ]
    steps = sorted(int(p.name) for p in (model_dir / "state").glob("*") if p.name.isdigit())
    for step in steps:
        problem = run_state.verify_state_step(model_dir / "state" / str(step))
        if problem and not (step == steps[-1] and "stopped before" in problem):
            bad.append(f"state {step}: {problem}")
    return bad


def _left_mid_write(model_dir: pathlib.Path) -> bool:
    """Whether the kill left a temporary file or directory of an interrupted write."""
    return any("tmp" in n for n in _names(model_dir / "state") + _names(model_dir / "prompts"))


def _prompt_bytes(model_dir: pathlib.Path) -> dict[int, bytes]:
    return {
        int(p.stem.removeprefix("prompt_")): p.read_bytes()
        for p in (model_dir / "prompts").glob("prompt_*.npy")
    }


def test_ten_sigkills_then_the_same_command_gives_identical_prompts(
    tmp_path, checkpoint, reference
):
    model_dir = tmp_path / "run"
    command = _command(model_dir, checkpoint)
    interrupted_writes = 0
    for kill in KILLS:
        assert _run_until(command, model_dir, kill, reference.seconds), (
            f"the run finished before '{kill.name}'"
        )
        interrupted_writes += _left_mid_write(model_dir)
        assert _unverified_files_in_use(model_dir) == [], f"after '{kill.name}'"
        saved = _prompt_bytes(model_dir)
        assert saved == {s: reference.prompts[s] for s in saved}, f"after '{kill.name}'"
    resumed = subprocess.run(
        command, env=train_cli.subprocess_env(), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Resuming from step" in resumed.stdout
    assert _unverified_files_in_use(model_dir) == []
    assert _prompt_bytes(model_dir) == reference.prompts
    # Some kills really landed inside a write (Orbax's or ours left a temporary behind).
    assert interrupted_writes >= 2

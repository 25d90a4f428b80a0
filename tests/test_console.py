"""A job's console holds only the project's lines, and a job needs none of the test-only packages."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import tiny
import train_cli

from prompt_tuning import console

pytestmark = pytest.mark.slow

# What `make demo` does not install (setup.py's `test` extra): a job importing one fails.
TEST_ONLY = ("torch", "transformers", "peft", "matplotlib")

# Runs `python -m prompt_tuning.train ARGS` with the test-only packages unimportable.
WRAPPER = f"""
import runpy, sys

class TestOnly:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {TEST_ONLY!r}:
            raise ImportError(f"{{name}} is not installed by `make demo`")

sys.meta_path.insert(0, TestOnly())
sys.argv = ["prompt_tuning.train", *sys.argv[1:]]
runpy.run_module("prompt_tuning.train", run_name="__main__", alter_sys=True)
"""

# Every line a train job writes (run_dir.progress_line, experiment.train's own prints).
PROJECT_LINES = (
    r"step \d+/\d+  loss \d+\.\d+  [\d.]+ steps/s  [\d,]+ tokens/s  ETA \S+",
    r"eval @ \d+: .+",
    r"Resuming from step \d+ in .+\.",
)


def _foreign(output: str) -> list[str]:
    return [
        line
        for line in output.splitlines()
        if line.strip() and not any(re.fullmatch(p, line) for p in PROJECT_LINES)
    ]


def test_train_job_prints_only_its_own_lines(tmp_path):
    checkpoint = tiny.write_checkpoint(tmp_path / "ckpt")
    args = train_cli.train_args(
        tmp_path / "run", checkpoint,
        "--gin.train.log_every=2", "--gin.train.eval_every=2", "--gin.train.max_eval_examples=8",
        steps=4, save_every=2,
    )  # fmt: skip
    runs = []
    for steps in (2, 4):  # a fresh run, then a resumed one
        command = [sys.executable, "-c", WRAPPER, *args, f"--gin.TRAIN_STEPS={steps}"]
        runs.append(
            subprocess.run(
                command,
                env=train_cli.subprocess_env(1),
                capture_output=True,
                text=True,
                timeout=170,
            )
        )
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
        assert _foreign(run.stdout + run.stderr) == [], run.stdout + run.stderr
    assert "Resuming from step 2" in runs[1].stdout and "eval @ 4" in runs[1].stdout
    # The control: TensorFlow's own start-up lines are what the check would catch.
    noisy = subprocess.run(
        [sys.executable, "-c", "import tensorflow"],
        env={**train_cli.subprocess_env(1), "TF_CPP_MIN_LOG_LEVEL": "0"},
        capture_output=True,
        text=True,
    )
    assert _foreign(noisy.stdout + noisy.stderr)


def test_clock_counts_hours_past_a_day_and_shows_an_unknown_time_as_a_question_mark():
    assert console.clock(3661.9) == "01:01:01"
    assert console.clock(30 * 3600 + 5) == "30:00:05"  # a time-of-day format would wrap to 06
    assert console.clock(float("inf")) == "?"

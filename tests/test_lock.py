"""One run per MODEL_DIR: a second run exits with a message naming the first."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import numpy as np
import pytest
import tiny
import train_cli

from prompt_tuning import run_lock, train
from prompt_tuning.checkpoints import state as run_state


def test_second_holder_is_refused_with_the_first_ones_pid(tmp_path):
    with run_lock.hold(tmp_path):
        lock_file = tmp_path / run_lock.LOCK_FILE
        recorded = lock_file.read_bytes()
        assert json.loads(recorded)["pid"] == os.getpid()
        with pytest.raises(run_lock.ModelDirLocked) as refused, run_lock.hold(tmp_path):
            pass
        message = str(refused.value)
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in message
        assert str(tmp_path) in message
        # The refused run leaves the lock file as the holder wrote it.
        assert lock_file.read_bytes() == recorded
    with run_lock.hold(tmp_path):
        pass


def test_directory_that_cannot_be_created(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with (
        pytest.raises(run_lock.ModelDirLocked, match="is not writable"),
        run_lock.hold(blocker / "run"),
    ):
        pass


def test_lock_is_released_when_the_block_raises(tmp_path):
    with pytest.raises(KeyError), run_lock.hold(tmp_path):
        raise KeyError("boom")
    with run_lock.hold(tmp_path):
        pass


@pytest.mark.slow
def test_concurrent_run_on_one_model_dir_is_refused(tmp_path, capsys):
    checkpoint = tiny.write_checkpoint(tmp_path / "ckpt")
    model_dir = tmp_path / "run"
    args = train_cli.train_args(model_dir, checkpoint, steps=300, save_every=100)
    first = subprocess.Popen(
        [*train_cli.train_command(model_dir, checkpoint, steps=300, save_every=100)],
        env=train_cli.subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lock_file = model_dir / run_lock.LOCK_FILE
    deadline = time.monotonic() + 300
    while not (lock_file.exists() and str(first.pid) in lock_file.read_text()):
        assert first.poll() is None and time.monotonic() < deadline, first.stdout.read()
        time.sleep(0.05)
    assert train.main(args) != 0
    out = capsys.readouterr().out
    assert f"MODEL_DIR {model_dir} is in use by another run (pid {first.pid}" in out, out
    assert first.poll() is None, "the first run ended before the second one was refused"
    output, _ = first.communicate(timeout=600)
    assert first.returncode == 0, output
    assert "Rejected" not in output
    for step in (100, 200, 300):
        assert run_state.verify_prompt(run_state.prompt_path(model_dir, step)) is None
    logged = [
        json.loads(line)["step"] for line in (model_dir / "metrics.jsonl").read_text().splitlines()
    ]
    assert logged == list(range(1, 301))
    assert np.isfinite(run_state.read_prompt(run_state.prompt_path(model_dir, 300))).all()

"""Shared by the training tests: the tiny training command, its environment, in-process runs, digests."""

from __future__ import annotations

import hashlib
import os
import pathlib
import socket
import subprocess
import sys

import gin
import tiny

from prompt_tuning import experiment, gin_utils

TESTS = pathlib.Path(__file__).resolve().parent


def train_args(
    model_dir: os.PathLike | str,
    checkpoint: os.PathLike | str,
    *extra: str,
    steps: int = 4,
    save_every: int = 2,
    prompt: str = "random_uniform",
) -> list[str]:
    """Gin flags of a tiny prompt-tuning run on the tiny task (tests/ must be importable)."""
    return [
        f"--gin_search_paths={TESTS}",
        "--gin_file=runs/prompt_finetune.gin",
        f"--gin_file=prompts/{prompt}.gin",
        "--gin_file=tiny_task.gin",
        f"--gin.MODEL_DIR='{model_dir}'",
        f"--gin.INITIAL_CHECKPOINT_PATH='{checkpoint}'",
        f"--gin.MIXTURE_OR_TASK_NAME='{tiny.TASK}'",
        "--gin.TASK_FEATURE_LENGTHS={'inputs': 16, 'targets': 4}",
        f"--gin.TRAIN_STEPS={steps}",
        "--gin.BATCH_SIZE=8",
        "--gin.PROMPT_LENGTH=5",
        "--gin.ModelSpec.dtype='float32'",
        f"--gin.train.save_every={save_every}",
        "--gin.train.eval_every=0",
        *extra,
    ]


def train_command(model_dir, checkpoint, *extra: str, **kwargs) -> list[str]:
    """`python -m prompt_tuning.train` with `train_args`, for a subprocess."""
    return [
        sys.executable,
        "-m",
        "prompt_tuning.train",
        *train_args(model_dir, checkpoint, *extra, **kwargs),
    ]


def subprocess_env(devices: int = 8, **extra: str) -> dict[str, str]:
    """This environment with tests/ importable and `devices` virtual CPU devices."""
    env = dict(os.environ)
    env.update(
        PYTHONPATH=os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]),
        XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
        JAX_PLATFORMS="cpu",
        **extra,
    )
    return env


def start_processes(command: list[str], processes: int, devices: int, **extra: str):
    """`processes` copies of `command` as one multi-process JAX job on a free local port.

    Returns the `subprocess.Popen`s in process-index order, stdout and stderr merged.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [
        subprocess.Popen(
            command,
            env=subprocess_env(
                devices,
                JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                JAX_NUM_PROCESSES=str(processes),
                JAX_PROCESS_ID=str(index),
                **extra,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(processes)
    ]


def train_in_process(gin_files: list[str], bindings: list[str]) -> object:
    """`experiment.train` in this process with these gin files and bindings, silently.

    The gin config is cleared afterwards, so tests do not see each other's bindings.
    """
    gin_utils.parse(gin_files, bindings)
    try:
        return experiment.train(print_fn=lambda _: None)
    finally:
        gin.clear_config()


def digest(directory: pathlib.Path) -> dict[str, str]:
    """sha256 of every file below `directory`, by relative path."""
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }

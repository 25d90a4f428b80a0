"""The shared body of the command-line entry points (`python -m prompt_tuning.train|eval|infer|pretrain`).

Joins a multi-process job when asked, parses the T5X-style gin flags, runs the
gin job, and turns known errors into one `error: ...` line and exit status 2.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax

from prompt_tuning import checkpoints, run_lock
from prompt_tuning.errors import RunError


def init_distributed() -> None:
    """Joins a multi-process JAX job when the launcher asks for one.

    `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID` name the
    job explicitly (GPU clusters, or several processes on one machine);
    `PROMPT_TUNING_MULTIHOST=1` lets JAX detect it (TPU pods, SLURM).
    """
    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if address:
        if os.environ.get("JAX_PLATFORMS", "").startswith("cpu"):
            # Cross-process collectives on CPU need an explicit implementation.
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            address,
            num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
            process_id=int(os.environ["JAX_PROCESS_ID"]),
        )
    elif os.environ.get("PROMPT_TUNING_MULTIHOST") == "1":
        jax.distributed.initialize()


def run_main(job: Callable[[], Any], argv: Sequence[str]) -> int:
    """Shared CLI body: parse gin flags, run the job, turn known errors into one line."""
    from prompt_tuning import gin_utils

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    init_distributed()
    try:
        args = gin_utils.parse_flags(argv)
        gin_utils.parse(args.gin_file, args.gin_bindings, args.gin_search_paths)
        try:
            job()
        except RuntimeError as e:
            if "Required bindings" in str(e):
                raise gin_utils.required_error(e) from e
            raise
    except (gin_utils.GinConfigError, RunError, checkpoints.CheckpointError, ValueError,
            FileNotFoundError, run_lock.ModelDirLocked) as e:
        # gin appends "In call to configurable ..." to errors raised inside a job.
        message = str(e).split("\n  In call to configurable")[0]
        print(f"error: {message}", flush=True)
        return 2
    return 0

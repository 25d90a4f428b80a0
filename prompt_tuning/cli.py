"""The shared body of the command-line entry points (`python -m prompt_tuning.train|eval|infer|pretrain`).

Joins a multi-process job when asked, parses the T5X-style gin flags, runs the
gin job, and turns the errors a user can act on (`USER_ERRORS`) into one
`error: ...` line and exit status 2; any other error is a bug and keeps its traceback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import jax

from prompt_tuning import checkpoints, run_lock
from prompt_tuning.errors import RunError

HEARTBEAT_ENV = "PROMPT_TUNING_HEARTBEAT_TIMEOUT_S"
EXIT_PEER_FAILED = 3
# The errors whose message says what to change (docs/errors.md): a run's refusals
# (RunError; bad input and gin_utils.GinConfigError are InputErrors, a kind of it),
# a damaged or mismatched checkpoint, a file the user named that is missing, a busy
# MODEL_DIR.
USER_ERRORS = (RunError, checkpoints.CheckpointError, FileNotFoundError, run_lock.ModelDirLocked)


def init_distributed() -> None:
    """Joins a multi-process JAX job when the launcher asks for one.

    `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID` name the
    job explicitly (GPU clusters, or several processes on one machine);
    `PROMPT_TUNING_MULTIHOST=1` lets JAX detect it (TPU pods, SLURM).
    `PROMPT_TUNING_HEARTBEAT_TIMEOUT_S` (default 100) bounds how long the others
    wait on a process that died before JAX's coordination service stops them.
    """
    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    # A process that stops answering is declared dead after this long, and the others stop.
    heartbeat = {"heartbeat_timeout_seconds": int(os.environ.get(HEARTBEAT_ENV, "100"))}
    if address:
        if os.environ.get("JAX_PLATFORMS", "").startswith("cpu"):
            # Cross-process collectives on CPU need an explicit implementation.
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            address,
            num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
            process_id=int(os.environ["JAX_PROCESS_ID"]),
            **heartbeat,
        )
    elif os.environ.get("PROMPT_TUNING_MULTIHOST") == "1":
        jax.distributed.initialize(**heartbeat)


def _stop_after_peer_failure(error: Exception) -> NoReturn:
    """Ends this process of a multi-process job whose collective failed, with one message.

    The usual exit would wait in `jax.distributed.shutdown` for processes that
    are gone (up to its shutdown timeout); `os._exit` ends it now, the lock and
    files released by the kernel. Saved states are complete or rejected on resume.
    """
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    print(
        f"error: process {jax.process_index()} of {jax.process_count()} stops: an operation "
        f"shared with the other processes failed ({first_line[:200]}). Another process of "
        "this job has probably stopped. Re-run every process with the same command to resume "
        "from the last saved state.",
        flush=True,
    )
    os._exit(EXIT_PEER_FAILED)


def run_main(job: Callable[[], Any], argv: Sequence[str]) -> int:
    """Shared CLI body: parse gin flags, run the job, turn `USER_ERRORS` into one line."""
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
    except jax.errors.JaxRuntimeError as e:
        if jax.process_count() > 1:
            _stop_after_peer_failure(e)
        raise
    except USER_ERRORS as e:
        # gin appends "In call to configurable ..." to errors raised inside a job.
        message = str(e).split("\n  In call to configurable")[0]
        print(f"error: {message}", flush=True)
        return 2
    return 0

"""An exclusive lock on MODEL_DIR, so that two runs never write the same directory.

The lock is `fcntl.flock` on `MODEL_DIR/.lock`, which holds the holder's pid,
host and start time for the message a second run prints. The kernel drops the
lock when the holder exits, however it exits (SIGKILL included), so a stale
file never blocks a resumed run. The file itself is kept: removing it would let
a run that opened the old file and one that creates a new file both "hold" it.

Limitations: flock needs a local or lock-aware network filesystem; object
stores (`gs://`) have no locks, so there runs are not guarded and a warning
says so. In a multi-process job only process 0 takes the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"


class ModelDirLocked(RuntimeError):
    """MODEL_DIR is held by another run, or cannot be locked at all."""


def _holder(fd: int) -> str:
    """Who holds the lock, from the file's contents, for the error message."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 4096).decode(errors="replace")
    try:
        info = json.loads(text)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info["start_time"]))
        return f"pid {info['pid']} on host {info['host']}, started {started}"
    except (ValueError, KeyError, TypeError):
        return "a process that has not yet recorded itself"


def _record(fd: int) -> None:
    info = {"pid": os.getpid(), "host": socket.gethostname(), "start_time": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    os.fsync(fd)


@contextlib.contextmanager
def hold(model_dir: str | os.PathLike, *, enabled: bool = True) -> Iterator[None]:
    """Holds the exclusive lock on `model_dir` (created if needed) for the `with` block.

    Raises `ModelDirLocked` naming the other process when another run holds it,
    or naming the directory when it cannot be created or written.
    """
    path = os.fspath(model_dir)
    if not enabled:
        yield
        return
    if "://" in path:
        log.warning(
            "MODEL_DIR %s is not a local path: it cannot be locked against other runs.", path
        )
        yield
        return
    lock_path = os.path.join(path, LOCK_FILE)
    try:
        os.makedirs(path, exist_ok=True)
        # No O_TRUNC: a run that fails to get the lock must leave the file as it was.
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise ModelDirLocked(
            f"MODEL_DIR {path} is not writable: {e.strerror} ({lock_path})."
        ) from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise ModelDirLocked(
                f"MODEL_DIR {path} is in use by another run ({_holder(fd)}; lock file {lock_path}). "
                "Wait for it to finish, stop it, or use another MODEL_DIR."
            ) from e
        _record(fd)
        yield
    finally:
        # Closing the descriptor releases the lock.
        os.close(fd)

"""`python disk.py MODE MODEL_DIR -- TRAIN_ARGS...`: a training run whose disk fails under it.

Patches the file-creating calls Python code makes (`open`, `os.open`, `os.mkdir`)
so that, for paths under MODEL_DIR, they fail as a full or read-only disk would:

- `state_full`: ENOSPC for anything written into the state step 8 being saved;
- `prompt_full`: ENOSPC for the prompt file of step 8;
- `read_only`: EROFS for every write under MODEL_DIR once `prompts/prompt_4.npy` exists
  (the directory turned read-only between two saves).

Writes made by C++ code (tensorstore's arrays, TensorBoard's event files) are
not intercepted; the Python ones fail inside Orbax's and the run's own save
paths, which is where the run has to handle the error.
"""

from __future__ import annotations

import builtins
import errno
import os
import sys

FAILING_STEP = 8
READ_ONLY_AFTER = 4


def _failure(mode: str, model_dir: str, path: str) -> OSError | None:
    """The error a write to `path` meets in `mode`, or None if it succeeds."""
    if not path.startswith(model_dir):
        return None
    relative = path[len(model_dir) :].lstrip("/")
    if mode == "state_full" and relative.startswith(f"state/{FAILING_STEP}."):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    if mode == "prompt_full" and relative.startswith(f"prompts/.tmp_prompt_{FAILING_STEP}.npy"):
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    armed = os.path.exists(os.path.join(model_dir, "prompts", f"prompt_{READ_ONLY_AFTER}.npy"))
    if mode == "read_only" and armed:
        return OSError(errno.EROFS, os.strerror(errno.EROFS), path)
    return None


def _writes(mode: str | int) -> bool:
    if isinstance(mode, int):
        return bool(mode & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND))
    return any(c in mode for c in "wax+")


def install(mode: str, model_dir: str) -> None:
    """Makes Python's file-creating calls under `model_dir` fail as `mode` says."""
    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir
    model_dir = os.path.abspath(model_dir)

    def check(path: object, writes: bool) -> None:
        if writes and isinstance(path, str | os.PathLike):
            error = _failure(mode, model_dir, os.path.abspath(os.fspath(path)))
            if error is not None:
                raise error

    def patched_open(file, mode_="r", *args, **kwargs):
        check(file, _writes(mode_))
        return real_open(file, mode_, *args, **kwargs)

    def patched_os_open(path, flags, *args, **kwargs):
        check(path, _writes(flags))
        return real_os_open(path, flags, *args, **kwargs)

    def patched_mkdir(path, *args, **kwargs):
        check(path, True)
        return real_mkdir(path, *args, **kwargs)

    builtins.open, os.open, os.mkdir = patched_open, patched_os_open, patched_mkdir


if __name__ == "__main__":
    mode, model_dir, separator, *train_args = sys.argv[1:]
    assert separator == "--", sys.argv
    install(mode, model_dir)
    from prompt_tuning import train

    sys.exit(train.main(train_args))

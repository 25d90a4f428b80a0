"""What a training run persists under MODEL_DIR, and how it reads it back.

- `prompts/prompt_<step>.npy`: the prompt `[P, d]`, written atomically (temp
  file, then rename), so a reader never sees half a file.
- `state/<step>/`: the resumable state (prompt, optimizer state, step) plus the
  data position, saved with Orbax (which commits a step only once complete).
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any

import numpy as np
import orbax.checkpoint as ocp
from etils import epath

PROMPT_DIR = "prompts"
STATE_DIR = "state"
_PROMPT_NAME = re.compile(r"^prompt_(\d+)\.npy$")


def prompt_path(model_dir: str | os.PathLike, step: int) -> epath.Path:
    return epath.Path(model_dir) / PROMPT_DIR / f"prompt_{step}.npy"


def save_prompt(model_dir: str | os.PathLike, step: int, prompt: np.ndarray) -> epath.Path:
    """Writes `prompt` `[P, d]` as `.npy` named by step: temp file, then rename."""
    path = prompt_path(model_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.asarray(prompt, np.float32)
    if path.parent.as_posix().startswith("gs://"):
        # Object stores have no rename; a single object write is already atomic.
        with path.open("wb") as f:
            np.save(f, array)
        return path
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp_prompt_", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def saved_prompt_steps(model_dir: str | os.PathLike) -> list[int]:
    """Steps for which a prompt `.npy` exists, ascending."""
    directory = epath.Path(model_dir) / PROMPT_DIR
    if not directory.exists():
        return []
    matches = (_PROMPT_NAME.match(p.name) for p in directory.iterdir())
    return sorted(int(m.group(1)) for m in matches if m)


def latest_state_step(model_dir: str | os.PathLike) -> int | None:
    """The newest complete saved state, without creating anything on disk."""
    if not (epath.Path(model_dir) / STATE_DIR).exists():
        return None
    return StateCheckpointer(model_dir).latest_step()


class StateCheckpointer:
    """Orbax-backed save / restore of the resumable train state.

    The state pytree holds the prompt, its optimizer state and the step; the
    data position (examples consumed) is saved beside it as JSON so the input
    pipeline can resume exactly where it stopped.
    """

    def __init__(self, model_dir: str | os.PathLike, max_to_keep: int | None = 3):
        self._manager = ocp.CheckpointManager(
            epath.Path(model_dir) / STATE_DIR,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
        )

    def save(self, step: int, state: Any, data_position: dict[str, int]) -> None:
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_position)
            ),
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def restore(self, step: int, abstract_state: Any) -> tuple[Any, dict[str, int]]:
        """Restores `step` into the structure, shardings and dtypes of `abstract_state`."""
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()
            ),
        )
        return restored["state"], dict(restored["data"])

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.close()

"""Take the prompt out of a run's resumable state at any saved step.

    python -m prompt_tuning.extract_prompt --model_dir D [--step N] --out P.npy

Training writes `prompts/prompt_<step>.npy` only every `save_every` steps and
may have cleaned some up; the Orbax state under `MODEL_DIR/state/<step>/`
holds the prompt too. The state is read without knowing the optimizer that
wrote it: its own metadata gives the tree, restored as host numpy arrays.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath

from prompt_tuning.checkpoints import CheckpointError
from prompt_tuning.checkpoints import state as run_state
from prompt_tuning.errors import ToolExit

# The Composite item name under which StateCheckpointer.save writes the train state.
_STATE_ITEM = "state"


def saved_steps(model_dir: str | os.PathLike) -> list[int]:
    """Steps with a committed state under `MODEL_DIR/state/`, ascending."""
    state_dir = epath.Path(model_dir) / run_state.STATE_DIR
    if not state_dir.is_dir():
        return []
    # Orbax writes a step under a temporary name and renames it to the bare number when complete.
    return sorted(int(p.name) for p in state_dir.iterdir() if p.name.isdigit() and p.is_dir())


def extract_prompt(model_dir: str | os.PathLike, step: int | None = None) -> tuple[int, np.ndarray]:
    """The prompt `[P, d]` (float32) saved in the resumable state at `step` (default: latest).

    Returns:
      `(step, prompt)`.

    Raises:
      CheckpointError: naming the folder when it has no state, the step is not
        saved (listing the saved ones), its files fail their sha256 manifest, or
        the state holds no usable prompt.
    """
    steps = saved_steps(model_dir)
    if not steps:
        raise CheckpointError(f"{model_dir}: no saved train state under {run_state.STATE_DIR}/.")
    step = steps[-1] if step is None else step
    if step not in steps:
        raise CheckpointError(f"{model_dir}: no saved state for step {step}; saved steps: {steps}.")
    step_dir = epath.Path(model_dir) / run_state.STATE_DIR / str(step)
    problem = run_state.verify_state_step(step_dir)
    if problem:
        raise CheckpointError(f"State step {step_dir} failed verification: {problem}.")
    item = step_dir / _STATE_ITEM
    with ocp.PyTreeCheckpointer() as checkpointer:
        try:
            tree = checkpointer.metadata(item).item_metadata.tree
            as_numpy = jax.tree.map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), tree)
            restored = checkpointer.restore(item, restore_args=as_numpy)
        except (OSError, ValueError, KeyError) as e:
            raise CheckpointError(f"{item}: cannot read the train state ({e}).") from e
    saved = restored if isinstance(restored, dict) else {}
    # The trainable part is `params`; states saved before issue #19 call it `prompt`.
    names = ["params", *run_state.LEGACY_FIELDS]
    prompt = next((saved[name] for name in names if name in saved), None)
    if prompt is None:
        raise CheckpointError(f"{item}: holds no prompt.")
    if isinstance(prompt, dict) or prompt.ndim != 2:
        raise CheckpointError(
            f"{item}: holds a prompt method's parameters, not a [P, d] prompt; the file the run "
            f"exported for this step is {_exported_file(model_dir, step)}."
        )
    if not np.isfinite(prompt).all():
        raise CheckpointError(f"{item}: the prompt contains NaN or Inf values.")
    return step, np.asarray(prompt, np.float32)


def _exported_file(model_dir: str | os.PathLike, step: int) -> str:
    """The prompt file a run saved for `step` (`.npy` or a method's `.npz`), by its real name."""
    saved = sorted((epath.Path(model_dir) / run_state.PROMPT_DIR).glob(f"prompt_{step}.np[yz]"))
    return str(saved[0]) if saved else f"{run_state.PROMPT_DIR}/prompt_{step}.npy or .npz"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m prompt_tuning.extract_prompt",
        description="Write the prompt of a run's saved train state as a .npy file.",
    )
    parser.add_argument("--model_dir", required=True, help="the run's MODEL_DIR")
    parser.add_argument("--step", type=int, help="saved step (default: the latest)")
    parser.add_argument("--out", required=True, help=".npy file to write")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (errors exit with one message)."""
    args = _parser().parse_args(argv)
    if not args.out.endswith(".npy"):
        raise ToolExit("extract_prompt", f"--out {args.out} must end in .npy.")
    folder = epath.Path(args.out).parent
    if not folder.is_dir():
        raise ToolExit("extract_prompt", f"--out {args.out}: the folder {folder} does not exist.")
    # Orbax warns that old-style states lack a metadata file; the restore does not need it.
    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        step, prompt = extract_prompt(args.model_dir, args.step)
    except CheckpointError as e:
        raise ToolExit("extract_prompt", e) from e
    np.save(args.out, prompt)
    print(f"Wrote the step-{step} prompt {prompt.shape} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The small T5 checkpoints this project pretrained and ships inside the package.

`docs/pretraining.md` describes how they are built. Gin
model files point at them with `INITIAL_CHECKPOINT_PATH = @shipped_checkpoint()`
(registered by `prompt_tuning.configurables`), so a run works from any working
directory and from an installed wheel.
"""

from __future__ import annotations

import pathlib

from prompt_tuning.checkpoints.errors import CheckpointError

SHIPPED_DIR = pathlib.Path(__file__).resolve().parent.parent / "assets" / "models"


def shipped_checkpoint(name: str) -> str:
    """Path of the shipped T5X checkpoint of model `name` (e.g. "t5_tiny_multitask")."""
    directory = SHIPPED_DIR / name
    found = sorted(directory.glob("checkpoint_*"))
    if len(found) != 1:
        known = sorted(p.name for p in SHIPPED_DIR.iterdir()) if SHIPPED_DIR.is_dir() else []
        raise CheckpointError(
            f"{directory}: no shipped checkpoint of {name!r} (shipped: {', '.join(known) or 'none'})."
        )
    return str(found[0])

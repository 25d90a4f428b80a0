"""Reading and writing T5 checkpoints: T5X (msgpack + zarr, Orbax) and Hugging Face.

`load(path)` reads any of them into `(T5Config, params)` with T5X names;
`save_t5x`, `save_orbax_t5x` and `save_hf` write them back; `shipped_checkpoint`
finds the small T5 the project ships.
"""

from prompt_tuning.checkpoints.errors import CheckpointError
from prompt_tuning.checkpoints.hf_files import save_hf
from prompt_tuning.checkpoints.loader import Source, all_steps, load, resolve
from prompt_tuning.checkpoints.orbax_t5x import save_orbax_t5x
from prompt_tuning.checkpoints.shipped import shipped_checkpoint
from prompt_tuning.checkpoints.t5x import save_t5x

__all__ = [
    "CheckpointError",
    "Source",
    "all_steps",
    "load",
    "resolve",
    "save_hf",
    "save_orbax_t5x",
    "save_t5x",
    "shipped_checkpoint",
]

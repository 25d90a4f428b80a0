"""What every prompt method shares: its protocol, its init context, and its file format.

A method is a small frozen dataclass with two pure functions:

- `init(rng, context) -> params`: the trainable pytree (the only thing the
  optimizer and its state ever see);
- `model_inputs(params, batch=None) -> inputs`: the keyword inputs it feeds the
  frozen `models.T5` (`prompt`, `layer_prompts`, `encoder_prefix`, ...), computed
  with jnp so gradients reach `params` and nothing else. Only a method whose
  inputs differ per example (multi-task prompts) reads the batch.

Exporting evaluates `model_inputs` once, which folds reparameterisations (an
MLP over prefixes, a prompt encoder) into plain arrays. That is the small file
a run saves and eval/infer load: `.npy` when it is one `[P, d]` prompt, `.npz`
(named by the model inputs) otherwise, so a file needs no method config to run.
A multi-task file holds one prompt per task instead (`MULTI_TASK_ARRAYS`), and a
query-conditioned method (CODA-Prompt, L2P) its pool (`CODA_ARRAYS`, `L2P_ARRAYS`),
from which evaluation makes each input's prompt (`methods.query`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, Protocol

import jax
import numpy as np

from prompt_tuning import prompts
from prompt_tuning.errors import InputError
from prompt_tuning.models import T5Config

Params = Any
ModelInputs = Mapping[str, Any]
Batch = Mapping[str, Any]
FileContent = np.ndarray | dict[str, np.ndarray]

# Keyword inputs of `models.T5` that a method may produce, and so a `.npz` may hold.
MODEL_INPUTS = (
    "prompt",
    "layer_prompts",
    "layer_prompt_lengths",
    "layer_prompt_add",
    "encoder_prefix",
    "decoder_prefix",
)
# What a multi-task file holds instead: `task_prompts [T, P, d]`, `task_names [T]`.
MULTI_TASK_ARRAYS = ("task_prompts", "task_names")
# What a query-conditioned pool holds instead (`methods.query`): CODA-Prompt's and L2P's.
CODA_ARRAYS = ("coda_components", "coda_keys", "coda_attention")
L2P_ARRAYS = ("l2p_prompts", "l2p_keys", "l2p_top_k")
# The other kinds of method file: each holds exactly these arrays.
WHOLE_FILE_KINDS = (MULTI_TASK_ARRAYS, CODA_ARRAYS, L2P_ARRAYS)
# Batch feature of query-conditioned methods: `[batch, d]`, the frozen encoder's pooled input.
QUERY = "query"


@dataclasses.dataclass(frozen=True)
class InitContext:
    """What a method's initialiser may use: the model and the configured prompt init."""

    config: T5Config
    length: int  # PROMPT_LENGTH: virtual tokens of the method
    prompt_init: prompts.PromptInit  # `(rng, (rows, d_model)) -> [rows, d_model]`


class Method(Protocol):
    """A prompt method: trainable parameters and what they feed the frozen model."""

    def init(self, rng: jax.Array, context: InitContext) -> Params:
        """The initial trainable pytree (float32 leaves)."""
        ...

    def model_inputs(self, params: Params, batch: Batch | None = None) -> ModelInputs:
        """The keyword inputs of `models.T5` that `params` stand for (pure jnp).

        Without `batch`, what the method exports (the same inputs, but for
        multi-task prompts the per-task table).
        """
        ...


def export(method: Method, params: Params) -> dict[str, np.ndarray]:
    """The method's model inputs as host arrays: reparameterisations folded away."""
    return {k: np.asarray(v) for k, v in jax.device_get(dict(method.model_inputs(params))).items()}


def file_content(inputs: Mapping[str, np.ndarray]) -> FileContent:
    """The `[P, d]` prompt alone (a `.npy` file) or the dict of inputs (a `.npz` file)."""
    if set(inputs) == {"prompt"}:
        return np.asarray(inputs["prompt"], np.float32)
    return {k: np.asarray(v) for k, v in inputs.items()}


def load_inputs(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The model inputs in a saved method file: `.npy` (a `[P, d]` prompt) or `.npz`.

    Raises:
      InputError: naming the file when it holds an unknown input, a non-finite
        float, or is no readable array file.
    """
    if not str(path).endswith(".npz"):
        return {"prompt": prompts.load_prompt(path)}
    try:
        with np.load(path, allow_pickle=False) as loaded:
            inputs = {k: loaded[k] for k in loaded.files}
    except FileNotFoundError as e:
        raise FileNotFoundError(f"Prompt file {path} does not exist.") from e
    except (ValueError, OSError) as e:
        raise InputError(f"Prompt file {path} is not a readable .npz archive: {e}") from e
    unknown = sorted(set(inputs) - set(MODEL_INPUTS))
    whole_file = any(set(inputs) == set(kind) for kind in WHOLE_FILE_KINDS)
    if (unknown or not inputs) and not whole_file:
        raise InputError(
            f"Prompt file {path} holds arrays {sorted(inputs)}; a method file holds some of "
            f"{list(MODEL_INPUTS)} and nothing else, or exactly one of "
            f"{[list(kind) for kind in WHOLE_FILE_KINDS]}."
        )
    for name, x in inputs.items():
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise InputError(f"Prompt file {path}: {name} contains NaN or Inf values.")
    return inputs

"""Deep prompts (P-tuning v2 style): a prompt at the input of every encoder layer.

The parameters are one `[P, d]` prompt per encoder layer, `[L, P, d]`, each
initialised by the configured prompt init. Layer i holds the first `lengths[i]`
rows of a P-row prompt region (P = the longest), replacing them, or with `add`
adding to them; see `models.t5` for how the rows a layer does not hold are
hidden from it. Rows past a layer's length are zeroed, so they get no gradient
and the exported `[L, P, d]` file holds exactly what the model reads.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from prompt_tuning.errors import InputError
from prompt_tuning.methods.base import Batch, InitContext, ModelInputs


@dataclasses.dataclass(frozen=True)
class DeepPrompts:
    """Per-layer prompts; `lengths` (one per encoder layer) defaults to PROMPT_LENGTH each."""

    lengths: tuple[int, ...] | None = None
    add: bool = False

    def _lengths(self, num_layers: int, length: int) -> tuple[int, ...]:
        lengths = tuple(self.lengths) if self.lengths else (length,) * num_layers
        if len(lengths) != num_layers or min(lengths) < 0 or max(lengths) < 1:
            raise InputError(
                f"DeepPrompts.lengths {lengths} must give one length >= 0 per encoder layer "
                f"({num_layers}), at least one of them positive."
            )
        return lengths

    def init(self, rng: jax.Array, context: InitContext) -> jax.Array:
        cfg = context.config
        lengths = self._lengths(cfg.num_encoder_layers, context.length)
        shape = (max(lengths), cfg.d_model)
        layers = [
            context.prompt_init(jax.random.fold_in(rng, i), shape) for i in range(len(lengths))
        ]
        return jnp.stack(layers)

    def model_inputs(self, params: jax.Array, batch: Batch | None = None) -> ModelInputs:
        del batch  # the same inputs for every example
        num_layers, num_prompt = params.shape[:2]
        lengths = jnp.asarray(self._lengths(num_layers, num_prompt), jnp.int32)
        active = jnp.arange(num_prompt) < lengths[:, None]  # [L, P]
        return {
            "layer_prompts": jnp.where(active[..., None], params, 0.0),
            "layer_prompt_lengths": lengths,
            "layer_prompt_add": jnp.asarray(self.add),
        }

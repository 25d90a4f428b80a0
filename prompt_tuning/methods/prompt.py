"""Plain prompt tuning (Lester et al. 2021): one `[P, d]` prompt on the encoder input."""

from __future__ import annotations

import dataclasses

import jax

from prompt_tuning.methods.base import Batch, InitContext, ModelInputs


@dataclasses.dataclass(frozen=True)
class PromptTuning:
    """The trainable parameters are the prompt itself, `[P, d]`."""

    def init(self, rng: jax.Array, context: InitContext) -> jax.Array:
        return context.prompt_init(rng, (context.length, context.config.d_model))

    def model_inputs(self, params: jax.Array, batch: Batch | None = None) -> ModelInputs:
        del batch  # the same inputs for every example
        return {"prompt": params}

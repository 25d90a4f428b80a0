"""Prefix tuning (Li & Liang 2021): trainable keys and values in every self-attention layer.

Each layer of the chosen stacks (the encoder, the decoder, or both) attends to
P extra key/value pairs `[2, P, heads, d_kv]` before its own. With
`reparameterize`, training goes through the paper's MLP: P trainable
embeddings `[P, d]` (from the configured prompt init) map through
`tanh(x W1 + b1) W2 + b2` to every layer's keys and values at once; export folds
the MLP away, leaving the plain prefixes. Without it, the prefixes are the
parameters, initialised from a normal distribution of `init_scale`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from prompt_tuning.errors import InputError
from prompt_tuning.methods.base import Batch, InitContext, ModelInputs, Params
from prompt_tuning.models import T5Config

STACKS = (("encoder", "num_encoder_layers"), ("decoder", "num_decoder_layers"))


@dataclasses.dataclass(frozen=True)
class PrefixTuning:
    """Key/value prefixes for the encoder (default) and/or the decoder."""

    encoder: bool = True
    decoder: bool = False
    reparameterize: bool = True
    hidden: int = 512
    init_scale: float = 0.5

    def _layers(self, config: T5Config) -> dict[str, int]:
        """Prefixed layers per stack, in the order the MLP's output lists them."""
        chosen = {"encoder": self.encoder, "decoder": self.decoder}
        if not any(chosen.values()):
            raise InputError("PrefixTuning needs encoder=True or decoder=True.")
        return {name: getattr(config, count) for name, count in STACKS if chosen[name]}

    def init(self, rng: jax.Array, context: InitContext) -> Params:
        cfg, length = context.config, context.length
        layers = self._layers(cfg)
        shape = (2, length, cfg.num_heads, cfg.d_kv)
        if not self.reparameterize:
            keys = jax.random.split(rng, len(layers))
            return {
                name: self.init_scale * jax.random.normal(key, (count, *shape))
                for key, (name, count) in zip(keys, layers.items(), strict=True)
            }
        embed_rng, w1_rng, *w2_rngs = jax.random.split(rng, 2 + len(layers))
        # Fan-in scaled, so the MLP's output starts at the scale of its input. The output
        # kernel is kept per stack, shaped like the prefixes it produces.
        return {
            "embedding": context.prompt_init(embed_rng, (length, cfg.d_model)),
            "w1": jax.random.normal(w1_rng, (cfg.d_model, self.hidden)) / cfg.d_model**0.5,
            "b1": jnp.zeros((self.hidden,)),
            "w2": {
                name: jax.random.normal(key, (self.hidden, count, 2, *shape[2:])) / self.hidden**0.5
                for key, (name, count) in zip(w2_rngs, layers.items(), strict=True)
            },
            "b2": {name: jnp.zeros((count, 2, *shape[2:])) for name, count in layers.items()},
        }

    def model_inputs(self, params: Params, batch: Batch | None = None) -> ModelInputs:
        """`{stack}_prefix`: `[layers, 2, P, heads, d_kv]` for each prefixed stack."""
        del batch  # the same inputs for every example
        if not self.reparameterize:
            return {f"{name}_prefix": prefix for name, prefix in params.items()}
        hidden = jnp.tanh(params["embedding"] @ params["w1"] + params["b1"])  # [P, hidden]
        return {
            f"{name}_prefix": jnp.einsum("ph,hlcnk->lcpnk", hidden, w2)
            + params["b2"][name][:, :, None]
            for name, w2 in params["w2"].items()
        }

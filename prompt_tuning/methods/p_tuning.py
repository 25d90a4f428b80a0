"""P-tuning (Liu et al. 2021): the input prompt is a small network's output.

P trainable virtual-token embeddings `[P, d]` (from the configured prompt init)
pass through a prompt encoder, either a two-layer bidirectional LSTM followed
by a two-layer MLP (the paper's) or a three-layer MLP (PEFT's alternative), and
the result is the `[P, d]` prompt on the encoder input. Export evaluates the
encoder once, so the saved file is a plain `.npy` prompt.
"""

from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax

from prompt_tuning.errors import InputError
from prompt_tuning.methods.base import Batch, InitContext, ModelInputs, Params

ENCODERS = ("lstm", "mlp")


class PromptEncoder(nn.Module):
    """`[P, d]` virtual-token embeddings -> `[P, d]` prompt."""

    kind: str
    hidden: int
    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.kind == "lstm":
            h = x[None]  # the LSTM reads the P tokens as one sequence
            for i in range(2):
                h = nn.Bidirectional(
                    nn.RNN(nn.OptimizedLSTMCell(self.hidden)),
                    nn.RNN(nn.OptimizedLSTMCell(self.hidden)),
                    name=f"lstm_{i}",
                )(h)
            h = nn.relu(nn.Dense(2 * self.hidden, name="mlp_0")(h[0]))
            return nn.Dense(self.features, name="mlp_1")(h)
        h = nn.relu(nn.Dense(self.hidden, name="mlp_0")(x))
        h = nn.relu(nn.Dense(self.hidden, name="mlp_1")(h))
        return nn.Dense(self.features, name="mlp_2")(h)


@dataclasses.dataclass(frozen=True)
class PTuning:
    """Trainable `embedding [P, d]` plus the `encoder`'s parameters."""

    encoder: str = "lstm"
    hidden: int = 256

    def _module(self, features: int) -> PromptEncoder:
        if self.encoder not in ENCODERS:
            raise InputError(
                f"Unknown P-tuning encoder {self.encoder!r}; choose one of {ENCODERS}."
            )
        return PromptEncoder(self.encoder, self.hidden, features)

    def init(self, rng: jax.Array, context: InitContext) -> Params:
        embed_rng, encoder_rng = jax.random.split(rng)
        embedding = context.prompt_init(embed_rng, (context.length, context.config.d_model))
        module = self._module(context.config.d_model)
        return {"embedding": embedding, "encoder": module.init(encoder_rng, embedding)["params"]}

    def model_inputs(self, params: Params, batch: Batch | None = None) -> ModelInputs:
        del batch  # the same inputs for every example
        module = self._module(params["embedding"].shape[1])
        return {"prompt": module.apply({"params": params["encoder"]}, params["embedding"])}

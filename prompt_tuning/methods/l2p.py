"""L2P-style prompt selection (Wang et al., CVPR 2022): the baseline CODA-Prompt improves on.

A pool of N prompts `P_n [L, d]` with keys `K_n [D]`. An input's query `q`
(`methods.query`) picks the `top_k` prompts whose keys are nearest in cosine
similarity, and their concatenation `[top_k * L, d]` is its prompt. The choice
is discrete, so the keys learn from the paper's surrogate loss, which pulls the
chosen keys towards the query: `(1 - cos(q, K_n))` summed over the chosen.
Across tasks the whole pool keeps training (L2P freezes nothing), starting
from the previous task's file (`previous`).

Saved as `.npz`: `l2p_prompts [N, L, d]`, `l2p_keys [N, D]`, and
`l2p_top_k [top_k]` whose *length* is top_k (a shape stays static under jit).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning.errors import InputError
from prompt_tuning.methods.base import L2P_ARRAYS as ARRAYS
from prompt_tuning.methods.base import QUERY, Batch, InitContext, ModelInputs, Params

EPS = 1e-6


def similarity(keys: jax.Array, query: jax.Array) -> jax.Array:
    """`[b, N]` cosine similarity of queries `[b, D]` with keys `[N, D]`."""
    unit_q = query / jnp.maximum(jnp.linalg.norm(query, axis=-1, keepdims=True), EPS)
    unit_k = keys / jnp.maximum(jnp.linalg.norm(keys, axis=-1, keepdims=True), EPS)
    return unit_q @ unit_k.T


def select(keys: jax.Array, query: jax.Array, top_k: int) -> tuple[jax.Array, jax.Array]:
    """The `top_k` nearest keys per query: `(indices [b, k], similarities [b, k])`."""
    sims = similarity(keys, query)
    chosen, indices = jax.lax.top_k(sims, top_k)
    return indices, chosen


def compose(arrays: Mapping[str, jax.Array], query: jax.Array) -> jax.Array:
    """Saved pool arrays (`ARRAYS`) and queries `[b, D]` -> prompts `[b, top_k * L, d]`."""
    top_k = arrays["l2p_top_k"].shape[-1]
    indices, _ = select(arrays["l2p_keys"], query, top_k)
    chosen = arrays["l2p_prompts"][indices]  # [b, k, L, d]
    return chosen.reshape(chosen.shape[0], -1, chosen.shape[-1])


@dataclasses.dataclass(frozen=True)
class L2PPrompt:
    """A pool of `pool_size` prompts (PROMPT_LENGTH rows each) and keys; `top_k` per input."""

    pool_size: int = 10
    top_k: int = 4
    previous: str | None = None  # the previous task's saved `.npz` (trained further)
    match_weight: float = 0.1
    reads_query = True

    def init(self, rng: jax.Array, context: InitContext) -> Params:
        if not 1 <= self.top_k <= self.pool_size:
            raise InputError(
                f"L2PPrompt needs 1 <= top_k <= pool_size, got top_k={self.top_k}, "
                f"pool_size={self.pool_size}."
            )
        if self.previous is not None:
            return self._load_previous(context)
        d = context.config.d_model
        prompt_rng, key_rng = jax.random.split(rng)
        prompts = jnp.stack(
            [
                context.prompt_init(jax.random.fold_in(prompt_rng, n), (context.length, d))
                for n in range(self.pool_size)
            ]
        )
        keys = jax.random.uniform(key_rng, (self.pool_size, d), minval=-1.0, maxval=1.0)
        return {"prompts": prompts, "keys": keys}

    def _load_previous(self, context: InitContext) -> Params:
        with np.load(self.previous, allow_pickle=False) as loaded:
            arrays = {name: np.asarray(loaded[name]) for name in loaded.files}
        expected = (self.pool_size, context.length, context.config.d_model)
        if set(arrays) != set(ARRAYS) or arrays["l2p_prompts"].shape != expected:
            raise InputError(
                f"L2PPrompt.previous {self.previous} is not an L2P pool of prompts {expected}."
            )
        return {"prompts": arrays["l2p_prompts"], "keys": arrays["l2p_keys"]}

    def _arrays(self, params: Params) -> dict[str, jax.Array]:
        return {
            "l2p_prompts": params["prompts"],
            "l2p_keys": params["keys"],
            "l2p_top_k": jnp.arange(self.top_k, dtype=jnp.int32),
        }

    def model_inputs(self, params: Params, batch: Batch | None = None) -> ModelInputs:
        """`prompt [b, top_k * L, d]` for a batch with `query [b, D]`; without, the pool."""
        arrays = self._arrays(params)
        if batch is None:
            return arrays
        return {"prompt": compose(arrays, batch[QUERY])}

    def penalty(self, params: Params, batch: Batch) -> jax.Array:
        """The surrogate loss pulling each chosen key towards its query (batch mean)."""
        _, chosen = select(params["keys"], batch[QUERY], self.top_k)
        return self.match_weight * jnp.mean(jnp.sum(1.0 - chosen, axis=-1))

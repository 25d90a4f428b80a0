"""Query-conditioned prompts (CODA-Prompt, L2P): each input gets its own prompt from a pool.

The query is the frozen encoder's representation of the input *without* any
prompt, mean-pooled over its real tokens: one extra frozen forward pass per
example, as in both papers (where it is the frozen ViT's [CLS] output; T5's
encoder has no [CLS], so its mean-pooled output stands in).

Training adds the query to the batch (`add_query`) before the method reads it;
evaluation and inference load the method's saved arrays and turn them into a
per-example `prompt [batch, P, d]` with the same compose function
(`resolve`), so a saved file needs no method config to run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from prompt_tuning.methods import coda_prompt, l2p
from prompt_tuning.methods.base import QUERY, Batch, Method, ModelInputs

# Saved arrays of each query-conditioned file kind -> `(arrays, query [b, D]) -> [b, P, d]`.
_COMPOSERS: dict[frozenset[str], Callable[[Mapping[str, jax.Array], jax.Array], jax.Array]] = {
    frozenset(coda_prompt.ARRAYS): coda_prompt.compose,
    frozenset(l2p.ARRAYS): l2p.compose,
}


def pooled_query(model: Any, frozen: Any, tokens: jax.Array) -> jax.Array:
    """`[batch, length]` ids -> `[batch, d]`: the frozen encoder's mean over real tokens.

    No gradient flows into it: the query is a fixed function of the input.
    """
    encoded, mask = model.apply({"params": frozen}, tokens, method="encode")
    weights = mask.astype(jnp.float32)[..., None]
    pooled = jnp.sum(encoded.astype(jnp.float32) * weights, 1) / jnp.maximum(
        jnp.sum(weights, 1), 1.0
    )
    return jax.lax.stop_gradient(pooled)


def reads_query(method: Method | None) -> bool:
    """Whether `method`'s inputs depend on the query of each example."""
    return bool(getattr(method, "reads_query", False))


def add_query(method: Method | None, model: Any, frozen: Any, batch: Batch) -> Batch:
    """`batch` with `query [b, d]` added when the method reads it (else unchanged)."""
    if not reads_query(method) or QUERY in batch:
        return batch
    return {**batch, QUERY: pooled_query(model, frozen, batch["encoder_input_tokens"])}


def penalty(method: Method | None, params: Any, batch: Batch) -> jax.Array:
    """The method's regulariser (a scalar added to the per-token loss), 0 for most methods."""
    fn = getattr(method, "penalty", None)
    return jnp.zeros((), jnp.float32) if fn is None else fn(params, batch)


def is_query_file(inputs: Mapping[str, Any] | None) -> bool:
    """Whether saved model inputs are a query-conditioned pool (CODA-Prompt or L2P)."""
    return isinstance(inputs, Mapping) and frozenset(inputs) in _COMPOSERS


def resolve(inputs: Mapping[str, jax.Array], query_fn: Callable[[], jax.Array]) -> ModelInputs:
    """Per-row pool arrays `{name: [b, ...]}` -> `{"prompt": [b, P, d]}`; other inputs unchanged.

    Args:
      inputs: model inputs, each with a leading row axis (one row per example).
      query_fn: computes the rows' queries `[b, d]` (called only for a pool).
    """
    if not is_query_file(inputs):
        return inputs
    compose = _COMPOSERS[frozenset(inputs)]
    query = query_fn()
    per_row = jax.vmap(lambda arrays, q: compose(arrays, q[None])[0])
    return {"prompt": per_row(dict(inputs), query)}

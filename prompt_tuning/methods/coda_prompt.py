"""CODA-Prompt (Smith et al., CVPR 2023): a prompt assembled per input from a growing pool.

The pool holds M components `P_m [L, d]`, each with a key `K_m [D]` and an
attention vector `A_m [D]` (D = d_model, the query's width). For an input with
query `q` (the frozen encoder's pooled representation, `methods.query`):

    alpha_m = cos(q * A_m, K_m)          prompt(q) = sum_m alpha_m P_m   [L, d]

Continual learning adds `components_per_task` components per task. The
components, keys and attention vectors of earlier tasks come from the previous
task's saved file (`previous`) and are constants here, so no update can touch
them (not even weight decay); only the current task's rows are trainable.
The paper's orthogonality regulariser, `sum_B ||B B^T - I||^2` over the pool's
components, keys and attention vectors (current and earlier rows), pushes the
new rows away from the old ones; here it acts on unit-normalised rows, so it
constrains directions and leaves the prompt's scale to the task loss. The
prompt goes on the encoder input (prompt tuning), where the paper prefixes
attention layers of a ViT.

Saved as `.npz`: `coda_components [M, L, d]`, `coda_keys [M, D]`,
`coda_attention [M, D]` (earlier tasks' rows first).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning.errors import InputError
from prompt_tuning.methods.base import CODA_ARRAYS as ARRAYS
from prompt_tuning.methods.base import QUERY, Batch, InitContext, ModelInputs, Params

_PARTS = ("components", "keys", "attention")  # trainable names, in ARRAYS' order
EPS = 1e-6


def _unit(x: jax.Array) -> jax.Array:
    """Rows of `x [M, ...]` flattened and scaled to unit norm: `[M, n]`."""
    flat = x.reshape(x.shape[0], -1)
    return flat / jnp.maximum(jnp.linalg.norm(flat, axis=-1, keepdims=True), EPS)


def weights(keys: jax.Array, attention: jax.Array, query: jax.Array) -> jax.Array:
    """`alpha [b, M]`: cosine of each attended query `q * A_m` with key `K_m`.

    Args:
      keys: `[M, D]`; attention: `[M, D]`; query: `[b, D]`.
    """
    attended = query[:, None, :] * attention[None]  # [b, M, D]
    attended = attended / jnp.maximum(jnp.linalg.norm(attended, axis=-1, keepdims=True), EPS)
    unit_keys = keys / jnp.maximum(jnp.linalg.norm(keys, axis=-1, keepdims=True), EPS)
    return jnp.einsum("bmd,md->bm", attended, unit_keys)


def compose(arrays: Mapping[str, jax.Array], query: jax.Array) -> jax.Array:
    """Saved pool arrays (`ARRAYS`) and queries `[b, D]` -> prompts `[b, L, d]`."""
    alpha = weights(arrays["coda_keys"], arrays["coda_attention"], query)
    return jnp.einsum("bm,mld->bld", alpha, arrays["coda_components"])


def orthogonality(rows: jax.Array) -> jax.Array:
    """`||U U^T - I||_F^2` of the unit-normalised rows `U` of `rows [M, ...]`."""
    unit = _unit(rows)
    return jnp.sum(jnp.square(unit @ unit.T - jnp.eye(unit.shape[0])))


def load_pool(path: str) -> dict[str, np.ndarray]:
    """The pool arrays of a saved CODA-Prompt file (an earlier task's).

    Raises:
      ValueError: naming the file when it is not a CODA-Prompt pool.
    """
    with np.load(path, allow_pickle=False) as loaded:
        arrays = {name: np.asarray(loaded[name], np.float32) for name in loaded.files}
    if set(arrays) != set(ARRAYS):
        raise InputError(
            f"CodaPrompt.previous {path} holds {sorted(arrays)}, not a CODA-Prompt pool "
            f"({list(ARRAYS)})."
        )
    return arrays


@dataclasses.dataclass(frozen=True)
class CodaPrompt:
    """New components for the current task on top of `previous`'s frozen pool (if any)."""

    components_per_task: int = 4
    previous: str | None = None  # the previous task's saved `.npz`, its rows frozen
    ortho_weight: float = 0.1
    reads_query = True

    def _frozen(self, length: int, d: int, width: int) -> dict[str, np.ndarray]:
        """The earlier tasks' rows (constants), empty for the first task."""
        if self.previous is None:
            shapes = ((0, length, d), (0, width), (0, width))
            return {name: np.zeros(s, np.float32) for name, s in zip(ARRAYS, shapes, strict=True)}
        arrays = load_pool(self.previous)
        if arrays["coda_components"].shape[1:] != (length, d):
            raise InputError(
                f"CodaPrompt.previous {self.previous} has components "
                f"{arrays['coda_components'].shape[1:]}; this run makes [{length}, {d}] "
                "(PROMPT_LENGTH and the model must match the previous task's)."
            )
        return arrays

    def init(self, rng: jax.Array, context: InitContext) -> Params:
        if self.components_per_task < 1:
            raise InputError(
                f"CodaPrompt.components_per_task must be >= 1, got {self.components_per_task}."
            )
        d = context.config.d_model
        comp_rng, key_rng, attn_rng = jax.random.split(rng, 3)
        components = jnp.stack(
            [
                context.prompt_init(jax.random.fold_in(comp_rng, m), (context.length, d))
                for m in range(self.components_per_task)
            ]
        )
        self._frozen(context.length, d, d)  # checks `previous` before training starts
        shape = (self.components_per_task, d)
        return {
            "components": components,
            "keys": jax.random.uniform(key_rng, shape, minval=-1.0, maxval=1.0),
            "attention": jax.random.uniform(attn_rng, shape, minval=-1.0, maxval=1.0),
        }

    def pool(self, params: Params) -> dict[str, jax.Array]:
        """The whole pool: the earlier tasks' constant rows, then `params`' rows."""
        length, d = params["components"].shape[1:]
        frozen = self._frozen(length, d, params["keys"].shape[1])
        return {
            name: jnp.concatenate([jnp.asarray(frozen[name]), params[part]])
            for name, part in zip(ARRAYS, _PARTS, strict=True)
        }

    def model_inputs(self, params: Params, batch: Batch | None = None) -> ModelInputs:
        """`prompt [b, L, d]` for a batch with `query [b, D]`; without, the pool arrays."""
        pool = self.pool(params)
        if batch is None:
            return pool
        return {"prompt": compose(pool, batch[QUERY])}

    def penalty(self, params: Params, batch: Batch) -> jax.Array:
        """The orthogonality regulariser over the pool's components, keys and attention."""
        del batch
        pool = self.pool(params)
        return self.ortho_weight * sum(orthogonality(pool[name]) for name in ARRAYS)

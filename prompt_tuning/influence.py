"""Influence of training examples on a metric, for small trainable parameter sets (FairIJ).

The infinitesimal jackknife (Jaeckel 1972; Koh & Liang 2017; FairIJ, Sattigeri
et al. 2022): for parameters `theta*` minimising the weighted objective
`F_w(theta) = (1/n) sum_i w_i loss_i(theta) + damping/2 ||theta - anchor||^2`,
removing example i (`w_i: 1 -> 0`) moves the optimum by about
`(1/n) H^{-1} grad loss_i(theta*)`, with `H` the Hessian of `F` at `theta*`,
so a metric `m` changes by about `(1/n) grad m^T H^{-1} grad loss_i`.

The Hessian is exact: either formed in full (`hessian`, for a few thousand
parameters at most) or applied exactly, one Hessian-vector product at a time,
inside conjugate gradients (`solve`), which never builds the matrix and so fits
a prompt whose full Hessian would take too many products to form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from prompt_tuning.errors import InputError

Loss = Callable[[jax.Array], jax.Array]  # flat parameters [n] -> scalar


def flat(params: Any) -> tuple[jax.Array, Callable[[jax.Array], Any]]:
    """`(vector [n], unravel)`: the parameters as one float vector and back."""
    return ravel_pytree(params)


def hessian(objective: Loss, theta: jax.Array) -> jax.Array:
    """The exact Hessian `[n, n]` of `objective` at `theta [n]` (forward over reverse)."""
    return jax.hessian(objective)(theta)


def hvp(objective: Loss, theta: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """`v [n] -> H v`, the exact Hessian of `objective` at `theta` applied to `v`."""
    grad = jax.grad(objective)
    return jax.jit(lambda v: jax.jvp(grad, (theta,), (v,))[1])


def solve(
    product: Callable[[jax.Array], jax.Array],
    b: jax.Array,
    *,
    tolerance: float = 1e-4,
    max_iterations: int = 100,
) -> tuple[jax.Array, int]:
    """`x [n]` with `H x = b` for symmetric positive definite `H` given by `product`.

    Conjugate gradients, stopped when `||H x - b|| <= tolerance * ||b||`.
    Returns `(x, iterations used)`.
    """
    x = jnp.zeros_like(b)
    residual = b
    direction = residual
    norm_b = float(jnp.linalg.norm(b))
    rr = float(residual @ residual)
    for iteration in range(1, max_iterations + 1):
        hd = product(direction)
        curvature = float(direction @ hd)
        if curvature <= 0:
            raise InputError(
                f"The Hessian is not positive definite along a search direction (d^T H d = "
                f"{curvature:.3g}); increase the damping."
            )
        step = rr / curvature
        x = x + step * direction
        residual = residual - step * hd
        new_rr = float(residual @ residual)
        if np.sqrt(new_rr) <= tolerance * norm_b:
            return x, iteration
        direction = residual + (new_rr / rr) * direction
        rr = new_rr
    return x, max_iterations


def removal_effects(
    metric_direction: jax.Array, example_grads: jax.Array, num_examples: int
) -> np.ndarray:
    """Predicted metric change when each example is removed: `(1/n) (H^{-1} grad m) . grad loss_i`.

    Args:
      metric_direction: `H^{-1} grad m`, `[p]` (from `solve`, or a dense solve).
      example_grads: `[k, p]` gradients of the examples' losses at the optimum.
      num_examples: n, the number of examples in the objective's mean.

    Returns:
      `[k]` predicted changes of the metric.
    """
    return np.asarray(example_grads @ metric_direction) / num_examples


def per_example_grads(
    loss: Callable[[jax.Array, Any], jax.Array], theta: jax.Array, examples: Any, chunk: int = 32
) -> jax.Array:
    """`[k, p]` gradients of `loss(theta, example)` for each of the k examples (a pytree of `[k, ...]`)."""
    grad = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0)))
    count = len(jax.tree.leaves(examples)[0])
    pieces = [
        grad(theta, jax.tree.map(lambda x, s=start: x[s : s + chunk], examples))
        for start in range(0, count, chunk)
    ]
    return jnp.concatenate(pieces)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two `[k]` vectors (no ties expected)."""
    rank_a = np.argsort(np.argsort(a))
    rank_b = np.argsort(np.argsort(b))
    return float(np.corrcoef(rank_a, rank_b)[0, 1])

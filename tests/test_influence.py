"""The influence estimate (FairIJ's infinitesimal jackknife) against actual leave-one-out refits.

A linear read-out (logistic regression) on frozen features of the tiny T5 is
convex in its parameters, so the refits reach the exact optimum and the
estimate's only error is its first-order expansion.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny

from prompt_tuning import checkpoints, influence
from prompt_tuning.methods import pooled_query
from prompt_tuning.models import T5

N_EXAMPLES = 40
N_CHECKED = 20
DAMPING = 1e-2


@pytest.fixture(scope="module")
def features(tmp_path_factory):
    """`[N, d]` pooled encoder outputs of the frozen tiny T5 for random token rows, and labels."""
    config, frozen = checkpoints.load(str(tiny.write_checkpoint(tmp_path_factory.mktemp("c"))))
    rng = np.random.default_rng(0)
    tokens = jnp.asarray(rng.integers(3, 500, (N_EXAMPLES + 30, 12)), jnp.int32)
    query = jax.jit(lambda params, t: pooled_query(T5(config), params, t))
    x = np.asarray(query(frozen, tokens), np.float64)
    x = (x - x.mean(0)) / x.std(0)
    truth = rng.normal(size=x.shape[1])
    y = (x @ truth + rng.normal(size=len(x)) > 0).astype(np.float64)
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


def _objective(x, y):
    """`(theta, weights) ->` weighted mean logistic loss + damping/2 ||theta||^2, theta = (w, b)."""

    def value(theta, weights):
        logits = x @ theta[:-1] + theta[-1]
        losses = jnp.logaddexp(0.0, logits) - y * logits
        return jnp.sum(weights * losses) / len(x) + 0.5 * DAMPING * jnp.sum(theta**2)

    return value


@functools.partial(jax.jit, static_argnums=0)
def _newton_step(value, theta, weights):
    fn = functools.partial(value, weights=weights)
    return theta - jnp.linalg.solve(influence.hessian(fn, theta), jax.grad(fn)(theta))


def _newton(value, theta, weights, steps=30):
    """The exact optimum of a convex objective (Newton's method with the full Hessian)."""
    for _ in range(steps):
        theta = _newton_step(value, theta, weights)
    return theta


def _metric(x_eval):
    """A gap between two halves of held-out examples' mean predicted probability."""
    half = len(x_eval) // 2

    def gap(theta):
        p = jax.nn.sigmoid(x_eval @ theta[:-1] + theta[-1])
        return jnp.mean(p[:half]) - jnp.mean(p[half:])

    return gap


@pytest.mark.slow
def test_influence_ranks_examples_as_leave_one_out_refits_do(features):
    x_all, y_all = features
    x, y, x_eval = x_all[:N_EXAMPLES], y_all[:N_EXAMPLES], x_all[N_EXAMPLES:]
    ones = jnp.ones(N_EXAMPLES)
    objective = _objective(x, y)
    value = functools.partial(objective, weights=ones)
    optimum = _newton(objective, jnp.zeros(x.shape[1] + 1), ones)
    gap = _metric(x_eval)
    # Conjugate gradients with exact Hessian-vector products equals the dense solve.
    direction, _ = influence.solve(
        influence.hvp(value, optimum), jax.grad(gap)(optimum), tolerance=1e-6
    )
    dense = jnp.linalg.solve(influence.hessian(value, optimum), jax.grad(gap)(optimum))
    np.testing.assert_allclose(direction, dense, rtol=1e-3, atol=1e-4 * float(jnp.abs(dense).max()))

    def example_loss(theta, example):
        xi, yi = example
        logit = xi @ theta[:-1] + theta[-1]
        return jnp.logaddexp(0.0, logit) - yi * logit

    grads = influence.per_example_grads(example_loss, optimum, (x, y), chunk=8)
    predicted = influence.removal_effects(direction, grads, N_EXAMPLES)[:N_CHECKED]
    base = float(gap(optimum))
    actual = np.asarray(
        [
            float(gap(_newton(objective, optimum, ones.at[i].set(0.0)))) - base
            for i in range(N_CHECKED)
        ]
    )
    assert influence.spearman(predicted, actual) >= 0.8
    # A control: an estimate of the wrong sign (a classic influence bug) fails the bar.
    assert influence.spearman(-predicted, actual) < 0.8


def test_solve_refuses_an_indefinite_hessian():
    with pytest.raises(ValueError, match="not positive definite"):
        influence.solve(lambda v: -v, jnp.ones(3))

"""Prompt-only train step, eval scoring step and the training loop.

The frozen parameter tree is passed to every step as a plain argument that is
never differentiated: `jax.value_and_grad(loss_fn)` takes the gradient with
respect to the prompt alone, so XLA never materialises weight gradients or
optimizer state for the model (what lets T5-XXL prompt tuning fit on one chip).
With a prompt method (`methods`), "the prompt" is the method's trainable pytree
and the model reads what `method.model_inputs` makes of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import optax

from prompt_tuning.methods import Method, ModelInputs, add_query, penalty
from prompt_tuning.models import T5

Batch = Mapping[str, jax.Array]
Params = Any


@flax.struct.dataclass
class TrainState:
    """Everything training changes: the prompt, its optimizer state, the step."""

    step: jax.Array  # [] int32
    prompt: Params  # [P, d] float32, or a prompt method's pytree of float32 arrays
    opt_state: optax.OptState


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """The original code's loss: token cross-entropy plus T5X's z-loss."""

    z_loss: float = 1e-4
    label_smoothing: float = 0.0


class Optimizer(NamedTuple):
    """An optax transformation (`init`, `update`) that also tells its learning rate.

    `learning_rate` (a number, or a schedule of the update count) is what the
    train step reports in its metrics; the transformation itself is unchanged.
    """

    init: optax.TransformInitFn
    update: optax.TransformUpdateFn
    learning_rate: optax.ScalarOrSchedule


def with_learning_rate(
    transformation: optax.GradientTransformation, learning_rate: optax.ScalarOrSchedule
) -> Optimizer:
    """`transformation` labelled with the learning rate it applies."""
    return Optimizer(transformation.init, transformation.update, learning_rate)


def learning_rate_metric(optimizer: Any, step: jax.Array) -> dict[str, jax.Array]:
    """`{"learning_rate": []}` at update `step` (0 for the first), or `{}` if unknown."""
    learning_rate = getattr(optimizer, "learning_rate", None)
    if learning_rate is None:
        return {}
    value = learning_rate(step) if callable(learning_rate) else learning_rate
    return {"learning_rate": jnp.asarray(value, jnp.float32)}


def make_optimizer(
    learning_rate: optax.ScalarOrSchedule = 0.3,
    decay_rate: float = 0.8,
    weight_decay_rate: float | None = 1e-5,
    clipping_threshold: float | None = 1.0,
) -> Optimizer:
    """Adafactor as the original prompt-tuning gin files configure it.

    Constant learning rate, no parameter scaling, and no factoring: the prompt is
    small enough for a full second-moment estimate.
    """
    adafactor = optax.adafactor(
        learning_rate=learning_rate,
        decay_rate=decay_rate,
        multiply_by_parameter_scale=False,
        weight_decay_rate=weight_decay_rate,
        clipping_threshold=clipping_threshold,
        factored=False,
    )
    return with_learning_rate(adafactor, learning_rate)


def init_state(prompt: Params, optimizer: optax.GradientTransformation) -> TrainState:
    """Fresh state at step 0 for a `[P, d]` prompt (or a method's trainable pytree)."""
    prompt = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), prompt)
    return TrainState(
        step=jnp.zeros((), jnp.int32), prompt=prompt, opt_state=optimizer.init(prompt)
    )


def token_losses(
    logits: jax.Array, targets: jax.Array, loss: LossConfig
) -> tuple[jax.Array, jax.Array]:
    """Per-token cross-entropy and z-loss.

    Args:
      logits: `[batch, length, vocab]` float32.
      targets: `[batch, length]` int token ids.

    Returns:
      `(cross_entropy, z_loss)`, each `[batch, length]`; z-loss is
      `z * logsumexp(logits)**2`, which keeps the softmax normaliser near 1.
    """
    vocab = logits.shape[-1]
    confidence = 1.0 - loss.label_smoothing
    low = loss.label_smoothing / (vocab - 1)
    log_z = jax.nn.logsumexp(logits, axis=-1)
    target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    # The smoothed target puts `confidence` on the label and `low` on every other
    # token; gathering avoids materialising a [batch, length, vocab] one-hot.
    expected_logit = confidence * target_logit
    if loss.label_smoothing:
        expected_logit += low * (jnp.sum(logits, axis=-1) - target_logit)
    cross_entropy = log_z - expected_logit
    return cross_entropy, loss.z_loss * jnp.square(log_z)


def _logits(
    model: T5,
    prompt: jax.Array | ModelInputs | None,
    frozen: Params,
    batch: Batch,
    prompt_position: str,
    dropout_rng: jax.Array | None = None,
) -> jax.Array:
    """`[batch, target_length, vocab]` float32 logits; dropout only with an rng.

    `prompt` is a `[P, d]` / `[batch, P, d]` prompt, a method's model inputs
    (keyword inputs of `T5`, e.g. `{"encoder_prefix": ...}`), or None.
    """
    inputs = dict(prompt) if isinstance(prompt, Mapping) else {"prompt": prompt}
    return model.apply(
        {"params": frozen},
        batch["encoder_input_tokens"],
        batch["decoder_input_tokens"],
        **inputs,
        prompt_position=prompt_position,
        enable_dropout=dropout_rng is not None,
        rngs={"dropout": dropout_rng} if dropout_rng is not None else {},
    )


def batch_loss(
    model: T5,
    prompt: jax.Array | ModelInputs,
    frozen: Params,
    batch: Batch,
    loss: LossConfig,
    *,
    dropout_rng: jax.Array | None = None,
    prompt_position: str = "prefix",
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Summed token loss of a batch and the sums needed to normalise and report it.

    `batch` has `encoder_input_tokens [b, l]`, `decoder_input_tokens [b, t]`,
    `decoder_target_tokens [b, t]` and `decoder_loss_weights [b, t]`, as seqio's
    `EncDecFeatureConverter` produces them. `prompt` as in `_logits`.
    """
    logits = _logits(model, prompt, frozen, batch, prompt_position, dropout_rng)
    weights = batch["decoder_loss_weights"].astype(jnp.float32)
    cross_entropy, z = token_losses(logits, batch["decoder_target_tokens"], loss)
    # "The target has the top logit" reuses the max that logsumexp takes; an argmax
    # would be another pass over [batch, length, vocab] (5% of a tiny model's step).
    target_logit = jnp.take_along_axis(logits, batch["decoder_target_tokens"][..., None], -1)
    correct = (target_logit[..., 0] >= jnp.max(logits, axis=-1)) * weights
    sums = {
        "cross_entropy": jnp.sum(cross_entropy * weights),
        "z_loss": jnp.sum(z * weights),
        "tokens": jnp.sum(weights),
        "correct_tokens": jnp.sum(correct),
    }
    return sums["cross_entropy"] + sums["z_loss"], sums


def _split_microbatches(batch: Batch, num_microbatches: int) -> Batch:
    """`[b, ...]` -> `[num_microbatches, b // num_microbatches, ...]`."""

    def split(x: jax.Array) -> jax.Array:
        if x.shape[0] % num_microbatches:
            raise ValueError(
                f"Batch size {x.shape[0]} is not divisible into {num_microbatches} microbatches."
            )
        return x.reshape(num_microbatches, x.shape[0] // num_microbatches, *x.shape[1:])

    return jax.tree.map(split, dict(batch))


def apply_token_mean_update(
    optimizer: optax.GradientTransformation,
    summed_grads: Params,
    sums: dict[str, jax.Array],
    opt_state: optax.OptState,
    params: Params,
) -> tuple[Params, optax.OptState, dict[str, jax.Array]]:
    """One optimizer update from gradients of the batch's *summed* loss (`batch_loss`).

    Dividing by the batch's target tokens here, rather than averaging inside the
    loss, keeps microbatch accumulation exact. Returns `(params, opt_state,
    metrics)`, the metrics being per-token means of `sums`, the token count and
    the gradient norm.
    """
    tokens = jnp.maximum(sums["tokens"], 1.0)
    grads = jax.tree.map(lambda g: g / tokens, summed_grads)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    metrics = {
        "loss": (sums["cross_entropy"] + sums["z_loss"]) / tokens,
        "cross_entropy": sums["cross_entropy"] / tokens,
        "z_loss": sums["z_loss"] / tokens,
        "token_accuracy": sums["correct_tokens"] / tokens,
        "tokens": sums["tokens"],
        "grad_norm": optax.tree.norm(grads),
    }
    return optax.apply_updates(params, updates), opt_state, metrics


def make_train_step(
    model: T5,
    optimizer: optax.GradientTransformation,
    loss: LossConfig = LossConfig(),
    *,
    num_microbatches: int = 1,
    dropout: bool = False,
    prompt_position: str = "prefix",
    method: Method | None = None,
) -> Callable[[TrainState, Params, Batch, jax.Array], tuple[TrainState, dict[str, jax.Array]]]:
    """Builds `step(state, frozen, batch, rng) -> (state, metrics)`, to be jitted.

    The loss is averaged over the batch's target tokens; with `num_microbatches`
    > 1 the gradient of the summed loss is accumulated over microbatches first,
    so the result equals one large batch up to float summation order. With a
    `method`, `state.prompt` holds its parameters and the model reads
    `method.model_inputs(state.prompt, microbatch)`; without, `state.prompt` is the
    `[P, d]` prompt.
    """

    def summed_loss(prompt, frozen, microbatch, rng):
        # Query-conditioned methods (CODA-Prompt, L2P) read the frozen encoder's pooled input.
        microbatch = add_query(method, model, frozen, microbatch)
        inputs = prompt if method is None else method.model_inputs(prompt, microbatch)
        total, sums = batch_loss(
            model,
            inputs,
            frozen,
            microbatch,
            loss,
            dropout_rng=rng if dropout else None,
            prompt_position=prompt_position,
        )
        # A method's regulariser is per token: scaled by the tokens, as the summed loss is.
        return total + penalty(method, prompt, microbatch) * sums["tokens"], sums

    # argnums=0: the gradient is taken with respect to the prompt (method parameters) only.
    grad_fn = jax.value_and_grad(summed_loss, argnums=0, has_aux=True)

    def step(state: TrainState, frozen: Params, batch: Batch, rng: jax.Array):
        rng = jax.random.fold_in(rng, state.step)
        if num_microbatches == 1:
            (_, sums), grad = grad_fn(state.prompt, frozen, batch, rng)
        else:

            def accumulate(carry, indexed):
                index, microbatch = indexed
                (_, mb_sums), mb_grad = grad_fn(
                    state.prompt, frozen, microbatch, jax.random.fold_in(rng, index)
                )
                return jax.tree.map(jnp.add, carry, (mb_grad, mb_sums)), None

            micro = _split_microbatches(batch, num_microbatches)
            zeros = (
                jax.tree.map(jnp.zeros_like, state.prompt),
                dict.fromkeys(
                    ("cross_entropy", "z_loss", "tokens", "correct_tokens"),
                    jnp.zeros((), jnp.float32),
                ),
            )
            (grad, sums), _ = jax.lax.scan(accumulate, zeros, (jnp.arange(num_microbatches), micro))
        prompt, opt_state, metrics = apply_token_mean_update(
            optimizer, grad, sums, state.opt_state, state.prompt
        )
        metrics = {
            **metrics,
            **learning_rate_metric(optimizer, state.step),
            "prompt_norm": optax.tree.norm(prompt),
        }
        return TrainState(step=state.step + 1, prompt=prompt, opt_state=opt_state), metrics

    return step


def sequence_log_likelihoods(
    model: T5,
    prompt: jax.Array | ModelInputs | None,
    frozen: Params,
    batch: Batch,
    *,
    prompt_position: str = "prefix",
) -> jax.Array:
    """Sum of target-token log-probabilities per example: `[batch]`.

    The scoring primitive of rank classification: each row of `batch` pairs an
    input with one candidate label; the best-scoring label is the prediction.
    `prompt` may be `[P, d]` or `[batch, P, d]` (ensembles, mixed tasks), or a
    method's model inputs, each shared or per example.
    """
    return target_log_likelihoods(_logits(model, prompt, frozen, batch, prompt_position), batch)


def target_log_likelihoods(logits: jax.Array, batch: Batch) -> jax.Array:
    """`[batch, target_length, vocab]` logits -> summed log-probability of the targets `[batch]`."""
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    target_lp = jnp.take_along_axis(log_probs, batch["decoder_target_tokens"][..., None], -1)[
        ..., 0
    ]
    return jnp.sum(target_lp * batch["decoder_loss_weights"], axis=-1)

"""The one train step and the one training loop, for whatever a run trains.

A run splits the parameters in two, and this split is decided once, by the
objective the job builds: `TrainState.params` is the trainable pytree (a
prompt `[P, d]`, a prompt method's parameters, or for full training the whole
T5 tree) and `frozen` is what is read but never trained (the T5 tree under
prompt tuning; nothing under full training). Gradients, optimizer state,
saved states and the state's sharding all follow `TrainState.params`:
`jax.value_and_grad(objective)` differentiates its first argument only, so
under prompt tuning XLA never materialises weight gradients or optimizer state
for the model (what lets T5-XXL prompt tuning fit on one chip).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple, Protocol

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from prompt_tuning import input_pipeline, partitioning
from prompt_tuning.errors import InputError, RunError
from prompt_tuning.methods import Method, ModelInputs, add_query, penalty
from prompt_tuning.models import T5
from prompt_tuning.run_dir import MetricsWriter, progress_line

Batch = Mapping[str, jax.Array]
Params = Any


@flax.struct.dataclass
class TrainState:
    """Everything training changes: the trainable parameters, their optimizer state, the step."""

    step: jax.Array  # [] int32
    # float32: a prompt [P, d], a prompt method's pytree, or (full training) the T5 tree.
    params: Params
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
    *,
    factored: bool = False,
    multiply_by_parameter_scale: bool = False,
) -> Optimizer:
    """Adafactor; the defaults are the original prompt-tuning gin files' settings.

    Constant learning rate, no parameter scaling, and no factoring: the prompt is
    small enough for a full second-moment estimate. Full training factors the
    second moments and scales updates by each parameter's RMS instead
    (`full_training.make_pretraining_optimizer`).
    """
    adafactor = optax.adafactor(
        learning_rate=learning_rate,
        decay_rate=decay_rate,
        multiply_by_parameter_scale=multiply_by_parameter_scale,
        weight_decay_rate=weight_decay_rate,
        clipping_threshold=clipping_threshold,
        factored=factored,
    )
    return Optimizer(adafactor.init, adafactor.update, learning_rate)


def init_state(params: Params, optimizer: optax.GradientTransformation) -> TrainState:
    """Fresh state at step 0 for the trainable `params` (cast to float32 for the optimizer)."""
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params)
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
            raise InputError(
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


class Objective(Protocol):
    """`(trainable, frozen, batch, dropout_rng) -> (summed loss, sums)`: what a step minimises.

    The loss is summed over the batch's target tokens (`batch_loss`); `sums`
    holds at least `cross_entropy`, `z_loss`, `tokens` and `correct_tokens`.
    `dropout_rng` is None when the model runs without dropout.
    """

    def __call__(
        self, trainable: Params, frozen: Params, batch: Batch, dropout_rng: jax.Array | None
    ) -> tuple[jax.Array, dict[str, jax.Array]]: ...


SUMS = ("cross_entropy", "z_loss", "tokens", "correct_tokens")


def prompt_objective(
    model: T5,
    loss: LossConfig = LossConfig(),
    *,
    method: Method | None = None,
    prompt_position: str = "prefix",
) -> Objective:
    """Prompt tuning: the trainable part is the prompt `[P, d]` (or `method`'s parameters).

    The model reads `method.model_inputs(trainable, batch)`, or the prompt itself
    without a method; `frozen` is the T5 tree. A method's regulariser is per
    token, so it is scaled by the tokens as the summed loss is.
    """

    def objective(prompt, frozen, batch, dropout_rng):
        # Query-conditioned methods (CODA-Prompt, L2P) read the frozen encoder's pooled input.
        batch = add_query(method, model, frozen, batch)
        inputs = prompt if method is None else method.model_inputs(prompt, batch)
        total, sums = batch_loss(
            model, inputs, frozen, batch, loss,
            dropout_rng=dropout_rng, prompt_position=prompt_position,
        )  # fmt: skip
        return total + penalty(method, prompt, batch) * sums["tokens"], sums

    return objective


def full_objective(model: T5, loss: LossConfig = LossConfig()) -> Objective:
    """Full training (pretraining, model tuning): the trainable part is the whole T5 tree.

    Nothing is frozen: the step is called with `frozen={}`.
    """

    def objective(params, frozen, batch, dropout_rng):
        del frozen
        return batch_loss(model, None, params, batch, loss, dropout_rng=dropout_rng)

    return objective


def make_train_step(
    objective: Objective,
    optimizer: optax.GradientTransformation,
    *,
    num_microbatches: int = 1,
    dropout: bool = False,
) -> Callable[[TrainState, Params, Batch, jax.Array], tuple[TrainState, dict[str, jax.Array]]]:
    """Builds `step(state, frozen, batch, rng) -> (state, metrics)`, to be jitted.

    The gradient is taken with respect to `state.params` alone. The loss is
    averaged over the batch's target tokens; with `num_microbatches` > 1 the
    gradient of the summed loss is accumulated over microbatches first, so the
    result equals one large batch up to float summation order. `rng` (a key)
    drives dropout, folded with the step so a resumed run draws the same masks.
    """
    # argnums=0: the gradient is taken with respect to the trainable params only.
    grad_fn = jax.value_and_grad(objective, argnums=0, has_aux=True)

    def summed_grad(params, frozen, batch, rng):
        (_, sums), grad = grad_fn(params, frozen, batch, rng if dropout else None)
        return grad, sums

    def step(state: TrainState, frozen: Params, batch: Batch, rng: jax.Array):
        rng = jax.random.fold_in(rng, state.step)
        if num_microbatches == 1:
            grad, sums = summed_grad(state.params, frozen, batch, rng)
        else:

            def accumulate(carry, indexed):
                index, microbatch = indexed
                mb = summed_grad(state.params, frozen, microbatch, jax.random.fold_in(rng, index))
                return jax.tree.map(jnp.add, carry, mb), None

            micro = _split_microbatches(batch, num_microbatches)
            zeros = (
                jax.tree.map(jnp.zeros_like, state.params),
                dict.fromkeys(SUMS, jnp.zeros((), jnp.float32)),
            )
            (grad, sums), _ = jax.lax.scan(accumulate, zeros, (jnp.arange(num_microbatches), micro))
        params, opt_state, metrics = apply_token_mean_update(
            optimizer, grad, sums, state.opt_state, state.params
        )
        metrics = {
            **metrics,
            **learning_rate_metric(optimizer, state.step),
            "param_norm": optax.tree.norm(params),
        }
        return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return step


def jit_train_step(
    step_fn: Callable[..., tuple[TrainState, dict[str, jax.Array]]],
    mesh: jax.sharding.Mesh,
    frozen_shardings: Any,
    *,
    tagged: bool = False,
) -> Callable[..., tuple[TrainState, dict[str, jax.Array]]]:
    """A `make_train_step` step jitted for `mesh`, as every job and benchmark runs it.

    The train state is replicated (the trainable part is small, and a replicated
    prompt saves as one file), the frozen tree keeps `frozen_shardings` (a
    pytree of shardings, `{}` when nothing is frozen), the batch is split over
    'data' (with a `task_index` feature when `tagged`), and the state is donated.
    Trace it (call or lower it) inside `partitioning.activation_sharding(mesh)`,
    so the model's activation constraints apply.
    """
    replicated = partitioning.replicated(mesh)
    batch = input_pipeline.feature_shardings(partitioning.batch_sharding(mesh), tagged=tagged)
    return jax.jit(
        step_fn,
        in_shardings=(replicated, frozen_shardings, batch, replicated),
        out_shardings=(replicated, replicated),
        donate_argnums=(0,),
    )


@dataclasses.dataclass(frozen=True)
class Schedule:
    """When the loop logs, saves and evaluates; step `train_steps` always saves (and evaluates)."""

    train_steps: int
    log_every: int = 10
    save_every: int = 1000
    eval_every: int = 0  # 0: never

    def saves_at(self, step: int) -> bool:
        return step % self.save_every == 0 or step == self.train_steps

    def logs_at(self, step: int) -> bool:
        return step % self.log_every == 0 or self.saves_at(step)

    def evaluates_at(self, step: int) -> bool:
        return bool(self.eval_every) and (step % self.eval_every == 0 or step == self.train_steps)


def _report_window(
    pending: list[tuple[int, dict[str, jax.Array]]],
    window_start: float,
    schedule: Schedule,
    writer: MetricsWriter,
    kept: Callable[[], str],
    print_fn: Callable[[str], None],
) -> None:
    """Fetches a window's metrics, stops on a non-finite loss, writes them, prints progress."""
    fetched = partitioning.fetch_replicated(pending)
    # Timed after the fetch: dispatch is asynchronous, the fetch waits for the steps.
    elapsed = time.perf_counter() - window_start
    for step, values in fetched:
        if not np.isfinite(values["loss"]):
            raise RunError(f"Loss is {values['loss']} at step {step}: stopping. {kept()}")
    tokens = sum(float(values["tokens"]) for _, values in fetched)
    throughput = {"steps_per_s": len(fetched) / elapsed, "tokens_per_s": tokens / elapsed}
    writer.write_window(fetched, throughput)
    last_step, last = fetched[-1]
    print_fn(
        progress_line(
            last_step, schedule.train_steps, float(last["loss"]),
            throughput["steps_per_s"], throughput["tokens_per_s"],
        )
    )  # fmt: skip


def train_loop(
    step_fn: Callable[..., tuple[TrainState, dict[str, jax.Array]]],
    state: TrainState,
    frozen: Params,
    batches: Iterator[Batch],
    rng: jax.Array,
    *,
    start: int,
    schedule: Schedule,
    writer: MetricsWriter,
    save: Callable[[int, TrainState], None],
    kept: Callable[[], str],
    evaluate: Callable[[int, TrainState], None] | None = None,
    print_fn: Callable[[str], None] = print,
) -> TrainState:
    """Steps `start + 1 .. schedule.train_steps` of a jitted `make_train_step` step.

    Metrics stay on device until a log step, when the window's are fetched
    together (one host sync per window), checked for a non-finite loss (a
    `RunError` whose message ends with `kept()`: what the run keeps), written to
    `writer` with the window's throughput, and shown as a progress line.
    `save(step, state)` runs at each save step, `evaluate(step, state)` at each
    eval step; evaluation time is left out of the next window's throughput.
    """
    pending: list[tuple[int, dict[str, jax.Array]]] = []
    window_start = time.perf_counter()
    for step in range(start + 1, schedule.train_steps + 1):
        state, metrics = step_fn(state, frozen, next(batches), rng)
        pending.append((step, metrics))
        if schedule.logs_at(step):
            _report_window(pending, window_start, schedule, writer, kept, print_fn)
            pending, window_start = [], time.perf_counter()
        if schedule.saves_at(step):
            save(step, state)
        if evaluate is not None and schedule.evaluates_at(step):
            evaluate(step, state)
            window_start = time.perf_counter()
    return state


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

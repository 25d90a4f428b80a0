"""Full-parameter pretraining of a T5: train step, optimizer, and the gin job `pretrain`.

Unlike prompt tuning (`prompt_tuning.trainer`), every parameter is trained,
so the gradient is taken with respect to the whole tree. The loss is the
prompt trainer's `batch_loss` with no prompt: token cross-entropy plus z-loss,
averaged over target tokens. The optimizer is T5's pretraining default,
Adafactor with factored second moments, update clipping at 1.0, updates scaled
by each parameter's RMS, and an inverse-square-root learning rate that is
constant (0.01) for the first 10,000 steps.

A run writes under MODEL_DIR: `config.gin`, `metrics.jsonl`, the resumable
state (`train_state/state/<step>/`: params, Adafactor state, step; Orbax), and at the end
`checkpoint_<step>/`, the params in the T5X layout, which `checkpoints.load`
reads and a later stage (LM adaptation, prompt tuning) starts from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import flax
import gin
import jax
import jax.numpy as jnp
import numpy as np
import optax
from etils import epath

from prompt_tuning import checkpoints, input_pipeline, run_dir, run_lock, specs, trainer
from prompt_tuning.checkpoints import state as run_state
from prompt_tuning.errors import RunError
from prompt_tuning.models import T5, T5Config, init_params

Params = Any
Batch = Mapping[str, jax.Array]

gin.external_configurable(T5Config, "T5Config")

# MODEL_DIR/<RESUME_DIR>/state/<step>/: the resumable params + optimizer state.
RESUME_DIR = "train_state"


@flax.struct.dataclass
class FullTrainState:
    """Everything pretraining changes: all params, their optimizer state, the step."""

    step: jax.Array  # [] int32
    params: Params  # float32 tree with T5X names
    opt_state: optax.OptState


@gin.configurable
def rsqrt_schedule(
    warmup_steps: int = 10_000, scale: float = 1.0
) -> Callable[[jax.Array], jax.Array]:
    """T5's learning rate `scale / sqrt(max(step, warmup_steps))`: 0.01 for 10k steps, then decaying."""
    return lambda count: scale * jax.lax.rsqrt(jnp.maximum(count, warmup_steps).astype(jnp.float32))


@gin.configurable
def make_pretraining_optimizer(
    learning_rate: float | optax.Schedule | None = None,
    decay_rate: float = 0.8,
    clipping_threshold: float | None = 1.0,
) -> trainer.Optimizer:
    """Adafactor as T5 pretrains with it; `learning_rate` defaults to `rsqrt_schedule()`.

    Second moments are factored for matrices (rows and columns), which keeps
    the optimizer state of the `[32128, d]` embedding small.
    """
    learning_rate = learning_rate if learning_rate is not None else rsqrt_schedule()
    adafactor = optax.adafactor(
        learning_rate=learning_rate,
        decay_rate=decay_rate,
        clipping_threshold=clipping_threshold,
        multiply_by_parameter_scale=True,
        factored=True,
    )
    return trainer.with_learning_rate(adafactor, learning_rate)


def init_state(params: Params, optimizer: optax.GradientTransformation) -> FullTrainState:
    """Step-0 state for `params` (cast to float32: the optimizer works in full precision)."""
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    return FullTrainState(
        step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params)
    )


def make_full_train_step(
    model: T5,
    optimizer: optax.GradientTransformation,
    loss: trainer.LossConfig | None = None,
    *,
    dropout: bool = False,
) -> Callable[[FullTrainState, Batch, jax.Array], tuple[FullTrainState, dict[str, jax.Array]]]:
    """Builds `step(state, batch, rng) -> (state, metrics)`, to be jitted.

    `batch` holds `[batch, length]` arrays as `EncDecFeatureConverter` makes
    them. The gradient of the token-averaged loss is taken with respect to all
    of `state.params`.
    """

    loss = loss or trainer.LossConfig()

    def summed_loss(params, batch, rng):
        return trainer.batch_loss(
            model, None, params, batch, loss, dropout_rng=rng if dropout else None
        )

    grad_fn = jax.value_and_grad(summed_loss, has_aux=True)

    def step(state: FullTrainState, batch: Batch, rng: jax.Array):
        (_, sums), grads = grad_fn(state.params, batch, jax.random.fold_in(rng, state.step))
        params, opt_state, metrics = trainer.apply_token_mean_update(
            optimizer, grads, sums, state.opt_state, state.params
        )
        metrics = {**metrics, **trainer.learning_rate_metric(optimizer, state.step)}
        return FullTrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return step


def _abstract_state(state: FullTrainState) -> Any:
    """Shapes, dtypes and (single-device) shardings to restore a saved state into."""
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), state)


def _starting_params(
    config: T5Config, init_checkpoint: str | None, seed: int, init_embeddings: str | None = None
) -> Params:
    """Random T5 1.1 init of `config`, or the params of `init_checkpoint` (same architecture).

    `init_embeddings` (a `[vocab, d_model]` .npy, e.g. from scripts/minilm_embeddings.py)
    replaces the random token embedding of a fresh init.
    """
    if not init_checkpoint:
        params = init_params(config, jax.random.key(seed))
        if init_embeddings:
            params = _with_embeddings(params, init_embeddings)
        return params
    if init_embeddings:
        raise RunError("Give init_checkpoint or init_embeddings, not both.")
    loaded, params = checkpoints.load(init_checkpoint, dtype="float32")
    wrong = [
        f"{f}: {getattr(loaded, f)} vs {getattr(config, f)}"
        for f in specs.ARCHITECTURE
        if getattr(loaded, f) != getattr(config, f)
    ]
    if wrong:
        raise RunError(
            f"Checkpoint {init_checkpoint} does not match the configured model: " + "; ".join(wrong)
        )
    return params


def _with_embeddings(params: Params, path: str) -> Params:
    """`params` with `token_embedder/embedding` read from the .npy at `path` (shape checked)."""
    table = np.load(path)
    expected = params["token_embedder"]["embedding"].shape
    if table.shape != expected:
        raise RunError(
            f"Embedding file {path} has shape {table.shape}; the model needs {expected}."
        )
    return {**params, "token_embedder": {"embedding": jnp.asarray(table, jnp.float32)}}


def _train_loop(
    step_fn: Callable[..., tuple[FullTrainState, dict[str, jax.Array]]],
    state: FullTrainState,
    batches: input_pipeline.TrainBatches,
    checkpointer: run_state.StateCheckpointer,
    model_dir: str,
    start: int,
    train_steps: int,
    batch_size: int,
    *,
    save_every: int,
    log_every: int,
    seed: int,
    print_fn: Callable[[str], None],
) -> FullTrainState:
    """Steps `start + 1 .. train_steps`: logs every `log_every`, saves every `save_every`."""
    writer = run_dir.MetricsWriter(model_dir)
    rng = jax.random.PRNGKey(seed + 1)
    pending: list[tuple[int, dict[str, jax.Array]]] = []
    window_start = time.perf_counter()
    for step in range(start + 1, train_steps + 1):
        batch = next(batches)
        state, metrics = step_fn(state, {k: batch[k] for k in input_pipeline.FEATURES}, rng)
        pending.append((step, metrics))
        at_save = step % save_every == 0 or step == train_steps
        if step % log_every == 0 or at_save:
            fetched, pending = jax.device_get(pending), []
            for s, values in fetched:
                if not np.isfinite(values["loss"]):
                    raise RunError(
                        f"Loss is {values['loss']} at step {s}: stopping. The last good state "
                        f"in {model_dir} is kept (step {checkpointer.latest_step() or 'none yet'})."
                    )
            elapsed = time.perf_counter() - window_start
            tokens = sum(float(values["tokens"]) for _, values in fetched)
            throughput = {"steps_per_s": len(fetched) / elapsed, "tokens_per_s": tokens / elapsed}
            writer.write_window(fetched, throughput)
            print_fn(
                run_dir.progress_line(
                    step,
                    train_steps,
                    float(fetched[-1][1]["loss"]),
                    throughput["steps_per_s"],
                    throughput["tokens_per_s"],
                )
            )
            window_start = time.perf_counter()
        if at_save:
            position = {"step": step, "examples": step * batch_size}
            checkpointer.save(step, state, position, batches)
    writer.close()
    return state


def export(params: Params, model_dir: str, step: int, dtype: str) -> str:
    """Writes `params` as `model_dir/checkpoint_<step>` (T5X layout) in `dtype`."""
    host = jax.tree.map(lambda x: np.asarray(jnp.asarray(x, dtype)), params)
    return checkpoints.save_t5x(host, model_dir, step)


@gin.configurable
def pretrain(
    *,
    model_dir: str = gin.REQUIRED,
    config: T5Config = gin.REQUIRED,
    mixture_or_task_name: str = gin.REQUIRED,
    task_feature_lengths: Mapping[str, int] = gin.REQUIRED,
    batch_size: int = gin.REQUIRED,
    train_steps: int = gin.REQUIRED,
    init_checkpoint: str | None = None,
    init_embeddings: str | None = None,
    seed: int = 0,
    optimizer: optax.GradientTransformation | None = None,
    loss: trainer.LossConfig | None = None,
    save_every: int = 500,
    keep_states: int = 2,
    log_every: int = 20,
    export_dtype: str = "bfloat16",
    print_fn: Callable[[str], None] = print,
) -> str:
    """Pretrains all params of `config` on a task; resumes from MODEL_DIR's latest state.

    Args:
      config: the architecture (and activation dtype) to train.
      init_checkpoint: start from these params instead of a random init (LM
        adaptation starts from the span-corruption export).
      init_embeddings: a `[vocab, d_model]` .npy replacing the random init's token
        embedding (the shipped model starts from MiniLM's, scripts/minilm_embeddings.py).
      export_dtype: dtype of the final T5X checkpoint ('bfloat16' halves its size).

    Returns:
      The path of the exported `checkpoint_<train_steps>` folder.
    """
    # Orbax needs absolute paths: a relative MODEL_DIR failed at the first save.
    model_dir = checkpoints.paths.normalize(model_dir)
    config_text = gin.config_str()
    resuming = run_dir.check_model_dir(model_dir, config_text)
    final = epath.Path(model_dir) / f"checkpoint_{train_steps}"
    if final.exists():
        print_fn(f"{final} exists: this run is complete.")
        return str(final)
    task = input_pipeline.get_task_or_mixture(mixture_or_task_name)
    specs.check_vocabulary(task, config)
    optimizer = optimizer or make_pretraining_optimizer()
    state = init_state(_starting_params(config, init_checkpoint, seed, init_embeddings), optimizer)

    # The same lock as prompt training: two runs never write one MODEL_DIR.
    with run_lock.hold(model_dir, enabled=jax.process_index() == 0):
        # Not MODEL_DIR/state: a T5X reader would take MODEL_DIR for an Orbax checkpoint folder.
        checkpointer = run_state.StateCheckpointer(
            epath.Path(model_dir) / RESUME_DIR, max_to_keep=keep_states
        )
        restored = checkpointer.restore_latest_good(_abstract_state(state)) if resuming else None
        start = 0
        if restored:
            start, state, _ = restored
            print_fn(f"Resuming from step {start} in {model_dir}.")
        else:
            run_dir.write_config(model_dir, config_text)
        batches = input_pipeline.TrainBatches(
            input_pipeline.shard_datasets(
                mixture_or_task_name, task_feature_lengths, batch_size, seed=seed
            )
        )
        run_state.resume_data_position(checkpointer, start, batches, print_fn)
        step_fn = jax.jit(
            make_full_train_step(T5(config), optimizer, loss, dropout=config.dropout_rate > 0),
            donate_argnums=(0,),
        )
        with run_state.disk_errors(model_dir, checkpointer):
            state = _train_loop(
                step_fn, state, batches, checkpointer, model_dir, start, train_steps, batch_size,
                save_every=save_every, log_every=log_every, seed=seed, print_fn=print_fn,
            )  # fmt: skip
        checkpointer.close()
    path = export(state.params, model_dir, train_steps, export_dtype)
    print_fn(f"Exported {path} ({export_dtype}).")
    return path

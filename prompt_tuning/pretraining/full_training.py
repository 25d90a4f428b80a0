"""Full-parameter training of a T5 (pretraining, model tuning): optimizer and the gin job `pretrain`.

It runs the prompt trainer's own step and loop (`prompt_tuning.trainer`) with
`trainer.full_objective`: the trainable part is the whole tree and nothing is
frozen, so the gradient is taken with respect to every parameter. The loss is
`batch_loss` with no prompt: token cross-entropy plus z-loss, averaged over
target tokens. The optimizer is T5's pretraining default,
Adafactor with factored second moments, update clipping at 1.0, updates scaled
by each parameter's RMS, and an inverse-square-root learning rate that is
constant (0.01) for the first 10,000 steps.

A run writes under MODEL_DIR: `config.gin`, `metrics.jsonl`, the resumable
state (`train_state/state/<step>/`: params, Adafactor state, step; Orbax), and at the end
`checkpoint_<step>/`, the params in the T5X layout, which `checkpoints.load`
reads and a later stage (LM adaptation, prompt tuning) starts from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gin
import jax
import jax.numpy as jnp
import numpy as np
import optax
from etils import epath

from prompt_tuning import (
    checkpoints,
    input_pipeline,
    partitioning,
    run_dir,
    run_lock,
    specs,
    trainer,
)
from prompt_tuning.checkpoints import state as run_state
from prompt_tuning.errors import RunError
from prompt_tuning.models import T5, T5Config, init_params

Params = Any
Batch = Mapping[str, jax.Array]

gin.external_configurable(T5Config, "T5Config")

# MODEL_DIR/<RESUME_DIR>/state/<step>/: the resumable params + optimizer state.
RESUME_DIR = "train_state"


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
    return trainer.make_optimizer(
        learning_rate if learning_rate is not None else rsqrt_schedule(),
        decay_rate,
        weight_decay_rate=None,
        clipping_threshold=clipping_threshold,
        factored=True,
        multiply_by_parameter_scale=True,
    )


def _abstract_state(state: trainer.TrainState, sharding: jax.sharding.Sharding) -> Any:
    """Shapes, dtypes and shardings to restore a saved state into."""
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
    specs.check_architecture(init_checkpoint, loaded, config, "pretrain.config")
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


def _start_state(
    checkpointer: run_state.StateCheckpointer,
    fresh: trainer.TrainState,
    mesh: jax.sharding.Mesh,
    resuming: bool,
    model_dir: str,
    config_text: str,
    print_fn: Callable[[str], None],
) -> tuple[int, trainer.TrainState]:
    """`(step, state)` to continue from: MODEL_DIR's newest good state, else `fresh` at 0."""
    abstract = _abstract_state(fresh, partitioning.replicated(mesh))
    restored = checkpointer.restore_latest_good(abstract) if resuming else None
    if not restored:
        run_dir.write_config(model_dir, config_text)
        return 0, fresh
    start, state, _ = restored
    print_fn(f"Resuming from step {start} in {model_dir}.")
    return start, state


def _run_steps(
    step_fn: Callable[..., Any],
    state: trainer.TrainState,
    batches: input_pipeline.TrainBatches,
    checkpointer: run_state.StateCheckpointer,
    mesh: jax.sharding.Mesh,
    model_dir: str,
    start: int,
    schedule: trainer.Schedule,
    *,
    seed: int,
    batch_size: int,
    print_fn: Callable[[str], None],
) -> trainer.TrainState:
    """The trainer's loop over the jitted step, saving the state with the data position."""
    replicated = partitioning.replicated(mesh)
    state = partitioning.host_to_global(jax.device_get(state), replicated)

    def save(step: int, state: trainer.TrainState) -> None:
        checkpointer.save(step, state, {"step": step, "examples": step * batch_size}, batches)

    def kept() -> str:
        return f"The last good state in {model_dir} is kept (step {checkpointer.latest_step() or 'none yet'})."

    writer = run_dir.MetricsWriter(model_dir)
    with partitioning.activation_sharding(mesh):
        state = trainer.train_loop(
            trainer.jit_train_step(step_fn, mesh, {}), state, {},
            input_pipeline.global_batches(batches, partitioning.batch_sharding(mesh)),
            partitioning.host_to_global(jax.random.PRNGKey(seed + 1), replicated),
            start=start, schedule=schedule, writer=writer, save=save, kept=kept,
            print_fn=print_fn,
        )  # fmt: skip
    writer.close()
    return state


def export(params: Params, model_dir: str, step: int, dtype: str) -> str:
    """Writes `params` as `model_dir/checkpoint_<step>` (T5X layout) in `dtype`."""
    host = jax.tree.map(lambda x: np.asarray(jnp.asarray(x, dtype)), params)
    return checkpoints.save_t5x(host, model_dir, step)


def _train_step(
    config: T5Config, optimizer: optax.GradientTransformation, loss: trainer.LossConfig
) -> Callable:
    """The one trainer's step with every parameter trainable (dropout when the config has it)."""
    return trainer.make_train_step(
        trainer.full_objective(T5(config), loss), optimizer, dropout=config.dropout_rate > 0
    )


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
    mesh: jax.sharding.Mesh | None = None,
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
      mesh: the devices the batch is split over (`pretrain.mesh = @make_mesh()`);
        default one device.

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
    if mesh is not None:
        partitioning.check_batch_fits(batch_size, mesh)
    params = _starting_params(config, init_checkpoint, seed, init_embeddings)
    state = trainer.init_state(params, optimizer)
    step_fn = _train_step(config, optimizer, loss or trainer.LossConfig())
    # The same lock as prompt training: two runs never write one MODEL_DIR.
    with run_lock.hold(model_dir, enabled=jax.process_index() == 0):
        # Not MODEL_DIR/state: a T5X reader would take MODEL_DIR for an Orbax checkpoint folder.
        checkpointer = run_state.StateCheckpointer(
            epath.Path(model_dir) / RESUME_DIR, max_to_keep=keep_states
        )
        mesh = mesh or partitioning.make_mesh((1, 1), devices=jax.devices()[:1])
        start, state = _start_state(
            checkpointer, state, mesh, resuming, model_dir, config_text, print_fn
        )
        batches = input_pipeline.TrainBatches(
            input_pipeline.shard_datasets(
                mixture_or_task_name, task_feature_lengths, batch_size, seed=seed
            )
        )
        run_state.resume_data_position(checkpointer, start, batches, print_fn)
        schedule = trainer.Schedule(train_steps, log_every, save_every)
        with run_state.disk_errors(model_dir, checkpointer):
            state = _run_steps(
                step_fn, state, batches, checkpointer, mesh, model_dir, start, schedule,
                seed=seed, batch_size=batch_size, print_fn=print_fn,
            )  # fmt: skip
        checkpointer.close()
    path = export(state.params, model_dir, train_steps, export_dtype)
    print_fn(f"Exported {path} ({export_dtype}).")
    return path

"""The gin-configurable jobs: `train`, `evaluate` and `infer`.

Each job reads three specs (which frozen model, which prompt, which data;
`specs.py`), builds the mesh, loads the frozen tree straight into its shards,
and hands pure functions from `trainer.py` / `evaluation.py` to jit. What a
run writes to MODEL_DIR besides prompts and states is in `run_dir.py`; the
command-line wrapper is `cli.py`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

import gin
import jax
import jax.numpy as jnp
import numpy as np
import optax
import seqio
from etils import epath

from prompt_tuning import evaluation, input_pipeline, methods, partitioning, run_lock, trainer
from prompt_tuning.checkpoints import state as run_state
from prompt_tuning.data import rank_classification, registry, user_rows
from prompt_tuning.data.preprocessors import UNKNOWN_LABEL
from prompt_tuning.errors import RunError
from prompt_tuning.models import T5, T5Config
from prompt_tuning.run_dir import (
    MetricsWriter,
    check_model_dir,
    fresh_file,
    write_config,
)
from prompt_tuning.specs import (
    DataSpec,
    ModelSpec,
    PromptSpec,
    check_vocabulary,
    load_frozen,
    sub_tasks,
    task_labels,
)

# ------------------------------------------------------------------------ train


def _initial_state(
    prompt: PromptSpec,
    method: methods.Method,
    config: T5Config,
    seed: int,
    frozen: Any,
    vocabulary: seqio.Vocabulary,
    task: seqio.Task | seqio.Mixture,
    optimizer: optax.GradientTransformation,
    replicated: jax.sharding.NamedSharding,
) -> trainer.TrainState:
    """Step-0 state with the method's parameters from the configured initialiser, replicated."""
    if prompt.init is None:
        raise RunError(
            "No prompt initialiser (PromptSpec.init): add a prompts/*.gin file, e.g. "
            "--gin_file=prompts/class_labels.gin."
        )
    embedding = partitioning.fetch_global(frozen["token_embedder"]["embedding"])
    init = prompt.init(
        embedding=embedding.astype(np.float32), vocabulary=vocabulary, task_labels=task_labels(task)
    )
    initial = method.init(jax.random.key(seed), methods.InitContext(config, prompt.length, init))
    return partitioning.host_to_global(
        jax.device_get(trainer.init_state(initial, optimizer)), replicated
    )


def _abstract_state(
    prompt: PromptSpec,
    method: methods.Method,
    config: T5Config,
    optimizer: optax.GradientTransformation,
    replicated: jax.sharding.NamedSharding,
) -> Any:
    """Shapes, dtypes and shardings of the train state, for restoring into."""
    context = methods.InitContext(config, prompt.length, lambda _, shape: jnp.zeros(shape))
    abstract = jax.eval_shape(
        lambda: trainer.init_state(method.init(jax.random.key(0), context), optimizer)
    )
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated), abstract
    )


def _check_train_steps(train_steps: Any) -> None:
    if isinstance(train_steps, bool) or not isinstance(train_steps, int) or train_steps < 1:
        raise RunError(
            f"TRAIN_STEPS (train.train_steps) must be a positive integer, got {train_steps!r}."
        )


def _start_state(
    checkpointer: run_state.StateCheckpointer,
    resuming: bool,
    fresh: Callable[[], trainer.TrainState],
    abstract: Callable[[], Any],
    exported: Callable[[Any], Any],
    model_dir: str,
    config_text: str,
    print_fn: Callable[[str], None],
) -> tuple[int, trainer.TrainState]:
    """`(step, state)` to continue from: MODEL_DIR's newest good state, else step 0."""
    restored = checkpointer.restore_latest_good(abstract()) if resuming else None
    if restored is None:
        state = fresh()
        if not resuming:  # a resumed run killed before its first save has it already
            write_config(model_dir, config_text)
        return 0, state
    start, state, _ = restored
    print_fn(f"Resuming from step {start} in {model_dir}.")
    # The resumed step's prompt may be missing (killed between the two writes).
    host_prompt = exported(state.params)
    if jax.process_index() == 0:
        run_state.save_prompt(model_dir, start, host_prompt)
    return start, state


def _saver(
    model_dir: str,
    checkpointer: run_state.StateCheckpointer,
    batches: input_pipeline.TrainBatches,
    exported: Callable[[Any], Any],
    batch_size: int,
) -> Callable[[int, trainer.TrainState], None]:
    """`save(step, state)`: the resumable state with the data position, then the prompt file."""

    def save(step: int, state: trainer.TrainState) -> None:
        host_prompt = exported(state.params)
        floats = [x for x in jax.tree.leaves(host_prompt) if x.dtype.kind == "f"]
        if not all(np.isfinite(x).all() for x in floats):
            raise RunError(f"The prompt became NaN/Inf by step {step}; nothing was saved for it.")
        position = {"step": step, "examples": step * batch_size}
        checkpointer.save(step, state, position, batches)
        if jax.process_index() == 0:
            run_state.save_prompt(model_dir, step, host_prompt)

    return save


def _evaluator(
    t5: T5,
    frozen: Any,
    method: methods.Method,
    task: seqio.Task | seqio.Mixture,
    data: DataSpec,
    prompt: PromptSpec,
    max_examples: int | None,
    writer: MetricsWriter,
    print_fn: Callable[[str], None],
) -> Callable[[int, trainer.TrainState], None]:
    """`evaluate(step, state)`: validation metrics of the current prompt, written as `eval`."""

    def evaluate(step: int, state: trainer.TrainState) -> None:
        stacked = jax.tree.map(lambda x: x[None], method.model_inputs(state.params))
        scores = evaluation.evaluate_prompts(
            t5, frozen, stacked, task, data, max_examples=max_examples, position=prompt.position
        ).per_prompt[0]
        writer.write(step, "eval", scores)
        writer.flush()
        print_fn(f"eval @ {step}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))

    return evaluate


def _train_batches(data: DataSpec, task_names: Sequence[str] | None) -> input_pipeline.TrainBatches:
    """This process's share of the shuffled, repeated train batches."""
    return input_pipeline.TrainBatches(
        input_pipeline.shard_datasets(
            data.mixture_or_task_name, data.task_feature_lengths, data.batch_size,
            seed=data.seed, split=data.train_split, num_shards=data.data_shards,
            task_names=task_names,
        )
    )  # fmt: skip


def _kept(model_dir: str, checkpointer: run_state.StateCheckpointer) -> str:
    """What a stopped run keeps, for its error message."""
    return (
        f"The last good prompt and state in {model_dir} are kept "
        f"(step {checkpointer.latest_step() or 'none yet'})."
    )


def _load_checked(
    model: ModelSpec, data: DataSpec, mesh: jax.sharding.Mesh
) -> tuple[T5Config, Any, seqio.Task | seqio.Mixture, seqio.Vocabulary]:
    """`(config, frozen, task, vocabulary)`: the frozen tree in its shards, checked against the data."""
    partitioning.check_batch_fits(data.batch_size, mesh)
    config, frozen = load_frozen(model, mesh)
    task = input_pipeline.get_task_or_mixture(data.mixture_or_task_name)
    vocabulary = check_vocabulary(task, config)
    input_pipeline.check_split(data.mixture_or_task_name, data.train_split)
    return config, frozen, task, vocabulary


def _exported(method: methods.Method, params: Any) -> np.ndarray | dict[str, np.ndarray]:
    """What the prompt file holds for the trainable `params`: `[P, d]`, or named arrays."""
    return methods.file_content(methods.export(method, partitioning.fetch_replicated(params)))


def _jitted_step(
    objective: trainer.Objective,
    optimizer: optax.GradientTransformation,
    num_microbatches: int,
    config: T5Config,
    mesh: jax.sharding.Mesh,
    frozen: Any,
    *,
    tagged: bool,
) -> Callable[..., Any]:
    """The train step of `objective`, jitted for `mesh` with the frozen tree where it was loaded."""
    step_fn = trainer.make_train_step(
        objective, optimizer, num_microbatches=num_microbatches, dropout=config.dropout_rate > 0
    )
    return trainer.jit_train_step(
        step_fn, mesh, jax.tree.map(lambda x: x.sharding, frozen), tagged=tagged
    )


@gin.configurable
def train(
    *,
    model_dir: str = gin.REQUIRED,
    model: ModelSpec = gin.REQUIRED,
    prompt: PromptSpec = gin.REQUIRED,
    data: DataSpec = gin.REQUIRED,
    train_steps: int = gin.REQUIRED,
    save_every: int = 1000,
    keep_states: int = 3,
    log_every: int = 10,
    eval_every: int = 0,
    max_eval_examples: int | None = None,
    num_microbatches: int = 1,
    optimizer: Any = None,
    loss: trainer.LossConfig | None = None,
    method: methods.Method | None = None,
    mesh: jax.sharding.Mesh | None = None,
    print_fn: Callable[[str], None] = print,
) -> np.ndarray | dict[str, np.ndarray]:
    """Trains a prompt on a frozen T5; resumes from MODEL_DIR's latest state.

    `method` (default: plain prompt tuning) picks the prompt method, e.g.
    `train.method = @PrefixTuning()` (gin/methods/*.gin).

    Returns the final prompt `[P, d]`, or the method's exported arrays (what
    `prompts/prompt_<step>.npz` holds).
    """
    # Everything is validated before the first byte is written to MODEL_DIR.
    _check_train_steps(train_steps)
    config_text = gin.config_str()
    resuming = check_model_dir(model_dir, config_text)
    mesh = mesh or partitioning.make_mesh()
    config, frozen, task, vocabulary = _load_checked(model, data, mesh)
    t5, optimizer = T5(config), optimizer or trainer.make_optimizer()
    # A multi-task method gets (or is checked against) the names of the run's sub-tasks.
    method = methods.bind_tasks(method or methods.PromptTuning(), [t.name for t in sub_tasks(task)])
    replicated = partitioning.replicated(mesh)
    exported = functools.partial(_exported, method)

    def fresh() -> trainer.TrainState:
        return _initial_state(
            prompt, method, config, data.seed, frozen, vocabulary, task, optimizer, replicated
        )

    initial = None if resuming else fresh()  # a bad initialiser fails before anything is written
    with run_lock.hold(model_dir, enabled=jax.process_index() == 0):
        checkpointer = run_state.StateCheckpointer(model_dir, max_to_keep=keep_states)
        start, state = _start_state(
            checkpointer, resuming, lambda: fresh() if initial is None else initial,
            lambda: _abstract_state(prompt, method, config, optimizer, replicated),
            exported, model_dir, config_text, print_fn,
        )  # fmt: skip
        objective = trainer.prompt_objective(
            t5, loss or trainer.LossConfig(), method=method, prompt_position=prompt.position
        )
        task_names = methods.example_tasks(method)
        jit_step = _jitted_step(objective, optimizer, num_microbatches, config, mesh, frozen,
                                tagged=task_names is not None)  # fmt: skip
        local_batches = _train_batches(data, task_names)
        run_state.resume_data_position(checkpointer, start, local_batches, print_fn)
        writer = MetricsWriter(model_dir)
        # A full or read-only disk stops the run with one message; earlier saves stay good.
        with run_state.disk_errors(model_dir, checkpointer), partitioning.activation_sharding(mesh):
            state = trainer.train_loop(
                jit_step, state, frozen,
                input_pipeline.global_batches(local_batches, partitioning.batch_sharding(mesh)),
                partitioning.host_to_global(jax.random.PRNGKey(data.seed + 1), replicated),
                start=start,
                schedule=trainer.Schedule(train_steps, log_every, save_every, eval_every),
                writer=writer,
                save=_saver(model_dir, checkpointer, local_batches, exported, data.batch_size),
                kept=lambda: _kept(model_dir, checkpointer),
                evaluate=_evaluator(
                    t5, frozen, method, task, data, prompt, max_eval_examples, writer, print_fn
                ),
                print_fn=print_fn,
            )  # fmt: skip
        writer.close()
        checkpointer.close()  # waits for the last save
        return exported(state.params)


# --------------------------------------------------------------------- evaluate


@gin.configurable
def evaluate(
    *,
    model: ModelSpec = gin.REQUIRED,
    data: DataSpec = gin.REQUIRED,
    prompt_files: Sequence[str] = (),
    output_dir: str | None = None,
    max_examples: int | None = None,
    prompt: PromptSpec | None = None,
    decode_classification: bool = True,
    mesh: jax.sharding.Mesh | None = None,
    print_fn: Callable[[str], None] = print,
) -> evaluation.EvalResult:
    """Evaluates one prompt file, several (scored together, plus their vote), or none.

    A `None` file (`--gin.PROMPT_FILE=None`) is no prompt: with no other file,
    the frozen model is evaluated alone. The prompts join the input where
    `prompt.position` says (the gin-configured `PromptSpec` when not given).

    With `output_dir`, writes `eval/<task>.<split>.metrics.json` and
    `eval/<task>.<split>.predictions.jsonl` (never overwriting earlier results).
    """
    prompt_files = [path for path in prompt_files if path is not None]
    mesh = mesh or partitioning.make_mesh()
    partitioning.check_batch_fits(data.batch_size, mesh)
    config, frozen = load_frozen(model, mesh)
    task = input_pipeline.get_task_or_mixture(data.mixture_or_task_name)
    check_vocabulary(task, config)
    stack = evaluation.stack_prompt_files(prompt_files, config) if prompt_files else None
    with partitioning.activation_sharding(mesh):
        result = evaluation.evaluate_prompts(
            T5(config),
            frozen,
            stack,
            task,
            data,
            max_examples=max_examples,
            position=(prompt or PromptSpec()).position,
            decode_classification=decode_classification,
        )
    names = list(prompt_files) or ["<no prompt>"]
    report = dict(zip(names, result.per_prompt, strict=True))
    if result.ensemble is not None:
        report["ensemble (majority vote)"] = result.ensemble
    for name, metrics in report.items():
        print_fn(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
    if output_dir and jax.process_index() == 0:
        stem = f"{task.name}.{data.eval_split}"
        out = fresh_file(epath.Path(output_dir) / "eval", stem, ".metrics.json")
        out.write_text(json.dumps(report, indent=2))
        predictions = fresh_file(epath.Path(output_dir) / "eval", stem, ".predictions.jsonl")
        predictions.write_text(
            "".join(
                json.dumps({**r, "prompt": names[r["prompt"]]}) + "\n" for r in result.predictions
            )
        )
        print_fn(f"Wrote {out} and {predictions}")
    return result


# ------------------------------------------------------------------------ infer

# Targets of rows without a label: T5's `<unk>` class, the empty answer, STS-B's -1 (as in TFDS).
UNLABELLED_TARGETS = (UNKNOWN_LABEL, "", "-1.0")


def _user_task(task: seqio.Task, path: str) -> seqio.Task:
    """The task reading the user's rows in `path` (split `user`)."""
    spec = registry.user_rows(task.name)
    if spec is None:
        raise RunError(
            f"Task {task.name} cannot read rows from a file (infer.input_file): it was not "
            "registered with the fields its examples hold (see prompt_tuning.data.user_rows)."
        )
    return user_rows.task_on_rows(task, spec, path)


@gin.configurable
def infer(
    *,
    model: ModelSpec = gin.REQUIRED,
    data: DataSpec = gin.REQUIRED,
    prompt_file: str | None = None,
    input_file: str | None = None,
    output_dir: str = gin.REQUIRED,
    max_examples: int | None = None,
    prompt: PromptSpec | None = None,
    beam_size: int = 1,
    mesh: jax.sharding.Mesh | None = None,
    print_fn: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Writes one JSON line per example with the prediction (and label scores).

    Classification tasks are answered by rank classification over their labels;
    other tasks are decoded, greedily or (`beam_size` > 1) by beam search. The
    prompt joins the input where `prompt.position` says (the gin-configured
    `PromptSpec` when not given); batches hold `data.batch_size` examples.
    """
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise RunError(f"infer.beam_size must be a positive integer, got {beam_size!r}.")
    mesh = mesh or partitioning.make_mesh()
    partitioning.check_batch_fits(data.batch_size, mesh)
    config, frozen = load_frozen(model, mesh)
    task = input_pipeline.get_task_or_mixture(data.mixture_or_task_name)
    if isinstance(task, seqio.Mixture):
        raise RunError(f"infer needs a single task, not the mixture {task.name!r}.")
    check_vocabulary(task, config)
    vocabulary = task.output_features["targets"].vocabulary
    # Labels belong to the registered task, before its source is swapped for the user's rows.
    labels = task_labels(task)
    label_ids = rank_classification.label_target_ids(task.name, vocabulary) if labels else None
    split = data.eval_split
    if input_file:
        task, split = _user_task(task, input_file), user_rows.SPLIT
    stack = None if prompt_file is None else evaluation.stack_prompt_files([prompt_file], config)
    stack = methods.task_inputs(stack, data.mixture_or_task_name)  # the registered task's name
    input_length = data.task_feature_lengths["inputs"]
    examples = evaluation.load_examples(task, split, input_length, max_examples)
    options = {
        "input_length": input_length,
        "batch_size": data.batch_size,
        "prompt_position": (prompt or PromptSpec()).position,
    }
    with partitioning.activation_sharding(mesh):
        if labels:
            scores = evaluation.rank_classify(
                T5(config), frozen, stack, examples, label_ids, **options
            )[0]
            rows = [
                {
                    "prediction": labels[int(s.argmax())],
                    "scores": dict(zip(labels, s.tolist(), strict=True)),
                }
                for s in scores
            ]
        else:
            texts = evaluation.decoded_predictions(
                T5(config), frozen, jax.tree.map(lambda x: x[0], stack), examples, vocabulary,
                max_decode_length=data.task_feature_lengths.get("targets", 32),
                num_beams=beam_size, **options,
            )  # fmt: skip
            rows = [{"prediction": text} for text in texts]
    _write_predictions(examples, rows, vocabulary, task.name, split, output_dir, print_fn)
    return rows


def _write_predictions(
    examples: Sequence[evaluation.Example],
    rows: list[dict[str, Any]],
    vocabulary: seqio.Vocabulary,
    task: str,
    split: str,
    output_dir: str,
    print_fn: Callable[[str], None],
) -> None:
    """Adds each example's input (and target, when labelled) to its row; writes the rows."""
    for ex, row in zip(examples, rows, strict=True):
        row["inputs"] = vocabulary.decode(ex.inputs.tolist())
        if ex.target_text not in UNLABELLED_TARGETS:  # an unlabelled row has no target to report
            row["target"] = ex.target_text
    if jax.process_index() == 0:
        out = fresh_file(epath.Path(output_dir) / "infer", f"{task}.{split}", ".jsonl")
        out.write_text("".join(json.dumps(row) + "\n" for row in rows))
        print_fn(f"Wrote {len(rows)} predictions to {out}")

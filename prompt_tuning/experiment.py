"""The gin-configurable jobs: `train`, `evaluate` and `infer`.

This is the one place where gin meets the library. Each job reads three specs
(which frozen model, which prompt, which data), builds the mesh, loads the
frozen tree straight into its shards, and hands pure functions from
`trainer.py` / `evaluation.py` to jit.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gin
import jax
import jax.numpy as jnp
import numpy as np
import optax
import seqio
from etils import epath

from prompt_tuning import (
    checkpoints,
    evaluation,
    input_pipeline,
    methods,
    partitioning,
    prompts,
    run_lock,
    trainer,
)
from prompt_tuning.checkpoints import state as run_state
from prompt_tuning.data import rank_classification
from prompt_tuning.data import registry as data_registry
from prompt_tuning.models import T5, T5Config, get_config, stack_layers

log = logging.getLogger(__name__)

gin.external_configurable(partitioning.make_mesh, "make_mesh")
gin.external_configurable(trainer.make_optimizer, "make_optimizer")
gin.external_configurable(trainer.LossConfig, "LossConfig")
gin.external_configurable(methods.PromptTuning, "PromptTuning")
gin.external_configurable(methods.PrefixTuning, "PrefixTuning")
gin.external_configurable(methods.PTuning, "PTuning")
gin.external_configurable(methods.DeepPrompts, "DeepPrompts")
gin.external_configurable(methods.MultiTaskPrompts, "MultiTaskPrompts")

# Architecture fields a named model must agree on with the checkpoint it loads.
_ARCHITECTURE = (
    "vocab_size", "d_model", "num_heads", "d_kv", "d_ff", "num_encoder_layers",
    "num_decoder_layers", "relative_attention_num_buckets", "mlp_activations",
    "logits_via_embedding",
)


class RunError(RuntimeError):
    """A run that cannot start or go on; the message says why and what to do."""


@gin.configurable
@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The frozen model: where its checkpoint is and how to execute it.

    `name` (e.g. "t5_1_1_base") is optional; when given, the checkpoint's shapes
    must match that named architecture.
    """

    checkpoint_path: str = gin.REQUIRED
    name: str | None = None
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat_policy: str = "none"
    scan_layers: bool = False
    dropout_rate: float = 0.0


@gin.configurable
@dataclasses.dataclass(frozen=True)
class PromptSpec:
    """Length, initialiser and position of the soft prompt."""

    length: int = 100
    init: Callable[..., prompts.PromptInit] = gin.REQUIRED
    position: str = "prefix"


@gin.configurable
@dataclasses.dataclass(frozen=True)
class DataSpec:
    """Which task, how long its features are, and how it is batched."""

    mixture_or_task_name: str = gin.REQUIRED
    task_feature_lengths: Mapping[str, int] = gin.REQUIRED
    batch_size: int = 32
    seed: int = 0
    train_split: str = "train"
    eval_split: str = "validation"
    # Independent input streams; fix it to make runs on different numbers of
    # processes see identical batches (None: one per process).
    data_shards: int | None = None


# ---------------------------------------------------------------- prompt inits
# Each factory gets what any initialiser could need and returns a PromptInit.


@gin.configurable
def random_uniform_init(*, scale: float = 0.5, **_) -> prompts.PromptInit:
    return prompts.random_uniform(scale)


@gin.configurable
def sampled_vocab_init(
    *, embedding: np.ndarray, num_tokens: int = prompts.NUM_FREQUENT_TOKENS, **_
) -> prompts.PromptInit:
    return prompts.sampled_vocab(embedding, num_tokens)


@gin.configurable
def class_labels_init(
    *,
    embedding: np.ndarray,
    vocabulary: seqio.Vocabulary,
    task_labels: Sequence[str] | None,
    labels: Sequence[str] | None = None,
    **_,
) -> prompts.PromptInit:
    """Class-label init; `labels=None` uses the task's own label strings."""
    labels = labels or task_labels
    if not labels:
        raise RunError(
            "class_labels init needs label strings: the task declares none, so set "
            "CLASS_LABELS (e.g. --gin.CLASS_LABELS=\"['negative','positive']\")."
        )
    ids = [list(vocabulary.encode(label)) for label in labels]
    return prompts.class_labels(embedding, ids)


@gin.configurable
def from_text_init(
    *, embedding: np.ndarray, vocabulary: seqio.Vocabulary, text: str = gin.REQUIRED, **_
) -> prompts.PromptInit:
    return prompts.from_text(embedding, list(vocabulary.encode(text)))


@gin.configurable
def from_file_init(*, path: str = gin.REQUIRED, **_) -> prompts.PromptInit:
    return prompts.from_file(path)


# --------------------------------------------------------------- shared set-up


def load_frozen(spec: ModelSpec, mesh: jax.sharding.Mesh) -> tuple[T5Config, Any]:
    """Loads the checkpoint into its shards and applies the execution options."""
    if not spec.checkpoint_path:
        raise RunError(
            "No frozen model checkpoint: set INITIAL_CHECKPOINT_PATH (a gin/models/*.gin file "
            "does, or pass --gin.INITIAL_CHECKPOINT_PATH=PATH)."
        )
    config, frozen = checkpoints.load(spec.checkpoint_path, dtype=spec.param_dtype, mesh=mesh)
    if spec.name:
        expected = get_config(spec.name)
        wrong = [
            f"{f}: checkpoint {getattr(config, f)} vs {spec.name} {getattr(expected, f)}"
            for f in _ARCHITECTURE
            if getattr(config, f) != getattr(expected, f)
        ]
        if wrong:
            raise RunError(
                f"Checkpoint {spec.checkpoint_path} does not match model {spec.name!r}: "
                + "; ".join(wrong)
            )
    config = config.replace(
        dtype=spec.dtype, param_dtype=spec.param_dtype, remat_policy=spec.remat_policy,
        scan_layers=spec.scan_layers, dropout_rate=spec.dropout_rate,
    )
    if config.scan_layers:
        frozen = stack_layers(frozen, config)
    return config, frozen


def check_vocabulary(task: seqio.Task | seqio.Mixture, config: T5Config) -> seqio.Vocabulary:
    """The task's vocabulary must index the model's embedding table."""
    vocabulary = task.output_features["inputs"].vocabulary
    size = vocabulary.vocab_size
    # Checkpoints pad the embedding table (e.g. 32100 -> 32128); more is a mismatch.
    if not size <= config.vocab_size < size + 1024:
        raise RunError(
            f"Vocabulary mismatch: task {task.name!r} uses a vocabulary of {size} tokens but the "
            f"model's embedding table has {config.vocab_size} rows. Use the task variant built "
            "for this model's vocabulary."
        )
    return vocabulary


def sub_tasks(task: seqio.Task | seqio.Mixture) -> list[seqio.Task]:
    """The tasks of a mixture, or the task itself."""
    return task.tasks if isinstance(task, seqio.Mixture) else [task]


def task_labels(task: seqio.Task | seqio.Mixture) -> tuple[str, ...] | None:
    """The label strings a classification task declares (None for generative tasks)."""
    return data_registry.class_labels(task.name)


# -------------------------------------------------------------------- model dir

CONFIG_FILE = "config.gin"
# Bindings that may change when a run is resumed (e.g. to train longer).
_RESUMABLE_CHANGES = ("TRAIN_STEPS", "train.train_steps", "train.log_every", "train.eval_every")


def _run_identity(config_text: str) -> list[str]:
    return [
        line for line in config_text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
        and not line.split("=")[0].strip().startswith(_RESUMABLE_CHANGES)
    ]


def check_model_dir(model_dir: str, config_text: str) -> bool:
    """Whether MODEL_DIR already holds this run; raises if it holds a different one."""
    path = epath.Path(model_dir) / CONFIG_FILE
    if not path.exists():
        return False
    old, new = _run_identity(path.read_text()), _run_identity(config_text)
    if old != new:
        changed = sorted(set(old).symmetric_difference(new))[:6]
        raise RunError(
            f"MODEL_DIR {model_dir} holds a different run (its {CONFIG_FILE} differs in: "
            + " | ".join(changed)
            + "). Use a new MODEL_DIR, or re-run with the same config to resume."
        )
    return True


def write_config(model_dir: str, config_text: str) -> None:
    """Records the run's exact gin config (process 0; temp file then rename)."""
    if jax.process_index() != 0:
        return
    path = epath.Path(model_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{CONFIG_FILE}.tmp"
    tmp.write_text(config_text)
    tmp.rename(path)


class MetricsWriter:
    """Appends one JSON object per record to `MODEL_DIR/metrics.jsonl`."""

    def __init__(self, model_dir: str):
        self._path = epath.Path(model_dir) / "metrics.jsonl"
        self._enabled = jax.process_index() == 0

    def write(self, step: int, kind: str, values: Mapping[str, float]) -> None:
        if self._enabled:
            record = {"step": step, "kind": kind, **{k: float(v) for k, v in values.items()}}
            with self._path.open("a") as f:
                f.write(json.dumps(record) + "\n")


def _progress(step: int, total: int, loss: float, steps_per_s: float, tokens_per_s: float) -> str:
    eta = (total - step) / steps_per_s if steps_per_s > 0 else float("inf")
    eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if np.isfinite(eta) else "?"
    return (
        f"step {step}/{total}  loss {loss:.4f}  {steps_per_s:.2f} steps/s  "
        f"{tokens_per_s:,.0f} tokens/s  ETA {eta_text}"
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
    if isinstance(train_steps, bool) or not isinstance(train_steps, int) or train_steps < 1:
        raise RunError(f"TRAIN_STEPS (train.train_steps) must be a positive integer, got {train_steps!r}.")
    config_text = gin.config_str()
    resuming = check_model_dir(model_dir, config_text)
    mesh = mesh or partitioning.make_mesh()
    config, frozen = load_frozen(model, mesh)
    task = input_pipeline.get_task_or_mixture(data.mixture_or_task_name)
    vocabulary = check_vocabulary(task, config)
    input_pipeline.check_split(data.mixture_or_task_name, data.train_split)
    t5 = T5(config)
    optimizer = optimizer or trainer.make_optimizer()
    # A multi-task method gets (or is checked against) the names of the run's sub-tasks.
    method = methods.bind_tasks(method or methods.PromptTuning(), [t.name for t in sub_tasks(task)])
    replicated = partitioning.replicated(mesh)

    def exported(params: Any) -> np.ndarray | dict[str, np.ndarray]:
        return methods.file_content(methods.export(method, partitioning.fetch_replicated(params)))

    # A fresh run's prompt initialiser is checked before anything is written.
    initial = None if resuming else _initial_state(
        prompt, method, config, data.seed, frozen, vocabulary, task, optimizer, replicated
    )
    with run_lock.hold(model_dir, enabled=jax.process_index() == 0):
        checkpointer = run_state.StateCheckpointer(model_dir, max_to_keep=keep_states)
        restored = checkpointer.restore_latest_good(
            _abstract_state(prompt, method, config, optimizer, replicated)
        ) if resuming else None
        if restored is None:
            if initial is None:
                initial = _initial_state(
                    prompt, method, config, data.seed, frozen, vocabulary, task, optimizer,
                    replicated,
                )
            start, state = 0, initial
            if not resuming:  # a resumed run killed before its first save has it already
                write_config(model_dir, config_text)
        else:
            start, state, _ = restored
            print_fn(f"Resuming from step {start} in {model_dir}.")
            # The resumed step's prompt may be missing (killed between the two writes).
            host_prompt = exported(state.prompt)
            if jax.process_index() == 0:
                run_state.save_prompt(model_dir, start, host_prompt)

        step_fn = trainer.make_train_step(
            t5, optimizer, loss or trainer.LossConfig(), num_microbatches=num_microbatches,
            dropout=config.dropout_rate > 0, prompt_position=prompt.position, method=method,
        )
        param_shardings = jax.tree.map(lambda x: x.sharding, frozen)
        task_names = methods.example_tasks(method)
        batch_sharding = partitioning.batch_sharding(mesh)
        jit_step = jax.jit(
            step_fn,
            in_shardings=(
                replicated,
                param_shardings,
                input_pipeline.feature_shardings(batch_sharding, tagged=task_names is not None),
                replicated,
            ),
            out_shardings=(replicated, replicated),
            donate_argnums=(0,),
        )
        dataset = input_pipeline.train_dataset(
            data.mixture_or_task_name, data.task_feature_lengths, data.batch_size,
            seed=data.seed, start_step=start, split=data.train_split, num_shards=data.data_shards,
            task_names=task_names,
        )
        batches = input_pipeline.global_batches(dataset, batch_sharding)
        writer = MetricsWriter(model_dir)
        rng = partitioning.host_to_global(jax.random.PRNGKey(data.seed + 1), replicated)

        def save(step: int) -> None:
            host_prompt = exported(state.prompt)
            floats = [x for x in jax.tree.leaves(host_prompt) if x.dtype.kind == "f"]
            if not all(np.isfinite(x).all() for x in floats):
                raise RunError(f"The prompt became NaN/Inf by step {step}; nothing was saved for it.")
            checkpointer.save(step, state, {"step": step, "examples": step * data.batch_size})
            if jax.process_index() == 0:
                run_state.save_prompt(model_dir, step, host_prompt)

        pending: list[tuple[int, dict[str, jax.Array]]] = []
        window_start, window_tokens = time.perf_counter(), 0.0
        with jax.set_mesh(mesh):
            for step in range(start + 1, train_steps + 1):
                state, metrics = jit_step(state, frozen, next(batches), rng)
                pending.append((step, metrics))
                at_save = step % save_every == 0 or step == train_steps
                if step % log_every == 0 or at_save:
                    fetched = partitioning.fetch_replicated(pending)
                    pending = []
                    for s, m in fetched:
                        if not np.isfinite(m["loss"]):
                            raise RunError(
                                f"Loss is {m['loss']} at step {s}: stopping. The last good prompt "
                                f"and state in {model_dir} are kept (step "
                                f"{checkpointer.latest_step() or 'none yet'})."
                            )
                        writer.write(s, "train", m)
                        window_tokens += m["tokens"]
                    elapsed = time.perf_counter() - window_start
                    print_fn(_progress(
                        step, train_steps, float(fetched[-1][1]["loss"]),
                        len(fetched) / elapsed, window_tokens / elapsed,
                    ))
                    window_start, window_tokens = time.perf_counter(), 0.0
                if at_save:
                    save(step)
                if eval_every and (step % eval_every == 0 or step == train_steps):
                    stacked = jax.tree.map(lambda x: x[None], method.model_inputs(state.prompt))
                    scores = evaluate_prompts(
                        t5, frozen, stacked, task, data, max_examples=max_eval_examples,
                        position=prompt.position,
                    ).per_prompt[0]
                    writer.write(step, "eval", scores)
                    print_fn(f"eval @ {step}: " + ", ".join(f"{k} {v:.2f}" for k, v in scores.items()))
                    window_start = time.perf_counter()
        checkpointer.wait()
        checkpointer.close()
        return exported(state.prompt)


# --------------------------------------------------------------------- evaluate


@dataclasses.dataclass
class EvalResult:
    """Metrics per prompt (and of their majority vote), and one record per prediction."""

    per_prompt: list[dict[str, float]]
    ensemble: dict[str, float] | None = None
    predictions: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def _classification_metrics(
    sub: seqio.Task,
    examples: Sequence[evaluation.Example],
    scores: np.ndarray,
    labels: Sequence[str],
    prefix: str,
) -> tuple[list[dict[str, float]], dict[str, float] | None, list[list[str]]]:
    """Rank-classification metrics of each prompt and, for several, of their vote."""
    choices = scores.argmax(-1)  # [N, n]
    texts = [[labels[j] for j in row] for row in choices]
    per_prompt = [
        {f"{prefix}{k}": v for k, v in evaluation.task_metrics(sub, examples, t).items()}
        for t in texts
    ]
    ensemble = None
    if len(texts) > 1:
        voted = [labels[j] for j in evaluation.majority_vote(choices)]
        ensemble = {f"{prefix}{k}": v for k, v in evaluation.task_metrics(sub, examples, voted).items()}
    return per_prompt, ensemble, texts


def evaluate_prompts(
    t5: T5,
    frozen: Any,
    prompt_stack: jax.Array | Mapping[str, jax.Array] | None,
    task: seqio.Task | seqio.Mixture,
    data: DataSpec,
    *,
    max_examples: int | None = None,
    position: str = "prefix",
    batch_size: int = 32,
    decode_classification: bool = False,
) -> EvalResult:
    """Scores `[N, P, d]` prompts (or stacked method inputs, or the bare model) on every sub-task.

    Classification tasks use rank classification (all prompts in one batched
    pass, plus their majority vote), and with `decode_classification` also
    greedy decoding (metrics prefixed `decode/`); other tasks use greedy
    decoding. Metric keys are prefixed by sub-task name for mixtures. Multi-task
    prompts score each sub-task with that task's own prompt.
    """
    tasks = sub_tasks(task)
    input_length = data.task_feature_lengths["inputs"]
    num_prompts = 1 if prompt_stack is None else evaluation.num_stacked(prompt_stack)
    result = EvalResult(per_prompt=[{} for _ in range(num_prompts)])

    def decode(sub: seqio.Task, stack: Any, examples: list[evaluation.Example], i: int) -> list[str]:
        prompt = jax.tree.map(lambda x: x[i], stack)
        return evaluation.greedy_predictions(
            t5, frozen, prompt, examples,
            sub.output_features["targets"].vocabulary, input_length=input_length,
            max_decode_length=data.task_feature_lengths.get("targets", 32), batch_size=batch_size,
        )

    for sub in tasks:
        prefix = f"{sub.name}/" if len(tasks) > 1 else ""
        stack = methods.task_inputs(prompt_stack, sub.name)
        examples = evaluation.load_examples(sub, data.eval_split, input_length, max_examples)
        baseline = {f"{prefix}majority_baseline": evaluation.majority_class_accuracy(examples)}
        labels = task_labels(sub)
        scores = None
        if labels:
            ids = rank_classification.label_target_ids(
                sub.name, sub.output_features["targets"].vocabulary
            )
            scores = evaluation.rank_classify(
                t5, frozen, stack, examples, ids, input_length=input_length,
                batch_size=batch_size, prompt_position=position,
            )
            metrics, ensemble, texts = _classification_metrics(sub, examples, scores, labels, prefix)
            if ensemble is not None:
                result.ensemble = {**(result.ensemble or {}), **baseline, **ensemble}
        else:
            texts = [decode(sub, stack, examples, i) for i in range(num_prompts)]
            metrics = [
                {f"{prefix}{k}": v for k, v in evaluation.task_metrics(sub, examples, t).items()}
                for t in texts
            ]
        for i in range(num_prompts):
            result.per_prompt[i].update({**baseline, **metrics[i]})
            if labels and decode_classification:
                decoded = evaluation.task_metrics(sub, examples, decode(sub, stack, examples, i))
                result.per_prompt[i].update({f"{prefix}decode/{k}": v for k, v in decoded.items()})
            for j, ex in enumerate(examples):
                record = {"prompt": i, "task": sub.name, "index": j,
                          "target": ex.target_text, "prediction": texts[i][j]}
                if scores is not None:
                    record["scores"] = dict(zip(labels, scores[i, j].tolist(), strict=True))
                result.predictions.append(record)
    return result


@gin.configurable
def evaluate(
    *,
    model: ModelSpec = gin.REQUIRED,
    data: DataSpec = gin.REQUIRED,
    prompt_files: Sequence[str] = (),
    output_dir: str | None = None,
    max_examples: int | None = None,
    position: str = "prefix",
    decode_classification: bool = True,
    mesh: jax.sharding.Mesh | None = None,
    print_fn: Callable[[str], None] = print,
) -> EvalResult:
    """Evaluates one prompt file, several (scored together, plus their vote), or none.

    With `output_dir`, writes `eval/<task>.<split>.metrics.json` and
    `eval/<task>.<split>.predictions.jsonl` (never overwriting earlier results).
    """
    mesh = mesh or partitioning.make_mesh()
    config, frozen = load_frozen(model, mesh)
    task = input_pipeline.get_task_or_mixture(data.mixture_or_task_name)
    check_vocabulary(task, config)
    stack = _stack_prompt_files(prompt_files, config) if prompt_files else None
    with jax.set_mesh(mesh):
        result = evaluate_prompts(
            T5(config), frozen, stack, task, data, max_examples=max_examples, position=position,
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
        out = _fresh_file(epath.Path(output_dir) / "eval", stem, ".metrics.json")
        out.write_text(json.dumps(report, indent=2))
        predictions = _fresh_file(epath.Path(output_dir) / "eval", stem, ".predictions.jsonl")
        predictions.write_text(
            "".join(
                json.dumps({**r, "prompt": names[r["prompt"]]}) + "\n" for r in result.predictions
            )
        )
        print_fn(f"Wrote {out} and {predictions}")
    return result


def _stack_prompt_files(paths: Sequence[str], config: T5Config) -> dict[str, jax.Array]:
    """Prompt files (`.npy`, or a method's `.npz`) as stacked model inputs `{name: [N, ...]}`."""
    loaded = [methods.load_inputs(path) for path in paths]
    first = {name: x.shape for name, x in loaded[0].items()}
    for path, inputs in zip(paths, loaded, strict=True):
        shapes = {name: x.shape for name, x in inputs.items()}
        width = shapes.get("prompt", shapes.get("task_prompts", (0, config.d_model)))[-1]
        if shapes != first or width != config.d_model:
            raise RunError(
                f"Prompt {path} holds {shapes}; this model needs prompts [P, {config.d_model}] "
                f"and all files the same arrays as {paths[0]} {first}."
            )
    stacked = {name: np.stack([x[name] for x in loaded]) for name in first}
    # Task names (of multi-task files) stay host strings; evaluation picks rows by them.
    return {name: x if x.dtype.kind == "U" else jnp.asarray(x) for name, x in stacked.items()}


def init_distributed() -> None:
    """Joins a multi-process JAX job when the launcher asks for one.

    `JAX_COORDINATOR_ADDRESS`, `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID` name the
    job explicitly (GPU clusters, or several processes on one machine);
    `PROMPT_TUNING_MULTIHOST=1` lets JAX detect it (TPU pods, SLURM).
    """
    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if address:
        if os.environ.get("JAX_PLATFORMS", "").startswith("cpu"):
            # Cross-process collectives on CPU need an explicit implementation.
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            address,
            num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
            process_id=int(os.environ["JAX_PROCESS_ID"]),
        )
    elif os.environ.get("PROMPT_TUNING_MULTIHOST") == "1":
        jax.distributed.initialize()


def run_main(job: Callable[[], Any], argv: Sequence[str]) -> int:
    """Shared CLI body: parse gin flags, run the job, turn known errors into one line."""
    from prompt_tuning import gin_utils

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    init_distributed()
    try:
        args = gin_utils.parse_flags(argv)
        gin_utils.parse(args.gin_file, args.gin_bindings, args.gin_search_paths)
        try:
            job()
        except RuntimeError as e:
            if "Required bindings" in str(e):
                raise gin_utils.required_error(e) from e
            raise
    except (gin_utils.GinConfigError, RunError, checkpoints.CheckpointError, ValueError,
            FileNotFoundError, run_lock.ModelDirLocked) as e:
        # gin appends "In call to configurable ..." to errors raised inside a job.
        message = str(e).split("\n  In call to configurable")[0]
        print(f"error: {message}", flush=True)
        return 2
    return 0


# ------------------------------------------------------------------------ infer


def _read_user_examples(path: str) -> list[dict[str, str]]:
    """Rows of a JSONL file, or of a TSV file whose header names the task's fields."""
    text = epath.Path(path).read_text()
    if path.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if path.endswith(".tsv"):
        header, *rows = [line.split("\t") for line in text.splitlines() if line.strip()]
        return [dict(zip(header, row, strict=True)) for row in rows]
    raise RunError(f"Input file {path} must be .jsonl or .tsv (with a header row of field names).")


def _with_user_source(task: seqio.Task, rows: list[dict[str, str]]) -> seqio.Task:
    """The task with its source replaced by the user's rows (same preprocessing)."""
    import tensorflow as tf

    columns = {key: [row.get(key, "") for row in rows] for key in rows[0]}
    for key, values in columns.items():
        # TSV cells arrive as text; whole-number columns (labels, ids) become ints.
        if all(isinstance(v, int) or re.fullmatch(r"-?\d+", str(v)) for v in values):
            columns[key] = [int(v) for v in values]
        else:
            columns[key] = [str(v) for v in values]
    # Unlabelled rows (the usual case for inference) carry the "unknown" label -1.
    columns.setdefault("label", [-1] * len(rows))

    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        del split, shuffle_files, seed
        return tf.data.Dataset.from_tensor_slices(columns)

    source = seqio.FunctionDataSource(dataset_fn, splits=["user"])
    return task.replace(name=f"{task.name}_user_input", source=source)


@gin.configurable
def infer(
    *,
    model: ModelSpec = gin.REQUIRED,
    data: DataSpec = gin.REQUIRED,
    prompt_file: str | None = None,
    input_file: str | None = None,
    output_dir: str = gin.REQUIRED,
    max_examples: int | None = None,
    position: str = "prefix",
    mesh: jax.sharding.Mesh | None = None,
    print_fn: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Writes one JSON line per example with the prediction (and label scores)."""
    mesh = mesh or partitioning.make_mesh()
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
        task, split = _with_user_source(task, _read_user_examples(input_file)), "user"
    stack = None if prompt_file is None else _stack_prompt_files([prompt_file], config)
    stack = methods.task_inputs(stack, data.mixture_or_task_name)  # the registered task's name
    input_length = data.task_feature_lengths["inputs"]
    examples = evaluation.load_examples(task, split, input_length, max_examples)
    t5 = T5(config)
    with jax.set_mesh(mesh):
        if labels:
            scores = evaluation.rank_classify(
                t5, frozen, stack, examples, label_ids,
                input_length=input_length, prompt_position=position,
            )[0]
            rows = [
                {"prediction": labels[int(s.argmax())], "scores": dict(zip(labels, s.tolist(), strict=True))}
                for s in scores
            ]
        else:
            prompt = jax.tree.map(lambda x: x[0], stack)
            texts = evaluation.greedy_predictions(
                t5, frozen, prompt, examples, vocabulary, input_length=input_length,
                max_decode_length=data.task_feature_lengths.get("targets", 32),
            )
            rows = [{"prediction": text} for text in texts]
    for ex, row in zip(examples, rows, strict=True):
        row["inputs"] = vocabulary.decode(ex.inputs.tolist())
        row["target"] = ex.target_text
    if jax.process_index() == 0:
        out = _fresh_file(epath.Path(output_dir) / "infer", f"{task.name}.{split}", ".jsonl")
        out.write_text("".join(json.dumps(row) + "\n" for row in rows))
        print_fn(f"Wrote {len(rows)} predictions to {out}")
    return rows


def _fresh_file(directory: epath.Path, stem: str, suffix: str) -> epath.Path:
    """A path in `directory` that does not exist yet: results are never overwritten."""
    directory.mkdir(parents=True, exist_ok=True)
    path, n = directory / f"{stem}{suffix}", 1
    while path.exists():
        path, n = directory / f"{stem}.{n}{suffix}", n + 1
    return path

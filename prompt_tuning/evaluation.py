"""Evaluation of prompts on a task: rank classification, decoding, metrics.

Rank classification scores every label string of a classification task under
the model and predicts the best; several prompts (an ensemble) are scored in
one forward pass by folding the prompt axis into the batch. A prompt method's
model inputs (`methods`) are stacked and folded the same way, input by input.
`evaluate_prompts` scores stacked prompts on every sub-task of a task's split,
as the eval job and the train job's periodic evaluation do.
"""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import seqio

from prompt_tuning import decoding, methods
from prompt_tuning.data import rank_classification
from prompt_tuning.errors import InputError, RunError
from prompt_tuning.methods import is_query_file, pooled_query, resolve
from prompt_tuning.models import T5, T5Config
from prompt_tuning.specs import DataSpec, sub_tasks, task_labels
from prompt_tuning.trainer import sequence_log_likelihoods, target_log_likelihoods

EOS_ID = 1


@dataclasses.dataclass(frozen=True)
class Example:
    """One evaluation example: its input tokens and the raw fields for metrics."""

    inputs: np.ndarray  # [length] int32, no padding
    target_text: str
    raw: Mapping[str, Any]


def load_examples(
    task: seqio.Task, split: str, input_length: int, max_examples: int | None = None
) -> list[Example]:
    """Tokenised, unshuffled examples of a task split (inputs cut to `input_length`)."""
    dataset = task.get_dataset(
        sequence_length={"inputs": input_length, "targets": 1024},
        split=split,
        shuffle=False,
        num_epochs=1,
    )
    if max_examples is not None:
        dataset = dataset.take(max_examples)
    examples = []
    for ex in dataset.as_numpy_iterator():
        target = ex.get("targets_pretokenized", b"")
        examples.append(
            Example(
                inputs=np.asarray(ex["inputs"][:input_length], np.int32),
                target_text=target.decode() if isinstance(target, bytes) else str(target),
                raw=ex,
            )
        )
    if not examples:
        raise InputError(f"Split {split!r} of task {task.name!r} has no examples.")
    return examples


def pad(rows: Sequence[np.ndarray], length: int) -> np.ndarray:
    """`[len(rows), length]` int32 token rows, cut to `length` and zero-padded."""
    out = np.zeros((len(rows), length), np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row[:length]
    return out


def scoring_batch(
    inputs: Sequence[np.ndarray], label_ids: Sequence[Sequence[int]], input_length: int
) -> dict[str, np.ndarray]:
    """Pairs each input with each label: rows `[example * num_labels + label]`.

    `label_ids` are the full target ids of each label (EOS included). Returns
    `encoder_input_tokens [n*L, input_length]`, `decoder_target_tokens`,
    `decoder_input_tokens` (targets shifted right with BOS 0) and
    `decoder_loss_weights`, each `[n*L, max_label_length]`.
    """
    target_length = max(len(ids) for ids in label_ids)
    encoder = pad([x for x in inputs for _ in label_ids], input_length)
    targets = pad([np.asarray(ids) for _ in inputs for ids in label_ids], target_length)
    decoder_inputs = np.concatenate([np.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)
    return {
        "encoder_input_tokens": encoder,
        "decoder_input_tokens": decoder_inputs,
        "decoder_target_tokens": targets,
        "decoder_loss_weights": (targets > 0).astype(np.float32),
    }


def as_inputs(prompts: jax.Array | Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """A `[N, P, d]` prompt stack, or stacked method inputs, as model keyword inputs."""
    return dict(prompts) if isinstance(prompts, Mapping) else {"prompt": prompts}


def num_stacked(prompts: jax.Array | Mapping[str, jax.Array]) -> int:
    """N of a `[N, P, d]` prompt stack or of stacked method inputs `{name: [N, ...]}`."""
    return len(next(iter(as_inputs(prompts).values())))


@functools.partial(jax.jit, static_argnames=("model", "num_labels", "prompt_position"))
def _ensemble_log_likelihoods(model, prompts, frozen, batch, num_labels, prompt_position):
    """`prompts [N, P, d]` (or stacked inputs, or None) x `batch [R, ...]` -> `[N, R]`.

    The rows of `batch` are `scoring_batch`'s (each input repeated for its
    `num_labels` labels), so each input is encoded once per prompt and its
    encoding shared by its label rows: the encoder, the costlier half of the
    model, runs `num_labels` times less.
    """
    rows = batch["encoder_input_tokens"].shape[0]
    num_prompts = 1 if prompts is None else num_stacked(prompts)

    def per_input(x: jax.Array) -> jax.Array:  # [N, ...] -> [N * R / L, ...], prompt-major
        return jnp.repeat(x, rows // num_labels, axis=0)

    inputs = {} if prompts is None else jax.tree.map(per_input, as_inputs(prompts))
    tokens = jnp.tile(batch["encoder_input_tokens"][::num_labels], (num_prompts, 1))
    # A query-conditioned pool (CODA-Prompt, L2P) becomes each input's own prompt.
    inputs = dict(resolve(inputs, lambda: pooled_query(model, frozen, tokens)))
    decoder_prefix = inputs.pop("decoder_prefix", None)
    if decoder_prefix is not None:
        decoder_prefix = jnp.repeat(decoder_prefix, num_labels, axis=0)
    encoded, mask = model.apply(
        {"params": frozen}, tokens, prompt_position=prompt_position, method="encode", **inputs
    )
    decoder_keys = ("decoder_input_tokens", "decoder_target_tokens", "decoder_loss_weights")
    targets = {k: jnp.tile(batch[k], (num_prompts, 1)) for k in decoder_keys}
    logits = model.apply(
        {"params": frozen},
        jnp.repeat(encoded, num_labels, axis=0),
        jnp.repeat(mask, num_labels, axis=0),
        targets["decoder_input_tokens"],
        decoder_prefix=decoder_prefix,
        method="decode",
    )
    return target_log_likelihoods(logits, targets).reshape(num_prompts, rows)


def rank_classify(
    model: T5,
    frozen: Any,
    prompts: jax.Array | Mapping[str, jax.Array] | None,
    examples: Sequence[Example],
    label_ids: Sequence[Sequence[int]],
    *,
    input_length: int,
    batch_size: int = 32,
    prompt_position: str = "prefix",
) -> np.ndarray:
    """Log-likelihood of every label for every example and prompt.

    Args:
      prompts: `[N, P, d]` prompts scored together, stacked method inputs
        `{name: [N, ...]}` (see `methods`), or None for the bare model.

    Returns:
      `[N, num_examples, num_labels]` log-likelihoods (`N = 1` without prompts).
    """
    num_labels = len(label_ids)
    scores = []
    for start in range(0, len(examples), batch_size):
        chunk = [ex.inputs for ex in examples[start : start + batch_size]]
        # Pad the last chunk to a full batch so every call reuses one compilation.
        padded = chunk + [chunk[-1]] * (batch_size - len(chunk))
        batch = scoring_batch(padded, label_ids, input_length)
        out = np.asarray(
            _ensemble_log_likelihoods(model, prompts, frozen, batch, num_labels, prompt_position)
        )
        scores.append(out.reshape(out.shape[0], batch_size, num_labels)[:, : len(chunk)])
    return np.concatenate(scores, axis=1)


def majority_vote(predictions: np.ndarray) -> np.ndarray:
    """`[N, n]` label indices -> `[n]`; ties go to the earliest prompt's choice."""
    voted = []
    for column in predictions.T:
        counts = Counter(column.tolist())
        best = max(counts.values())
        voted.append(next(p for p in column.tolist() if counts[p] == best))
    return np.asarray(voted)


def decoded_predictions(
    model: T5,
    frozen: Any,
    prompt: jax.Array | Mapping[str, jax.Array] | None,
    examples: Sequence[Example],
    vocabulary: seqio.Vocabulary,
    *,
    input_length: int,
    max_decode_length: int,
    batch_size: int = 32,
    prompt_position: str = "prefix",
    num_beams: int = 1,
) -> list[str]:
    """Decoded text for each example: greedy, or the best of `num_beams` beams.

    `prompt` as in `decoding.greedy_decode`; beam search is `decoding.beam_search`
    with T5X's length penalty.
    """
    texts = []
    for start in range(0, len(examples), batch_size):
        chunk = [ex.inputs for ex in examples[start : start + batch_size]]
        padded = chunk + [chunk[-1]] * (batch_size - len(chunk))
        inputs = jnp.asarray(pad(padded, input_length))
        options = {
            "max_decode_length": max_decode_length,
            "prompt": _pool_prompts(model, frozen, prompt, inputs),
            "prompt_position": prompt_position,
        }
        if num_beams == 1:
            tokens = decoding.greedy_decode(model, frozen, inputs, **options)
        else:
            beams, _ = decoding.beam_search(model, frozen, inputs, num_beams=num_beams, **options)
            tokens = beams[:, 0]
        for row in np.asarray(tokens)[: len(chunk)]:
            row = row.tolist()
            texts.append(vocabulary.decode(row[: row.index(EOS_ID)] if EOS_ID in row else row))
    return texts


def _pool_prompts(
    model: T5, frozen: Any, prompt: jax.Array | Mapping[str, jax.Array] | None, tokens: jax.Array
) -> jax.Array | Mapping[str, jax.Array] | None:
    """A query-conditioned pool's prompt for each row of `tokens [b, l]`; other prompts as they are."""
    if not is_query_file(prompt):
        return prompt
    rows = {k: jnp.broadcast_to(x, (tokens.shape[0], *x.shape)) for k, x in prompt.items()}
    return resolve(rows, lambda: pooled_query(model, frozen, tokens))


def task_metrics(
    task: seqio.Task, examples: Sequence[Example], predicted_texts: Iterable[str]
) -> dict[str, float]:
    """The task's own metrics on postprocessed predictions and targets."""
    postprocess: Callable[..., Any] = task.postprocess_fn or (lambda x, **_: x)
    targets = [postprocess(ex.target_text, example=ex.raw, is_target=True) for ex in examples]
    predictions = [
        postprocess(text, example=ex.raw, is_target=False)
        for ex, text in zip(examples, predicted_texts, strict=True)
    ]
    metrics: dict[str, float] = {}
    for metric_fn in task.predict_metric_fns:
        metrics.update({k: float(v) for k, v in metric_fn(targets, predictions).items()})
    return metrics


def majority_class_accuracy(examples: Sequence[Example]) -> float:
    """Accuracy of always predicting the most frequent target (in percent)."""
    counts = Counter(ex.target_text for ex in examples)
    return 100.0 * max(counts.values()) / len(examples)


def _stack_right_padded(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """`[rows_i, width_i]` arrays -> `[sum rows_i, max width_i]`, zeros on the right."""
    width = max(a.shape[1] for a in arrays)
    return np.concatenate([np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in arrays])


@functools.partial(jax.jit, static_argnames=("model", "prompt_position"))
def _per_row_log_likelihoods(model, prompts, rows, frozen, batch, prompt_position):
    """`prompts [b, P, d]`, `rows [R]` (each row's prompt index) x `batch [R, ...]` -> `[R]`."""
    return sequence_log_likelihoods(
        model, prompts[rows], frozen, batch, prompt_position=prompt_position
    )


def rank_classify_mixed(
    model: T5,
    frozen: Any,
    prompts: jax.Array,
    examples: Sequence[Example],
    label_ids: Sequence[Sequence[Sequence[int]]],
    *,
    input_length: int,
    prompt_position: str = "prefix",
) -> list[np.ndarray]:
    """Scores one batch whose examples belong to different tasks, in one forward pass.

    Each example carries its own prompt and its own label set, so prompts tuned
    for different tasks share one call of the frozen model.

    Args:
      prompts: `[b, P, d]`, the prompt of each of the `b` examples (one length P).
      examples: `b` examples.
      label_ids: for each example, the full target ids of each of its labels.

    Returns:
      For each example, `[num_labels_of_that_example]` log-likelihoods.
    """
    if prompts.ndim != 3 or not prompts.shape[0] == len(examples) == len(label_ids):
        raise ValueError(
            f"rank_classify_mixed needs one prompt and one label set per example: got prompts "
            f"{tuple(prompts.shape)}, {len(examples)} examples, {len(label_ids)} label sets."
        )
    pieces = [
        scoring_batch([ex.inputs], labels, input_length)
        for ex, labels in zip(examples, label_ids, strict=True)
    ]
    # Zero targets beyond a label's end carry weight 0, and the decoder is causal,
    # so padding every label set to the longest label leaves the scores unchanged.
    batch = {key: _stack_right_padded([piece[key] for piece in pieces]) for key in pieces[0]}
    counts = [len(labels) for labels in label_ids]
    rows = np.repeat(np.arange(len(examples)), counts)
    scores = _per_row_log_likelihoods(model, prompts, rows, frozen, batch, prompt_position)
    return np.split(np.asarray(scores), np.cumsum(counts)[:-1])


# ----------------------------------------------------- prompts on a task's split


@dataclasses.dataclass
class EvalResult:
    """Metrics per prompt (and of their majority vote), and one record per prediction."""

    per_prompt: list[dict[str, float]]
    ensemble: dict[str, float] | None = None
    predictions: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def _classification_metrics(
    sub: seqio.Task,
    examples: Sequence[Example],
    scores: np.ndarray,
    labels: Sequence[str],
    prefix: str,
) -> tuple[list[dict[str, float]], dict[str, float] | None, list[list[str]]]:
    """Rank-classification metrics of each prompt and, for several, of their vote."""
    choices = scores.argmax(-1)  # [N, n]
    texts = [[labels[j] for j in row] for row in choices]
    per_prompt = [
        {f"{prefix}{k}": v for k, v in task_metrics(sub, examples, t).items()} for t in texts
    ]
    ensemble = None
    if len(texts) > 1:
        voted = [labels[j] for j in majority_vote(choices)]
        ensemble = {f"{prefix}{k}": v for k, v in task_metrics(sub, examples, voted).items()}
    return per_prompt, ensemble, texts


def _label_scores(
    t5: T5,
    frozen: Any,
    stack: Any,
    task: seqio.Task,
    examples: list[Example],
    data: DataSpec,
    position: str,
) -> np.ndarray:
    """`[N, len(examples), num_labels]` rank-classification scores of each stacked prompt."""
    ids = rank_classification.label_target_ids(
        task.name, task.output_features["targets"].vocabulary
    )
    return rank_classify(
        t5,
        frozen,
        stack,
        examples,
        ids,
        input_length=data.task_feature_lengths["inputs"],
        batch_size=data.batch_size,
        prompt_position=position,
    )


def evaluate_prompts(
    t5: T5,
    frozen: Any,
    prompt_stack: jax.Array | Mapping[str, jax.Array] | None,
    task: seqio.Task | seqio.Mixture,
    data: DataSpec,
    *,
    max_examples: int | None = None,
    position: str = "prefix",
    decode_classification: bool = False,
) -> EvalResult:
    """Scores `[N, P, d]` prompts (or stacked method inputs, or the bare model) on every sub-task.

    Classification tasks use rank classification (all prompts in one batched
    pass, plus their majority vote), and with `decode_classification` also
    greedy decoding (metrics prefixed `decode/`); other tasks use greedy
    decoding. Metric keys are prefixed by sub-task name for mixtures. Multi-task
    prompts score each sub-task with that task's own prompt. Batches hold
    `data.batch_size` examples (times the label count, for rank classification).
    """
    batch_size = data.batch_size
    tasks = sub_tasks(task)
    input_length = data.task_feature_lengths["inputs"]
    num_prompts = 1 if prompt_stack is None else num_stacked(prompt_stack)
    result = EvalResult(per_prompt=[{} for _ in range(num_prompts)])

    def decode(sub: seqio.Task, stack: Any, examples: list[Example], i: int) -> list[str]:
        prompt = jax.tree.map(lambda x: x[i], stack)
        return decoded_predictions(
            t5,
            frozen,
            prompt,
            examples,
            sub.output_features["targets"].vocabulary,
            input_length=input_length,
            max_decode_length=data.task_feature_lengths.get("targets", 32),
            batch_size=batch_size,
            prompt_position=position,
        )

    for sub in tasks:
        prefix = f"{sub.name}/" if len(tasks) > 1 else ""
        stack = methods.task_inputs(prompt_stack, sub.name)
        examples = load_examples(sub, data.eval_split, input_length, max_examples)
        baseline = {f"{prefix}majority_baseline": majority_class_accuracy(examples)}
        labels = task_labels(sub)
        scores = None
        if labels:
            scores = _label_scores(t5, frozen, stack, sub, examples, data, position)
            metrics, ensemble, texts = _classification_metrics(
                sub, examples, scores, labels, prefix
            )
            if ensemble is not None:
                result.ensemble = {**(result.ensemble or {}), **baseline, **ensemble}
        else:
            texts = [decode(sub, stack, examples, i) for i in range(num_prompts)]
            metrics = [
                {f"{prefix}{k}": v for k, v in task_metrics(sub, examples, t).items()}
                for t in texts
            ]
        for i in range(num_prompts):
            result.per_prompt[i].update({**baseline, **metrics[i]})
            if labels and decode_classification:
                decoded = task_metrics(sub, examples, decode(sub, stack, examples, i))
                result.per_prompt[i].update({f"{prefix}decode/{k}": v for k, v in decoded.items()})
            result.predictions += _records(
                i, sub.name, examples, texts[i], None if scores is None else scores[i], labels
            )
    return result


def _records(
    prompt: int,
    task: str,
    examples: Sequence[Example],
    predictions: Sequence[str],
    scores: np.ndarray | None,
    labels: Sequence[str] | None,
) -> list[dict[str, Any]]:
    """One prediction record per example of one prompt; `scores` `[examples, labels]` or None."""
    records = []
    for j, (ex, prediction) in enumerate(zip(examples, predictions, strict=True)):
        record = {
            "prompt": prompt, "task": task, "index": j,
            "target": ex.target_text, "prediction": prediction,
        }  # fmt: skip
        if scores is not None:
            record["scores"] = dict(zip(labels, scores[j].tolist(), strict=True))
        records.append(record)
    return records


def stack_prompt_files(paths: Sequence[str], config: T5Config) -> dict[str, jax.Array]:
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

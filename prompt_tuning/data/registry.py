"""Registers a task under all its format variants, and looks tasks up by variant.

Every task family is registered four times, one seqio Task per variant:

  <base>                      T5's format, plain targets (LM adaptation, span corruption)
  <base>_taskless             the task-name word removed from the inputs
  <base>_sentinel             `<extra_id_0>` before the target tokens (span corruption + sentinel)
  <base>_taskless_sentinel    both

Tasks that T5 gives a `_1_sentinel` twin (SuperGLUE, WSC simple) also get T5's own
sentinel format under T5's name: `<extra_id_0>` after the input tokens and
before the targets (`super_glue_rte_v102_1_sentinel`,
`super_glue_wsc_v102_simple_1_sentinel_eval`); only that name picks it.

A run names the base task and picks the variant with `resolve_task_name`
(`objective`, `taskless`), which gin files call `prompt_tuning.data.task_name`
(registered by the job layer's `prompt_tuning.configurables`). The class labels of a
classification task, which rank classification scores and class-label prompt
initialisation embeds, come from `class_labels(name)`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Callable, Sequence

import seqio

from prompt_tuning.data import metrics
from prompt_tuning.data import postprocessors as post
from prompt_tuning.data import preprocessors as pre
from prompt_tuning.data.metrics import MetricFn
from prompt_tuning.data.readers import INT32, LABEL, TEXT
from prompt_tuning.data.user_rows import UserRows, source_format
from prompt_tuning.data.vocab import output_features
from prompt_tuning.errors import InputError

OBJECTIVES = ("lm_adaptation", "span_corruption", "span_corruption_sentinel")
SENTINEL_OBJECTIVE = "span_corruption_sentinel"


class UnknownTaskError(InputError):
    """A task or mixture name that nothing registered."""


@dataclasses.dataclass(frozen=True)
class Variant:
    """One of the four formats of a task family."""

    taskless: bool = False
    sentinel: bool = False
    # T5's `_1_sentinel` format: the sentinel ends the inputs too.
    input_sentinel: bool = False

    def name(self, base: str) -> str:
        """The registered name of this variant of `base`."""
        if self.input_sentinel:
            return _t5_sentinel_name(base)
        return base + "_taskless" * self.taskless + "_sentinel" * self.sentinel

    def describe(self) -> str:
        """`plain`, `taskless`, `sentinel`, `taskless sentinel` or `T5 _1_sentinel`."""
        if self.input_sentinel:
            return "T5 _1_sentinel"
        words = [w for w, on in (("taskless", self.taskless), ("sentinel", self.sentinel)) if on]
        return " ".join(words) or "plain"


VARIANTS = tuple(
    Variant(taskless, sentinel) for taskless in (False, True) for sentinel in (False, True)
)
PLAIN = Variant()
T5_SENTINEL = Variant(sentinel=True, input_sentinel=True)
# seqio's add_task_with_sentinels puts `_1_sentinel` before the first of these.
_T5_SUFFIXES = ("_train", "_dev", "_test", "_eval", ".")


def _t5_sentinel_name(base: str) -> str:
    """T5's name of the sentinel twin: `x_v102_1_sentinel`, `x_simple_1_sentinel_eval`."""
    for suffix in _T5_SUFFIXES:
        at = base.find(suffix)
        if at >= 0:
            return f"{base[:at]}_1_sentinel{base[at:]}"
    return f"{base}_1_sentinel"


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """What the registry knows about a registered task or mixture name."""

    base: str
    variant: Variant
    class_labels: tuple[str, ...] | None
    user_rows: UserRows | None = None


_INFO: dict[str, TaskInfo] = {}


def _variant_postprocessor(
    postprocess_fn: post.Postprocessor | None, variant: Variant
) -> post.Postprocessor | None:
    if not variant.sentinel:
        return postprocess_fn
    return (
        post.chain(post.strip_sentinel, postprocess_fn) if postprocess_fn else post.strip_sentinel
    )


def register_task(
    base: str,
    source: seqio.DataSource,
    formatter: Sequence[Callable[..., object]],
    *,
    metric_fns: Sequence[MetricFn] = (),
    postprocess_fn: post.Postprocessor | None = None,
    class_labels: Sequence[str] | None = None,
    task_prefix: bool = True,
    vocabulary: seqio.Vocabulary | None = None,
    user_rows: UserRows | None = None,
    t5_sentinel: bool = False,
) -> list[str]:
    """Registers a text-to-text task under its four variant names.

    Args:
      base: the plain variant's name (`super_glue_rte_v102`).
      source: any seqio DataSource (e.g. `sources.TaskSource`).
      formatter: text preprocessors producing string `inputs` and `targets`.
      metric_fns: `(targets, predictions) -> dict` metrics on postprocessed values.
      postprocess_fn: decoded text -> metric value (`example=`, `is_target=` kwargs).
      class_labels: the label strings of a classification task (target texts,
        scored by rank classification), or None for generation tasks.
      task_prefix: whether `inputs` start with a task-name word; without one the
        taskless variant is the same format as the plain one.
      vocabulary: defaults to the T5 vocabulary.
      user_rows: how a user's own rows become examples (`infer.input_file`);
        by default the fields a `sources.TaskSource` yields, else no user rows.
      t5_sentinel: also register T5's `_1_sentinel` twin (see the module docstring).

    Returns:
      The registered names, plain first.
    """
    features = output_features(vocabulary)
    user_rows = user_rows or _source_rows(source, class_labels or ())
    names = []
    for variant in VARIANTS + (T5_SENTINEL,) * t5_sentinel:
        steps = [*formatter, *_variant_steps(variant, task_prefix)]
        name = variant.name(base)
        seqio.TaskRegistry.add(
            name,
            source=source,
            preprocessors=steps,
            output_features=features,
            postprocess_fn=_variant_postprocessor(postprocess_fn, variant),
            metric_fns=list(metric_fns),
        )
        _INFO[name] = TaskInfo(
            base, variant, tuple(class_labels) if class_labels else None, user_rows
        )
        names.append(name)
    return names


def _variant_steps(variant: Variant, task_prefix: bool) -> list[Callable[..., object]]:
    """The steps after the format: prefix removal, tokenisation, sentinels, EOS."""
    steps: list[Callable[..., object]] = []
    if variant.taskless and task_prefix:
        steps.append(pre.remove_task_prefix)
    steps.append(seqio.preprocessors.tokenize)
    if variant.input_sentinel:
        return [*steps, pre.t5_sentinels, pre.append_eos_keeping_last]
    if variant.sentinel:
        steps.append(pre.prepend_sentinel)
    return [*steps, seqio.preprocessors.append_eos_after_trim]


def _source_rows(source: seqio.DataSource, label_names: Sequence[str]) -> UserRows | None:
    """User rows shaped like the examples of a `TaskSource` (original files or TFDS), if it is one."""
    raw = getattr(source, "raw", None)
    if raw is None:
        return None
    return UserRows(raw.signature, tuple(label_names), raw.aliases)


def register_classification(
    base: str,
    source: seqio.DataSource,
    *,
    prefix: str,
    keys: Sequence[str],
    label_names: Sequence[str],
    metric_fns: Sequence[MetricFn] = (metrics.accuracy,),
    preformat: Sequence[Callable[..., object]] = (),
    predicted_labels: Sequence[str] | None = None,
    t5_sentinel: bool = False,
) -> list[str]:
    """Registers a T5-style classification task (`"<prefix> k1: v1 k2: v2"` -> label name).

    The source yields the text fields `keys`, an int `label` (-1 when unknown)
    and optionally an `idx`. Postprocessing maps label strings to class ids for
    `metric_fns`.

    Args:
      base: the plain variant's name.
      source: any seqio DataSource.
      prefix: the task-name word that starts the inputs.
      keys: text fields in the order they are written.
      label_names: class names by label index (the targets).
      metric_fns: metrics on class ids.
      preformat: preprocessors to run first (e.g. renaming fields).
      predicted_labels: the label words the model emits when they differ from
        `label_names` (zero-shot transfer); they become the class labels and are
        translated position by position into `label_names` before scoring.
      t5_sentinel: also register T5's `_1_sentinel` twin.

    Returns:
      The registered names, plain first.
    """
    to_id = post.class_id(label_names)
    if predicted_labels is not None:
        to_id = post.chain(
            post.translate_labels(dict(zip(predicted_labels, label_names, strict=True))), to_id
        )
    formatter = [
        *preformat,
        functools.partial(
            pre.classification, prefix=prefix, keys=tuple(keys), label_names=tuple(label_names)
        ),
    ]
    # User rows enter after the steps that parse the source's records (e.g. TSV lines),
    # with the fields the classification format reads.
    skip, aliases = source_format(preformat)
    user_rows = _source_rows(source, label_names) or UserRows(
        {**{key: TEXT for key in keys}, "label": LABEL, "idx": INT32},
        tuple(label_names),
        aliases,
        skip,
    )
    return register_task(
        base,
        source,
        formatter,
        metric_fns=metric_fns,
        postprocess_fn=to_id,
        class_labels=predicted_labels or label_names,
        user_rows=user_rows,
        t5_sentinel=t5_sentinel,
    )


def register_mixture(base: str, members: Sequence[str], *, default_rate: float = 1.0) -> list[str]:
    """Registers a mixture of registered task families under the four variant names.

    Variant V of the mixture mixes variant V of each member. Its class labels are
    the members' when they all share one label set, else None.
    """
    not_bases = [m for m in members if m not in _INFO or _INFO[m].variant != PLAIN]
    if not_bases:
        raise ValueError(
            f"Mixture {base!r}: {not_bases} are not base names registered with register_task "
            "or register_mixture, so they have no variants to mix."
        )
    names = []
    for variant in VARIANTS:
        parts = [variant.name(member) for member in members]
        name = variant.name(base)
        seqio.MixtureRegistry.add(name, parts, default_rate=default_rate)
        label_sets = {_INFO[p].class_labels for p in parts if _INFO[p].class_labels}
        labels = label_sets.pop() if len(label_sets) == 1 else None
        _INFO[name] = TaskInfo(base, variant, labels)
        names.append(name)
    return names


def registered_names() -> list[str]:
    """Every seqio task and mixture name, sorted."""
    return sorted(set(seqio.TaskRegistry.names()) | set(seqio.MixtureRegistry.names()))


def _unknown(name: str) -> UnknownTaskError:
    near = difflib.get_close_matches(name, registered_names(), n=5, cutoff=0.6)
    hint = f" Did you mean {', '.join(near)}?" if near else ""
    return UnknownTaskError(
        f"No task or mixture is registered as {name!r}.{hint} `python -m "
        "prompt_tuning.show_task --list` lists them; new tasks are registered in a module under "
        "tasks/ with prompt_tuning.data.register_task, from TFDS or from your own files "
        "(see prompt_tuning.data.sources for where data is read from)."
    )


def get_task_or_mixture(name: str) -> seqio.Task | seqio.Mixture:
    """The registered seqio Task or Mixture, or an error listing close names."""
    if name in seqio.TaskRegistry.names():
        return seqio.TaskRegistry.get(name)
    if name in seqio.MixtureRegistry.names():
        return seqio.MixtureRegistry.get(name)
    raise _unknown(name)


def resolve_task_name(base: str, objective: str = "lm_adaptation", taskless: bool = False) -> str:
    """The registered name of `base` in the format a run's checkpoint needs.

    Gin files call it `prompt_tuning.data.task_name`.

    Args:
      base: a task or mixture's plain name (`glue_mrpc_v002`).
      objective: the checkpoint's pretraining objective: `lm_adaptation` or
        `span_corruption` (plain targets) or `span_corruption_sentinel`
        (`<extra_id_0>` before the targets).
      taskless: drop the task-name word from the inputs.

    A name registered outside this registry is returned unchanged when the plain
    format is asked for.
    """
    if objective not in OBJECTIVES:
        raise InputError(f"objective {objective!r} is not one of {OBJECTIVES}.")
    wanted = Variant(taskless=taskless, sentinel=objective == SENTINEL_OBJECTIVE)
    get_task_or_mixture(base)
    info = _INFO.get(base)
    if info is not None and info.variant == PLAIN:
        return wanted.name(base)
    if wanted == PLAIN:
        return base
    if info is None:
        raise InputError(
            f"{base!r} has no format variants (it was not registered with "
            "prompt_tuning.data.register_task); use objective='lm_adaptation', taskless=False."
        )
    raise InputError(
        f"{base!r} is already the {info.variant.describe()} variant of {info.base!r}; pass the base name "
        f"{info.base!r} with the objective and taskless settings you want."
    )


def class_labels(name: str) -> tuple[str, ...] | None:
    """The label strings of a classification task or mixture, None for generation tasks.

    These are the plain label words (no sentinel); for a zero-shot transfer task
    they are the *source* task's words, which the prompt was trained to emit.
    """
    get_task_or_mixture(name)
    info = _INFO.get(name)
    return info.class_labels if info else None


def user_rows(name: str) -> UserRows | None:
    """How a user's rows become examples of task `name`, or None when they cannot."""
    get_task_or_mixture(name)
    info = _INFO.get(name)
    return info.user_rows if info else None


def is_sentinel_variant(name: str) -> bool:
    """Whether the targets of `name` start with `<extra_id_0>`."""
    get_task_or_mixture(name)
    info = _INFO.get(name)
    return bool(info and info.variant.sentinel)

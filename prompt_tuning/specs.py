"""What a gin file configures about a run, and the checks that tie it to the checkpoint and task.

The three specs (which frozen model, which prompt, which data), the prompt
initialisers a `PromptSpec` names, the gin names of the library objects a run
is configured with (mesh, optimizer, loss, prompt methods), and the shared
set-up every job does with them: loading the frozen tree into its shards and
checking the task's vocabulary against the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gin
import jax
import numpy as np
import seqio

from prompt_tuning import checkpoints, methods, partitioning, prompts, trainer
from prompt_tuning.data import registry as data_registry
from prompt_tuning.errors import RunError
from prompt_tuning.models import T5Config, get_config, stack_layers

# Library objects a run's gin files configure; registered here so that every job and
# entry point that reads a spec knows the same names.
gin.external_configurable(partitioning.make_mesh, "make_mesh")
gin.external_configurable(trainer.make_optimizer, "make_optimizer")
gin.external_configurable(trainer.LossConfig, "LossConfig")
gin.external_configurable(methods.PromptTuning, "PromptTuning")
gin.external_configurable(methods.PrefixTuning, "PrefixTuning")
gin.external_configurable(methods.PTuning, "PTuning")
gin.external_configurable(methods.DeepPrompts, "DeepPrompts")
gin.external_configurable(methods.MultiTaskPrompts, "MultiTaskPrompts")
gin.external_configurable(methods.CodaPrompt, "CodaPrompt")
gin.external_configurable(methods.L2PPrompt, "L2PPrompt")

# Architecture fields a named model must agree on with the checkpoint it loads.
ARCHITECTURE = (
    "vocab_size",
    "d_model",
    "num_heads",
    "d_kv",
    "d_ff",
    "num_encoder_layers",
    "num_decoder_layers",
    "relative_attention_num_buckets",
    "mlp_activations",
    "logits_via_embedding",
)


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
    """Length, initialiser and position of the soft prompt.

    Training needs all three; evaluation and inference read the position (where
    the trained prompt joins the input) from the same spec.
    """

    length: int = 100
    init: Callable[..., prompts.PromptInit] | None = None  # a prompts/*.gin file sets it
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


def check_architecture(path: str, found: T5Config, expected: T5Config, name: str) -> None:
    """The checkpoint at `path` (read as `found`) has the architecture of model `name`.

    Raises:
      RunError: listing every `ARCHITECTURE` field that differs.
    """
    wrong = [
        f"{f}: checkpoint {getattr(found, f)} vs {name} {getattr(expected, f)}"
        for f in ARCHITECTURE
        if getattr(found, f) != getattr(expected, f)
    ]
    if wrong:
        raise RunError(f"Checkpoint {path} does not match model {name!r}: " + "; ".join(wrong))


def load_frozen(spec: ModelSpec, mesh: jax.sharding.Mesh) -> tuple[T5Config, Any]:
    """Loads the checkpoint into its shards and applies the execution options."""
    if not spec.checkpoint_path:
        raise RunError(
            "No frozen model checkpoint: set INITIAL_CHECKPOINT_PATH (a gin/models/*.gin file "
            "does, or pass --gin.INITIAL_CHECKPOINT_PATH=PATH)."
        )
    config, frozen = checkpoints.load(spec.checkpoint_path, dtype=spec.param_dtype, mesh=mesh)
    if spec.name:
        check_architecture(spec.checkpoint_path, config, get_config(spec.name), spec.name)
    config = config.replace(
        dtype=spec.dtype,
        param_dtype=spec.param_dtype,
        remat_policy=spec.remat_policy,
        scan_layers=spec.scan_layers,
        dropout_rate=spec.dropout_rate,
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

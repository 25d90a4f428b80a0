"""A run's MODEL_DIR and output: its recorded config, metrics log, progress line, result files.

A run records its exact gin config in `MODEL_DIR/config.gin`; a later run in
the same directory resumes only if its config matches (up to the bindings
that may change on resume). Metrics go to `MODEL_DIR/metrics.jsonl`, one JSON
object per record, and the same scalars to TensorBoard event files under
`MODEL_DIR/train/` and `MODEL_DIR/eval/` (T5X's layout); result files are never
overwritten.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import jax
import tensorflow as tf
from etils import epath
from tensorflow.core.framework import summary_pb2

from prompt_tuning.console import clock
from prompt_tuning.errors import RunError

CONFIG_FILE = "config.gin"
# Bindings that may change when a run is resumed (e.g. to train longer).
_RESUMABLE_CHANGES = ("TRAIN_STEPS", "train.train_steps", "train.log_every", "train.eval_every")


# Lines that runs/prompt_finetune.gin wrote until the defaults became the only copy of
# these values (issue #19): a config.gin holding them records the same run.
_RESTATED_DEFAULTS = (
    "LossConfig.z_loss = 0.0001",
    "make_optimizer.decay_rate = 0.8",
    "make_optimizer.learning_rate = 0.3",
    "make_optimizer.weight_decay_rate = 1e-05",
)


def _run_identity(config_text: str) -> list[str]:
    return [
        line
        for line in config_text.splitlines()
        if line.strip()
        and not line.lstrip().startswith("#")
        and not line.split("=")[0].strip().startswith(_RESUMABLE_CHANGES)
        and line.strip() not in _RESTATED_DEFAULTS
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


# Marks a summary as a scalar for TensorBoard's scalars dashboard.
_SCALAR = summary_pb2.SummaryMetadata(
    plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars")
)


class MetricsWriter:
    """Appends one JSON object per record to `MODEL_DIR/metrics.jsonl`, and TensorBoard scalars.

    A record of kind `train` or `eval` also goes, one scalar per value, to the
    event files of `MODEL_DIR/<kind>/` (`tensorboard --logdir MODEL_DIR` shows
    both). Only process 0 writes.
    """

    def __init__(self, model_dir: str):
        self._model_dir = epath.Path(model_dir)
        self._path = self._model_dir / "metrics.jsonl"
        self._enabled = jax.process_index() == 0
        self._summaries: dict[str, tf.summary.SummaryWriter] = {}

    def write(self, step: int, kind: str, values: Mapping[str, float]) -> None:
        if not self._enabled:
            return
        record = {"step": step, "kind": kind, **{k: float(v) for k, v in values.items()}}
        with self._path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if kind not in self._summaries:
            self._summaries[kind] = tf.summary.create_file_writer(str(self._model_dir / kind))
        with self._summaries[kind].as_default(step=step):
            for name, value in values.items():
                # What tensorboard's scalar summary writes, without needing the tensorboard package.
                tf.summary.write(name, tf.constant(float(value), tf.float32), metadata=_SCALAR)

    def write_window(
        self, fetched: Sequence[tuple[int, Mapping[str, float]]], throughput: Mapping[str, float]
    ) -> None:
        """A `train` record per step of a log window; the last also holds the window's throughput."""
        for i, (step, metrics) in enumerate(fetched):
            last = i == len(fetched) - 1
            self.write(step, "train", {**metrics, **(throughput if last else {})})
        self.flush()

    def flush(self) -> None:
        """Makes every scalar written so far readable by TensorBoard."""
        for summary in self._summaries.values():
            summary.flush()

    def close(self) -> None:
        for summary in self._summaries.values():
            summary.close()
        self._summaries = {}


def progress_line(
    step: int, total: int, loss: float, steps_per_s: float, tokens_per_s: float
) -> str:
    """One log line: step, loss, throughput and the time left at this pace."""
    eta = (total - step) / steps_per_s if steps_per_s > 0 else float("inf")
    return (
        f"step {step}/{total}  loss {loss:.4f}  {steps_per_s:.2f} steps/s  "
        f"{tokens_per_s:,.0f} tokens/s  ETA {clock(eta)}"
    )


def fresh_file(directory: epath.Path, stem: str, suffix: str) -> epath.Path:
    """A path in `directory` that does not exist yet: results are never overwritten."""
    directory.mkdir(parents=True, exist_ok=True)
    path, n = directory / f"{stem}{suffix}", 1
    while path.exists():
        path, n = directory / f"{stem}.{n}{suffix}", n + 1
    return path

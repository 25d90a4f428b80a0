"""Continual prompt learning over a task sequence, and the accuracy matrix it leaves.

    python -m prompt_tuning.continual --tasks movie_sentiment,question_type,spam_email \\
        --method coda --out runs/continual/coda_s0 --seed 0

Trains on each task in turn with the usual train job (one run directory per
task under `--out`), seeing only that task's train split, and after each task
evaluates the saved file on the validation split of every task seen so far.
`R[i][j]` is the accuracy after task i on task j. Methods:

  coda        CODA-Prompt (`methods/coda_prompt.gin`): new components per task, the
              earlier ones frozen (read from the previous task's file)
  l2p         L2P-style selection from a shared pool trained on every task
  sequential  one prompt trained on each task in turn (the forgetting baseline)
  per_task    a fresh prompt per task, each task evaluated with its own (the task
              is known at test time: an upper bound with no forgetting)

`--out/continual.json` holds the run's settings and R, rewritten atomically
after each task: a killed run resumes at the task it stopped in (that task's
train job resumes from its own latest state), and a resume with other settings
(another task list, method, seed, ...) is refused before anything is touched.
At the end it reports the average final accuracy, mean_j R[T-1][j], and the
average forgetting, mean_{j<T-1} (max_{i<T-1} R[i][j] - R[T-1][j]) (Chaudhry
et al. 2018), and writes `accuracy_matrix.png`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import gin
import numpy as np

import prompt_tuning.tasks  # noqa: F401  (registers the tasks --tasks names)
from prompt_tuning import cli, experiment, gin_utils, input_pipeline
from prompt_tuning.checkpoints import state as run_state
from prompt_tuning.errors import RunError, ToolExit
from prompt_tuning.specs import task_labels

STATE_FILE = "continual.json"
HEATMAP_FILE = "accuracy_matrix.png"
TOOL = "python -m prompt_tuning.continual"


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one method trains task i: its gin file and what it reads of task i - 1."""

    gin_file: str
    suffix: str  # of the saved file
    previous_binding: str | None  # gin parameter naming the previous task's file
    prompt_length: int  # rows of a prompt (of each pool prompt, for L2P)


METHODS = {
    "coda": Recipe("methods/coda_prompt.gin", ".npz", "CodaPrompt.previous", 20),
    "l2p": Recipe("methods/l2p.gin", ".npz", "L2PPrompt.previous", 5),
    "sequential": Recipe("methods/prompt_tuning.gin", ".npy", "PROMPT_FILE", 20),
    "per_task": Recipe("methods/prompt_tuning.gin", ".npy", None, 20),
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a sequence run is: a resume must match it exactly."""

    tasks: tuple[str, ...]
    method: str
    seed: int
    steps: int
    batch_size: int
    eval_examples: int | None
    inputs_length: int
    gin_files: tuple[str, ...]
    gin_bindings: tuple[str, ...]


def check_tasks(tasks: Sequence[str]) -> None:
    """Every task is a registered classification task with train and validation examples.

    Raises:
      RunError: naming the first task that is not, and why.
    """
    if len(tasks) < 2:
        raise RunError(f"--tasks needs at least two tasks, got {list(tasks)}.")
    repeated = sorted({t for t in tasks if tasks.count(t) > 1})
    if repeated:
        raise RunError(f"--tasks names {repeated} more than once; each task comes once.")
    for name in tasks:
        try:
            task = input_pipeline.get_task_or_mixture(name)
            for split in ("train", "validation"):
                input_pipeline.check_split(name, split)
        except ValueError as e:  # unknown task, missing or empty split
            raise RunError(f"Task {name!r} of --tasks cannot be learned: {e}") from e
        if not task_labels(task):
            raise RunError(
                f"Task {name!r} of --tasks is not a classification task (no class labels): "
                "the accuracy matrix needs rank classification."
            )


def _read_state(path: pathlib.Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(f"{path} is not a readable continual-run record: {e}") from e


def _write_state(path: pathlib.Path, state: dict[str, Any]) -> None:
    """Atomic: a kill leaves the old record or the new one, never half of one."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)


def open_run(out: pathlib.Path, settings: Settings) -> dict[str, Any]:
    """The run's record: a new one, or the existing one when its settings match.

    Raises:
      RunError: when `out` holds a run with other settings (nothing is changed).
    """
    path = out / STATE_FILE
    wanted = dataclasses.asdict(settings)
    wanted = json.loads(json.dumps(wanted))  # tuples as lists, as the record holds them
    if path.exists():
        state = _read_state(path)
        if state.get("settings") != wanted:
            old = state.get("settings", {})
            differ = sorted(k for k in set(old) | set(wanted) if old.get(k) != wanted.get(k))
            raise RunError(
                f"{out} holds a continual run with other settings ({', '.join(differ)}: "
                f"{ {k: old.get(k) for k in differ} }); resume it with the same arguments or "
                "choose another --out. Nothing was changed."
            )
        return state
    out.mkdir(parents=True, exist_ok=True)
    state = {"settings": wanted, "R": [], "prompt_files": [], "majority_baseline": {}}
    _write_state(path, state)
    return state


def _lengths(settings: Settings) -> dict[str, int]:
    return {"inputs": settings.inputs_length, "targets": 8}


def train_task(settings: Settings, index: int, out: pathlib.Path, previous: str | None) -> str:
    """Trains task `index` in its own run directory; returns the saved file's path."""
    recipe = METHODS[settings.method]
    task = settings.tasks[index]
    model_dir = out / f"task_{index}_{task}"
    init = "prompts/class_labels.gin"
    bindings = [
        f"MIXTURE_OR_TASK_NAME = '{task}'",
        f"MODEL_DIR = '{model_dir}'",
        f"TASK_FEATURE_LENGTHS = {_lengths(settings)}",
        f"TRAIN_STEPS = {settings.steps}",
        f"BATCH_SIZE = {settings.batch_size}",
        f"PROMPT_LENGTH = {recipe.prompt_length}",
        f"DataSpec.seed = {settings.seed}",
        # States every quarter of a task: a kill inside a task loses at most a quarter of it.
        f"train.save_every = {max(1, settings.steps // 4)}",
        "train.eval_every = 0",
        "train.log_every = 50",
    ]
    if previous is not None and recipe.previous_binding is not None:
        bindings.append(f"{recipe.previous_binding} = '{previous}'")
        if settings.method == "sequential":  # the same prompt, trained further
            init = "prompts/from_file.gin"
    files = [*settings.gin_files, init, "runs/prompt_finetune.gin", recipe.gin_file]
    gin_utils.parse(files, [*bindings, *settings.gin_bindings])
    try:
        experiment.train(print_fn=lambda line: print(f"  [{task}] {line}", flush=True))
    finally:
        gin.clear_config()
    return str(run_state.prompt_path(model_dir, settings.steps, recipe.suffix))


def evaluate_file(settings: Settings, task: str, prompt_file: str) -> dict[str, float]:
    """Validation metrics of one saved file on `task` (through the eval job)."""
    bindings = [
        f"MIXTURE_OR_TASK_NAME = '{task}'",
        f"TASK_FEATURE_LENGTHS = {_lengths(settings)}",
        f"evaluate.prompt_files = ['{prompt_file}']",
        "evaluate.output_dir = None",
        "evaluate.decode_classification = False",
        f"evaluate.max_examples = {settings.eval_examples}",
    ]
    train_only = ("train.", "TRAIN_STEPS", "MODEL_DIR", "PROMPT_LENGTH")
    extra = [b for b in settings.gin_bindings if not b.startswith(train_only)]
    gin_utils.parse([*settings.gin_files, "runs/prompt_eval.gin"], [*bindings, *extra])
    try:
        return experiment.evaluate(print_fn=lambda _: None).per_prompt[0]
    finally:
        gin.clear_config()


def summary(matrix: Sequence[Sequence[float]]) -> dict[str, float]:
    """Average final accuracy and average forgetting of a full lower-triangular `R`.

    Args:
      matrix: `R[i][j]` for `j <= i`, T rows (row i has i + 1 entries).
    """
    final = matrix[-1]
    last = len(matrix) - 1
    forgetting = [max(matrix[i][j] for i in range(j, last)) - final[j] for j in range(last)]
    return {
        "average_final_accuracy": float(np.mean(final)),
        "average_forgetting": float(np.mean(forgetting)) if forgetting else 0.0,
    }


def plot_matrix(matrix: Sequence[Sequence[float]], tasks: Sequence[str], title: str,
                path: pathlib.Path) -> None:  # fmt: skip
    """Heat map of `R[i][j]` (rows: after task i; columns: evaluated on task j)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = len(tasks)
    grid = np.full((size, size), np.nan)
    for i, row in enumerate(matrix):
        grid[i, : len(row)] = row
    fig, ax = plt.subplots(figsize=(1.6 * size + 2, 1.4 * size + 1.5))
    image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis")
    for i in range(size):
        for j in range(i + 1):
            ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", color="w")
    ax.set_xticks(range(size), tasks, rotation=30, ha="right")
    ax.set_yticks(range(size), [f"after {t}" for t in tasks])
    ax.set_xlabel("evaluated on")
    ax.set_title(title)
    fig.colorbar(image, label="accuracy (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(settings: Settings, out: pathlib.Path) -> dict[str, Any]:
    """Trains and evaluates the whole sequence (resuming a killed run); returns the record."""
    check_tasks(settings.tasks)
    state = open_run(out, settings)
    path = out / STATE_FILE
    for i in range(len(state["R"]), len(settings.tasks)):
        task = settings.tasks[i]
        print(f"Task {i + 1}/{len(settings.tasks)}: {task} ({settings.method})", flush=True)
        previous = state["prompt_files"][-1] if state["prompt_files"] else None
        prompt_file = train_task(settings, i, out, previous)
        files = [*state["prompt_files"], prompt_file]
        row = []
        for j, seen in enumerate(settings.tasks[: i + 1]):
            # The upper bound knows the task: each task is scored with its own prompt.
            metrics = evaluate_file(
                settings, seen, files[j] if settings.method == "per_task" else prompt_file
            )
            row.append(metrics["accuracy"])
            state["majority_baseline"][seen] = metrics["majority_baseline"]
        print(f"  R[{i}] = " + ", ".join(f"{a:.1f}" for a in row), flush=True)
        state["R"].append(row)
        state["prompt_files"] = files
        _write_state(path, state)
    state["summary"] = summary(state["R"])
    _write_state(path, state)
    plot_matrix(state["R"], settings.tasks, f"{settings.method}, seed {settings.seed}",
                out / HEATMAP_FILE)  # fmt: skip
    return state


def parse_args(argv: Sequence[str] | None) -> tuple[Settings, pathlib.Path]:
    parser = argparse.ArgumentParser(prog=TOOL, description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", required=True, help="comma-separated task names, in order")
    parser.add_argument("--method", choices=sorted(METHODS), default="coda")
    parser.add_argument("--out", required=True, type=pathlib.Path, help="the run's folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300, help="train steps per task")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--inputs_length", type=int, default=64)
    parser.add_argument(
        "--eval_examples", type=int, default=None, help="validation examples per task (all)"
    )
    parser.add_argument(
        "--gin_file", action="append", default=None,
        help="model gin file(s) (default: models/t5_tiny_multitask.gin, the shipped model)",
    )  # fmt: skip
    parser.add_argument(
        "--gin", action="append", default=[], help="extra KEY=VALUE binding for every job"
    )
    args = parser.parse_args(argv)
    settings = Settings(
        tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
        method=args.method,
        seed=args.seed,
        steps=args.steps,
        batch_size=args.batch_size,
        eval_examples=args.eval_examples,
        inputs_length=args.inputs_length,
        gin_files=tuple(args.gin_file or ["models/t5_tiny_multitask.gin"]),
        gin_bindings=tuple(args.gin),
    )
    return settings, args.out


def main(argv: Sequence[str] | None = None) -> int:
    settings, out = parse_args(argv)
    try:
        state = run(settings, out)
    except cli.USER_ERRORS as e:
        raise ToolExit(TOOL, str(e).split("\n  In call to configurable")[0]) from e
    result = state["summary"]
    print(
        f"{settings.method}: average final accuracy {result['average_final_accuracy']:.2f}, "
        f"average forgetting {result['average_forgetting']:.2f} "
        f"({out / STATE_FILE}, {out / HEATMAP_FILE})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

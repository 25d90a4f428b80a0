"""Reading what the results runs left under runs/results/ (for results_report.py).

Only files the runs wrote: sweep plans (`runs.json`), each run's `metrics.jsonl`,
`train.log` and saved state, and the eval jobs' `metrics.json`.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import results as R

from prompt_tuning import sweep


def metrics(model_dir: Path) -> list[dict]:
    path = model_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def final_eval(model_dir: Path, key: str = "accuracy") -> float:
    """The eval metric at the last step (the budget every method gets)."""
    evals = [r for r in metrics(model_dir) if r["kind"] == "eval" and r["step"] == R.STEPS]
    return float(evals[-1][key])


def eval_report(out_dir: Path, task: str) -> dict[str, dict[str, float]]:
    """An eval job's metrics.json: `{prompt file or "<no prompt>": {metric: value}}`."""
    return json.loads((out_dir / "eval" / f"{task}.validation.metrics.json").read_text())


def run_span(model_dir: Path) -> tuple[float, float]:
    """(start, end) of a training run: its config.gin and its last metrics line."""
    start = (model_dir / "config.gin").stat().st_mtime
    return start, (model_dir / "metrics.jsonl").stat().st_mtime


class Incomplete(Exception):
    """A section's runs have not all finished."""


def sweep_runs(name: str, partial: bool = False) -> tuple[str, list[sweep.Run]]:
    """The sweep's command and finished runs; `Incomplete` if any is unfinished, unless `partial`."""
    command, runs = sweep.read_plan(str(R.RUNS / name))
    finished = [r for r in runs if (Path(r.model_dir) / "DONE").is_file()]
    if len(finished) < len(runs) and not (partial and finished):
        raise Incomplete(
            f"{len(runs) - len(finished)} of {len(runs)} runs of {name} are not finished"
        )
    return command, finished


def unfinished_note(name: str) -> str:
    """A sentence naming the settings of a sweep's runs that have not finished (or nothing)."""
    _, runs = sweep.read_plan(str(R.RUNS / name))
    missing = [r.name for r in runs if not (Path(r.model_dir) / "DONE").is_file()]
    if not missing:
        return ""
    return (
        f"\n**Not finished yet: {len(missing)} of {len(runs)} runs** ("
        + ", ".join(f"`{m}`" for m in missing)
        + "); rerunning the command below runs only those and rewrites this section.\n"
    )


def busy_seconds(spans: Sequence[tuple[float, float]]) -> float:
    """Length of the union of `(start, end)` spans: the time while any of them ran."""
    busy, covered_until = 0.0, float("-inf")
    for start, end in sorted(spans):
        busy += max(0.0, end - max(start, covered_until))
        covered_until = max(covered_until, end)
    return busy


def sweep_minutes(names: Sequence[str], partial: bool = False) -> tuple[float, float]:
    """(wall, summed) minutes of the sweeps' runs: while any of them ran, and run by run.

    Wall time is `busy_seconds`, so a sweep resumed in a later session does not
    count the time in between.
    """
    spans = [run_span(Path(r.model_dir)) for n in names for r in sweep_runs(n, partial)[1]]
    return busy_seconds(spans) / 60, sum(e - s for s, e in spans) / 60


def trainable_params(state_root: Path) -> int:
    """Parameter count of the trained part of a saved train state (`prompt` or `params`)."""
    import orbax.checkpoint as ocp

    latest = max((p for p in state_root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    # Orbax reads no item metadata through a relative path.
    tree = ocp.StandardCheckpointer().metadata((latest / "state").resolve()).item_metadata.tree
    part = tree.get("prompt", tree.get("params"))
    return int(sum(np.prod(leaf.shape) for leaf in _leaves(part)))


def _leaves(tree) -> list:
    if isinstance(tree, dict):
        return [leaf for value in tree.values() for leaf in _leaves(value)]
    if isinstance(tree, list | tuple):
        return [leaf for value in tree for leaf in _leaves(value)]
    return [tree]


def steps_per_s(model_dir: Path) -> float:
    """Median of the run's progress-line rates, the first (compiling) window left out."""
    rates = re.findall(r"([\d.]+) steps/s", (model_dir / "train.log").read_text(errors="replace"))
    return statistics.median(float(r) for r in rates[1:])

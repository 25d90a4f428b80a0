"""Ablation sweeps: a grid of gin settings x seeds, run or written out, then tabled and plotted.

    python -m prompt_tuning.sweep --sweep_dir DIR --gin_file=runs/prompt_finetune.gin ... \\
        --grid 'PROMPT_LENGTH=[1,5,20,100,150]' \\
        --grid 'gin_file=[prompts/random_uniform.gin,prompts/sampled_vocab.gin,prompts/class_labels.gin]' \\
        --seeds 0,1,2 [--dry_run | --collect]

Each `--grid KEY=[v1,v2,...]` names a gin binding (a macro such as
`PROMPT_LENGTH`, or `configurable.param`) whose values are written verbatim
into `--gin.KEY=v` (quote strings as gin wants them), or `gin_file`, whose
values are extra gin files. Every combination runs once per seed (bound to
`--seed_binding`, default `DataSpec.seed`) in its own `DIR/<run name>/` as
`MODEL_DIR`. Every run is one gin-complete `python -m prompt_tuning.train`
command, listed in `DIR/commands.sh`:

- default: the commands run one after another on this machine, then results are collected;
- `--dry_run`: only `commands.sh` and `runs.json` are written, for a cluster launcher;
- `--collect`: only the results of an earlier sweep are collected.

Collecting reads each run's best `--metric` over its `metrics.jsonl` records of
kind "eval" and writes `results.csv` (one row per run), `results.md` (mean,
spread and every seed per setting, under the sweep command) and `results.png`
(the metric against `--x`, one line per setting of the other keys, seed spread
as error bars and points; Lester et al.'s Figure 3 layout).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import dataclasses
import itertools
import json
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from prompt_tuning.console import clock
from prompt_tuning.errors import InputError, RunError, ToolExit

GIN_FILE_KEY = "gin_file"
COMMANDS_FILE = "commands.sh"
RUNS_FILE = "runs.json"


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run of the sweep: its grid setting, seed, folder and command."""

    name: str
    setting: dict[str, str]  # grid key -> value text
    seed: int
    model_dir: str
    command: list[str]


@dataclasses.dataclass(frozen=True)
class Result:
    """A run's best validation score (None when it has no eval records)."""

    run: Run
    best: float | None
    best_step: int | None


def split_values(text: str) -> list[str]:
    """`[a, 'b,c', [1,2]]` -> `['a', "'b,c'", '[1,2]']`: top-level items, text kept verbatim."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        raise InputError(f"Grid values {text!r} must be a bracketed list like [1,5,20].")
    items, depth, quote, current = [], 0, "", ""
    for char in text[1:-1]:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(current.strip())
            current = ""
            continue
        current += char
    items.append(current.strip())
    if quote or depth or not all(items):
        raise InputError(f"Grid values {text!r} have an empty item or unbalanced quotes/brackets.")
    return items


def parse_grid(flags: Sequence[str]) -> dict[str, list[str]]:
    """Repeated `KEY=[v1,v2]` flags -> `{KEY: [v1, v2]}` in flag order."""
    grid: dict[str, list[str]] = {}
    for flag in flags:
        key, sep, values = flag.partition("=")
        key = key.strip()
        if not sep or not re.fullmatch(r"[A-Za-z_][\w.]*", key):
            raise InputError(f"--grid {flag!r} must look like KEY=[v1,v2] with a gin name as KEY.")
        if key in grid:
            raise InputError(f"--grid names {key!r} twice.")
        grid[key] = split_values(values)
    return grid


def _short(key: str, value: str) -> str:
    """A value as it appears in a run name (gin files by their stem)."""
    text = Path(value).stem if key == GIN_FILE_KEY else value.strip("'\"")
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "empty"


def plan_runs(
    base_args: Sequence[str],
    grid: Mapping[str, Sequence[str]],
    seeds: Sequence[int],
    sweep_dir: str,
    seed_binding: str = "DataSpec.seed",
) -> list[Run]:
    """Every grid combination x seed as a gin-complete `python -m prompt_tuning.train` command.

    Args:
      base_args: gin flags shared by every run (`--gin_file=`, `--gin.K=V`, `--gin_search_paths=`).
      grid: `{key: [value text, ...]}`; key `gin_file` adds gin files.
      seeds: one run per seed for every combination.
      sweep_dir: a local folder; each run's MODEL_DIR is `sweep_dir/<run name>`.
    """
    if "://" in sweep_dir:
        raise InputError(
            f"--sweep_dir {sweep_dir} must be a local folder (tables and plots go there)."
        )
    runs = []
    for values in itertools.product(*grid.values()):
        setting = dict(zip(grid, values, strict=True))
        for seed in seeds:
            parts = [f"{key.split('.')[-1]}={_short(key, v)}" for key, v in setting.items()]
            name = "__".join([*parts, f"seed={seed}"])
            model_dir = str(Path(sweep_dir) / name)
            grid_args = [
                f"--gin_file={v}" if key == GIN_FILE_KEY else f"--gin.{key}={v}"
                for key, v in setting.items()
            ]
            command = [
                "python",
                "-m",
                "prompt_tuning.train",
                *base_args,
                *grid_args,
                f"--gin.{seed_binding}={seed}",
                f"--gin.MODEL_DIR='{model_dir}'",
            ]
            runs.append(Run(name, setting, seed, model_dir, command))
    names = [run.name for run in runs]
    clashes = sorted({name for name in names if names.count(name) > 1})
    if clashes:
        raise InputError(
            f"Grid values give runs the same folder name: {clashes}; make them distinct."
        )
    return runs


def check_runs(runs: Sequence[Run]) -> None:
    """Each run's gin flags as `train` would parse them: a misspelt grid macro is an error.

    Macros the runs leave unset are not (a launcher's environment may add them).
    """
    from prompt_tuning import experiment, gin_utils  # noqa: F401  (registers train's configurables)

    for run in runs:
        flags = gin_utils.parse_flags(run.command[3:])
        gin_utils.check_bindings(flags.gin_file, flags.gin_bindings, flags.gin_search_paths)


def write_plan(runs: Sequence[Run], sweep_dir: str, command: str) -> None:
    """`commands.sh` (one shell line per run) and `runs.json` (what `--collect` reads back).

    `command` is the sweep command itself, recorded so reports can name it.
    """
    directory = Path(sweep_dir)
    directory.mkdir(parents=True, exist_ok=True)
    lines = "".join(shlex.join(run.command) + "\n" for run in runs)
    (directory / COMMANDS_FILE).write_text(f"#!/bin/sh\n# Planned by: {command}\n" + lines)
    plan = {"command": command, "runs": [dataclasses.asdict(r) for r in runs]}
    (directory / RUNS_FILE).write_text(json.dumps(plan, indent=2))


def read_plan(sweep_dir: str) -> tuple[str, list[Run]]:
    """The sweep command and runs that `write_plan` recorded."""
    path = Path(sweep_dir) / RUNS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: plan the sweep first (e.g. --dry_run).")
    plan = json.loads(path.read_text())
    return plan["command"], [Run(**entry) for entry in plan["runs"]]


def _run_one(run: Run) -> int:
    """Runs one command (log in `<model_dir>/train.log`); returns its exit status."""
    Path(run.model_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(run.model_dir) / "train.log", "ab") as log:
        # The same interpreter as this process, so the environment matches commands.sh's.
        return subprocess.run(
            [sys.executable, *run.command[1:]], stdout=log, stderr=subprocess.STDOUT
        ).returncode


def _finished(run: Run) -> bool:
    """A run whose final prompt is saved is not rerun (a sweep resumes where it stopped)."""
    return (Path(run.model_dir) / "DONE").is_file()


def run_locally(runs: Sequence[Run], jobs: int = 1) -> list[str]:
    """Runs the commands, `jobs` at a time, with a progress line; returns the failed run names.

    Runs that already finished (a `DONE` marker in their folder) are skipped, so an
    interrupted sweep resumes by running the same command again.
    """
    todo = [run for run in runs if not _finished(run)]
    if len(todo) < len(runs):
        print(f"{len(runs) - len(todo)} of {len(runs)} runs already finished; skipping them.")
    failed, start = [], time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_run_one, run): run for run in todo}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            run, status = futures[future], future.result()
            elapsed = time.perf_counter() - start
            eta = elapsed / done * (len(todo) - done)
            if status:
                failed.append(run.name)
            else:
                (Path(run.model_dir) / "DONE").touch()
            outcome = f"failed (exit {status}; see {run.model_dir}/train.log)" if status else "ok"
            print(
                f"[{done}/{len(todo)}] {run.name}: {outcome}  "
                f"elapsed {clock(elapsed)}  ETA {clock(eta)}",
                flush=True,
            )
    return failed


def best_score(model_dir: str, metric: str) -> tuple[float | None, int | None]:
    """The highest `metric` among the run's eval records, and its step (None, None if none)."""
    path = Path(model_dir) / "metrics.jsonl"
    if not path.is_file():
        return None, None
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    evals = [r for r in records if r.get("kind") == "eval" and metric in r]
    if not evals:
        return None, None
    best = max(evals, key=lambda r: r[metric])
    return float(best[metric]), int(best["step"])


def collect(runs: Sequence[Run], metric: str) -> list[Result]:
    return [Result(run, *best_score(run.model_dir, metric)) for run in runs]


def write_csv(results: Sequence[Result], keys: Sequence[str], metric: str, path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["run", *keys, "seed", f"best_{metric}", "best_step"])
        for r in results:
            writer.writerow(
                [
                    r.run.name,
                    *(r.run.setting[k] for k in keys),
                    r.run.seed,
                    "" if r.best is None else r.best,
                    "" if r.best_step is None else r.best_step,
                ]
            )


def _by_setting(results: Sequence[Result]) -> dict[tuple[str, ...], list[Result]]:
    groups: dict[tuple[str, ...], list[Result]] = {}
    for r in results:
        groups.setdefault(tuple(r.run.setting.values()), []).append(r)
    return groups


def markdown_table(results: Sequence[Result], keys: Sequence[str], metric: str) -> str:
    """One row per grid setting: mean, std, min, max over seeds, and every seed's score."""
    header = [*keys, "seeds", f"mean {metric}", "std", "min", "max", "per seed"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for setting, group in _by_setting(results).items():
        scores = np.array([r.best for r in group if r.best is not None])
        per_seed = ", ".join(
            f"{r.run.seed}: {'—' if r.best is None else f'{r.best:.2f}'}" for r in group
        )
        stats = (
            [
                f"{scores.mean():.2f}",
                f"{scores.std():.2f}",
                f"{scores.min():.2f}",
                f"{scores.max():.2f}",
            ]
            if scores.size
            else ["—"] * 4
        )
        cells = [*(f"`{v}`" for v in setting), f"{scores.size}/{len(group)}", *stats, per_seed]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def plot(
    results: Sequence[Result], keys: Sequence[str], x_key: str, metric: str, path: Path
) -> None:
    """The metric against `x_key`, one line per setting of the other keys, seeds as spread."""
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    x_values = list(dict.fromkeys(r.run.setting[x_key] for r in results))
    numbers = [_as_number(v) for v in x_values]
    numeric = all(n is not None for n in numbers)
    position = dict(zip(x_values, numbers if numeric else range(len(x_values)), strict=True))
    series_keys = [k for k in keys if k != x_key]
    fig, ax = plt.subplots(figsize=(6, 4))
    series: dict[tuple[str, ...], list[Result]] = {}
    for r in results:
        series.setdefault(tuple(r.run.setting[k] for k in series_keys), []).append(r)
    for label, group in series.items():
        xs, means, lows, highs, seed_xs, seed_scores = [], [], [], [], [], []
        for x in x_values:
            scores = [r.best for r in group if r.run.setting[x_key] == x and r.best is not None]
            if scores:
                xs.append(position[x])
                means.append(float(np.mean(scores)))
                lows.append(means[-1] - min(scores))
                highs.append(max(scores) - means[-1])
                seed_xs += [position[x]] * len(scores)
                seed_scores += scores
        name = ", ".join(f"{k}={_short(k, v)}" for k, v in zip(series_keys, label, strict=True))
        line = ax.errorbar(
            xs, means, yerr=[lows, highs], marker="o", capsize=3, label=name or metric
        )
        ax.scatter(seed_xs, seed_scores, s=12, alpha=0.5, color=line.lines[0].get_color())
    if numeric and min(numbers) > 0 and max(numbers) / min(numbers) >= 10:
        ax.set_xscale("log")
        ax.minorticks_off()  # label the grid values only
    ax.set_xticks(
        [position[x] for x in x_values], [_short(x_key, v) for v in x_values], minor=False
    )
    ax.set_xlabel(x_key)
    ax.set_ylabel(f"best validation {metric}")
    ax.set_title("mean, min–max and each seed (dots)", fontsize="medium")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def report(
    runs: Sequence[Run], sweep_dir: str, metric: str, x_key: str | None, commands: Sequence[str]
) -> list[Result]:
    """Collects every run and writes `results.csv`, `results.md` and `results.png`.

    `commands` (the sweep command, then a separate collect command if any) head `results.md`.
    """
    directory = Path(sweep_dir)
    results = collect(runs, metric)
    keys = list(runs[0].setting)
    x_key = x_key or keys[0]
    if x_key not in keys:
        raise InputError(f"--x {x_key!r} is not a grid key; grid keys: {keys}.")
    write_csv(results, keys, metric, directory / "results.csv")
    missing = [r.run.name for r in results if r.best is None]
    note = (
        f"\nRuns without eval records (not in the statistics): {', '.join(missing)}\n"
        if missing
        else ""
    )
    (directory / "results.md").write_text(
        f"# Sweep: best validation {metric} per setting\n\nProduced by:\n\n```\n"
        + "\n".join(commands)
        + "\n```\n\n"
        + markdown_table(results, keys, metric)
        + note
    )
    if len(missing) < len(results):
        plot(results, keys, x_key, metric, directory / "results.png")
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m prompt_tuning.sweep",
        description="Grid of gin settings x seeds: run or write out, then table and plot.",
        allow_abbrev=False,
    )
    parser.add_argument("--sweep_dir", required=True, help="parent of every run's MODEL_DIR")
    parser.add_argument("--grid", action="append", default=[], help="KEY=[v1,v2] (repeatable)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    parser.add_argument("--seed_binding", default="DataSpec.seed", help="gin binding of the seed")
    parser.add_argument("--metric", default="accuracy", help="eval metric to maximise")
    parser.add_argument("--x", help="grid key on the plot's x axis (default: the first)")
    parser.add_argument("--jobs", type=int, default=1, help="local runs at a time (default 1)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry_run", action="store_true", help="only write commands.sh, runs.json")
    mode.add_argument("--collect", action="store_true", help="only collect an earlier sweep")
    return parser


def _gin_args(rest: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """The pass-through gin flags; anything else is an error."""
    unknown = [a for a in rest if not re.match(r"--gin(_file|_search_paths)?[.=]", a)]
    if unknown:
        parser.error(f"unrecognised arguments: {' '.join(unknown)}")
    return list(rest)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; exit status 1 when a local run failed."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    command = shlex.join(["python", "-m", "prompt_tuning.sweep", *argv])
    try:
        if args.collect:
            planned, runs = read_plan(args.sweep_dir)
            commands = [planned, command]
        else:
            commands = [command]
            grid = parse_grid(args.grid)
            if not grid:
                parser.error("give at least one --grid KEY=[v1,v2]")
            if not re.fullmatch(r"\d+(,\d+)*", args.seeds):
                parser.error(f"--seeds {args.seeds!r} must be comma-separated integers, e.g. 0,1,2")
            seeds = [int(s) for s in args.seeds.split(",")]
            runs = plan_runs(
                _gin_args(rest, parser), grid, seeds, args.sweep_dir, args.seed_binding
            )
            check_runs(runs)
            write_plan(runs, args.sweep_dir, command)
        if args.dry_run:
            print(f"Wrote {len(runs)} commands to {Path(args.sweep_dir) / COMMANDS_FILE}")
            return 0
        failed = [] if args.collect else run_locally(runs, args.jobs)
        results = report(runs, args.sweep_dir, args.metric, args.x, commands)
    except (RunError, FileNotFoundError) as e:  # gin_utils.GinConfigError is a RunError
        raise ToolExit("sweep", e) from e
    done = sum(r.best is not None for r in results)
    print(f"{done}/{len(results)} runs scored; results.* written in {args.sweep_dir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

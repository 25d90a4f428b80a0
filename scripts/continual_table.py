"""Tables and heat maps of finished `python -m prompt_tuning.continual` runs, by method.

    python scripts/continual_table.py runs/continual/* --heatmap docs/continual_heatmap.png

Reads each run folder's `continual.json`, groups the runs by method and prints
one markdown row per method: seeds, average final accuracy and average
forgetting (mean +- standard deviation over seeds), one row per run, then each
method's mean accuracy matrix. `--heatmap` draws the mean matrices side by side.
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
from collections.abc import Sequence

import numpy as np

from prompt_tuning import continual


def load(folders: Sequence[pathlib.Path]) -> dict[str, list[dict]]:
    """Finished runs (those with a summary) grouped by method."""
    runs: dict[str, list[dict]] = collections.defaultdict(list)
    for folder in folders:
        path = folder / continual.STATE_FILE
        if path.exists():
            record = json.loads(path.read_text())
            if "summary" in record:
                runs[record["settings"]["method"]].append(record)
    return runs


def _spread(values: Sequence[float]) -> str:
    std = np.std(values, ddof=1) if len(values) > 1 else 0.0
    return f"{np.mean(values):.1f} +- {std:.1f}"


def mean_matrix(records: Sequence[dict]) -> np.ndarray:
    """`[T, T]` mean of the runs' lower-triangular R (NaN above the diagonal)."""
    size = len(records[0]["R"])
    grid = np.full((len(records), size, size), np.nan)
    for k, record in enumerate(records):
        for i, row in enumerate(record["R"]):
            grid[k, i, : len(row)] = row
    return grid.mean(0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=pathlib.Path)
    parser.add_argument("--heatmap", type=pathlib.Path, default=None)
    args = parser.parse_args(argv)
    runs = load(args.folders)
    print("| method | seeds | average final accuracy | average forgetting |")
    print("|---|---|---|---|")
    for method, records in sorted(runs.items()):
        final = [r["summary"]["average_final_accuracy"] for r in records]
        forgetting = [r["summary"]["average_forgetting"] for r in records]
        seeds = ",".join(str(r["settings"]["seed"]) for r in records)
        print(f"| {method} | {seeds} | {_spread(final)} | {_spread(forgetting)} |")
    print("\n| method | seed | average final accuracy | average forgetting | final row R[T-1] |")
    print("|---|---|---|---|---|")
    for method, records in sorted(runs.items()):
        for r in sorted(records, key=lambda r: r["settings"]["seed"]):
            summary = r["summary"]
            print(f"| {method} | {r['settings']['seed']} | {summary['average_final_accuracy']:.1f} "
                  f"| {summary['average_forgetting']:.1f} | "
                  + " / ".join(f"{a:.1f}" for a in r["R"][-1]) + " |")  # fmt: skip
    for method, records in sorted(runs.items()):
        tasks = records[0]["settings"]["tasks"]
        print(f"\n{method}: mean R[i][j] (rows: after task i; columns: {', '.join(tasks)})")
        for i, row in enumerate(mean_matrix(records)):
            print(f"  after {tasks[i]}: " + "  ".join(f"{v:5.1f}" for v in row[: i + 1]))
    if args.heatmap:
        for method, records in sorted(runs.items()):
            path = args.heatmap.with_name(f"{args.heatmap.stem}_{method}{args.heatmap.suffix}")
            matrix = [row[: i + 1].tolist() for i, row in enumerate(mean_matrix(records))]
            title = f"{method}: mean of {len(records)} seed(s)"
            continual.plot_matrix(matrix, records[0]["settings"]["tasks"], title, path)
            print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""The figures of a pretraining run that its model card quotes, read from the run's own files.

    python scripts/pretraining_summary.py runs/shipped_t5/multitask --log LOG [--until 1000]

Prints the configuration (`config.gin`: batch, feature lengths, mixture), the steps trained,
the mean training cross-entropy and token accuracy over the first and last
`--window` steps (`metrics.jsonl`), and, with `--log` (the run's console
output), its compute time: the sum of `log_every / steps-per-second` over the
progress lines, i.e. the time spent in steps, without start-up or compile.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

PROGRESS = re.compile(r"^step (\d+)/\d+ .* ([\d.]+) steps/s")
RESUME = re.compile(r"^Resuming from step (\d+)")


def train_records(model_dir: Path) -> list[dict]:
    """The train records of `metrics.jsonl`, one per step (a resumed run's later record wins)."""
    by_step = {}
    for line in (model_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "train":
            by_step[record["step"]] = record
    return [by_step[s] for s in sorted(by_step)]


def compute_seconds(log: Path, until: int) -> float:
    """Seconds spent in steps up to `until`: each progress line's new steps over its rate."""
    total, previous = 0.0, 0
    for line in log.read_text().splitlines():
        if match := RESUME.match(line):
            previous = int(match.group(1))
        elif (match := PROGRESS.match(line)) and int(match.group(1)) <= until:
            step = int(match.group(1))
            total += (step - previous) / float(match.group(2))
            previous = step
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument(
        "--until", type=int, default=None, help="the exported step (a run may log steps past it)"
    )
    args = parser.parse_args()
    config = (args.model_dir / "config.gin").read_text()
    # TRAIN_STEPS is left out: a resumed run may raise it, and config.gin keeps the first value.
    for key in ("BATCH_SIZE", "TASK_FEATURE_LENGTHS", "pretrain.mixture_or_task_name"):
        match = re.search(rf"^{re.escape(key)} = (.+)$", config, flags=re.M)
        print(f"{key}: {match.group(1) if match else '?'}")
    records = [
        r for r in train_records(args.model_dir) if args.until is None or r["step"] <= args.until
    ]
    print(f"steps trained: {records[-1]['step']}")
    for name, part in (("first", records[: args.window]), ("last", records[-args.window :])):
        ce = np.mean([r["cross_entropy"] for r in part])
        accuracy = np.mean([r["token_accuracy"] for r in part])
        print(
            f"{name} {len(part)} steps ({part[0]['step']}-{part[-1]['step']}): "
            f"cross-entropy {ce:.3f} nats/token, token accuracy {100 * accuracy:.1f}%"
        )
    if args.log:
        until = records[-1]["step"]
        print(f"compute time in steps: {compute_seconds(args.log, until) / 60:.1f} min")


if __name__ == "__main__":
    main()

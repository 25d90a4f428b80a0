"""Loss curves of pretraining stages as one PNG (for the model card).

  python scripts/plot_pretraining.py runs/tiny_t5/span_corruption runs/tiny_t5/lm_adapted \
      --until 4500 2500 --out docs/tiny_t5_loss.png

Each MODEL_DIR's `metrics.jsonl` (written by `python -m prompt_tuning.pretrain`) is
drawn after the previous one's last step, so the stages read as one run: every
step faintly, and its running mean over `--window` steps. `--until` cuts each
stage at its exported step (a run may have logged a few steps past it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def read_losses(model_dir: Path) -> tuple[list[int], list[float]]:
    """`(steps, cross_entropy)` of the train records in `model_dir/metrics.jsonl`."""
    path = model_dir / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: is {model_dir} a pretraining MODEL_DIR?")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    # A resumed run may log a step twice; the later record wins.
    by_step = {r["step"]: r["cross_entropy"] for r in records if r.get("kind") == "train"}
    steps = sorted(by_step)
    return steps, [by_step[s] for s in steps]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--until", type=int, nargs="*", help="last step drawn, one per MODEL_DIR")
    parser.add_argument("--window", type=int, default=50)
    args = parser.parse_args()
    if args.until and len(args.until) != len(args.model_dirs):
        parser.error("--until needs one step per MODEL_DIR")
    fig, ax = plt.subplots(figsize=(7, 4))
    offset = 0
    for i, model_dir in enumerate(args.model_dirs):
        steps, losses = read_losses(model_dir)
        if args.until:
            kept = [j for j, s in enumerate(steps) if s <= args.until[i]]
            steps, losses = [steps[j] for j in kept], [losses[j] for j in kept]
        x = np.asarray(steps) + offset
        smoothed = len(losses) >= args.window
        # A stage shorter than the window is drawn raw, under its name.
        line = ax.plot(
            x, losses, linewidth=0.5, alpha=0.3, label=None if smoothed else model_dir.name
        )
        if smoothed:
            mean = np.convolve(losses, np.ones(args.window) / args.window, mode="valid")
            ax.plot(x[args.window - 1 :], mean, color=line[0].get_color(), label=model_dir.name)
        offset += steps[-1] if steps else 0
    ax.set_xlabel("step")
    ax.set_ylabel("train cross-entropy (nats / target token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()

"""Loss curves of pretraining stages as one PNG (for the model card).

  python scripts/plot_pretraining.py runs/tiny_t5/span_corruption runs/tiny_t5/lm_adapted \
      --out docs/tiny_t5_loss.png

Each MODEL_DIR's `metrics.jsonl` (written by `python -m prompt_tuning.pretrain`) is
drawn after the previous one's last step, so the stages read as one run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

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
    args = parser.parse_args()
    fig, ax = plt.subplots(figsize=(7, 4))
    offset = 0
    for model_dir in args.model_dirs:
        steps, losses = read_losses(model_dir)
        ax.plot([offset + s for s in steps], losses, label=model_dir.name, linewidth=1)
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

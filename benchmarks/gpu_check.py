"""One command, one table: is this GPU computing T5 right, how fast, and does XXL fit?

  python benchmarks/gpu_check.py [--wheels DIR]   # on a machine with one NVIDIA GPU (~8 min)
  python benchmarks/gpu_check.py --dry_run        # the same path on the CPU, small cases only

Rows, all on random weights (nothing is downloaded):

- logits parity of T5 1.1 tiny and base: float32 logits on the GPU (matmuls at
  "highest" precision, no TF32) against the same jitted forward on the CPU, as
  the largest difference in ulps of the largest logit; "ok" within the tests'
  bound for another summation order (`tests/tolerances.py`: 64 ulps);
- train steps/s and MFU of prompt tuning T5 1.1 base and XL in bfloat16 (batch
  32 x (512 input + 100 prompt) tokens, 8 targets): the step `experiment.train`
  runs, timed after warm-up; MFU = the step's matmul FLOPs (`flops.step_flops`)
  x steps/s / the device's dense bfloat16 peak from its spec sheet (`gpu_rows.PEAK_BF16`;
  blank for a device not listed);
- compiled memory of the T5 1.1 XXL step with full rematerialisation (XLA's
  buffer assignment for one device, `memory.py`; nothing is allocated).

Without a GPU backend, `pip install jax[cuda12]==<this jax>` runs first (from
`--wheels DIR` with no index when the machine is offline). `--dry_run` keeps
to the CPU with the tiny model and small shapes, so the whole path compiles and
runs anywhere; its figures say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
import time
from collections.abc import Sequence


def ensure_gpu_jax(wheels: str | None) -> None:
    """Installs jax[cuda12] for the installed jax version unless a GPU backend already loads."""
    probe = [sys.executable, "-c", "import jax; jax.devices('gpu')"]
    if subprocess.run(probe, capture_output=True).returncode == 0:
        return
    command = [sys.executable, "-m", "pip", "install", "-q"]
    command += ["--no-index", "--find-links", wheels] if wheels else []
    subprocess.run([*command, f"jax[cuda12]=={importlib.metadata.version('jax')}"], check=True)


def main(argv: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    """Prints the table; returns its rows `(check, model, result)`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry_run", action="store_true", help="CPU, tiny model, small shapes")
    parser.add_argument("--wheels", help="folder of jax[cuda12] wheels for an offline install")
    parser.add_argument("--steps", type=int, default=10, help="timed train steps")
    args = parser.parse_args(argv)
    if not args.dry_run:
        ensure_gpu_jax(args.wheels)
    import gpu_rows  # after the install: it imports jax

    rows = gpu_rows.table(dry_run=args.dry_run, steps=args.steps)
    width = [max(len(row[i]) for row in rows) for i in range(3)]
    for i, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, width, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in width) + "|")
    return rows


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"({time.perf_counter() - start:.0f} s)")

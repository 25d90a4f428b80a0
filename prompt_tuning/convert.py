"""Convert T5 checkpoints between T5X and Hugging Face formats.

    python -m prompt_tuning.convert --from SRC --to DST --format t5x|hf [--step N]

SRC is anything `checkpoints.load` reads: a T5X model dir or `checkpoint_<step>`
folder (msgpack + zarr or Orbax) or an HF T5 folder; local, `file://` or `gs://`.
`--format t5x` writes `DST/checkpoint_<step>` (msgpack + zarr; the step of
SRC, or 0 for an HF source); `--format hf` writes `DST/config.json` +
`model.safetensors`. Values are copied bit for bit unless `--dtype` is given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import jax.numpy as jnp

from prompt_tuning import checkpoints
from prompt_tuning.checkpoints import CheckpointError, paths
from prompt_tuning.errors import ToolExit


def convert(
    src: str,
    dst: str,
    out_format: str,
    *,
    step: int | None = None,
    dtype: str | None = None,
    overwrite: bool = False,
    weights: str = "safetensors",
) -> str:
    """Loads `src` and writes it to `dst` as `out_format` ('t5x' or 'hf').

    Returns:
      The written checkpoint folder.

    Raises:
      CheckpointError: for unreadable input, a non-empty `dst` without
        `overwrite`, or a `dst` that contains `src`.
    """
    source = checkpoints.resolve(src, step)
    config, params = checkpoints.load(source.path, dtype=dtype)
    _clear_destination(paths.normalize(dst), source.path, overwrite)
    if out_format == "t5x":
        return checkpoints.save_t5x(params, dst, source.step or 0)
    if out_format == "hf":
        return checkpoints.save_hf(config, params, dst, weights)
    raise CheckpointError(f"{dst}: unknown output format {out_format!r}; use 't5x' or 'hf'.")


def _clear_destination(dst: str, src: str, overwrite: bool) -> None:
    """Makes `dst` absent (writers create it), refusing to lose data silently."""
    if not paths.as_epath(dst).exists():
        return
    if paths.is_nonempty_dir(dst) and not overwrite:
        raise CheckpointError(f"{dst}: exists and is not empty; pass --overwrite to replace it.")
    if _within(src, dst) or _within(dst, src):
        raise CheckpointError(f"{dst}: overlaps the source {src}; choose another destination.")
    paths.remove_tree(dst)


def _within(inner: str, outer: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip("/") + "/")


def _dtype(name: str) -> str:
    """`--dtype` checked before anything is read, so a typo is one argparse error line."""
    try:
        jnp.dtype(name)
    except TypeError as e:
        raise argparse.ArgumentTypeError(
            f"{name!r} is not a dtype (e.g. float32, bfloat16, float16)"
        ) from e
    return name


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m prompt_tuning.convert",
        description="Convert T5 checkpoints between T5X (msgpack + zarr) and Hugging Face.",
    )
    parser.add_argument("--from", dest="src", required=True, help="checkpoint to read")
    parser.add_argument("--to", dest="dst", required=True, help="folder to write")
    parser.add_argument("--format", dest="out_format", required=True, choices=("t5x", "hf"))
    parser.add_argument("--step", type=int, help="step of a T5X model dir (default: latest)")
    parser.add_argument(
        "--dtype", type=_dtype, help="cast parameters, e.g. bfloat16 (default: keep)"
    )
    parser.add_argument(
        "--hf_weights",
        choices=("safetensors", "pytorch"),
        default="safetensors",
        help="HF weight file: model.safetensors or pytorch_model.bin",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --to")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (errors exit with a message)."""
    args = _parser().parse_args(argv)
    try:
        written = convert(
            args.src,
            args.dst,
            args.out_format,
            step=args.step,
            dtype=args.dtype,
            overwrite=args.overwrite,
            weights=args.hf_weights,
        )
    except CheckpointError as e:
        raise ToolExit("convert", e) from e
    print(f"Wrote {args.out_format} checkpoint to {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

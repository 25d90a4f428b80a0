"""Tolerances for results that are equal in exact arithmetic but summed in another order.

A sharded and an unsharded forward pass, one process and two, a batch of prompts and
each prompt alone: each pair adds the same float32 numbers in a different order, and
which order also depends on the CPU (vector width, cache-sized blocking, thread
count). Their difference is rounding noise whose size changes from one CPU model to
another, so a tolerance set a few ulps above what one CPU shows fails on the next
(two training processes against one: 1.5e-5 on an Intel Xeon, 4e-6 on an AMD EPYC,
against an atol of 1e-5).

The tolerances here are derived from float32 rounding instead, with room for any
x86-64 CPU; the measurements quoted were taken on an AMD EPYC (AVX-512), again with
XLA, MKL and ATen held to SSE4.2 code (`XLA_FLAGS=--xla_cpu_max_isa=SSE4_2`,
`MKL_ENABLE_INSTRUCTIONS=SSE4_2`, `ATEN_CPU_CAPABILITY=default`), and on that
Intel Xeon. A looser tolerance could hide a bug, so every test that uses one
also runs a control beside it: the same comparison against what a real bug gives (a
skipped step, another example's or another prompt's result) must exceed the tolerance
many times over (`assert_tolerance_catches`).
"""

from __future__ import annotations

import numpy as np

EPS = float(np.finfo(np.float32).eps)  # 2**-23: the spacing of float32 numbers at 1.0

# Rounding differences of a reordered forward pass, in ulps of its largest output.
# Seen: at most 6.5 (our T5 against transformers' on the tiny configs), 5.5 (logits
# on a (4, 2) mesh against one device), 3.5 (scanned layers against a loop), 1.3 (a
# batch of prompts against each alone).
OUTPUT_ULPS = 64

# Rounding differences of one reordered Adafactor update, in ulps of the learning rate.
# Seen: at most 50 per step (ten steps on 8 devices against 1, SSE4.2 code), 23 (same,
# AVX-512), 14 (two processes against one, thirty steps, the Intel Xeon).
UPDATE_ULPS = 1024


def reordered_output_atol(reference: np.ndarray) -> float:
    """Absolute tolerance for a float32 forward pass (logits, scores) computed in another order.

    Every matmul, softmax and norm rounds to a relative `EPS` of the terms it
    adds, and the residual stream carries those errors to the output at the
    scale of the largest activations, which the largest outputs share. So the
    difference is a few ulps of `max |reference|` (`OUTPUT_ULPS` allows ten
    times the most seen), not of each element: a small logit can carry the
    error of a large one. A real bug changes outputs by a sizeable fraction of
    their spread, thousands of these ulps.
    """
    return OUTPUT_ULPS * EPS * float(np.max(np.abs(reference)))


def reordered_training_atol(steps: int, learning_rate: float) -> float:
    """Absolute tolerance for a prompt after `steps` Adafactor steps computed in another order.

    Adafactor with update clipping (`trainer.make_optimizer`) moves each
    element by `learning_rate * g / sqrt(v)` per step, with the RMS of that
    ratio clipped to 1: about `learning_rate`, whatever the gradient's scale. A
    gradient summed in another order differs by rounding, and the
    normalisation passes that on to the update as a relative change of a few
    `EPS`, or of many where the summed terms nearly cancel (`v` scales such an
    element back up to full size): `UPDATE_ULPS` allows twenty times the most
    seen. Over `steps` steps these add up, to at most
    `steps * learning_rate * UPDATE_ULPS * EPS`, while one skipped step, one
    data shard read in another's place or another dropout mask moves elements
    by about `learning_rate` or more: hundreds of times this bound at 30 steps.

    This holds while the run does not amplify small differences: without
    dropout the tiny test run does so after about 14 steps (x1.3 per step; a
    1- vs 8-device difference is 2.7e-3 by step 30), with dropout 0.1 it does
    not within 30 steps. Compare short runs, as the tests do.
    """
    return steps * learning_rate * UPDATE_ULPS * EPS


def assert_tolerance_catches(bugged: np.ndarray, expected: np.ndarray, atol: float) -> None:
    """The control: what a real bug gives differs from `expected` by more than 10 x `atol`.

    So the tolerance a comparison uses could not hide that bug, with a margin
    for the bug's effect being smaller on another machine or in another run.
    """
    difference = float(np.max(np.abs(np.asarray(bugged) - np.asarray(expected))))
    assert difference > 10 * atol, (
        f"a real bug moves the result by only {difference:.3g}, within 10x the tolerance {atol:.3g}"
    )

"""FLOPs of a prompt-tuning train step and of a scoring pass, and this CPU's peak.

Only matrix multiplications are counted (2 FLOPs per multiply-add), as in the
usual model-FLOPs-utilisation accounting: norms, softmax, activations and the
loss add a few percent that no framework can avoid or do faster by much, and
rematerialised recomputation is not useful work, so neither is counted.
"""

from __future__ import annotations

import dataclasses
import os
import re

from step_setup import Shapes

from prompt_tuning.models import T5Config


@dataclasses.dataclass(frozen=True)
class StepFlops:
    """Matmul FLOPs of one step over a whole global batch."""

    forward: int
    backward: int

    @property
    def total(self) -> int:
        return self.forward + self.backward


def _attention(batch: int, heads: int, d_kv: int, queries: int, keys: int) -> int:
    """`q kᵀ` and `weights v` of one attention: each `2 * b * h * q * k * d_kv`."""
    return 2 * batch * heads * queries * keys * d_kv


def _dense(rows: int, fan_in: int, fan_out: int) -> int:
    return 2 * rows * fan_in * fan_out


def step_flops(config: T5Config, shapes: Shapes, *, backward: bool = True) -> StepFlops:
    """Matmul FLOPs of teacher-forced forward, and of prompt-only backward.

    Forward: for `b` rows, encoder length `L` (input + prompt), target length
    `T`, `H` heads of `d_kv`, `hk = H * d_kv`, every encoder layer costs the
    q/k/v/out projections `4 * 2bL·d·hk`, the two attention matmuls
    `2 * 2bH·L²·d_kv` and the MLP `(n_wi + 1) * 2bL·d·d_ff` (`n_wi` = 2 gated,
    1 ReLU); every decoder layer the same over `T` for self-attention and MLP,
    plus cross-attention: q/out over `T`, k/v over `L`, attention `T x L`;
    then the logits `2bT·d·V`.

    Backward, with gradients for the prompt only (the frozen weights get none):
    a matmul `x W` with a frozen `W` needs `dx = dy Wᵀ` only, the same FLOPs
    as its forward (the `dW` half of an ordinary backward is skipped); a matmul
    of two activations (`q kᵀ`, `weights v`) needs the gradient of each operand
    that depends on the prompt, one forward's worth per operand. The prompt
    enters at the encoder input, so every encoder matmul and every cross-
    attention k/v projection is on its path. In the decoder, the first layer's
    self-attention and its cross-attention query read only the target tokens,
    so they have no backward (autodiff in JAX, unrolled, and in torch skips
    them); its `q kᵀ` needs `dk` alone, `weights v` needs both operands. From
    the second decoder layer on, everything depends on the prompt.

    A scanned model (`scan_layers=True`) runs one layer body for every layer,
    so it also differentiates the first decoder layer fully: real work, but
    not counted here, as it is avoidable.

    Args:
      config: the architecture.
      shapes: the global batch.
      backward: False counts the forward alone (`backward` is then 0).

    Raises:
      ValueError: when there is no prompt to differentiate (`prompt_length < 1`).
    """
    if backward and shapes.prompt_length < 1:
        raise ValueError(f"prompt_length is {shapes.prompt_length}: nothing to differentiate.")
    b, t, length = shapes.batch, shapes.target_length, shapes.encoder_length
    d, hk, heads, kv = config.d_model, config.num_heads * config.d_kv, config.num_heads, config.d_kv
    mlp_matmuls = len(config.mlp_activations) + 1

    def mlp(rows: int) -> int:
        return mlp_matmuls * _dense(rows, d, config.d_ff)

    encoder = 4 * _dense(b * length, d, hk) + 2 * _attention(b, heads, kv, length, length)
    encoder += mlp(b * length)
    self_attention = 4 * _dense(b * t, d, hk) + 2 * _attention(b, heads, kv, t, t)
    cross_q_out = 2 * _dense(b * t, d, hk)
    cross_kv = 2 * _dense(b * length, d, hk)
    cross_attention = _attention(b, heads, kv, t, length)
    decoder = self_attention + cross_q_out + cross_kv + 2 * cross_attention + mlp(b * t)
    logits = _dense(b * t, d, config.vocab_size)
    forward = config.num_encoder_layers * encoder + config.num_decoder_layers * decoder + logits
    if not backward:
        return StepFlops(forward=forward, backward=0)
    # First decoder layer: no self-attention, no query; out projection and MLP
    # once, k/v projections once, `q kᵀ` once (dk) and `weights v` twice.
    first_decoder = cross_q_out // 2 + cross_kv + 3 * cross_attention + mlp(b * t)
    # Later decoder layers: every attention matmul has two operands to differentiate.
    later_decoder = decoder + 2 * _attention(b, heads, kv, t, t) + 2 * cross_attention
    backward_flops = (
        config.num_encoder_layers * (encoder + 2 * _attention(b, heads, kv, length, length))
        + first_decoder
        + (config.num_decoder_layers - 1) * later_decoder
        + logits
    )
    return StepFlops(forward=forward, backward=backward_flops)


@dataclasses.dataclass(frozen=True)
class Cpu:
    """What `/proc/cpuinfo` says about this machine, and an estimate of its peak."""

    name: str
    cores: int
    ghz: float
    flops_per_cycle: int  # float32, per core

    @property
    def peak_flops(self) -> float:
        """cores x clock x FLOP/cycle: the float32 FMA throughput ceiling."""
        return self.cores * self.ghz * 1e9 * self.flops_per_cycle

    def describe(self) -> str:
        return (
            f"{self.name}, {self.cores} cores at {self.ghz:.2f} GHz x {self.flops_per_cycle} "
            f"float32 FLOP/cycle = {self.peak_flops / 1e9:.0f} GFLOP/s peak (estimate)"
        )


def fp32_flops_per_cycle(vendor: str, family: int, flags: set[str]) -> int:
    """float32 FLOPs per cycle and core from two FMA pipes of the vector width.

    AVX-512 Intel server cores and AMD Zen 5 (family 26) have two 512-bit FMA
    pipes: 2 x 16 lanes x 2 = 64. Zen 4 (family 25) runs AVX-512 on two
    256-bit pipes, as AVX2 cores do: 32. Without FMA, 8-lane adds and
    multiplies issue side by side: 16.
    """
    if "avx512f" in flags and (vendor == "GenuineIntel" or family >= 26):
        return 64
    if "fma" in flags:
        return 32
    return 16


def host_cpu(cpuinfo: str = "/proc/cpuinfo") -> Cpu:
    """This machine's CPU as the benchmarks report it (Linux only).

    The clock is the first core's current `cpu MHz`; virtual machines report
    the nominal clock there, real hosts the momentary one.
    """
    with open(cpuinfo) as f:
        text = f.read()

    def field(name: str) -> str:
        match = re.search(rf"^{name}\s*:\s*(.*)$", text, re.MULTILINE)
        if match is None:
            raise ValueError(f"{cpuinfo} has no {name!r} line.")
        return match.group(1).strip()

    flags = set(field("flags").split())
    per_cycle = fp32_flops_per_cycle(field("vendor_id"), int(field("cpu family")), flags)
    return Cpu(
        name=field("model name"),
        cores=len(os.sched_getaffinity(0)),
        ghz=float(field("cpu MHz")) / 1000,
        flops_per_cycle=per_cycle,
    )

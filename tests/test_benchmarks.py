"""The benchmarks' own arithmetic: FLOP counts, memory analysis, CPU peak, same-model check."""

from __future__ import annotations

import math
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.core import ClosedJaxpr, Jaxpr

from prompt_tuning import trainer
from prompt_tuning.models import T5, T5Config, param_shapes

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
import data_resume
import flops
import memory
import step_setup
import train_step

# Distinct sizes everywhere (L != T, d != hk, 3 layers vs 2) so a swapped factor shows.
GATED = T5Config(
    vocab_size=96,
    d_model=20,
    num_heads=3,
    d_kv=8,
    d_ff=36,
    num_encoder_layers=2,
    num_decoder_layers=3,
)
RELU_TIED = GATED.replace(mlp_activations=("relu",), logits_via_embedding=True)
SHAPES = step_setup.Shapes(batch=2, input_length=7, target_length=5, prompt_length=4)


def _subjaxprs(params: dict) -> list[Jaxpr]:
    found = []
    for value in params.values():
        for item in value if isinstance(value, tuple | list) else (value,):
            if isinstance(item, ClosedJaxpr):
                found.append(item.jaxpr)
            elif isinstance(item, Jaxpr):
                found.append(item)
    return found


def _dot_flops(jaxpr: Jaxpr) -> int:
    """2 x multiply-adds of every `dot_general` JAX will run, nested jaxprs included."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in ("scan", "while"):
            raise AssertionError("a loop would run its body many times: count unrolled models")
        if eqn.primitive.name == "dot_general":
            (contracting, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            out = eqn.outvars[0].aval.shape
            total += 2 * math.prod(out) * math.prod(lhs[i] for i in contracting)
        total += sum(_dot_flops(sub) for sub in _subjaxprs(eqn.params))
    return total


def _traced_flops(config: T5Config, backward: bool) -> int:
    """Matmul FLOPs in the jaxpr of the model's loss, or of its gradient w.r.t. the prompt."""
    batch = step_setup.random_batch(SHAPES, config.vocab_size, np.random.default_rng(0))

    def loss(prompt, params):
        return trainer.batch_loss(T5(config), prompt, params, batch, trainer.LossConfig())[0]

    prompt = jax.ShapeDtypeStruct((SHAPES.prompt_length, config.d_model), jnp.float32)
    traced = jax.make_jaxpr(jax.value_and_grad(loss) if backward else loss)(
        prompt, param_shapes(config)
    )
    return _dot_flops(traced.jaxpr)


@pytest.mark.parametrize("config", [GATED, RELU_TIED], ids=["gated", "relu_tied"])
def test_flop_count_equals_the_matmuls_jax_traces(config):
    counted = flops.step_flops(config, SHAPES)
    assert counted.forward == _traced_flops(config, backward=False)
    assert counted.total == _traced_flops(config, backward=True)
    # Prompt-only backward skips every weight gradient, so it stays near one forward.
    assert 0.9 * counted.forward < counted.backward < 1.5 * counted.forward


def test_forward_only_count_and_no_prompt():
    assert flops.step_flops(GATED, SHAPES, backward=False).backward == 0
    with pytest.raises(ValueError, match="prompt_length is 0"):
        flops.step_flops(GATED, step_setup.Shapes(2, 7, 5, 0))


def test_host_cpu_reads_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel name\t: AMD EPYC\n"
        "cpu MHz\t\t: 2500.000\nflags\t\t: fpu avx2 fma avx512f\n"
    )
    cpu = flops.host_cpu(str(cpuinfo))
    assert (cpu.name, cpu.ghz, cpu.flops_per_cycle) == ("AMD EPYC", 2.5, 32)
    assert cpu.peak_flops == cpu.cores * 2.5e9 * 32
    assert flops.fp32_flops_per_cycle("GenuineIntel", 6, {"fma", "avx512f"}) == 64
    assert flops.fp32_flops_per_cycle("AuthenticAMD", 23, {"avx2"}) == 16
    cpuinfo.write_text("model name\t: x\n")
    with pytest.raises(ValueError, match="no 'flags' line"):
        flops.host_cpu(str(cpuinfo))


def _expected_arguments(config: T5Config, mesh_shape: tuple[int, int]) -> int:
    """Bytes of one device's shards of the params, prompt state and batch the step reads.

    jit drops the inputs a step never reads: the rng (no dropout) and the
    placeholders for factored moments in the (unfactored) Adafactor state.
    """
    mesh = step_setup.make_mesh(mesh_shape)
    state, frozen, batch, _ = step_setup.abstract_step_inputs(
        config, SHAPES, mesh, trainer.make_optimizer()
    )
    leaves = jax.tree_util.tree_leaves_with_path((state, frozen, batch))
    return sum(
        math.prod(x.sharding.shard_shape(x.shape)) * jnp.dtype(x.dtype).itemsize
        for path, x in leaves
        if not jax.tree_util.keystr(path).endswith((".v_row", ".v_col"))
    )


@pytest.mark.slow
def test_memory_analysis_counts_sharded_arguments_and_remat_saves_temporaries():
    config = GATED.replace(dtype="bfloat16", param_dtype="bfloat16", scan_layers=True)
    none = memory.step_memory(memory.lower_step(config, SHAPES, (1, 1)))
    assert none.arguments == _expected_arguments(config, (1, 1))
    assert none.peak == none.arguments + none.outputs - none.aliased + none.temporaries
    # The donated prompt state is reused for the new one.
    assert none.aliased > 0
    sharded = memory.step_memory(memory.lower_step(config, SHAPES, (1, 2)))
    assert sharded.arguments == _expected_arguments(config, (1, 2)) < none.arguments
    full = memory.step_memory(
        memory.lower_step(config.replace(remat_policy="full"), SHAPES, (1, 1))
    )
    assert full.temporaries < none.temporaries


def test_sizes_and_meshes_are_checked():
    groups = memory.unique_sizes(["t5_1_1_small", "t5_1_1_lm100k_small", "t5_1_1_base"])
    assert list(groups.values()) == [["t5_1_1_small", "t5_1_1_lm100k_small"], ["t5_1_1_base"]]
    with pytest.raises(ValueError, match="Unknown size 't5_tiny'"):
        memory.unique_sizes(["t5_tiny"])
    assert step_setup.parse_mesh("2x4") == (2, 4)
    with pytest.raises(ValueError, match="'2x0' is not DATAxMODEL"):
        step_setup.parse_mesh("2x0")
    with pytest.raises(ValueError, match="needs 16 devices"):
        step_setup.make_mesh((4, 4))


@pytest.mark.slow
def test_both_frameworks_run_the_same_model():
    args = train_step._parser().parse_args(
        ["--steps", "1", "--warmup", "1", "--eval_examples", "4", "--eval_batch", "2"]
    )
    result = train_step.compare(GATED, args, SHAPES)
    first = result["first_cross_entropy"]
    assert first["ours"] == pytest.approx(first["PEFT"], rel=1e-5)
    assert result["score_difference"] < 1e-4
    assert all(s > 0 for timing in ("train_s", "eval_s") for s in result[timing].values())


@pytest.mark.slow
def test_gpu_check_dry_run_prints_its_table(capsys):
    """The GPU script's whole path (parity, timed steps and MFU, remat memory) on the CPU."""
    import gpu_check
    import gpu_rows

    rows = gpu_check.main(["--dry_run", "--steps", "2"])
    printed = capsys.readouterr().out
    assert [(check, model) for check, model, _ in rows[1:]] == [
        ("logits parity vs CPU", "t5_1_1_tiny"),
        ("train (bf16), " + gpu_rows.DRY_SHAPES.describe(), "t5_1_1_tiny"),
        ("compiled memory, full remat", "t5_1_1_tiny"),
    ]
    parity, speed, used = (result for _, _, result in rows[1:])
    # The CPU against itself: the same program, so the same logits.
    assert parity.startswith("0.0 ulps") and parity.endswith("(ok)")
    assert float(speed.split(" steps/s")[0]) > 0 and "MFU ?" in speed  # no GPU peak for a CPU
    assert float(used.split(" GiB")[0]) > 0
    assert all(result in printed for _, _, result in rows)


@pytest.mark.slow
def test_data_resume_benchmark_times_each_resume(capsys):
    """The resume benchmark's whole path on small step counts: each resume timed, a table printed."""
    times = data_resume.main(["--steps", "2", "5", "--repeats", "2"])
    assert sorted(times) == [2, 5] and all(len(t) == 2 and min(t) > 0 for t in times.values())
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" | ")[0] for line in lines[2:4]] == ["| 2", "| 5"]
    assert lines[4].startswith("largest / smallest: ")

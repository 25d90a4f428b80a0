"""`python -m prompt_tuning.convert`: T5X <-> HF round trips and destination safety."""

import re
import subprocess
import sys

import jax
import ml_dtypes
import numpy as np
import pytest
from safetensors.numpy import load_file

from prompt_tuning import checkpoints, convert

TINY_1_1 = "t5x/test_t5_1_1_tiny"


def _assert_bit_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)


@pytest.fixture(scope="module")
def bf16_model_dir(fixtures_dir, tmp_path_factory):
    """The T5 1.1 fixture cast to bfloat16, saved as T5X at step 3."""
    _, params = checkpoints.load(fixtures_dir / TINY_1_1, dtype="bfloat16")
    model_dir = tmp_path_factory.mktemp("bf16")
    checkpoints.save_t5x(params, model_dir, step=3)
    return model_dir


@pytest.mark.parametrize("bf16", [False, True], ids=["float32", "bfloat16"])
def test_t5x_to_hf_to_t5x_is_bit_exact(bf16, fixtures_dir, bf16_model_dir, tmp_path):
    src = bf16_model_dir if bf16 else fixtures_dir / TINY_1_1
    config, params = checkpoints.load(src)
    assert convert.main(["--from", str(src), "--to", str(tmp_path / "hf"), "--format", "hf"]) == 0
    assert (
        convert.main(
            ["--from", str(tmp_path / "hf"), "--to", str(tmp_path / "t5x"), "--format", "t5x"]
        )
        == 0
    )
    assert checkpoints.all_steps(tmp_path / "t5x") == [0]  # an HF source has no step
    back_config, back = checkpoints.load(tmp_path / "t5x")
    assert back_config == config
    _assert_bit_equal(params, back)


def test_hf_to_t5x_to_hf_is_bit_exact(fixtures_dir, tmp_path):
    config, params = checkpoints.load(fixtures_dir / "t5x/t5x_test_t5_tiny")
    params = jax.tree.map(lambda x: x.astype(ml_dtypes.bfloat16), params)
    first = checkpoints.save_hf(config, params, tmp_path / "hf")
    convert.main(["--from", first, "--to", str(tmp_path / "t5x"), "--format", "t5x"])
    convert.main(["--from", str(tmp_path / "t5x"), "--to", str(tmp_path / "hf2"), "--format", "hf"])
    a = load_file(tmp_path / "hf" / "model.safetensors")
    b = load_file(tmp_path / "hf2" / "model.safetensors")
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].dtype == b[name].dtype == ml_dtypes.bfloat16
        assert np.array_equal(a[name], b[name]), name
    assert (tmp_path / "hf" / "config.json").read_text() == (
        tmp_path / "hf2" / "config.json"
    ).read_text()


def test_t5x_output_keeps_the_source_step_and_step_selects(fixtures_dir, tmp_path):
    convert.main(
        ["--from", str(fixtures_dir / TINY_1_1), "--to", str(tmp_path / "a"), "--format", "t5x"]
    )
    assert checkpoints.all_steps(tmp_path / "a") == [3]
    convert.main(
        [
            "--from",
            str(tmp_path / "a"),
            "--to",
            str(tmp_path / "b"),
            "--format",
            "t5x",
            "--step",
            "3",
        ]
    )
    assert checkpoints.all_steps(tmp_path / "b") == [3]
    with pytest.raises(SystemExit, match=r"available steps: \[3\]"):
        convert.main(
            [
                "--from",
                str(tmp_path / "a"),
                "--to",
                str(tmp_path / "c"),
                "--format",
                "t5x",
                "--step",
                "4",
            ]
        )


def test_dtype_flag_casts(fixtures_dir, tmp_path):
    convert.main(
        [
            "--from",
            str(fixtures_dir / TINY_1_1),
            "--to",
            str(tmp_path),
            "--format",
            "hf",
            "--dtype",
            "bfloat16",
        ]
    )
    tensors = load_file(tmp_path / "model.safetensors")
    assert {t.dtype for t in tensors.values()} == {np.dtype(ml_dtypes.bfloat16)}


def test_refuses_a_non_empty_destination_without_overwrite(fixtures_dir, tmp_path):
    src = str(fixtures_dir / TINY_1_1)
    (tmp_path / "keep.txt").write_text("precious")
    with pytest.raises(SystemExit, match="not empty; pass --overwrite"):
        convert.main(["--from", src, "--to", str(tmp_path), "--format", "hf"])
    assert (tmp_path / "keep.txt").read_text() == "precious"
    convert.main(["--from", src, "--to", str(tmp_path), "--format", "hf", "--overwrite"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_an_empty_destination_is_fine(fixtures_dir, tmp_path):
    convert.main(["--from", str(fixtures_dir / TINY_1_1), "--to", str(tmp_path), "--format", "hf"])
    assert (tmp_path / "config.json").is_file()


def test_overwrite_never_deletes_the_source(fixtures_dir, tmp_path):
    model_dir = tmp_path / "model"
    checkpoints.save_t5x(checkpoints.load(fixtures_dir / TINY_1_1)[1], model_dir, step=3)
    for dst in (model_dir, tmp_path, model_dir / "checkpoint_3"):
        with pytest.raises(SystemExit, match="overlaps the source"):
            convert.main(
                ["--from", str(model_dir), "--to", str(dst), "--format", "t5x", "--overwrite"]
            )
    assert checkpoints.all_steps(model_dir) == [3]


def test_bad_source_exits_with_the_path_in_the_message(tmp_path):
    with pytest.raises(
        SystemExit, match=re.escape(f"convert: error: {tmp_path}/missing: no such file")
    ):
        convert.main(
            ["--from", str(tmp_path / "missing"), "--to", str(tmp_path / "out"), "--format", "hf"]
        )


@pytest.mark.slow
def test_module_runs_as_a_script(fixtures_dir, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "prompt_tuning.convert", "--from", str(fixtures_dir / TINY_1_1),
         "--to", str(tmp_path / "hf"), "--format", "hf"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Wrote hf checkpoint to" in result.stdout
    assert (tmp_path / "hf" / "model.safetensors").is_file()

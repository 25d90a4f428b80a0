"""T5X msgpack + zarr checkpoints: the real fixtures, the writer, steps and bad input."""

import os
import re
import shutil

import jax
import ml_dtypes
import numpy as np
import pytest
from flax import serialization

from prompt_tuning import checkpoints
from prompt_tuning.checkpoints import CheckpointError, t5x

TINY_1_1 = "t5x/test_t5_1_1_tiny"  # zarr leaves, step 3
TINY_INLINE = "t5x/t5x_test_t5_tiny"  # every leaf inline, step 0


def assert_trees_equal(a, b):
    """Same structure, dtypes and bits (works for bfloat16 too)."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert np.array_equal(x, y)


def _raw_msgpack(step_dir):
    with open(os.path.join(step_dir, "checkpoint"), "rb") as f:
        return serialization.msgpack_restore(f.read())


def test_t5_1_1_tiny_fixture_loads_with_inferred_config(fixtures_dir):
    config, params = checkpoints.load(fixtures_dir / TINY_1_1 / "checkpoint_3")
    assert (config.vocab_size, config.d_model, config.num_heads, config.d_kv) == (32128, 4, 2, 2)
    assert (config.d_ff, config.relative_attention_num_buckets) == (8, 4)
    assert (config.num_encoder_layers, config.num_decoder_layers) == (2, 2)
    assert config.mlp_activations == ("gelu", "linear") and not config.logits_via_embedding
    assert params["token_embedder"]["embedding"].shape == (32128, 4)
    assert params["decoder"]["logits_dense"]["kernel"].shape == (4, 32128)
    assert params["encoder"]["layers_1"]["mlp"]["wi_1"]["kernel"].shape == (4, 8)
    assert all(isinstance(x, np.ndarray) and x.dtype == np.float32 for x in jax.tree.leaves(params))


def test_zarr_leaves_read_the_values_on_disk(fixtures_dir):
    """Checks one zarr leaf against a decoding that bypasses tensorstore."""
    import gzip
    import json

    step_dir = fixtures_dir / TINY_1_1 / "checkpoint_3"
    _, params = checkpoints.load(step_dir)
    folder = step_dir / "target.encoder.layers_0.attention.query.kernel"
    meta = json.loads((folder / ".zarray").read_text())
    assert meta["chunks"] == meta["shape"]  # a single chunk, file "0.0"
    raw = np.frombuffer(gzip.decompress((folder / "0.0").read_bytes()), meta["dtype"])
    expected = raw.reshape(meta["shape"])
    np.testing.assert_array_equal(
        params["encoder"]["layers_0"]["attention"]["query"]["kernel"], expected
    )


def test_inline_fixture_loads_with_inferred_config(fixtures_dir):
    config, params = checkpoints.load(fixtures_dir / TINY_INLINE / "checkpoint_0")
    assert (config.d_model, config.num_heads, config.d_kv, config.d_ff) == (8, 4, 3, 16)
    assert config.relative_attention_num_buckets == 32
    expected = _raw_msgpack(fixtures_dir / TINY_INLINE / "checkpoint_0")["optimizer"]["target"]
    assert_trees_equal(params, expected)


@pytest.mark.parametrize("fixture", [TINY_1_1, TINY_INLINE])
def test_model_dir_and_file_url_load_the_same_params(fixture, fixtures_dir):
    model_dir = fixtures_dir / fixture
    (step_dir,) = [p for p in model_dir.iterdir() if p.name.startswith("checkpoint_")]
    _, direct = checkpoints.load(step_dir)
    _, via_model_dir = checkpoints.load(model_dir)
    _, via_url = checkpoints.load(f"file://{step_dir}")
    _, via_model_url = checkpoints.load(f"file://{model_dir}/")
    for other in (via_model_dir, via_url, via_model_url):
        assert_trees_equal(direct, other)


def test_dtype_casts_every_leaf(fixtures_dir):
    config, params = checkpoints.load(fixtures_dir / TINY_1_1, dtype="bfloat16")
    _, full = checkpoints.load(fixtures_dir / TINY_1_1)
    assert config.param_dtype == "bfloat16"
    for x, y in zip(jax.tree.leaves(params), jax.tree.leaves(full), strict=True):
        assert x.dtype == ml_dtypes.bfloat16
        np.testing.assert_array_equal(x, y.astype(ml_dtypes.bfloat16))


@pytest.fixture(scope="module")
def tiny_params(fixtures_dir):
    return checkpoints.load(fixtures_dir / TINY_1_1)[1]


def test_save_t5x_writes_the_t5x_v3_layout(tiny_params, tmp_path):
    step_dir = checkpoints.save_t5x(tiny_params, tmp_path, step=12)
    assert step_dir == str(tmp_path / "checkpoint_12")
    assert os.listdir(tmp_path) == ["checkpoint_12"]  # no temporary folder left
    contents = _raw_msgpack(step_dir)
    assert contents["version"] == 3
    assert int(contents["optimizer"]["state"]["step"]) == 12
    target = contents["optimizer"]["target"]
    kernel = target["encoder"]["layers_0"]["attention"]["query"]["kernel"]
    assert kernel["driver"] == "zarr"
    assert kernel["kvstore"]["path"] == "target.encoder.layers_0.attention.query.kernel"
    assert kernel["metadata"]["compressor"]["id"] == "gzip"
    assert os.path.isfile(os.path.join(step_dir, kernel["kvstore"]["path"], ".zarray"))
    assert isinstance(target["encoder"]["encoder_norm"]["scale"], np.ndarray)  # inline vector


@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16])
def test_save_t5x_round_trip_is_bit_exact(dtype, tiny_params, tmp_path):
    params = jax.tree.map(lambda x: x.astype(dtype), tiny_params)
    checkpoints.save_t5x(params, tmp_path, step=1)
    _, loaded = checkpoints.load(tmp_path)
    assert_trees_equal(params, loaded)


def test_save_t5x_refuses_an_existing_step(tiny_params, tmp_path):
    checkpoints.save_t5x(tiny_params, tmp_path, step=1)
    with pytest.raises(CheckpointError, match=r"checkpoint_1: already exists"):
        checkpoints.save_t5x(tiny_params, tmp_path, step=1)


def test_step_selection(tiny_params, tmp_path):
    doubled = jax.tree.map(lambda x: x * 2, tiny_params)
    checkpoints.save_t5x(tiny_params, tmp_path, step=1)
    checkpoints.save_t5x(doubled, tmp_path, step=10)
    (tmp_path / "checkpoint_20.tmp-123").mkdir()  # an interrupted write is no step
    (tmp_path / "checkpoint_30").mkdir()  # nor is an empty folder
    assert checkpoints.all_steps(tmp_path) == [1, 10]
    assert_trees_equal(checkpoints.load(tmp_path)[1], doubled)  # latest by number, not name
    assert_trees_equal(checkpoints.load(tmp_path, step=1)[1], tiny_params)
    assert checkpoints.resolve(tmp_path, step=10).step == 10
    with pytest.raises(CheckpointError, match=r"step 5; available steps: \[1, 10\]"):
        checkpoints.load(tmp_path, step=5)
    with pytest.raises(CheckpointError, match="step 1, but step=10"):
        checkpoints.load(tmp_path / "checkpoint_1", step=10)


def test_chunk_shape_divides_the_shape_and_fits():
    for shape in [(32128, 4096), (4096, 10240), (65536, 1024), (7, 3)]:
        chunks = t5x.chunk_shape(shape, itemsize=4)
        assert all(s % c == 0 for s, c in zip(shape, chunks, strict=True))
        assert np.prod(chunks) * 4 <= 64 * 2**20
    assert t5x.chunk_shape((7, 3), itemsize=4) == [7, 3]


# Bad input: one CheckpointError that names the path and what is wrong.


def test_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match=re.escape(f"{tmp_path}/nope: no such file")):
        checkpoints.load(tmp_path / "nope")


def test_folder_that_is_not_a_checkpoint_says_what_was_looked_for(tmp_path):
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(CheckpointError) as error:
        checkpoints.load(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message
    for looked_for in ("`checkpoint` file", "state/", "checkpoint_<step>", "config.json"):
        assert looked_for in message


def test_garbage_msgpack_file(tmp_path):
    (tmp_path / "checkpoint").write_bytes(b"\x00not msgpack")
    with pytest.raises(CheckpointError, match=re.escape(f"{tmp_path}/checkpoint:")):
        checkpoints.load(tmp_path)


def test_msgpack_without_params(tmp_path):
    (tmp_path / "checkpoint").write_bytes(serialization.msgpack_serialize({"version": 3}))
    with pytest.raises(CheckpointError, match="no 'optimizer/target'"):
        checkpoints.load(tmp_path)


@pytest.fixture
def fixture_copy(fixtures_dir, tmp_path):
    step_dir = tmp_path / "checkpoint_3"
    shutil.copytree(fixtures_dir / TINY_1_1 / "checkpoint_3", step_dir)
    return step_dir


def test_truncated_zarr_chunk_names_the_array(fixture_copy):
    chunk = fixture_copy / "target.token_embedder.embedding" / "1.0"
    chunk.write_bytes(chunk.read_bytes()[:10])
    with pytest.raises(CheckpointError, match=r"token_embedder/embedding is truncated or corrupt"):
        checkpoints.load(fixture_copy)


def test_missing_zarr_chunk_is_an_error_not_zeros(fixture_copy):
    (fixture_copy / "target.decoder.logits_dense.kernel" / "0.5").unlink()
    with pytest.raises(CheckpointError, match="decoder/logits_dense/kernel"):
        checkpoints.load(fixture_copy)


def test_missing_zarr_array_names_the_array(fixture_copy):
    shutil.rmtree(fixture_copy / "target.encoder.layers_1.mlp.wo.kernel")
    with pytest.raises(CheckpointError, match="encoder/layers_1/mlp/wo/kernel"):
        checkpoints.load(fixture_copy)


def test_params_that_are_not_t5_name_the_path(tmp_path):
    checkpoints.save_t5x({"dense": {"kernel": np.ones((2, 2), np.float32)}}, tmp_path, step=0)
    with pytest.raises(CheckpointError, match=re.escape(f"{tmp_path}/checkpoint_0: Not a T5X")):
        checkpoints.load(tmp_path)

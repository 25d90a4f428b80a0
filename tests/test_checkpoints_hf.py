"""HF T5 folders: safetensors, pytorch_model.bin, sharded weights, transformers' own files."""

import json
import re

import jax
import ml_dtypes
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

from prompt_tuning import checkpoints
from prompt_tuning.checkpoints import CheckpointError


@pytest.fixture(scope="module")
def tiny(fixtures_dir):
    return checkpoints.load(fixtures_dir / "t5x/t5x_test_t5_tiny")


def _assert_bit_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)


@pytest.mark.parametrize("weights", ["safetensors", "pytorch"])
@pytest.mark.parametrize("dtype", [np.float32, ml_dtypes.bfloat16])
def test_save_hf_round_trip_is_bit_exact(weights, dtype, tiny, tmp_path):
    config, params = tiny
    params = jax.tree.map(lambda x: x.astype(dtype), params)
    out = checkpoints.save_hf(config, params, tmp_path / "hf", weights=weights)
    weight_file = "model.safetensors" if weights == "safetensors" else "pytorch_model.bin"
    assert sorted(p.name for p in (tmp_path / "hf").iterdir()) == ["config.json", weight_file]
    loaded_config, loaded = checkpoints.load(out)
    assert loaded_config == config
    assert checkpoints.resolve(out).format == "hf"
    _assert_bit_equal(params, loaded)


def _split_in_two(folder, tensors, write, suffix):
    """Writes `tensors` as two shards plus the HF index json."""
    names = sorted(tensors)
    shards = {f"model-0000{i + 1}-of-00002.{suffix}": names[i::2] for i in range(2)}
    for shard, keys in shards.items():
        write({k: tensors[k] for k in keys}, folder / shard)
    weight_map = {k: shard for shard, keys in shards.items() for k in keys}
    index = (
        "model.safetensors.index.json"
        if suffix == "safetensors"
        else "pytorch_model.bin.index.json"
    )
    (folder / index).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


def test_sharded_safetensors_load(tiny, tmp_path):
    config, params = tiny
    single = tmp_path / "single"
    checkpoints.save_hf(config, params, single)
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    (sharded / "config.json").write_text((single / "config.json").read_text())
    tensors = load_file(single / "model.safetensors")
    _split_in_two(
        sharded, tensors, lambda t, f: save_file(t, f, metadata={"format": "pt"}), "safetensors"
    )
    _assert_bit_equal(params, checkpoints.load(sharded)[1])


def test_sharded_pytorch_bin_load(tiny, tmp_path):
    config, params = tiny
    single = tmp_path / "single"
    checkpoints.save_hf(config, params, single)
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    (sharded / "config.json").write_text((single / "config.json").read_text())
    tensors = {k: torch.from_numpy(v) for k, v in load_file(single / "model.safetensors").items()}
    _split_in_two(sharded, tensors, torch.save, "bin")
    _assert_bit_equal(params, checkpoints.load(sharded)[1])


@pytest.mark.parametrize("tied", [False, True])
def test_folder_written_by_transformers_loads(tied, tmp_path):
    """A folder from `save_pretrained` (tied weights deduplicated) maps onto T5X names."""
    import transformers

    hf_config = transformers.T5Config(
        vocab_size=64, d_model=8, d_kv=4, d_ff=12, num_layers=2, num_decoder_layers=2,
        num_heads=2, relative_attention_num_buckets=8,
        feed_forward_proj="relu" if tied else "gated-gelu",
    )  # fmt: skip
    hf_config.tie_word_embeddings = tied  # transformers 5 ignores it in the constructor
    torch.manual_seed(0)
    model = transformers.T5ForConditionalGeneration(hf_config)
    # Untying separated the encoder/decoder tables too; T5 has one (see the refusal below).
    model.set_input_embeddings(model.shared)
    model.save_pretrained(tmp_path)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}

    config, params = checkpoints.load(tmp_path)
    assert config.logits_via_embedding == tied and config.is_gated != tied
    assert (config.d_model, config.num_heads, config.d_kv, config.d_ff) == (8, 2, 4, 12)
    np.testing.assert_array_equal(params["token_embedder"]["embedding"], state["shared.weight"])
    np.testing.assert_array_equal(
        params["encoder"]["layers_1"]["attention"]["query"]["kernel"],
        state["encoder.block.1.layer.0.SelfAttention.q.weight"].T,
    )
    np.testing.assert_array_equal(
        params["decoder"]["relpos_bias"]["rel_embedding"],
        state["decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].T,
    )
    if not tied:
        np.testing.assert_array_equal(
            params["decoder"]["logits_dense"]["kernel"], state["lm_head.weight"].T
        )


# Bad input.


def test_config_without_weights_says_what_was_looked_for(tiny, tmp_path):
    config, params = tiny
    checkpoints.save_hf(config, params, tmp_path / "hf")
    (tmp_path / "hf" / "model.safetensors").unlink()
    with pytest.raises(
        CheckpointError, match=r"hf: has config\.json but no weights.*model\.safetensors"
    ):
        checkpoints.load(tmp_path / "hf")


def test_config_that_disagrees_with_the_weights_names_the_folder(tiny, tmp_path):
    config, params = tiny
    out = tmp_path / "hf"
    checkpoints.save_hf(config, params, out)
    hf_config = json.loads((out / "config.json").read_text())
    hf_config["d_ff"] = 32
    (out / "config.json").write_text(json.dumps(hf_config))
    with pytest.raises(CheckpointError, match=re.escape(f"{out}: ")):
        checkpoints.load(out)


def test_unreadable_weight_file_names_the_file(tiny, tmp_path):
    config, params = tiny
    out = tmp_path / "hf"
    checkpoints.save_hf(config, params, out)
    (out / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=r"model\.safetensors: unreadable weight file"):
        checkpoints.load(out)


def test_unparsable_config_names_the_file(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"config\.json: cannot read the HF config"):
        checkpoints.load(tmp_path)


def test_step_for_an_hf_folder_is_rejected(tiny, tmp_path):
    checkpoints.save_hf(*tiny, tmp_path / "hf")
    with pytest.raises(CheckpointError, match="HF model folder has no steps"):
        checkpoints.load(tmp_path / "hf", step=3)


def test_untied_transformers_model_with_its_own_tables_is_refused(tmp_path):
    """transformers 5 unties `embed_tokens` from `shared` with the output layer."""
    import transformers

    hf_config = transformers.T5Config(
        vocab_size=64, d_model=8, d_kv=4, d_ff=12, num_layers=2, num_heads=2,
        relative_attention_num_buckets=8, feed_forward_proj="gated-gelu",
    )  # fmt: skip
    hf_config.tie_word_embeddings = False
    torch.manual_seed(0)
    transformers.T5ForConditionalGeneration(hf_config).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"embed_tokens.weight'\] differ from shared"):
        checkpoints.load(tmp_path)


@pytest.mark.parametrize("table", ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"])
def test_separate_embedding_tables_are_refused(table, tiny, tmp_path):
    """An untied encoder/decoder table (transformers 5 keeps it apart) is not read as `shared`."""
    config, params = tiny
    out = tmp_path / "hf"
    checkpoints.save_hf(config, params, out)
    tensors = load_file(out / "model.safetensors")
    # The control: an exact copy of `shared` is what T5 ties, and loads.
    tensors[table] = tensors["shared.weight"].copy()
    save_file(tensors, out / "model.safetensors")
    _assert_bit_equal(checkpoints.load(out)[1], params)

    tensors[table] = tensors["shared.weight"] + np.float32(1e-3)
    save_file(tensors, out / "model.safetensors")
    with pytest.raises(
        CheckpointError,
        match=rf"{re.escape(str(out))}: HF tensors \['{table}'\] differ from shared",
    ):
        checkpoints.load(out)

"""Our T5 against HF transformers' `T5ForConditionalGeneration` with the same weights."""

from __future__ import annotations

import functools
import json
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from hf_t5 import CONFIGS, converted_params, hf_model, padded_tokens
from safetensors.numpy import save_file
from transformers import T5ForConditionalGeneration
from transformers.models.t5.modeling_t5 import T5Attention

from prompt_tuning.checkpoints import hf
from prompt_tuning.models import T5, init_params
from prompt_tuning.models.layers import relative_position_bucket

TOLERANCE = 1e-4
ENCODER_LENGTHS = [9, 4, 1, 13]
DECODER_LENGTH = 6


@functools.cache
def _random_params(name: str, seed: int = 3) -> dict:
    """Random T5X params per config, shared by the tests (init compiles slowly on CPU)."""
    return init_params(CONFIGS[name], jax.random.key(seed))


def _batch(config, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    inputs = padded_tokens(rng, config.vocab_size, ENCODER_LENGTHS)
    targets = padded_tokens(rng, config.vocab_size, [DECODER_LENGTH - 1] * len(ENCODER_LENGTHS))
    decoder_inputs = np.concatenate([np.zeros_like(targets[:, :1]), targets], axis=1)  # BOS = 0
    return inputs, decoder_inputs


def _hf_logits(
    model: T5ForConditionalGeneration, decoder_inputs: np.ndarray, **inputs
) -> np.ndarray:
    with torch.no_grad():
        out = model(decoder_input_ids=torch.from_numpy(decoder_inputs).long(), **inputs)
    return out.logits.numpy()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_logits_match_transformers(name, tmp_path):
    config = CONFIGS[name]
    model = hf_model(config)
    params = converted_params(model, config, tmp_path)
    inputs, decoder_inputs = _batch(config)

    ours = T5(config).apply({"params": params}, jnp.asarray(inputs), jnp.asarray(decoder_inputs))
    theirs = _hf_logits(
        model,
        decoder_inputs,
        input_ids=torch.from_numpy(inputs).long(),
        attention_mask=torch.from_numpy(inputs > 0).long(),
    )
    assert ours.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("per_example", [False, True])
def test_prompt_matches_transformers_inputs_embeds(per_example, tmp_path):
    config = CONFIGS["t5_1_1"]
    model = hf_model(config)
    params = converted_params(model, config, tmp_path)
    inputs, decoder_inputs = _batch(config, seed=1)
    num_prompt = 5
    shape = (
        (len(inputs), num_prompt, config.d_model) if per_example else (num_prompt, config.d_model)
    )
    prompt = np.random.default_rng(2).uniform(-0.5, 0.5, shape).astype(np.float32)

    ours = T5(config).apply(
        {"params": params},
        jnp.asarray(inputs),
        jnp.asarray(decoder_inputs),
        prompt=jnp.asarray(prompt),
    )
    batch_prompt = np.broadcast_to(prompt, (len(inputs), num_prompt, config.d_model))
    with torch.no_grad():
        embedded = model.shared(torch.from_numpy(inputs).long())
    mask = np.concatenate([np.ones((len(inputs), num_prompt), np.int64), inputs > 0], axis=1)
    theirs = _hf_logits(
        model,
        decoder_inputs,
        inputs_embeds=torch.cat([torch.from_numpy(batch_prompt.copy()), embedded], dim=1),
        attention_mask=torch.from_numpy(mask).long(),
    )
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_export_loads_in_transformers(name, tmp_path):
    """Our random params, written through hf.py, give the same logits in transformers."""
    config = CONFIGS[name]
    params = _random_params(name)
    state = hf.hf_state_dict_from_params(params, config)
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps(hf.hf_dict_from_config(config)))
    model = T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    inputs, decoder_inputs = _batch(config, seed=4)

    ours = T5(config).apply({"params": params}, jnp.asarray(inputs), jnp.asarray(decoder_inputs))
    theirs = _hf_logits(
        model,
        decoder_inputs,
        input_ids=torch.from_numpy(inputs).long(),
        attention_mask=torch.from_numpy(inputs > 0).long(),
    )
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_state_dict_round_trip_is_bit_exact(name):
    config = CONFIGS[name]
    params = _random_params(name)
    state = hf.hf_state_dict_from_params(params, config)
    assert ("lm_head.weight" in state) != config.logits_via_embedding
    back = hf.params_from_hf_state_dict(state, config)
    jax.tree.map(np.testing.assert_array_equal, back, jax.tree.map(np.asarray, params))
    assert hf.hf_state_dict_from_params(back, config).keys() == state.keys()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_config_round_trip(name):
    config = CONFIGS[name]
    assert hf.config_from_hf_dict(hf.hf_dict_from_config(config)) == config


def test_config_from_real_style_dict():
    """A t5-v1_1-style config.json (no num_decoder_layers, extra keys HF writes)."""
    d = {
        "architectures": ["T5ForConditionalGeneration"],
        "d_ff": 2048,
        "d_kv": 64,
        "d_model": 768,
        "decoder_start_token_id": 0,
        "dropout_rate": 0.1,
        "eos_token_id": 1,
        "feed_forward_proj": "gated-gelu",
        "initializer_factor": 1.0,
        "is_encoder_decoder": True,
        "layer_norm_epsilon": 1e-06,
        "model_type": "t5",
        "num_heads": 12,
        "num_layers": 12,
        "output_past": True,
        "pad_token_id": 0,
        "relative_attention_num_buckets": 32,
        "tie_word_embeddings": False,
        "vocab_size": 32128,
    }
    from prompt_tuning.models import get_config

    assert hf.config_from_hf_dict(d) == get_config("t5_1_1_base")


def test_relative_position_buckets_match_transformers():
    relative = np.arange(-600, 600)
    for bidirectional in (True, False):
        for buckets, max_distance in ((32, 128), (10, 12), (8, 20), (64, 256)):
            theirs = T5Attention._relative_position_bucket(
                torch.from_numpy(relative), bidirectional, buckets, max_distance
            ).numpy()
            ours = relative_position_bucket(
                jnp.asarray(relative), bidirectional, buckets, max_distance
            )
            np.testing.assert_array_equal(np.asarray(ours), theirs)


def test_shape_mismatch_names_tensor_and_shapes():
    config = CONFIGS["t5_1_1"]
    state = hf.hf_state_dict_from_params(_random_params("t5_1_1"), config)
    key = "encoder.block.1.layer.1.DenseReluDense.wi_0.weight"
    state[key] = np.zeros((config.d_ff + 1, config.d_model), np.float32)
    with pytest.raises(ValueError, match=rf"{re.escape(key)}.*\(49, 32\).*\(48, 32\)"):
        hf.params_from_hf_state_dict(state, config)


def test_missing_and_unexpected_tensors_are_named():
    config = CONFIGS["t5_1_0"]
    state = hf.hf_state_dict_from_params(_random_params("t5_1_0"), config)
    missing = dict(state)
    del missing["decoder.final_layer_norm.weight"]
    with pytest.raises(ValueError, match=re.escape("decoder.final_layer_norm.weight")):
        hf.params_from_hf_state_dict(missing, config)
    extra = {**state, "encoder.block.9.layer.0.layer_norm.weight": np.ones(config.d_model)}
    with pytest.raises(ValueError, match=r"encoder\.block\.9"):
        hf.params_from_hf_state_dict(extra, config)


def test_unsupported_config_is_rejected():
    with pytest.raises(ValueError, match="feed_forward_proj 'gated-swish'"):
        hf.config_from_hf_dict(
            {**hf.hf_dict_from_config(CONFIGS["odd"]), "feed_forward_proj": "gated-swish"}
        )
    d = hf.hf_dict_from_config(CONFIGS["odd"])
    del d["d_kv"]
    with pytest.raises(ValueError, match="d_kv"):
        hf.config_from_hf_dict(d)

"""Prefix tuning against PEFT's on the HF-converted model: same prefix values, same logits.

PEFT's seq2seq prefix tuning hands HF's T5 a prefilled `EncoderDecoderCache`, which
defines prefix tuning differently from Li & Liang (our default) in three ways:

- Only decoder self-attention reads the prefix: HF's T5 encoder takes no cache and
  PEFT empties the cross-attention cache. So `PrefixTuning(encoder=False,
  decoder=True)` is PEFT's method; our default prefixes the encoder instead.
- Its table `[P, num_layers * 2 * d_model]` is read as `2 * num_layers` blocks
  `[P, heads, d_model / heads]` (num_layers is the config's, the encoder depth),
  duplicated and cut into groups of four (self key, self value, cross key, cross
  value): decoder layer j reads blocks `4j` and `4j + 1` modulo `2 * num_layers`.
  Cross blocks are never read, and layers past `num_layers / 2` reuse the first
  blocks; our prefixes are independent per layer.
- It assumes `d_kv = d_model / heads`.

Both place the prefix keys at the P relative positions before the first decoder
token, which is what this test pins down.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import torch
from hf_t5 import CONFIGS, converted_params, hf_model, padded_tokens
from peft import PrefixTuningConfig, TaskType, get_peft_model

from prompt_tuning.models import T5

PREFIX_LENGTH = 3
TOLERANCE = 1e-4


def decoder_prefix_from_peft(
    table: np.ndarray, num_decoder_layers: int, heads: int, d_model: int
) -> np.ndarray:
    """PEFT's table `[P, 2 * num_layers * d_model]` -> `decoder_prefix [L_dec, 2, P, heads, kv]`."""
    blocks = table.reshape(table.shape[0], -1, heads, d_model // heads)  # [P, blocks, heads, kv]
    num_blocks = blocks.shape[1]
    picked = [
        [blocks[:, (4 * j + c) % num_blocks] for c in (0, 1)] for j in range(num_decoder_layers)
    ]
    return np.asarray(picked)


def test_decoder_prefix_matches_peft_prefix_tuning(tmp_path):
    config = CONFIGS["t5_1_0"]
    assert config.d_kv * config.num_heads == config.d_model  # PEFT's assumption
    model = hf_model(config)
    params = converted_params(model, config, tmp_path)
    peft_model = get_peft_model(
        model,
        PrefixTuningConfig(
            task_type=TaskType.SEQ_2_SEQ_LM,
            num_virtual_tokens=PREFIX_LENGTH,
            prefix_projection=False,
        ),
    ).eval()
    embedding = peft_model.prompt_encoder["default"].embedding
    rng = np.random.default_rng(0)
    table = rng.normal(size=tuple(embedding.weight.shape)).astype(np.float32)
    embedding.weight.data = torch.from_numpy(table)

    inputs = padded_tokens(rng, config.vocab_size, [7, 4, 9])
    targets = padded_tokens(rng, config.vocab_size, [5, 5, 5])
    decoder_inputs = np.concatenate([np.zeros_like(targets[:, :1]), targets[:, :-1]], axis=1)
    with torch.no_grad():
        theirs = peft_model(
            input_ids=torch.from_numpy(inputs).long(),
            attention_mask=torch.from_numpy(inputs > 0).long(),
            decoder_input_ids=torch.from_numpy(decoder_inputs).long(),
        ).logits.numpy()

    prefix = decoder_prefix_from_peft(
        table, config.num_decoder_layers, config.num_heads, config.d_model
    )
    ours = T5(config).apply(
        {"params": params},
        jnp.asarray(inputs),
        jnp.asarray(decoder_inputs),
        decoder_prefix=jnp.asarray(prefix),
    )
    np.testing.assert_allclose(np.asarray(ours), theirs, rtol=0, atol=TOLERANCE)
    # The prefix matters: without it the logits differ.
    bare = T5(config).apply({"params": params}, jnp.asarray(inputs), jnp.asarray(decoder_inputs))
    assert np.abs(np.asarray(bare) - theirs).max() > 100 * TOLERANCE

"""Random HF `T5ForConditionalGeneration` models matching a `T5Config`, and batches for them.

Shared by the HF parity and decoding tests.
"""

from __future__ import annotations

import pathlib

import numpy as np
import torch
from transformers import T5Config as HFConfig
from transformers import T5ForConditionalGeneration

from prompt_tuning import checkpoints
from prompt_tuning.checkpoints import hf
from prompt_tuning.models import T5Config

# T5 1.0 (ReLU, tied), T5 1.1 (gated GELU, untied, more decoder than encoder
# layers) and an odd shape (3 heads, d_kv 24, d_ff not a multiple of d_model,
# few buckets so the logarithmic ones are reached by short inputs).
CONFIGS = {
    "t5_1_0": T5Config(
        vocab_size=128,
        d_model=32,
        num_heads=4,
        d_kv=8,
        d_ff=64,
        num_encoder_layers=2,
        num_decoder_layers=2,
        mlp_activations=("relu",),
        logits_via_embedding=True,
    ),
    "t5_1_1": T5Config(
        vocab_size=160,
        d_model=32,
        num_heads=4,
        d_kv=8,
        d_ff=48,
        num_encoder_layers=2,
        num_decoder_layers=3,
    ),
    "odd": T5Config(
        vocab_size=200,
        d_model=40,
        num_heads=3,
        d_kv=24,
        d_ff=70,
        num_encoder_layers=2,
        num_decoder_layers=2,
        relative_attention_num_buckets=10,
        relative_attention_max_distance=12,
    ),
}


def hf_model(config: T5Config, seed: int = 0) -> T5ForConditionalGeneration:
    """A randomly initialised float32 HF T5 in eval mode with `config`'s architecture."""
    torch.manual_seed(seed)
    hf_config = HFConfig(**hf.hf_dict_from_config(config))
    # transformers 5.x ties whatever the constructor is told; untie afterwards.
    hf_config.tie_word_embeddings = config.logits_via_embedding
    model = T5ForConditionalGeneration(hf_config)
    # Untying also separated the encoder/decoder input embeddings; T5 has one table.
    model.set_input_embeddings(model.shared)
    return model.eval()


def converted_params(model: T5ForConditionalGeneration, config: T5Config, tmp_path: pathlib.Path):
    """Saves `model` with `save_pretrained` and reads it back with `checkpoints.load`."""
    model.save_pretrained(tmp_path)
    loaded_config, params = checkpoints.load(tmp_path)
    assert loaded_config == config, (loaded_config, config)
    return params


def padded_tokens(rng: np.random.Generator, vocab_size: int, lengths: list[int]) -> np.ndarray:
    """`[len(lengths), max(lengths)]` int32 ids in `[2, vocab)` (no pad/EOS), 0-padded."""
    tokens = np.zeros((len(lengths), max(lengths)), np.int32)
    for row, length in enumerate(lengths):
        tokens[row, :length] = rng.integers(2, vocab_size, length)
    return tokens

"""Greedy and beam search: cache vs. recomputation, transformers' generate, and beam scores."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tolerances
import torch
from hf_t5 import CONFIGS, converted_params, hf_model, padded_tokens

from prompt_tuning import decoding
from prompt_tuning.models import T5, init_params, stack_layers

CONFIG = CONFIGS["t5_1_1"]
MAX_LENGTH = 7
INPUT_LENGTHS = [6, 3, 8]


@functools.cache
def _params() -> dict:
    return init_params(CONFIG, jax.random.key(0))


def _inputs(seed: int = 0) -> jnp.ndarray:
    return jnp.asarray(padded_tokens(np.random.default_rng(seed), CONFIG.vocab_size, INPUT_LENGTHS))


# One compilation per model, length and flags; params, inputs, prompt and EOS id are traced.
_GREEDY = jax.jit(
    decoding.greedy_decode, static_argnames=("model", "max_decode_length", "use_cache")
)
_BEAM = jax.jit(
    decoding.beam_search,
    static_argnames=("model", "max_decode_length", "num_beams", "alpha", "use_cache"),
)


def _greedy(config, params, inputs, **kwargs) -> np.ndarray:
    return np.asarray(_GREEDY(T5(config), params, inputs, max_decode_length=MAX_LENGTH, **kwargs))


def _beam(config, params, inputs, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    tokens, scores = _BEAM(T5(config), params, inputs, max_decode_length=MAX_LENGTH, **kwargs)
    return np.asarray(tokens), np.asarray(scores)


def _frequent_eos(config, params, inputs, **kwargs) -> int:
    """A token greedy decoding emits mid-sequence, so EOS handling is exercised."""
    return int(_greedy(config, params, inputs, eos_id=-1, **kwargs)[0, 2])


@pytest.mark.slow
@pytest.mark.parametrize("scan_layers", [False, True])
def test_cached_decoding_equals_recomputation(scan_layers):
    config = CONFIG.replace(scan_layers=scan_layers)
    params = stack_layers(_params(), config) if scan_layers else _params()
    inputs = _inputs()
    prompt = jax.random.uniform(jax.random.key(1), (3, CONFIG.d_model), minval=-0.5, maxval=0.5)
    eos = _frequent_eos(config, params, inputs, prompt=prompt)

    cached = _greedy(config, params, inputs, eos_id=eos, prompt=prompt)
    recomputed = _greedy(config, params, inputs, eos_id=eos, prompt=prompt, use_cache=False)
    np.testing.assert_array_equal(cached, recomputed)
    assert (cached == eos).any() and (cached == 0).any(), (
        "EOS and the padding after it were not exercised"
    )

    tokens, scores = _beam(config, params, inputs, num_beams=3, eos_id=eos)
    ref_tokens, ref_scores = _beam(config, params, inputs, num_beams=3, eos_id=eos, use_cache=False)
    np.testing.assert_array_equal(tokens, ref_tokens)
    # Attention over a growing cache adds in another order than recomputation: equal up to rounding.
    atol = tolerances.reordered_output_atol(ref_scores)
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=atol)
    # The control: another input's beam scores (a cache read from the wrong row) are far outside it.
    tolerances.assert_tolerance_catches(np.roll(ref_scores, 1, axis=0), ref_scores, atol)


@pytest.mark.parametrize("with_prompt", [False, True])
def test_greedy_equals_transformers_generate(with_prompt, tmp_path):
    model = hf_model(CONFIG, seed=1)
    params = converted_params(model, CONFIG, tmp_path)
    inputs = _inputs(seed=2)
    prompt = np.random.default_rng(3).uniform(-0.5, 0.5, (4, CONFIG.d_model)).astype(np.float32)
    our_prompt = jnp.asarray(prompt) if with_prompt else None
    eos = _frequent_eos(CONFIG, params, inputs, prompt=our_prompt)

    ours = _greedy(CONFIG, params, inputs, eos_id=eos, prompt=our_prompt)
    ids = torch.tensor(np.asarray(inputs)).long()
    mask = (ids > 0).long()
    with torch.no_grad():
        if with_prompt:
            embedded = torch.cat(
                [torch.from_numpy(prompt).expand(len(ids), -1, -1), model.shared(ids)], dim=1
            )
            mask = torch.cat([torch.ones(len(ids), len(prompt), dtype=torch.long), mask], dim=1)
            encoder_input = {"inputs_embeds": embedded}
        else:
            encoder_input = {"input_ids": ids}
        theirs = model.generate(
            **encoder_input,
            attention_mask=mask,
            do_sample=False,
            num_beams=1,
            max_new_tokens=MAX_LENGTH,
            eos_token_id=eos,
            pad_token_id=0,
            decoder_start_token_id=0,
            # transformers 5.23 sizes its KV cache by the encoder's layer count.
            use_cache=False,
        ).numpy()[:, 1:]  # drop the start token
    assert (theirs == eos).any()
    np.testing.assert_array_equal(ours[:, : theirs.shape[1]], theirs)
    assert (ours[:, theirs.shape[1] :] == 0).all()


def test_single_beam_without_length_penalty_is_greedy():
    inputs = _inputs(seed=4)
    eos = _frequent_eos(CONFIG, _params(), inputs)
    greedy = _greedy(CONFIG, _params(), inputs, eos_id=eos)
    tokens, _ = _beam(CONFIG, _params(), inputs, num_beams=1, alpha=0.0, eos_id=eos)
    np.testing.assert_array_equal(tokens[:, 0], greedy)


def _lengths(tokens: np.ndarray, eos: int) -> np.ndarray:
    """Generated length of each sequence: up to and including the first EOS."""
    is_eos = tokens == eos
    return np.where(is_eos.any(-1), is_eos.argmax(-1) + 1, tokens.shape[-1])


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_scores_are_penalised_log_likelihoods(alpha):
    params, inputs, beams = _params(), _inputs(seed=5), 4
    eos = _frequent_eos(CONFIG, params, inputs)
    tokens, scores = _beam(CONFIG, params, inputs, num_beams=beams, alpha=alpha, eos_id=eos)

    flat = tokens.reshape(-1, MAX_LENGTH)
    decoder_inputs = np.concatenate([np.zeros_like(flat[:, :1]), flat[:, :-1]], axis=1)
    logits = T5(CONFIG).apply(
        {"params": params}, jnp.repeat(inputs, beams, axis=0), jnp.asarray(decoder_inputs)
    )
    token_logp = np.take_along_axis(np.asarray(jax.nn.log_softmax(logits)), flat[..., None], -1)[
        ..., 0
    ]
    lengths = _lengths(flat, eos)
    in_sequence = np.arange(MAX_LENGTH)[None] < lengths[:, None]
    log_likelihood = (token_logp * in_sequence).sum(-1)
    expected = log_likelihood / np.asarray(decoding.length_penalty(lengths, alpha))

    np.testing.assert_allclose(scores.reshape(-1), expected, atol=1e-4)
    assert (np.diff(scores, axis=1) <= 0).all(), "beams are not sorted best first"
    assert (flat * ~in_sequence == 0).all(), "tokens after EOS are not padding"
    assert (lengths < MAX_LENGTH).any(), "no beam finished with EOS"
    for row in tokens:  # beams of an example are distinct hypotheses
        assert len({tuple(beam) for beam in row}) == beams


def test_decoded_predictions_with_beams_are_the_best_beam():
    """evaluation.decoded_predictions: one beam is greedy decoding, more are beam search's best."""
    from prompt_tuning import evaluation
    from prompt_tuning.data.vocab import t5_vocabulary

    model, params = T5(CONFIG), init_params(CONFIG, jax.random.key(0))
    tokens = np.random.default_rng(0).integers(2, CONFIG.vocab_size, (3, 6)).astype(np.int32)
    examples = [evaluation.Example(inputs=row, target_text="", raw={}) for row in tokens]
    vocabulary = t5_vocabulary()
    common = {"input_length": 6, "max_decode_length": 5, "batch_size": 2}
    greedy = decoding.greedy_decode(model, params, jnp.asarray(tokens), max_decode_length=5)
    beams, _ = decoding.beam_search(
        model, params, jnp.asarray(tokens), max_decode_length=5, num_beams=3
    )

    def text(row):
        row = list(np.asarray(row))
        return vocabulary.decode(row[: row.index(1)] if 1 in row else row)

    got = evaluation.decoded_predictions(model, params, None, examples, vocabulary, **common)
    assert got == [text(r) for r in greedy]
    got = evaluation.decoded_predictions(
        model, params, None, examples, vocabulary, num_beams=3, **common
    )
    assert got == [text(r) for r in beams[:, 0]]

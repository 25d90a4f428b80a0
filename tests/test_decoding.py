"""Greedy and beam search: cache vs. recomputation, transformers' generate, beam scores, infer."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import seqio
import tensorflow as tf
import tiny
import tolerances
import torch
from hf_t5 import CONFIGS, converted_params, hf_model, padded_tokens

from prompt_tuning import decoding, evaluation, experiment
from prompt_tuning.data.vocab import output_features, t5_vocabulary
from prompt_tuning.errors import RunError
from prompt_tuning.models import T5, init_params, stack_layers
from prompt_tuning.specs import DataSpec, ModelSpec

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


def _penalised_log_likelihood(
    model: T5,
    params: dict,
    inputs: jax.Array,
    tokens: np.ndarray,
    *,
    eos: int,
    alpha: float,
    **model_inputs: jax.Array,
) -> np.ndarray:
    """Beam search's score of given sequences, recomputed by teacher forcing.

    Args:
      model, params: the model that scores.
      inputs: `[n, input_length]` encoder tokens.
      tokens: `[n, T]` generated tokens (up to EOS, then 0).
      eos: the EOS id; tokens after it do not count.
      alpha: the length-penalty exponent.
      **model_inputs: the prompt inputs of `T5.__call__` (`prompt`, `prompt_position`, ...).

    Returns:
      `[n]` log-likelihoods / `decoding.length_penalty`.
    """
    decoder_inputs = np.concatenate([np.zeros_like(tokens[:, :1]), tokens[:, :-1]], axis=1)
    logits = model.apply({"params": params}, inputs, jnp.asarray(decoder_inputs), **model_inputs)
    log_probs = np.asarray(jax.nn.log_softmax(logits))
    token_logp = np.take_along_axis(log_probs, tokens[..., None], -1)[..., 0]
    lengths = _lengths(tokens, eos)
    in_sequence = np.arange(tokens.shape[1])[None] < lengths[:, None]
    return (token_logp * in_sequence).sum(-1) / np.asarray(decoding.length_penalty(lengths, alpha))


@pytest.mark.slow
@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_beam_scores_are_penalised_log_likelihoods(alpha):
    params, inputs, beams = _params(), _inputs(seed=5), 4
    eos = _frequent_eos(CONFIG, params, inputs)
    tokens, scores = _beam(CONFIG, params, inputs, num_beams=beams, alpha=alpha, eos_id=eos)

    flat = tokens.reshape(-1, MAX_LENGTH)
    repeated = jnp.repeat(inputs, beams, axis=0)
    expected = _penalised_log_likelihood(T5(CONFIG), params, repeated, flat, eos=eos, alpha=alpha)
    lengths = _lengths(flat, eos)
    in_sequence = np.arange(MAX_LENGTH)[None] < lengths[:, None]

    np.testing.assert_allclose(scores.reshape(-1), expected, atol=1e-4)
    assert (np.diff(scores, axis=1) <= 0).all(), "beams are not sorted best first"
    assert (flat * ~in_sequence == 0).all(), "tokens after EOS are not padding"
    assert (lengths < MAX_LENGTH).any(), "no beam finished with EOS"
    for row in tokens:  # beams of an example are distinct hypotheses
        assert len({tuple(beam) for beam in row}) == beams


def _text(row: np.ndarray, vocabulary: seqio.Vocabulary) -> str:
    """What a prediction record holds for generated tokens `[T]`: their text up to EOS (1)."""
    row = list(np.asarray(row))
    return vocabulary.decode(row[: row.index(1)] if 1 in row else row)


def test_decoded_predictions_with_beams_are_the_best_beam():
    """evaluation.decoded_predictions: one beam is greedy decoding, more are beam search's best."""
    model, params = T5(CONFIG), init_params(CONFIG, jax.random.key(0))
    tokens = np.random.default_rng(0).integers(2, CONFIG.vocab_size, (3, 6)).astype(np.int32)
    examples = [evaluation.Example(inputs=row, target_text="", raw={}) for row in tokens]
    vocabulary = t5_vocabulary()
    common = {"input_length": 6, "max_decode_length": 5, "batch_size": 2}
    greedy = decoding.greedy_decode(model, params, jnp.asarray(tokens), max_decode_length=5)
    beams, _ = decoding.beam_search(
        model, params, jnp.asarray(tokens), max_decode_length=5, num_beams=3
    )

    got = evaluation.decoded_predictions(model, params, None, examples, vocabulary, **common)
    assert got == [_text(r, vocabulary) for r in greedy]
    got = evaluation.decoded_predictions(
        model, params, None, examples, vocabulary, num_beams=3, **common
    )
    assert got == [_text(r, vocabulary) for r in beams[:, 0]]


# ------------------------------------------------------------- infer.beam_size

# A generation task (no class labels), so infer decodes instead of rank-classifying.
COPY_TASK = "tiny_copy_test"
COPY_EXAMPLES = 5
BEAM_ALPHA = 0.6  # beam_search's default, which infer uses


def _copy_dataset(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
    del split, shuffle_files, seed
    texts = tiny._examples("validation")["sentence"][:COPY_EXAMPLES]
    return tf.data.Dataset.from_tensor_slices({"inputs": texts, "targets": texts})


if COPY_TASK not in seqio.TaskRegistry.names():
    seqio.TaskRegistry.add(
        COPY_TASK,
        source=seqio.FunctionDataSource(_copy_dataset, splits=["validation"]),
        preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
        output_features=output_features(),
    )


@pytest.fixture(scope="module")
def infer_files(tmp_path_factory) -> tuple[str, str]:
    """The tiny random checkpoint and a random prompt for it."""
    root = tmp_path_factory.mktemp("infer")
    prompt = root / "prompt.npy"
    np.save(prompt, np.random.default_rng(0).uniform(-0.5, 0.5, (3, tiny.CONFIG.d_model)))
    return str(tiny.write_checkpoint(root / "ckpt")), str(prompt)


def _infer(infer_files: tuple[str, str], output_dir, beam_size: int) -> list[dict]:
    checkpoint, prompt = infer_files
    return experiment.infer(
        model=ModelSpec(checkpoint_path=checkpoint),
        # One batch holds every example, so each run decodes once.
        data=DataSpec(COPY_TASK, {"inputs": 16, "targets": 6}, batch_size=8),
        prompt_file=prompt,
        output_dir=str(output_dir),
        beam_size=beam_size,
        print_fn=lambda _: None,
    )


def _record_decoding(monkeypatch) -> list[tuple[str, tuple, dict, object]]:
    """`(name, args, kwargs, result)` of every greedy_decode / beam_search call from here on."""
    calls = []

    def spy(name: str, decode):
        def recorded(*args, **kwargs):
            calls.append((name, args, kwargs, decode(*args, **kwargs)))
            return calls[-1][-1]

        return recorded

    for name in ("greedy_decode", "beam_search"):
        monkeypatch.setattr(decoding, name, spy(name, getattr(decoding, name)))
    return calls


def test_infer_beam_size_gives_greedy_or_the_best_beam(infer_files, tmp_path, monkeypatch):
    """beam_size=1 writes greedy decoding; 4 writes a top beam that scores at least as well."""
    calls = _record_decoding(monkeypatch)
    greedy_rows = _infer(infer_files, tmp_path / "greedy", beam_size=1)
    beam_rows = _infer(infer_files, tmp_path / "beam", beam_size=4)
    assert [name for name, *_ in calls] == ["greedy_decode", "beam_search"]
    (_, (model, params, inputs), options, greedy), (*_, (beams, _)) = calls

    vocabulary = t5_vocabulary()
    texts = [_text(r, vocabulary) for r in greedy[:COPY_EXAMPLES]]
    assert [row.pop("prediction") for row in greedy_rows] == texts
    texts = [_text(r, vocabulary) for r in beams[:COPY_EXAMPLES, 0]]
    assert [row.pop("prediction") for row in beam_rows] == texts
    assert beam_rows == greedy_rows  # the same records (inputs, targets) besides the prediction

    prompt = {**options["prompt"], "prompt_position": options["prompt_position"]}
    score = functools.partial(
        _penalised_log_likelihood, model, params, inputs, eos=1, alpha=BEAM_ALPHA, **prompt
    )
    greedy_score, beam_score = score(np.asarray(greedy)), score(np.asarray(beams[:, 0]))
    assert (beam_score >= greedy_score - 1e-5).all(), (beam_score, greedy_score)
    assert (beam_score > greedy_score + 1e-3).any(), "beam search never beat greedy decoding"


@pytest.mark.parametrize("beam_size", [0, -1])
def test_infer_refuses_a_bad_beam_size_before_writing(infer_files, tmp_path, beam_size):
    with pytest.raises(RunError, match=r"infer\.beam_size must be a positive integer, got -?\d"):
        _infer(infer_files, tmp_path, beam_size)
    assert not any(tmp_path.iterdir())

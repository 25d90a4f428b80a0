"""Greedy and beam-search decoding for `models.T5`, with a key/value cache.

The encoder runs once; each step feeds one token per row to the decoder in
`decode=True` mode, which keeps self-attention keys/values and the projected
encoder output in the 'cache' collection. Loops are `lax.while_loop`s, so both
functions can be `jax.jit`ted (with `model`, lengths and ids static).
`use_cache=False` recomputes the whole prefix at every step instead: slow, but
independent of the cache, which makes it the reference the tests compare with.

Returned tokens exclude the initial 0 (BOS); positions after EOS are 0.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from prompt_tuning.errors import InputError
from prompt_tuning.models.t5 import SCANNED_LAYERS, T5
from prompt_tuning.prompts import PromptPosition

Params = Any
Cache = Any

# Log-probability of an impossible hypothesis; finite so sums never become NaN.
NEG_INF = -1.0e7


@dataclasses.dataclass(frozen=True)
class _Decoder:
    """The model bound to one encoded batch: next-token log-probabilities, step by step."""

    model: T5
    params: Params
    encoded: jax.Array  # [n, input_length, embed]
    encoder_mask: jax.Array  # [n, input_length]
    use_cache: bool
    decoder_prefix: jax.Array | None = None  # [L, 2, P, heads, kv] (prefix tuning)

    def init_cache(self, max_decode_length: int) -> Cache:
        """Creates the cache: zero self-attention slots, projected encoder keys/values."""
        if not self.use_cache:
            return {}
        tokens = jnp.zeros((self.encoded.shape[0], max_decode_length), jnp.int32)
        _, variables = self.model.apply(
            {"params": self.params},
            self.encoded,
            self.encoder_mask,
            tokens,
            decode=True,
            decoder_prefix=self.decoder_prefix,
            method="decode",
            mutable=["cache"],
        )
        return variables["cache"]

    def log_probs(
        self, cache: Cache, sequences: jax.Array, i: jax.Array
    ) -> tuple[jax.Array, Cache]:
        """Log-probabilities of the token after `sequences[:, i]`.

        Args:
          cache: from `init_cache` or the previous step.
          sequences: `[n, max_decode_length + 1]`, BOS then the tokens so far.
          i: the current position (0 at the first step).

        Returns:
          `([n, vocab] float32 log-probabilities, updated cache)`.
        """
        if self.use_cache:
            token = lax.dynamic_slice_in_dim(sequences, i, 1, axis=1)
            logits, variables = self.model.apply(
                {"params": self.params, "cache": cache},
                self.encoded,
                self.encoder_mask,
                token,
                decode=True,
                decoder_prefix=self.decoder_prefix,
                method="decode",
                mutable=["cache"],
            )
            return jax.nn.log_softmax(logits[:, 0]), variables["cache"]
        logits = self.model.apply(
            {"params": self.params},
            self.encoded,
            self.encoder_mask,
            sequences[:, :-1],
            decoder_prefix=self.decoder_prefix,
            method="decode",
        )
        return jax.nn.log_softmax(lax.dynamic_index_in_dim(logits, i, 1, keepdims=False)), cache


def _decoder(
    model: T5,
    params: Params,
    encoder_input_tokens: jax.Array,
    prompt: jax.Array | Mapping[str, jax.Array] | None,
    prompt_position: PromptPosition,
    use_cache: bool,
    repeats: int = 1,
) -> _Decoder:
    """Encodes once; `repeats` copies each example's encoding for its beams.

    `prompt` may be a prompt method's model inputs (shared by the batch).
    """
    inputs = dict(prompt) if isinstance(prompt, Mapping) else {"prompt": prompt}
    decoder_prefix = inputs.pop("decoder_prefix", None)
    encoded, mask = model.apply(
        {"params": params},
        encoder_input_tokens,
        prompt_position=prompt_position,
        method="encode",
        **inputs,
    )
    return _Decoder(
        model,
        params,
        jnp.repeat(encoded, repeats, axis=0),
        jnp.repeat(mask, repeats, axis=0),
        use_cache,
        decoder_prefix,
    )


def _check_length(max_decode_length: int) -> None:
    if max_decode_length < 1:
        raise InputError(f"max_decode_length must be at least 1; got {max_decode_length}.")


def greedy_decode(
    model: T5,
    params: Params,
    encoder_input_tokens: jax.Array,
    *,
    max_decode_length: int,
    prompt: jax.Array | Mapping[str, jax.Array] | None = None,
    prompt_position: PromptPosition = "prefix",
    eos_id: int = 1,
    use_cache: bool = True,
) -> jax.Array:
    """The most likely next token at every step, until EOS or `max_decode_length`.

    Args:
      model: a `T5` module.
      params: its parameters (the layout `model.config` expects).
      encoder_input_tokens: `[batch, input_length]`, 0 = padding.
      max_decode_length: number of tokens to generate at most.
      prompt: optional `[P, embed]` or `[batch, P, embed]` soft prompt, or a
        prompt method's model inputs shared by the batch (see `methods`).
      prompt_position: where the prompt goes (see `prompts.combine`).
      eos_id: the token that ends a sequence (kept in the output).
      use_cache: False recomputes every prefix (reference path for tests).

    Returns:
      `[batch, max_decode_length]` int32 tokens, 0 after EOS.
    """
    _check_length(max_decode_length)
    decoder = _decoder(model, params, encoder_input_tokens, prompt, prompt_position, use_cache)
    batch = encoder_input_tokens.shape[0]

    def cond(state: tuple) -> jax.Array:
        i, _, done, _ = state
        return (i < max_decode_length) & ~jnp.all(done)

    def body(state: tuple) -> tuple:
        i, sequences, done, cache = state
        log_probs, cache = decoder.log_probs(cache, sequences, i)
        token = jnp.where(done, 0, jnp.argmax(log_probs, axis=-1).astype(jnp.int32))
        sequences = lax.dynamic_update_slice_in_dim(sequences, token[:, None], i + 1, axis=1)
        return i + 1, sequences, done | (token == eos_id), cache

    state = (
        jnp.zeros((), jnp.int32),
        jnp.zeros((batch, max_decode_length + 1), jnp.int32),
        jnp.zeros((batch,), bool),
        decoder.init_cache(max_decode_length),
    )
    _, sequences, _, _ = lax.while_loop(cond, body, state)
    return sequences[:, 1:]


def length_penalty(length: jax.Array | int, alpha: float) -> jax.Array:
    """T5X / GNMT brevity penalty `((5 + length) / 6) ** alpha`; scores are log-prob / penalty."""
    return ((5.0 + jnp.asarray(length, jnp.float32)) / 6.0) ** alpha


def _reorder_cache(cache: Cache, rows: jax.Array) -> Cache:
    """Gathers self-attention cache rows (flat `[batch * beams]` indices) for the new beams.

    Cross-attention caches are skipped: every beam of an example holds the same
    encoder keys/values. Scanned layers put the layer axis before the batch axis.
    """

    def gather(path: tuple, leaf: jax.Array) -> jax.Array:
        names = [getattr(p, "key", None) for p in path]
        if names[-1] not in ("cached_key", "cached_value") or "encoder_decoder_attention" in names:
            return leaf
        return jnp.take(leaf, rows, axis=1 if SCANNED_LAYERS in names else 0)

    return jax.tree_util.tree_map_with_path(gather, cache)


def _take(x: jax.Array, indices: jax.Array) -> jax.Array:
    """Per-example gather along the beam axis: `x [batch, n, ...]`, `indices [batch, m]`."""
    return jnp.take_along_axis(x, indices.reshape(*indices.shape, *([1] * (x.ndim - 2))), axis=1)


def _beam_step(decoder: _Decoder, state: tuple, *, vocab: int, alpha: float, eos_id: int) -> tuple:
    """One beam-search step: extends every live beam by every token, keeps the best.

    `state` is `(i, live_seqs [b, k, L], live_logp [b, k], finished_seqs [b, k, L],
    finished_scores [b, k], cache)`.
    """
    i, live_seqs, live_logp, finished_seqs, finished_scores, cache = state
    batch, k, length = live_seqs.shape
    log_probs, cache = decoder.log_probs(cache, live_seqs.reshape(batch * k, length), i)
    candidates = live_logp[:, :, None] + log_probs.reshape(batch, k, vocab)
    top_logp, top_index = lax.top_k(candidates.reshape(batch, k * vocab), 2 * k)
    origin, token = top_index // vocab, (top_index % vocab).astype(jnp.int32)
    seqs = lax.dynamic_update_slice_in_dim(_take(live_seqs, origin), token[..., None], i + 1, 2)
    is_eos = token == eos_id

    # Finished: the previous best plus the candidates that just emitted EOS.
    new_scores = jnp.where(is_eos, top_logp / length_penalty(i + 1, alpha), NEG_INF)
    pool_scores = jnp.concatenate([finished_scores, new_scores], axis=1)
    finished_scores, best = lax.top_k(pool_scores, k)
    finished_seqs = _take(jnp.concatenate([finished_seqs, seqs], axis=1), best)

    # Live: the best k candidates that did not emit EOS (at least k of 2k exist).
    live_logp, best = lax.top_k(jnp.where(is_eos, NEG_INF, top_logp), k)
    live_seqs = _take(seqs, best)
    rows = (jnp.arange(batch)[:, None] * k + _take(origin, best)).reshape(-1)
    cache = _reorder_cache(cache, rows)
    return i + 1, live_seqs, live_logp, finished_seqs, finished_scores, cache


def beam_search(
    model: T5,
    params: Params,
    encoder_input_tokens: jax.Array,
    *,
    max_decode_length: int,
    num_beams: int,
    alpha: float = 0.6,
    prompt: jax.Array | Mapping[str, jax.Array] | None = None,
    prompt_position: PromptPosition = "prefix",
    eos_id: int = 1,
    use_cache: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """Beam search with the T5X length penalty.

    Every step extends each live beam by every token and keeps the `2 * num_beams`
    best candidates: those ending in EOS compete for the finished slots (score =
    log-prob / `length_penalty(length, alpha)`, length counting EOS), the rest
    become the next live beams. An example stops once no live beam can beat its
    worst finished one. Beams still live at `max_decode_length` compete as
    finished with their log-prob / `length_penalty(max_decode_length, alpha)`.

    Args:
      model, params, encoder_input_tokens, prompt, prompt_position, eos_id,
      use_cache: as in `greedy_decode`.
      max_decode_length: number of tokens to generate at most.
      num_beams: beams per example (`2 * num_beams` must not exceed the vocabulary).
      alpha: length-penalty exponent; 0 scores by plain log-probability.

    Returns:
      `(tokens [batch, num_beams, max_decode_length], scores [batch, num_beams])`,
      best beam first.
    """
    _check_length(max_decode_length)
    vocab = model.config.vocab_size
    if num_beams < 1 or 2 * num_beams > vocab:
        raise InputError(
            f"num_beams must be in [1, vocab_size / 2 = {vocab // 2}]; got {num_beams}."
        )
    decoder = _decoder(
        model, params, encoder_input_tokens, prompt, prompt_position, use_cache, num_beams
    )
    batch, k, length = encoder_input_tokens.shape[0], num_beams, max_decode_length + 1
    max_penalty = jnp.maximum(length_penalty(1, alpha), length_penalty(max_decode_length, alpha))

    def done(live_logp: jax.Array, finished_scores: jax.Array) -> jax.Array:
        """`[batch]`: the best live beam cannot beat the worst finished one any more."""
        return finished_scores[:, -1] >= live_logp[:, 0] / max_penalty

    def cond(state: tuple) -> jax.Array:
        i, _, live_logp, _, finished_scores, _ = state
        return (i < max_decode_length) & ~jnp.all(done(live_logp, finished_scores))

    body = functools.partial(_beam_step, decoder, vocab=vocab, alpha=alpha, eos_id=eos_id)

    # Only beam 0 is alive at first, so the first step does not pick duplicates.
    initial_logp = jnp.where(jnp.arange(k) == 0, 0.0, NEG_INF)
    state = (
        jnp.zeros((), jnp.int32),
        jnp.zeros((batch, k, length), jnp.int32),
        jnp.broadcast_to(initial_logp, (batch, k)),
        jnp.zeros((batch, k, length), jnp.int32),
        jnp.full((batch, k), NEG_INF),
        decoder.init_cache(max_decode_length),
    )
    i, live_seqs, live_logp, finished_seqs, finished_scores, _ = lax.while_loop(cond, body, state)

    # Examples cut at max_decode_length let their live beams compete as finished.
    live_scores = jnp.where(
        done(live_logp, finished_scores)[:, None], NEG_INF, live_logp / length_penalty(i, alpha)
    )
    scores, best = lax.top_k(jnp.concatenate([finished_scores, live_scores], axis=1), k)
    tokens = _take(jnp.concatenate([finished_seqs, live_seqs], axis=1), best)
    return tokens[:, :, 1:], scores

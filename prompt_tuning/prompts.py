"""The soft prompt `[P, d]`: how it is initialised and how it joins the input.

Initialisers are pure functions `(rng, shape) -> [P, d]` (the closures below
capture what each one needs: the embedding table, a vocabulary, a file). The
model calls `combine` right after the token embedding, so everything downstream
(relative positions, attention masks, cross-attention) simply sees a longer input.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning.errors import InputError

PromptInit = Callable[[jax.Array, tuple[int, int]], jax.Array]

# The original code samples from the first 5,000 SentencePiece ids, which are
# ordered by frequency in the T5 vocabulary.
NUM_FREQUENT_TOKENS = 5000


def random_uniform(scale: float = 0.5) -> PromptInit:
    """Uniform in `[-scale, scale]` (the original's default scale is 0.5)."""

    def init(rng: jax.Array, shape: tuple[int, int]) -> jax.Array:
        return jax.random.uniform(rng, shape, jnp.float32, -scale, scale)

    return init


def sampled_vocab(embedding: jax.Array, num_tokens: int = NUM_FREQUENT_TOKENS) -> PromptInit:
    """Rows copied from the embeddings of tokens drawn among the `num_tokens` most frequent.

    Args:
      embedding: `[vocab, embed]` token embedding table of the frozen model.
      num_tokens: size of the population; draws are without replacement while
        the prompt is not longer than the population.
    """

    def init(rng: jax.Array, shape: tuple[int, int]) -> jax.Array:
        _check_width(embedding, shape)
        population = min(num_tokens, embedding.shape[0])
        ids = jax.random.choice(rng, population, (shape[0],), replace=shape[0] > population)
        return jnp.asarray(embedding, jnp.float32)[ids]

    return init


def class_labels(
    embedding: jax.Array,
    label_token_ids: Sequence[Sequence[int]],
    fallback: PromptInit | None = None,
) -> PromptInit:
    """The first rows are the mean sub-token embedding of each class label.

    A prompt shorter than the label list keeps the labels that fit, in order (as
    the paper's code does, so Figure 3's length-1 class-label point exists).

    Args:
      embedding: `[vocab, embed]` token embedding table.
      label_token_ids: the token ids of each label string (no EOS), e.g. the
        vocabulary's encoding of `["negative", "positive"]`.
      fallback: initialiser for the remaining `P - num_labels` rows
        (default: `sampled_vocab(embedding)`, as in the paper).
    """
    if not label_token_ids or any(len(ids) == 0 for ids in label_token_ids):
        raise InputError(f"Every class label needs at least one token; got {label_token_ids}.")
    fallback = fallback or sampled_vocab(embedding)
    table = jnp.asarray(embedding, jnp.float32)
    label_rows = jnp.stack([table[jnp.asarray(ids)].mean(axis=0) for ids in label_token_ids])

    def init(rng: jax.Array, shape: tuple[int, int]) -> jax.Array:
        _check_width(embedding, shape)
        kept = label_rows[: shape[0]]
        rest = fallback(rng, (shape[0] - len(kept), shape[1]))
        return jnp.concatenate([kept, rest], axis=0)

    return init


def from_text(embedding: jax.Array, token_ids: Sequence[int]) -> PromptInit:
    """Embeds a text's tokens, repeated or cut to the prompt length."""
    if not token_ids:
        raise InputError("from_text needs a non-empty text.")

    def init(rng: jax.Array, shape: tuple[int, int]) -> jax.Array:
        del rng
        _check_width(embedding, shape)
        ids = np.resize(np.asarray(token_ids), shape[0])
        return jnp.asarray(embedding, jnp.float32)[ids]

    return init


def from_file(path: str | os.PathLike) -> PromptInit:
    """Loads a `.npy` prompt and checks it has exactly the requested shape."""

    def init(rng: jax.Array, shape: tuple[int, int]) -> jax.Array:
        del rng
        prompt = load_prompt(path)
        if prompt.shape != tuple(shape):
            raise InputError(
                f"Prompt file {path} holds a prompt of shape {prompt.shape}, but this run "
                f"needs {tuple(shape)} (prompt length, d_model)."
            )
        return jnp.asarray(prompt)

    return init


def load_prompt(path: str | os.PathLike) -> np.ndarray:
    """Reads a `[P, d]` float prompt from `.npy`, refusing anything else."""
    try:
        prompt = np.load(path, allow_pickle=False)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"Prompt file {path} does not exist.") from e
    except ValueError as e:
        raise InputError(f"Prompt file {path} is not a readable .npy array: {e}") from e
    if isinstance(prompt, np.lib.npyio.NpzFile):
        with prompt:
            names = ", ".join(prompt.files)
        raise InputError(
            f"Prompt file {path} is a prompt method's .npz ({names}), not a [P, d] prompt (.npy). "
            "A multi-task file's row, np.load(path)['task_prompts'][t], saved as .npy is one."
        )
    if prompt.ndim != 2 or not np.issubdtype(prompt.dtype, np.floating):
        raise InputError(
            f"Prompt file {path} must hold a 2-D float array [P, d]; "
            f"got shape {prompt.shape} dtype {prompt.dtype}."
        )
    if not np.isfinite(prompt).all():
        raise InputError(f"Prompt file {path} contains NaN or Inf values.")
    return prompt.astype(np.float32)


def _check_width(embedding: jax.Array, shape: tuple[int, int]) -> None:
    if embedding.shape[1] != shape[1]:
        raise InputError(
            f"Prompt width {shape[1]} differs from the model's d_model {embedding.shape[1]}."
        )


PromptPosition = Literal["prefix", "prefix_after_bos", "suffix"]
POSITIONS: tuple[str, ...] = ("prefix", "prefix_after_bos", "suffix")


def _per_example(prompt: jnp.ndarray, batch: int) -> jnp.ndarray:
    """`[P, d]` or `[batch, P, d]` -> `[batch, P, d]`."""
    if prompt.ndim == 2:
        return jnp.broadcast_to(prompt[None], (batch, *prompt.shape))
    if prompt.ndim == 3 and prompt.shape[0] == batch:
        return prompt
    raise ValueError(
        f"prompt must be [P, d] or [batch={batch}, P, d]; got shape {tuple(prompt.shape)}."
    )


def combine(
    embedded: jnp.ndarray,
    input_mask: jnp.ndarray,
    prompt: jnp.ndarray,
    position: PromptPosition = "prefix",
) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Inserts the prompt into the embedded input and grows the mask by P.

    Args:
      embedded: `[batch, length, embed]` token embeddings.
      input_mask: `[batch, length]`, 1 for real tokens, 0 for padding (padding is
        at the end, as the feature converters produce it).
      prompt: `[P, embed]` shared by the batch, or `[batch, P, embed]` per example.
      position: "prefix" puts the prompt first (the paper's default);
        "prefix_after_bos" keeps the first token first; "suffix" puts it right
        after each example's last real token, so padding stays at the end.

    Returns:
      `([batch, P + length, embed], [batch, P + length])`; prompt rows are never masked.
    """
    if position not in POSITIONS:
        raise InputError(f"Unknown prompt position {position!r}; choose one of {POSITIONS}.")
    batch, length, _ = embedded.shape
    prompt = _per_example(prompt, batch).astype(embedded.dtype)
    num_prompt = prompt.shape[1]
    input_mask = input_mask.astype(jnp.int32)
    ones = jnp.ones((batch, num_prompt), jnp.int32)
    if position == "prefix":
        return (
            jnp.concatenate([prompt, embedded], axis=1),
            jnp.concatenate([ones, input_mask], axis=1),
        )
    if position == "prefix_after_bos":
        return (
            jnp.concatenate([embedded[:, :1], prompt, embedded[:, 1:]], axis=1),
            jnp.concatenate([input_mask[:, :1], ones, input_mask[:, 1:]], axis=1),
        )
    # Suffix: output slot j takes the input token j before each example's end,
    # the prompt row j - end inside the prompt span, and input token j - P after.
    ends = input_mask.sum(axis=1, keepdims=True)  # [batch, 1]
    slots = jnp.arange(length + num_prompt)[None, :]  # [1, P + length]
    in_prompt = (slots >= ends) & (slots < ends + num_prompt)
    token_index = jnp.where(slots < ends, slots, slots - num_prompt)
    token_index = jnp.clip(token_index, 0, length - 1)
    prompt_index = jnp.clip(slots - ends, 0, num_prompt - 1)
    tokens = jnp.take_along_axis(embedded, token_index[..., None], axis=1)
    prompts = jnp.take_along_axis(prompt, prompt_index[..., None], axis=1)
    combined = jnp.where(in_prompt[..., None], prompts, tokens)
    mask = jnp.where(in_prompt, 1, jnp.take_along_axis(input_mask, token_index, axis=1))
    return combined, mask

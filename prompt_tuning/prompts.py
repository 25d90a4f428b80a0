"""How a soft prompt `[P, d]` joins the embedded encoder input, and its masks.

Pure functions over arrays; the model calls `combine` right after the token
embedding, so everything downstream (relative positions, attention masks,
cross-attention) simply sees a longer input.
"""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp

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
        raise ValueError(f"Unknown prompt position {position!r}; choose one of {POSITIONS}.")
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

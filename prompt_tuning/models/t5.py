"""The T5 encoder-decoder (T5 1.0, T5 1.1, LM-adapted, mT5) with T5X parameter names.

`T5(config).apply({'params': params}, encoder_input_tokens, decoder_input_tokens,
prompt=None)` returns float32 logits. A soft prompt joins the input right after
the token embedding (`prompts.combine`), so the encoder, its relative positions
and the cross-attention mask all see the longer sequence.

The prompt-method family adds optional inputs, each `[...]` or `[batch, ...]`
(one per example), and nothing changes when they are absent:
- `layer_prompts [L_enc, P, d]` (deep prompts): a prompt region of P rows leads
  the encoder input; at the input of encoder layer i its first
  `layer_prompt_lengths[i]` rows are replaced by (or, with `layer_prompt_add`,
  added to) layer i's prompt, and the other prompt rows are hidden from that
  layer's attention. The decoder sees the rows the last layer holds.
- `encoder_prefix [L_enc, 2, P, heads, d_kv]`, `decoder_prefix [L_dec, ...]`
  (prefix tuning): keys and values prepended in every self-attention layer of
  a stack, at the P relative positions right before the sequence (HF's
  convention for a prefilled cache).

Layers are either separate modules `layers_0 … layers_{n-1}` (the T5X layout,
also used on disk) or, with `config.scan_layers`, one `nn.scan`ned module
`layers` whose parameters carry a leading 'layers' axis; `stack_layers` and
`unstack_layers` convert between the two layouts. The encoder and decoder
stacks themselves are in `models/stacks.py`.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from prompt_tuning import prompts
from prompt_tuning.models.config import T5Config
from prompt_tuning.models.layers import Embed
from prompt_tuning.models.stacks import (
    SCANNED_LAYERS,
    Decoder,
    Encoder,
    decoder_layer_inputs,
    encoder_layer_inputs,
)

Params = dict[str, Any]
STACKS = (("encoder", "num_encoder_layers"), ("decoder", "num_decoder_layers"))


class T5(nn.Module):
    """T5 encoder-decoder with an optional soft prompt on the encoder input.

    Parameters: `token_embedder`, `encoder`, `decoder` (T5X names).
    """

    config: T5Config

    def setup(self) -> None:
        self.token_embedder = Embed(self.config)
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config, shared_embedding=self.token_embedder)

    def encode(
        self,
        encoder_input_tokens: jax.Array,
        prompt: jax.Array | None = None,
        prompt_position: prompts.PromptPosition = "prefix",
        enable_dropout: bool = False,
        *,
        layer_prompts: jax.Array | None = None,
        layer_prompt_lengths: jax.Array | None = None,
        layer_prompt_add: jax.Array | None = None,
        encoder_prefix: jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """Embeds the input, inserts the prompt, and runs the encoder.

        Args:
          encoder_input_tokens: `[batch, length]` int ids, 0 = padding.
          prompt: `[P, embed]` or `[batch, P, embed]`, or None.
          prompt_position: where the prompt goes (see `prompts.combine`).
          enable_dropout: apply dropout (training).
          layer_prompts: deep prompts `[L, P, embed]` (instead of `prompt`), with
            `layer_prompt_lengths [L]` int (default P each) and
            `layer_prompt_add` bool (default False: replace); see the module docstring.
          encoder_prefix: prefix keys and values `[L, 2, P', heads, kv]`.

        Returns:
          `(encoded [batch, P + length, embed], encoder_mask [batch, P + length])`.
        """
        mask = (encoder_input_tokens > 0).astype(jnp.int32)
        embedded = self.token_embedder(encoder_input_tokens)
        if prompt is not None:
            embedded, mask = prompts.combine(embedded, mask, prompt, prompt_position)
        layer_inputs = encoder_layer_inputs(
            self.config,
            embedded.shape[0],
            layer_prompts,
            layer_prompt_lengths,
            layer_prompt_add,
            encoder_prefix,
        )
        encoder_mask = mask
        if "prompt" in layer_inputs:
            if prompt is not None:
                raise ValueError("layer_prompts bring their own input prompt; pass no `prompt`.")
            region = jnp.zeros(layer_inputs["prompt"].shape[2:], embedded.dtype)
            embedded, mask = prompts.combine(embedded, mask, region, "prefix")
            # Layers hide the prompt rows they do not hold; the decoder sees the last layer's.
            last = layer_inputs["active"][-1].astype(mask.dtype)
            encoder_mask = jnp.concatenate([last, mask[:, region.shape[0] :]], axis=1)
        encoded = self.encoder(
            embedded, mask, enable_dropout=enable_dropout, layer_inputs=layer_inputs
        )
        return encoded, encoder_mask

    def decode(
        self,
        encoded: jax.Array,
        encoder_mask: jax.Array,
        decoder_input_tokens: jax.Array,
        enable_dropout: bool = False,
        decode: bool = False,
        *,
        decoder_prefix: jax.Array | None = None,
    ) -> jax.Array:
        """`[batch, target_length]` tokens -> `[batch, target_length, vocab]` float32 logits.

        See `Decoder.__call__`; `decode=True` reads and updates the 'cache' collection.
        `decoder_prefix` `[L, 2, P, heads, kv]` (or per example) joins every
        self-attention layer.
        """
        layer_inputs = decoder_layer_inputs(self.config, encoded.shape[0], decoder_prefix)
        return self.decoder(
            decoder_input_tokens,
            encoded,
            encoder_mask,
            enable_dropout=enable_dropout,
            decode=decode,
            layer_inputs=layer_inputs,
        )

    def __call__(
        self,
        encoder_input_tokens: jax.Array,
        decoder_input_tokens: jax.Array,
        prompt: jax.Array | None = None,
        enable_dropout: bool = False,
        prompt_position: prompts.PromptPosition = "prefix",
        *,
        decoder_prefix: jax.Array | None = None,
        **encoder_inputs: jax.Array | None,
    ) -> jax.Array:
        """Teacher-forced logits.

        Args:
          encoder_input_tokens: `[batch, input_length]`, 0 = padding.
          decoder_input_tokens: `[batch, target_length]`, the targets shifted right
            (first token 0).
          prompt: `[P, embed]` or `[batch, P, embed]`, or None.
          enable_dropout: apply dropout (needs a 'dropout' rng).
          prompt_position: "prefix", "prefix_after_bos" or "suffix".
          decoder_prefix: see `decode`.
          **encoder_inputs: the keyword inputs of `encode` (deep prompts, encoder prefix).

        Returns:
          `[batch, target_length, vocab]` float32 logits.
        """
        encoded, mask = self.encode(
            encoder_input_tokens, prompt, prompt_position, enable_dropout, **encoder_inputs
        )
        return self.decode(
            encoded,
            mask,
            decoder_input_tokens,
            enable_dropout=enable_dropout,
            decoder_prefix=decoder_prefix,
        )


def _dummy_inputs() -> tuple[jax.Array, jax.Array]:
    return jnp.ones((1, 1), jnp.int32), jnp.zeros((1, 1), jnp.int32)


def _abstract_variables(config: T5Config) -> Any:
    return jax.eval_shape(lambda: T5(config).init(jax.random.key(0), *_dummy_inputs()))


def param_shapes(config: T5Config) -> Params:
    """`jax.ShapeDtypeStruct` of every parameter in the T5X layout, without allocating any."""
    variables = _abstract_variables(config.replace(scan_layers=False))
    return nn.meta.unbox(variables["params"])


def logical_axes(config: T5Config, scanned: bool = False) -> Params:
    """Logical `PartitionSpec` of every parameter, without allocating any.

    Args:
      config: the model.
      scanned: False (default) for the T5X layout (`layers_i`, as `init_params`
        and checkpoints), True for the `stack_layers` layout (leading 'layers' axis).

    Returns:
      A tree shaped like the params whose leaves are `PartitionSpec`s of logical
      names, e.g. `PartitionSpec('embed', 'mlp')` for `mlp/wi_0/kernel`.
    """
    variables = _abstract_variables(config.replace(scan_layers=scanned))
    return nn.get_partition_spec(variables)["params"]


@functools.partial(jax.jit, static_argnums=0)
def _init(config: T5Config, rng: jax.Array) -> Params:
    # Jitted once per config: compiling the initialisers dominates for small models.
    variables = T5(config).init(rng, *_dummy_inputs())
    return nn.meta.unbox(variables["params"])


def init_params(config: T5Config, rng: jax.Array) -> Params:
    """Random parameters in the T5X layout (`layers_i`), held in `config.param_dtype`."""
    return _init(config.replace(scan_layers=False), rng)


def _layer_names(stack: Params, expected: int, where: str) -> list[str]:
    """The `layers_i` keys of a stack, checked to be exactly `layers_0 … layers_{expected-1}`."""
    names = sorted(
        (k for k in stack if k.startswith("layers_")), key=lambda k: int(k.removeprefix("layers_"))
    )
    if names != [f"layers_{i}" for i in range(expected)]:
        raise ValueError(
            f"{where} holds layers {names}, but the config asks for layers_0 … layers_{expected - 1}."
        )
    return names


def stack_layers(params: Params, config: T5Config) -> Params:
    """T5X layout (`encoder/layers_i/...`) -> scanned layout (`encoder/layers/...`, leading axis).

    Pure: returns a new tree; leaves keep their dtype.
    """
    out = dict(params)
    for stack, count_field in STACKS:
        tree = dict(params[stack])
        names = _layer_names(tree, getattr(config, count_field), stack)
        layers = [tree.pop(name) for name in names]
        tree[SCANNED_LAYERS] = jax.tree.map(lambda *xs: jnp.stack(xs), *layers)
        out[stack] = tree
    return out


def unstack_layers(params: Params, config: T5Config) -> Params:
    """Scanned layout (`encoder/layers/...`) -> T5X layout (`encoder/layers_i/...`)."""
    out = dict(params)
    for stack, count_field in STACKS:
        tree = dict(params[stack])
        if SCANNED_LAYERS not in tree:
            raise ValueError(
                f"{stack} has no scanned '{SCANNED_LAYERS}' subtree; keys: {sorted(tree)}."
            )
        stacked = tree.pop(SCANNED_LAYERS)
        count = getattr(config, count_field)
        leading = {x.shape[0] for x in jax.tree.leaves(stacked)}
        if leading != {count}:
            raise ValueError(
                f"{stack}/{SCANNED_LAYERS} has leading axis sizes {sorted(leading)}, "
                f"but the config has {count} layers."
            )
        for i in range(count):
            tree[f"layers_{i}"] = jax.tree.map(lambda x, i=i: x[i], stacked)
        out[stack] = tree
    return out

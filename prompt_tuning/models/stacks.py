"""The encoder and decoder stacks of `T5` (`models/t5.py`).

Each stack runs its layers as separate `layers_i` modules or, with
`config.scan_layers`, one `nn.scan`ned `layers` module, optionally rematerialised
(`config.remat_policy`). Per-layer inputs (deep prompts, prefix keys and values)
are arrays with a leading layer axis that each layer slices; `encoder_layer_inputs`
and `decoder_layer_inputs` build them from `T5`'s optional inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning.errors import InputError
from prompt_tuning.models.config import T5Config
from prompt_tuning.models.layers import (
    EMBED,
    Dense,
    Embed,
    MlpBlock,
    MultiHeadAttention,
    RelativePositionBias,
    RMSNorm,
    mask_to_bias,
)

# Per-layer inputs of a stack: arrays with a leading layer axis (sliced per layer inside it).
LayerInputs = Mapping[str, jax.Array]

REMAT_POLICIES = {
    "full": None,  # save nothing: recompute the whole layer in the backward pass
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.checkpoint_dots_with_no_batch_dims,
}
SCANNED_LAYERS = "layers"


def _residual_dropout(config: T5Config, x: jax.Array, deterministic: bool) -> jax.Array:
    # T5X drops whole embedding channels, the same ones at every position.
    return nn.Dropout(config.dropout_rate, broadcast_dims=(-2,))(x, deterministic=deterministic)


class EncoderLayer(nn.Module):
    """Pre-norm self-attention then MLP, each with a residual connection."""

    config: T5Config
    deterministic: bool = True

    @nn.compact
    def __call__(
        self,
        x: jax.Array,
        position_bias: jax.Array,
        mask_bias: jax.Array,
        layer_inputs: LayerInputs,
    ) -> tuple[jax.Array, None]:
        """One encoder layer.

        Args:
          x: `[batch, length, embed]`.
          position_bias: relative positions, `[1, heads, length, k]`, with
            `k = P_prefix + length`.
          mask_bias: padding mask, `[batch, 1, 1, k]`.
          layer_inputs: this layer's slice of `encoder_layer_inputs` (may be empty).

        Returns:
          `(x, None)`, a scannable `(carry, output)` pair.
        """
        cfg, det = self.config, self.deterministic
        prefix = layer_inputs.get("prefix")
        if "prompt" in layer_inputs:
            num_prefix = 0 if prefix is None else prefix.shape[2]
            x, mask_bias = _enter_layer_prompt(x, mask_bias, layer_inputs, num_prefix)
        h = RMSNorm(cfg, name="pre_attention_layer_norm")(x)
        h = MultiHeadAttention(cfg, det, name="attention")(
            h, h, (position_bias, mask_bias), prefix=prefix
        )
        x = x + _residual_dropout(cfg, h, det)
        h = RMSNorm(cfg, name="pre_mlp_layer_norm")(x)
        h = MlpBlock(cfg, det, name="mlp")(h)
        x = x + _residual_dropout(cfg, h, det)
        return nn.with_logical_constraint(x, EMBED), None


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the encoder, then MLP."""

    config: T5Config
    deterministic: bool = True
    decode: bool = False

    @nn.compact
    def __call__(
        self,
        y: jax.Array,
        encoded: jax.Array,
        self_bias: jax.Array,
        cross_bias: jax.Array,
        decode_position: jax.Array | None,
        layer_inputs: LayerInputs,
    ) -> tuple[jax.Array, None]:
        """One decoder layer.

        Args:
          y: `[batch, target_length, embed]`.
          encoded: `[batch, input_length, embed]`.
          self_bias: causal mask + relative positions, `[1, heads, target_length, k]`.
          cross_bias: encoder padding mask, `[batch, 1, 1, input_length]`.
          decode_position: the position written to the cache in a decoding step.
          layer_inputs: `{"prefix": [batch, 2, P, heads, kv]}` or empty; with a
            prefix, `self_bias` covers `P + k` keys.

        Returns:
          `(y, None)`, a scannable `(carry, output)` pair.
        """
        cfg, det = self.config, self.deterministic
        h = RMSNorm(cfg, name="pre_self_attention_layer_norm")(y)
        h = MultiHeadAttention(cfg, det, self.decode, name="self_attention")(
            h, h, (self_bias,), decode_position, prefix=layer_inputs.get("prefix")
        )
        y = y + _residual_dropout(cfg, h, det)
        h = RMSNorm(cfg, name="pre_cross_attention_layer_norm")(y)
        h = MultiHeadAttention(cfg, det, self.decode, cross=True, name="encoder_decoder_attention")(
            h, encoded, (cross_bias,)
        )
        y = y + _residual_dropout(cfg, h, det)
        h = RMSNorm(cfg, name="pre_mlp_layer_norm")(y)
        h = MlpBlock(cfg, det, name="mlp")(h)
        y = y + _residual_dropout(cfg, h, det)
        return nn.with_logical_constraint(y, EMBED), None


def _apply_layers(
    layer_cls: type[nn.Module],
    config: T5Config,
    num_layers: int,
    x: jax.Array,
    *args: Any,
    per_layer: LayerInputs,
    **layer_fields: Any,
) -> jax.Array:
    """Runs `num_layers` layers, as `layers_i` modules or one scanned `layers` module.

    `args` go to every layer; layer i also gets `per_layer` sliced at i along
    its leading axis. Must be called inside a compact method: the layers become
    its children.
    """
    if config.remat_policy != "none":
        if config.remat_policy not in REMAT_POLICIES:
            raise InputError(
                f"Unknown remat_policy {config.remat_policy!r}; "
                f"choose 'none' or one of {sorted(REMAT_POLICIES)}."
            )
        # Inside scan, CSE cannot undo the rematerialisation, so its guard is not needed.
        layer_cls = nn.remat(
            layer_cls,
            policy=REMAT_POLICIES[config.remat_policy],
            prevent_cse=not config.scan_layers,
        )
    if config.scan_layers:
        scanned = nn.scan(
            layer_cls,
            variable_axes={"params": 0, "cache": 0},
            split_rngs={"params": True, "dropout": True},
            in_axes=(nn.broadcast,) * len(args) + (0,),
            length=num_layers,
            metadata_params={nn.PARTITION_NAME: "layers"},
        )
        x, _ = scanned(config, name=SCANNED_LAYERS, **layer_fields)(x, *args, per_layer)
        return x
    for i in range(num_layers):
        layer_inputs = {k: v[i] for k, v in per_layer.items()}
        x, _ = layer_cls(config, name=f"layers_{i}", **layer_fields)(x, *args, layer_inputs)
    return x


def _enter_layer_prompt(
    x: jax.Array, mask_bias: jax.Array, layer_inputs: LayerInputs, num_prefix: int
) -> tuple[jax.Array, jax.Array]:
    """Writes a layer's deep prompt into the leading rows of `x`; hides the rows it does not hold.

    Args:
      x: `[batch, length, embed]` whose first P rows are the prompt region.
      mask_bias: `[batch, 1, 1, num_prefix + length]`.
      layer_inputs: `prompt [batch, P, embed]`, `active [batch, P]` (rows this
        layer holds) and `add [batch]` (add to the rows instead of replacing them).
      num_prefix: prefix keys in front of `x`'s keys.

    Returns:
      The new `x` and `mask_bias`.
    """
    prompt, active, add = layer_inputs["prompt"], layer_inputs["active"], layer_inputs["add"]
    num_prompt = prompt.shape[1]
    rows = x[:, :num_prompt]
    written = jnp.where(add[:, None, None], rows + prompt.astype(x.dtype), prompt.astype(x.dtype))
    rows = jnp.where(active[..., None], written, rows)
    hidden = jnp.pad(mask_to_bias(active), ((0, 0), (num_prefix, x.shape[1] - num_prompt)))
    return jnp.concatenate([rows, x[:, num_prompt:]], axis=1), mask_bias + hidden[:, None, None]


def _per_example(x: jax.Array, batch: int, rank: int, name: str) -> jax.Array:
    """`x` shared by the batch (`rank` dims) or per example (`rank + 1`) -> per example."""
    x = jnp.asarray(x)
    if x.ndim == rank:
        return jnp.broadcast_to(x, (batch, *x.shape))
    if x.ndim == rank + 1 and x.shape[0] == batch:
        return x
    raise ValueError(
        f"{name} must have {rank} dims, or {rank + 1} with batch {batch} first; got {x.shape}."
    )


def _check_layers(x: jax.Array, num_layers: int, name: str) -> None:
    if x.shape[1] != num_layers:
        raise ValueError(f"{name} holds {x.shape[1]} layers; the stack has {num_layers}.")


def encoder_layer_inputs(
    config: T5Config,
    batch: int,
    layer_prompts: jax.Array | None = None,
    layer_prompt_lengths: jax.Array | None = None,
    layer_prompt_add: jax.Array | None = None,
    encoder_prefix: jax.Array | None = None,
) -> LayerInputs:
    """Per-layer encoder inputs, layer-major and per example (see the module docstring).

    Returns:
      `{"prompt": [L, batch, P, d], "active": [L, batch, P], "add": [L, batch],
      "prefix": [L, batch, 2, P', heads, kv]}`, each key only when its input is given.
    """
    out = {}
    if encoder_prefix is not None:
        out["prefix"] = _per_example(encoder_prefix, batch, 5, "encoder_prefix")
    if layer_prompts is not None:
        out["prompt"] = _per_example(layer_prompts, batch, 3, "layer_prompts")
        num_layers, num_prompt = out["prompt"].shape[1:3]
        if layer_prompt_lengths is None:
            layer_prompt_lengths = jnp.full((num_layers,), num_prompt)
        lengths = _per_example(layer_prompt_lengths, batch, 1, "layer_prompt_lengths")
        out["active"] = jnp.arange(num_prompt) < lengths[..., None]
        add = False if layer_prompt_add is None else layer_prompt_add
        out["add"] = jnp.broadcast_to(
            _per_example(add, batch, 0, "layer_prompt_add")[:, None], (batch, num_layers)
        )
    for name, x in out.items():
        _check_layers(x, config.num_encoder_layers, name)
    return {k: jnp.moveaxis(v, 1, 0) for k, v in out.items()}


def decoder_layer_inputs(
    config: T5Config, batch: int, decoder_prefix: jax.Array | None = None
) -> LayerInputs:
    """Per-layer decoder inputs: `{"prefix": [L, batch, 2, P, heads, kv]}`, or `{}`.

    `decoder_prefix` is `[L, 2, P, heads, kv]` or per example `[batch, L, ...]`.
    """
    if decoder_prefix is None:
        return {}
    prefix = _per_example(decoder_prefix, batch, 5, "decoder_prefix")
    _check_layers(prefix, config.num_decoder_layers, "decoder_prefix")
    return {"prefix": jnp.moveaxis(prefix, 1, 0)}


def _prefix_key_positions(key_positions: jax.Array, layer_inputs: LayerInputs) -> jax.Array:
    """Key positions `[k]` preceded by those of the P prefix keys (-P … -1), if any."""
    num_prefix = layer_inputs["prefix"].shape[3] if "prefix" in layer_inputs else 0
    return jnp.concatenate([jnp.arange(-num_prefix, 0), key_positions])


class Encoder(nn.Module):
    """Embedded input (prompt included) -> encoded sequence."""

    config: T5Config

    @nn.compact
    def __call__(
        self,
        embedded: jax.Array,
        input_mask: jax.Array,
        enable_dropout: bool = False,
        layer_inputs: LayerInputs | None = None,
    ) -> jax.Array:
        """`[batch, length, embed]`, mask `[batch, length]` -> `[batch, length, embed]`.

        `layer_inputs` come from `encoder_layer_inputs`.
        """
        cfg, det = self.config, not enable_dropout
        layer_inputs = layer_inputs or {}
        positions = jnp.arange(embedded.shape[1])
        key_positions = _prefix_key_positions(positions, layer_inputs)
        relpos = RelativePositionBias(cfg, bidirectional=True, name="relpos_bias")
        position_bias = relpos(positions, key_positions)
        # Padding is masked as keys only: padded query rows are never read downstream.
        prefix_mask = jnp.ones((input_mask.shape[0], len(key_positions) - len(positions)))
        key_mask = jnp.concatenate([prefix_mask.astype(input_mask.dtype), input_mask], axis=1)
        mask_bias = mask_to_bias(key_mask[:, None, None, :])
        x = _residual_dropout(cfg, embedded, det)
        x = nn.with_logical_constraint(x, EMBED)
        x = _apply_layers(
            EncoderLayer,
            cfg,
            cfg.num_encoder_layers,
            x,
            position_bias,
            mask_bias,
            per_layer=layer_inputs,
            deterministic=det,
        )
        x = RMSNorm(cfg, name="encoder_norm")(x)
        return _residual_dropout(cfg, x, det)


class Decoder(nn.Module):
    """Target tokens + encoded input -> float32 logits, optionally one cached step at a time."""

    config: T5Config
    shared_embedding: Embed

    def _positions(self, length: int, decode: bool) -> tuple[jax.Array, jax.Array]:
        """Query and key positions; in a decoding step, one query over the whole cache."""
        if not decode:
            positions = jnp.arange(length)
            return positions, positions
        initialized = self.has_variable("cache", "index")
        index = self.variable("cache", "index", lambda: jnp.zeros((), jnp.int32))
        key_positions = self.variable("cache", "key_positions", lambda: jnp.arange(length))
        if not initialized:
            # The call that creates the cache runs the full target length.
            return key_positions.value, key_positions.value
        if length != 1:
            raise ValueError(f"A cached decoding step takes one token per row; got {length}.")
        query_positions = index.value[None]
        index.value = index.value + 1
        return query_positions, key_positions.value

    @nn.compact
    def __call__(
        self,
        decoder_input_tokens: jax.Array,
        encoded: jax.Array,
        encoder_mask: jax.Array,
        enable_dropout: bool = False,
        decode: bool = False,
        layer_inputs: LayerInputs | None = None,
    ) -> jax.Array:
        """Decoder logits.

        Args:
          decoder_input_tokens: `[batch, target_length]`, starting with 0 (BOS);
            `[batch, 1]` in a cached decoding step.
          encoded: `[batch, input_length, embed]`.
          encoder_mask: `[batch, input_length]`, 1 for real inputs (and prompt rows).
          enable_dropout: apply dropout (training).
          decode: use the 'cache' collection (see `MultiHeadAttention`).
          layer_inputs: `{"prefix": [L, batch, 2, P, heads, kv]}` or None.

        Returns:
          `[batch, target_length, vocab]` float32 logits.
        """
        cfg, det = self.config, not enable_dropout
        layer_inputs = layer_inputs or {}
        query_positions, key_positions = self._positions(decoder_input_tokens.shape[1], decode)
        key_positions = _prefix_key_positions(key_positions, layer_inputs)
        relpos = RelativePositionBias(cfg, bidirectional=False, name="relpos_bias")
        causal = key_positions[None, :] <= query_positions[:, None]
        self_bias = relpos(query_positions, key_positions) + mask_to_bias(causal)[None, None]
        cross_bias = mask_to_bias(encoder_mask[:, None, None, :])
        decode_position = query_positions[0] if decode else None

        y = self.shared_embedding(decoder_input_tokens)
        y = _residual_dropout(cfg, y, det)
        y = nn.with_logical_constraint(y, EMBED)
        y = _apply_layers(
            DecoderLayer,
            cfg,
            cfg.num_decoder_layers,
            y,
            encoded,
            self_bias,
            cross_bias,
            decode_position,
            per_layer=layer_inputs,
            deterministic=det,
            decode=decode,
        )
        y = RMSNorm(cfg, name="decoder_norm")(y)
        y = _residual_dropout(cfg, y, det)
        if cfg.logits_via_embedding:
            # Tied embeddings: rescale so logits keep unit scale (T5 1.0, as Mesh TF).
            logits = self.shared_embedding.attend(y) / np.sqrt(cfg.d_model)
        else:
            logits = Dense(cfg, cfg.vocab_size, ("embed", "vocab"), name="logits_dense")(y)
        logits = nn.with_logical_constraint(logits, ("batch", "length", "vocab"))
        return logits.astype(jnp.float32)

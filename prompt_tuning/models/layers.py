"""The building blocks of T5: RMSNorm, dense kernels, embeddings, relative
position biases, multi-head attention with a decoding cache, and the MLP.

Parameter names and shapes follow T5X exactly (`kernel`, `scale`, `embedding`,
`rel_embedding`), every parameter carries logical axis names, and activations
are constrained to logical axes, so `partitioning.DEFAULT_RULES` shard them.
Parameters are held in `config.param_dtype` and cast to `config.dtype` for compute.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from prompt_tuning.errors import InputError
from prompt_tuning.models.config import T5Config

Initializer = Callable[..., jax.Array]

# Added to attention logits where a key must not be attended to. Finite, so a
# row with every key masked (padding queries) gives uniform weights, not NaN.
NEG_INF = -1e10

EMBED = ("batch", "length", "embed")
HEADS = ("batch", "length", "heads", "kv")
MLP = ("batch", "length", "mlp")

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": nn.relu,
    # T5 1.1 / mT5 use the tanh approximation of GELU (HF's "gelu_new").
    "gelu": lambda x: nn.gelu(x, approximate=True),
    "silu": nn.silu,
    "linear": lambda x: x,
}

# T5X initialisers: fan-in scaled kernels, unit-variance embeddings.
DEFAULT_KERNEL_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
ATTENTION_KERNEL_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "normal")
EMBEDDING_INIT = nn.initializers.normal(stddev=1.0)
RELPOS_INIT = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")


def mask_to_bias(mask: jax.Array) -> jax.Array:
    """Turns a 0/1 (or bool) attention mask into an additive float32 bias."""
    return jnp.where(mask > 0, 0.0, NEG_INF).astype(jnp.float32)


class RMSNorm(nn.Module):
    """T5 layer norm: scale only, no mean subtraction, no bias; float32 inside."""

    config: T5Config

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """`[..., embed]` -> `[..., embed]` in `config.dtype`."""
        scale = self.param(
            "scale",
            nn.with_logical_partitioning(nn.initializers.ones, ("embed",)),
            (x.shape[-1],),
            jnp.dtype(self.config.param_dtype),
        )
        x = x.astype(jnp.float32)
        variance = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
        y = x * lax.rsqrt(variance + self.config.layer_norm_epsilon)
        return (y * scale.astype(jnp.float32)).astype(jnp.dtype(self.config.dtype))


class Dense(nn.Module):
    """A bias-free `[in, out]` kernel with logical axis names (T5X DenseGeneral)."""

    config: T5Config
    features: int
    kernel_axes: tuple[str, str]
    kernel_init: Initializer = DEFAULT_KERNEL_INIT

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """`[..., in]` -> `[..., features]` in `config.dtype`."""
        kernel = self.param(
            "kernel",
            nn.with_logical_partitioning(self.kernel_init, self.kernel_axes),
            (x.shape[-1], self.features),
            jnp.dtype(self.config.param_dtype),
        )
        dtype = jnp.dtype(self.config.dtype)
        return jnp.dot(x.astype(dtype), kernel.astype(dtype))


class Embed(nn.Module):
    """The token embedding `[vocab, embed]`, shared by encoder, decoder and tied logits."""

    config: T5Config

    def setup(self) -> None:
        self.embedding = self.param(
            "embedding",
            nn.with_logical_partitioning(EMBEDDING_INIT, ("vocab", "embed")),
            (self.config.vocab_size, self.config.d_model),
            jnp.dtype(self.config.param_dtype),
        )

    def __call__(self, ids: jax.Array) -> jax.Array:
        """`[batch, length]` int ids -> `[batch, length, embed]`."""
        embedded = jnp.take(self.embedding, ids, axis=0).astype(jnp.dtype(self.config.dtype))
        return nn.with_logical_constraint(embedded, EMBED)

    def attend(self, query: jax.Array) -> jax.Array:
        """`[batch, length, embed]` -> `[batch, length, vocab]` (dot with every embedding)."""
        dtype = jnp.dtype(self.config.dtype)
        return jnp.dot(query.astype(dtype), self.embedding.astype(dtype).T)


def relative_position_bucket(
    relative_position: jax.Array, bidirectional: bool, num_buckets: int, max_distance: int
) -> jax.Array:
    """Maps `key_position - query_position` to T5's relative-attention buckets.

    Half of the buckets (per direction when bidirectional) hold exact distances;
    the rest grow logarithmically up to `max_distance`, beyond which all
    distances share the last bucket. Causal stacks give every future position
    (positive offset) bucket 0; the causal mask hides them anyway.

    Args:
      relative_position: int array of any shape.
      bidirectional: True in the encoder, False in the decoder.
      num_buckets: total number of buckets.
      max_distance: distance from which everything falls in the last bucket.

    Returns:
      int32 array of the same shape with values in `[0, num_buckets)`.
    """
    buckets = jnp.zeros_like(relative_position, dtype=jnp.int32)
    if bidirectional:
        num_buckets //= 2
        buckets += (relative_position > 0).astype(jnp.int32) * num_buckets
        distance = jnp.abs(relative_position)
    else:
        distance = -jnp.minimum(relative_position, 0)
    max_exact = num_buckets // 2
    is_small = distance < max_exact
    # float32 like Mesh TensorFlow and HF, so bucket edges agree bit for bit;
    # the max() only keeps log() finite where the small branch is taken anyway.
    log_ratio = jnp.log(jnp.maximum(distance, 1).astype(jnp.float32) / max_exact)
    log_scale = math.log(max_distance / max_exact)
    large = max_exact + (log_ratio / log_scale * (num_buckets - max_exact)).astype(jnp.int32)
    large = jnp.minimum(large, num_buckets - 1)
    return buckets + jnp.where(is_small, distance, large)


class RelativePositionBias(nn.Module):
    """One learned scalar per (head, bucket), shared by every layer of a stack."""

    config: T5Config
    bidirectional: bool

    @nn.compact
    def __call__(self, query_positions: jax.Array, key_positions: jax.Array) -> jax.Array:
        """`[q]`, `[k]` positions -> bias `[1, heads, q, k]` in float32."""
        cfg = self.config
        table = self.param(
            "rel_embedding",
            nn.with_logical_partitioning(RELPOS_INIT, ("heads", "relpos_buckets")),
            (cfg.num_heads, cfg.relative_attention_num_buckets),
            jnp.dtype(cfg.param_dtype),
        )
        buckets = relative_position_bucket(
            key_positions[None, :] - query_positions[:, None],
            self.bidirectional,
            cfg.relative_attention_num_buckets,
            cfg.relative_attention_max_distance,
        )
        bias = jnp.take(table.astype(jnp.float32), buckets, axis=1)  # [heads, q, k]
        return bias[None]


class MultiHeadAttention(nn.Module):
    """T5 attention: no 1/sqrt(d_kv) (folded into the query init), additive bias.

    With `decode=True` it keeps keys and values in the 'cache' collection. The
    first call (with the full-length input) creates the cache; later calls take
    one query position. Self-attention (`cross=False`) writes the new key/value
    at `decode_position`; cross-attention projects the encoder output once at
    cache creation and reuses it for every step.
    """

    config: T5Config
    deterministic: bool = True
    decode: bool = False
    cross: bool = False

    def _dense(self, name: str, features: int, axes: tuple[str, str], init: Initializer) -> Dense:
        return Dense(self.config, features, axes, init, name=name)

    def _heads(self, name: str, x: jax.Array, init: Initializer) -> jax.Array:
        """`[batch, length, embed]` -> `[batch, length, heads, kv]`."""
        cfg = self.config
        y = self._dense(name, cfg.num_heads * cfg.d_kv, ("embed", "joined_kv"), init)(x)
        y = y.reshape(*y.shape[:-1], cfg.num_heads, cfg.d_kv)
        return nn.with_logical_constraint(y, HEADS)

    def _cached_key_value(
        self,
        key_value: Callable[[], tuple[jax.Array, jax.Array]],
        decode_position: jax.Array | None,
    ) -> tuple[jax.Array, jax.Array]:
        """Keys and values `[batch, cache_length, heads, kv]` read from / written to the cache."""
        if self.cross and self.has_variable("cache", "cached_key"):
            # Projected once, when the cache was created.
            return self.get_variable("cache", "cached_key"), self.get_variable(
                "cache", "cached_value"
            )
        new_key, new_value = key_value()
        if not self.has_variable("cache", "cached_key"):
            # Creating the cache (full target length): cross-attention keeps its
            # keys/values, self-attention gets zero slots; attend over the inputs.
            keep = (lambda x: x) if self.cross else jnp.zeros_like
            self.put_variable("cache", "cached_key", keep(new_key))
            self.put_variable("cache", "cached_value", keep(new_value))
            return new_key, new_value
        if new_key.shape[1] != 1:
            raise ValueError(
                f"Cached self-attention decodes one position at a time; got {new_key.shape[1]}."
            )
        start = (0, decode_position, 0, 0)
        key = lax.dynamic_update_slice(self.get_variable("cache", "cached_key"), new_key, start)
        value = lax.dynamic_update_slice(
            self.get_variable("cache", "cached_value"), new_value, start
        )
        self.put_variable("cache", "cached_key", key)
        self.put_variable("cache", "cached_value", value)
        return key, value

    @nn.compact
    def __call__(
        self,
        inputs_q: jax.Array,
        inputs_kv: jax.Array,
        biases: tuple[jax.Array, ...],
        decode_position: jax.Array | None = None,
        prefix: jax.Array | None = None,
    ) -> jax.Array:
        """Attends from `inputs_q` to `inputs_kv`.

        Args:
          inputs_q: `[batch, q_length, embed]`.
          inputs_kv: `[batch, kv_length, embed]`.
          biases: additive float32 biases, each broadcastable to
            `[batch, heads, q_length, k_length]` (masks, relative positions), with
            `k_length` the cache length when decoding. Kept apart so that a
            `[batch, 1, 1, k]` mask and a `[1, heads, q, k]` position bias are only
            combined inside the fused logits computation.
          decode_position: the position being decoded (self-attention steps only).
          prefix: prefix tuning's keys and values `[batch, 2, P, heads, kv]`,
            attended before the projected ones; `biases` then cover `P + k_length`
            keys.

        Returns:
          `[batch, q_length, embed]`.
        """
        cfg = self.config
        # Query scaled by 1/sqrt(d_kv) at init rather than in the forward pass (as T5X).
        depth_scaling = cfg.d_kv**0.5
        query = self._heads("query", inputs_q, lambda *a: ATTENTION_KERNEL_INIT(*a) / depth_scaling)

        def key_value() -> tuple[jax.Array, jax.Array]:
            return (
                self._heads("key", inputs_kv, ATTENTION_KERNEL_INIT),
                self._heads("value", inputs_kv, ATTENTION_KERNEL_INIT),
            )

        if self.decode:
            key, value = self._cached_key_value(key_value, decode_position)
        else:
            key, value = key_value()
        if prefix is not None:
            prefix = prefix.astype(key.dtype)
            key = jnp.concatenate([prefix[:, 0], key], axis=1)
            value = jnp.concatenate([prefix[:, 1], value], axis=1)

        # Under remat, chosen to save memory, jax's fused attention needs 5.5 GiB more
        # for a T5 1.1 XXL step in bfloat16 than the spelled-out form, which keeps the
        # softmax weights in the activation dtype (benchmarks/memory.py: 78.7 against
        # 73.2 GiB). Without remat the fused form is the faster one (docs/performance.md).
        fused = cfg.remat_policy == "none" and (self.deterministic or cfg.dropout_rate == 0.0)
        if fused:
            out = _fused_attention(query, key, value, biases)
        else:  # dropout on the attention weights, or remat
            logits = jnp.einsum("bqhd,bkhd->bhqk", query, key).astype(jnp.float32)
            for bias in biases:
                logits = logits + bias
            weights = jax.nn.softmax(logits, axis=-1).astype(jnp.dtype(cfg.dtype))
            weights = nn.Dropout(cfg.dropout_rate)(weights, deterministic=self.deterministic)
            out = jnp.einsum("bhqk,bkhd->bqhd", weights, value)
        out = nn.with_logical_constraint(out, HEADS)
        out = out.reshape(*out.shape[:2], cfg.num_heads * cfg.d_kv)
        return self._dense("out", cfg.d_model, ("joined_kv", "embed"), ATTENTION_KERNEL_INIT)(out)


def _fused_attention(
    query: jax.Array, key: jax.Array, value: jax.Array, biases: tuple[jax.Array, ...]
) -> jax.Array:
    """`jax.nn.dot_product_attention` with T5's additive biases and no 1/sqrt(d) scaling.

    `[batch, q, heads, kv]` queries against `[batch, k, heads, kv]` keys and values,
    softmax in float32. On CPU, XLA runs it about twice as fast as the same einsums
    written out (benchmarks/attention.py).
    """
    shape = (query.shape[0], query.shape[2], query.shape[1], key.shape[1])
    bias = jnp.broadcast_to(functools.reduce(jnp.add, biases), shape)
    return jax.nn.dot_product_attention(query, key, value, bias=bias, scale=1.0)


class MlpBlock(nn.Module):
    """`wo(act_0(wi_0 x) * act_1(wi_1 x) * ...)`; one activation gives the plain `wi`."""

    config: T5Config
    deterministic: bool = True

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """`[batch, length, embed]` -> `[batch, length, embed]`."""
        cfg = self.config
        activations = cfg.mlp_activations
        hidden = None
        for i, name in enumerate(activations):
            if name not in ACTIVATIONS:
                raise InputError(
                    f"Unknown MLP activation {name!r} in {activations}; known: {sorted(ACTIVATIONS)}."
                )
            dense_name = "wi" if len(activations) == 1 else f"wi_{i}"
            h = ACTIVATIONS[name](Dense(cfg, cfg.d_ff, ("embed", "mlp"), name=dense_name)(x))
            hidden = h if hidden is None else hidden * h
        hidden = nn.with_logical_constraint(hidden, MLP)
        hidden = nn.Dropout(cfg.dropout_rate, broadcast_dims=(-2,))(
            hidden, deterministic=self.deterministic
        )
        out = Dense(cfg, cfg.d_model, ("mlp", "embed"), name="wo")(hidden)
        return nn.with_logical_constraint(out, EMBED)

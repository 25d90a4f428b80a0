"""Hugging Face T5 names and `config.json` keys <-> T5X parameter names and `T5Config`.

Pure mapping, no file I/O (that is `hf_files.py`). Values are only indexed,
transposed (`.T`) and shape-checked, never read, so lazily loaded tensors stay
on disk until the caller materialises them.

HF stores torch `Linear` weights as `[out, in]`; T5X kernels are `[in, out]`.
The relative-attention table lives in block 0 of each stack as
`[buckets, heads]`; T5X holds it as `[heads, buckets]`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from prompt_tuning.models.config import T5Config
from prompt_tuning.models.t5 import param_shapes

Path = tuple[str, ...]

# HF feed_forward_proj <-> T5X mlp_activations ("gated-gelu" is HF's tanh-approximate GELU).
_FEED_FORWARD = {"relu": ("relu",), "gated-gelu": ("gelu", "linear")}
_MODEL_TYPES = ("t5", "mt5")
# Copies of `shared.weight` (T5 has one embedding table); present in some saves.
_EMBEDDING_COPIES = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")
# Written by old transformers versions, never used by the model (HF ignores it too).
_UNUSED_KEYS = ("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",)
_ATTENTION = (("q", "query"), ("k", "key"), ("v", "value"), ("o", "out"))


def config_from_hf_dict(d: Mapping[str, Any], **options: Any) -> T5Config:
    """Builds a `T5Config` from the contents of an HF T5 / mT5 `config.json`.

    Only the architecture is read: `dropout_rate` is a training choice (T5X
    checkpoints cannot tell it either), so it stays the config default unless
    given in `options`. Missing optional keys take HF's defaults.

    Args:
      d: the parsed `config.json`.
      **options: execution fields (dtype, remat_policy, ...) that the file cannot tell.

    Raises:
      ValueError: naming the key when a required key is missing or a value is unsupported.
    """
    model_type = d.get("model_type", "t5")
    if model_type not in _MODEL_TYPES:
        raise ValueError(f"config.json model_type {model_type!r} is not one of {_MODEL_TYPES}.")
    feed_forward = d.get("feed_forward_proj", "relu")
    if feed_forward not in _FEED_FORWARD:
        raise ValueError(
            f"config.json feed_forward_proj {feed_forward!r} is not supported; "
            f"expected one of {sorted(_FEED_FORWARD)}."
        )
    required = ("vocab_size", "d_model", "d_kv", "d_ff", "num_heads", "num_layers")
    missing = [key for key in required if key not in d]
    if missing:
        raise ValueError(f"config.json lacks the required keys {missing}.")
    return T5Config(
        vocab_size=int(d["vocab_size"]),
        d_model=int(d["d_model"]),
        num_heads=int(d["num_heads"]),
        d_kv=int(d["d_kv"]),
        d_ff=int(d["d_ff"]),
        num_encoder_layers=int(d["num_layers"]),
        num_decoder_layers=int(d.get("num_decoder_layers") or d["num_layers"]),
        relative_attention_num_buckets=int(d.get("relative_attention_num_buckets", 32)),
        relative_attention_max_distance=int(d.get("relative_attention_max_distance", 128)),
        mlp_activations=_FEED_FORWARD[feed_forward],
        logits_via_embedding=bool(d.get("tie_word_embeddings", True)),
        layer_norm_epsilon=float(d.get("layer_norm_epsilon", 1e-6)),
        **options,
    )


def hf_dict_from_config(config: T5Config) -> dict[str, Any]:
    """A `config.json` dict that `T5ForConditionalGeneration.from_pretrained` accepts.

    Raises:
      ValueError: when the MLP activations have no HF `feed_forward_proj`.
    """
    by_activations = {v: k for k, v in _FEED_FORWARD.items()}
    if config.mlp_activations not in by_activations:
        raise ValueError(
            f"mlp_activations {config.mlp_activations} has no HF feed_forward_proj; "
            f"supported: {sorted(by_activations)}."
        )
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "vocab_size": config.vocab_size,
        "d_model": config.d_model,
        "d_kv": config.d_kv,
        "d_ff": config.d_ff,
        "num_heads": config.num_heads,
        "num_layers": config.num_encoder_layers,
        "num_decoder_layers": config.num_decoder_layers,
        "relative_attention_num_buckets": config.relative_attention_num_buckets,
        "relative_attention_max_distance": config.relative_attention_max_distance,
        "feed_forward_proj": by_activations[config.mlp_activations],
        "tie_word_embeddings": config.logits_via_embedding,
        "layer_norm_epsilon": config.layer_norm_epsilon,
        "dropout_rate": config.dropout_rate,
        "initializer_factor": 1.0,
        "is_encoder_decoder": True,
        "decoder_start_token_id": 0,
        "pad_token_id": 0,
        "eos_token_id": 1,
    }


def _mlp_entries(prefix: str, path: Path, config: T5Config) -> list[tuple[str, Path, bool]]:
    names = (
        ["wi"]
        if len(config.mlp_activations) == 1
        else [f"wi_{i}" for i in range(len(config.mlp_activations))]
    )
    return [
        (f"{prefix}.DenseReluDense.{name}.weight", (*path, "mlp", name, "kernel"), True)
        for name in [*names, "wo"]
    ]


def _attention_entries(prefix: str, path: Path) -> list[tuple[str, Path, bool]]:
    return [(f"{prefix}.{hf}.weight", (*path, ours, "kernel"), True) for hf, ours in _ATTENTION]


def _norm_entry(prefix: str, path: Path) -> tuple[str, Path, bool]:
    return (f"{prefix}.layer_norm.weight", (*path, "scale"), False)


def name_map(config: T5Config) -> list[tuple[str, Path, bool]]:
    """Every HF tensor of a T5 model: `(hf_name, t5x_path, transposed)`.

    `transposed` is True where the HF tensor is the transpose of the T5X one.
    """
    entries = [("shared.weight", ("token_embedder", "embedding"), False)]
    if not config.logits_via_embedding:
        entries.append(("lm_head.weight", ("decoder", "logits_dense", "kernel"), True))
    # (stack, sub-layers as (HF attention name, T5X attention name, T5X norm name)).
    stacks = (
        (
            "encoder",
            config.num_encoder_layers,
            (("SelfAttention", "attention", "pre_attention_layer_norm"),),
        ),
        (
            "decoder",
            config.num_decoder_layers,
            (
                ("SelfAttention", "self_attention", "pre_self_attention_layer_norm"),
                ("EncDecAttention", "encoder_decoder_attention", "pre_cross_attention_layer_norm"),
            ),
        ),
    )
    for stack, num_layers, attentions in stacks:
        entries.append(
            (
                f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                (stack, "relpos_bias", "rel_embedding"),
                True,
            )
        )
        for i in range(num_layers):
            block = f"{stack}.block.{i}"
            layer = (stack, f"layers_{i}")
            for j, (hf_attention, attention, norm) in enumerate(attentions):
                entries += _attention_entries(
                    f"{block}.layer.{j}.{hf_attention}", (*layer, attention)
                )
                entries.append(_norm_entry(f"{block}.layer.{j}", (*layer, norm)))
            mlp_layer = f"{block}.layer.{len(attentions)}"
            entries += _mlp_entries(mlp_layer, layer, config)
            entries.append(_norm_entry(mlp_layer, (*layer, "pre_mlp_layer_norm")))
        norm = "encoder_norm" if stack == "encoder" else "decoder_norm"
        entries.append((f"{stack}.final_layer_norm.weight", (stack, norm, "scale"), False))
    return entries


def _get(tree: Mapping[str, Any], path: Path) -> Any:
    node: Any = tree
    for i, key in enumerate(path):
        if not isinstance(node, Mapping) or key not in node:
            raise ValueError(f"params lack {'/'.join(path[: i + 1])} (T5X layout expected).")
        node = node[key]
    return node


def _set(tree: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _check_shape(name: str, actual: tuple[int, ...], expected: tuple[int, ...]) -> None:
    if tuple(actual) != tuple(expected):
        raise ValueError(
            f"{name} has shape {tuple(actual)}, but the config needs {tuple(expected)}."
        )


def _hf_shape(path: Path, transposed: bool, shapes: Mapping[str, Any]) -> tuple[int, ...]:
    shape = tuple(_get(shapes, path).shape)
    return shape[::-1] if transposed else shape


def _check_copies_equal(state: Mapping[str, Any], names: list[str]) -> None:
    """Refuses encoder/decoder embedding tables that are not copies of `shared.weight`.

    T5 reads one table; transformers 5 keeps `embed_tokens` as parameters of their
    own when a model is untied, and loading `shared` alone would silently drop them.
    """
    if not names:
        return
    shared = np.asarray(state["shared.weight"])
    differing = [name for name in names if not np.array_equal(np.asarray(state[name]), shared)]
    if differing:
        raise ValueError(
            f"HF tensors {differing} differ from shared.weight: this checkpoint embeds "
            "encoder and decoder tokens with separate tables, which T5 (one shared "
            "table) cannot hold. It is not a T5 checkpoint this code can load."
        )


def params_from_hf_state_dict(state: Mapping[str, Any], config: T5Config) -> dict[str, Any]:
    """HF `T5ForConditionalGeneration` state dict -> T5X-named params (unscanned layout).

    Args:
      state: `{hf_name: array}`; arrays may be lazy (only `.shape` and `.T` are used).
      config: the architecture, e.g. from `config_from_hf_dict`.

    Returns:
      Nested dict of the same arrays (transposed views where HF is `[out, in]`).

    Raises:
      ValueError: naming the tensor when one is missing, unexpected, or its shape
        disagrees with the config (both shapes given).
    """
    shapes = param_shapes(config)
    entries = name_map(config)
    missing = [name for name, _, _ in entries if name not in state]
    if missing:
        raise ValueError(f"HF state dict lacks {len(missing)} tensors: {missing}.")
    # Tied models may also carry `lm_head.weight`, a copy of `shared.weight`.
    copies = (*_EMBEDDING_COPIES, *(("lm_head.weight",) if config.logits_via_embedding else ()))
    known = {name for name, _, _ in entries} | set(copies) | set(_UNUSED_KEYS)
    unexpected = sorted(set(state) - known)
    if unexpected:
        raise ValueError(f"HF state dict has tensors this T5 config does not use: {unexpected}.")
    embedding_shape = tuple(shapes["token_embedder"]["embedding"].shape)
    for name in copies:
        if name in state:
            _check_shape(f"HF tensor {name}", state[name].shape, embedding_shape)
    _check_copies_equal(state, [name for name in _EMBEDDING_COPIES if name in state])

    params: dict[str, Any] = {}
    for name, path, transposed in entries:
        tensor = state[name]
        _check_shape(f"HF tensor {name}", tensor.shape, _hf_shape(path, transposed, shapes))
        _set(params, path, tensor.T if transposed else tensor)
    return params


def hf_state_dict_from_params(params: Mapping[str, Any], config: T5Config) -> dict[str, np.ndarray]:
    """T5X-named params (unscanned) -> HF state dict of contiguous numpy arrays.

    The inverse of `params_from_hf_state_dict`, bit for bit. Untied models get
    `lm_head.weight`; the encoder/decoder `embed_tokens` copies are left out, as
    HF ties them to `shared.weight` on load.

    Raises:
      ValueError: when a parameter is missing or has the wrong shape.
    """
    shapes = param_shapes(config)
    state = {}
    for name, path, transposed in name_map(config):
        array = np.asarray(_get(params, path))
        _check_shape(f"param {'/'.join(path)}", array.shape, _get(shapes, path).shape)
        state[name] = np.ascontiguousarray(array.T if transposed else array)
    return state

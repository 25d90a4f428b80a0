"""T5 hyper-parameters and the named sizes of every public T5 family.

A `T5Config` describes the architecture only (what the checkpoint fixes) plus a
few execution options (dtypes, remat, scan) that never change the parameter tree.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Literal

RematPolicy = Literal["none", "full", "dots", "dots_no_batch"]


@dataclasses.dataclass(frozen=True)
class T5Config:
    """Architecture and execution options of an encoder-decoder T5.

    Architecture fields match T5X / Flaxformer names where they exist. T5 1.0 is
    `mlp_activations=("relu",)` with `logits_via_embedding=True`; T5 1.1, the
    LM-adapted checkpoints and mT5 use `("gelu", "linear")` and untied logits.
    """

    vocab_size: int = 32128
    d_model: int = 512
    num_heads: int = 6
    d_kv: int = 64
    d_ff: int = 1024
    num_encoder_layers: int = 8
    num_decoder_layers: int = 8
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    mlp_activations: tuple[str, ...] = ("gelu", "linear")
    logits_via_embedding: bool = False
    layer_norm_epsilon: float = 1e-6
    dropout_rate: float = 0.0
    # Execution options: none of these change parameter names or shapes on disk.
    dtype: str = "float32"  # activations / compute
    param_dtype: str = "float32"  # storage of the frozen weights
    remat_policy: RematPolicy = "none"
    scan_layers: bool = False

    @property
    def is_gated(self) -> bool:
        return len(self.mlp_activations) > 1

    def replace(self, **changes) -> T5Config:
        return dataclasses.replace(self, **changes)


def _t5_1_1(d_model: int, d_ff: int, heads: int, layers: int, vocab: int = 32128) -> T5Config:
    return T5Config(
        vocab_size=vocab,
        d_model=d_model,
        num_heads=heads,
        d_kv=64,
        d_ff=d_ff,
        num_encoder_layers=layers,
        num_decoder_layers=layers,
    )


def _t5_1_0(d_model: int, d_ff: int, heads: int, layers: int, d_kv: int = 64) -> T5Config:
    return T5Config(
        d_model=d_model,
        num_heads=heads,
        d_kv=d_kv,
        d_ff=d_ff,
        num_encoder_layers=layers,
        num_decoder_layers=layers,
        mlp_activations=("relu",),
        logits_via_embedding=True,
    )


_T5_1_1_SIZES = {
    "small": (512, 1024, 6, 8),
    "base": (768, 2048, 12, 12),
    "large": (1024, 2816, 16, 24),
    "xl": (2048, 5120, 32, 24),
    "xxl": (4096, 10240, 64, 24),
}

CONFIGS: dict[str, T5Config] = {
    **{f"t5_1_1_{n}": _t5_1_1(*s) for n, s in _T5_1_1_SIZES.items()},
    # LM-adapted ("lm100k") checkpoints share the T5 1.1 architecture.
    **{f"t5_1_1_lm100k_{n}": _t5_1_1(*s) for n, s in _T5_1_1_SIZES.items()},
    **{f"mt5_{n}": _t5_1_1(*s, vocab=250112) for n, s in _T5_1_1_SIZES.items()},
    # The size of the project's own small T5 (docs/pretraining.md); the shipped one has
    # T5 1.1 blocks with T5 1.0's tied embedding.
    "t5_1_1_tiny": _t5_1_1(128, 512, 4, 4),
    "t5_tiny_multitask": _t5_1_1(128, 512, 4, 4).replace(logits_via_embedding=True),
    "t5_tiny_multitask_2500": _t5_1_1(128, 512, 4, 4).replace(logits_via_embedding=True),
    "t5_tiny_multitask_classes": _t5_1_1(128, 512, 4, 4).replace(logits_via_embedding=True),
    "t5_1_0_small": _t5_1_0(512, 2048, 8, 6),
    "t5_1_0_base": _t5_1_0(768, 3072, 12, 12),
    "t5_1_0_large": _t5_1_0(1024, 4096, 16, 24),
    "t5_1_0_3B": _t5_1_0(1024, 16384, 32, 24, d_kv=128),
    "t5_1_0_11B": _t5_1_0(1024, 65536, 128, 24, d_kv=128),
}


def get_config(name: str, **overrides) -> T5Config:
    """Returns the named config, e.g. `get_config("t5_1_1_base", dtype="bfloat16")`."""
    if name not in CONFIGS:
        near = difflib.get_close_matches(name, CONFIGS, n=3)
        hint = f" Did you mean {', '.join(near)}?" if near else ""
        raise KeyError(f"Unknown T5 config {name!r}.{hint} Known: {', '.join(sorted(CONFIGS))}.")
    return CONFIGS[name].replace(**overrides)


def _num_layers(stack: dict) -> int:
    return sum(1 for k in stack if k.startswith("layers_"))


def config_from_params(params: dict, **options) -> T5Config:
    """Infers the architecture from a T5X-named parameter tree (unscanned).

    Reads d_model and vocab from `token_embedder/embedding [V, d]`, heads and
    buckets from `encoder/relpos_bias/rel_embedding [heads, buckets]`, d_kv from
    `query/kernel [d, heads * d_kv]`, d_ff and gating from `mlp/wi(_0)/kernel`,
    tied logits from the absence of `decoder/logits_dense`. `options` sets the
    execution fields (dtype, remat_policy, ...) that shapes cannot tell.

    Raises:
      ValueError: when the tree is not a T5 encoder-decoder tree.
    """
    try:
        vocab, d_model = params["token_embedder"]["embedding"].shape
        encoder, decoder = params["encoder"], params["decoder"]
        heads, buckets = encoder["relpos_bias"]["rel_embedding"].shape
        layer = encoder["layers_0"]
        joined_kv = layer["attention"]["query"]["kernel"].shape[1]
        mlp = layer["mlp"]
        gated = "wi_0" in mlp
        d_ff = (mlp["wi_0"] if gated else mlp["wi"])["kernel"].shape[1]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"Not a T5X encoder-decoder parameter tree (missing or malformed {e}); "
            f"top-level keys are {sorted(params) if isinstance(params, dict) else type(params)}."
        ) from e
    if joined_kv % heads:
        raise ValueError(
            f"query kernel width {joined_kv} is not a multiple of the {heads} heads "
            "implied by encoder/relpos_bias/rel_embedding."
        )
    return T5Config(
        vocab_size=int(vocab),
        d_model=int(d_model),
        num_heads=int(heads),
        d_kv=int(joined_kv // heads),
        d_ff=int(d_ff),
        num_encoder_layers=_num_layers(encoder),
        num_decoder_layers=_num_layers(decoder),
        relative_attention_num_buckets=int(buckets),
        mlp_activations=("gelu", "linear") if gated else ("relu",),
        logits_via_embedding="logits_dense" not in decoder,
        **options,
    )

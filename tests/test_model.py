"""T5 module: layouts (scan, stack/unstack), remat, dtypes, logical axes, prompts, dropout."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from prompt_tuning.models import (
    T5,
    T5Config,
    config_from_params,
    init_params,
    logical_axes,
    param_shapes,
    stack_layers,
    unstack_layers,
)

CONFIG = T5Config(
    vocab_size=96,
    d_model=16,
    num_heads=2,
    d_kv=8,
    d_ff=24,
    num_encoder_layers=2,
    num_decoder_layers=3,
    relative_attention_num_buckets=8,
)
T5_1_0 = CONFIG.replace(mlp_activations=("relu",), logits_via_embedding=True)
LENGTHS = [7, 3, 5]


@functools.cache
def _init(config: T5Config) -> dict:
    return init_params(config, jax.random.key(0))


def _params(config: T5Config = CONFIG) -> dict:
    return _init(config)


def _batch() -> tuple[jnp.ndarray, jnp.ndarray]:
    rng = np.random.default_rng(0)
    inputs = np.zeros((len(LENGTHS), max(LENGTHS)), np.int32)
    for row, length in enumerate(LENGTHS):
        inputs[row, :length] = rng.integers(2, CONFIG.vocab_size, length)
    targets = rng.integers(2, CONFIG.vocab_size, (len(LENGTHS), 4)).astype(np.int32)
    targets[:, 0] = 0
    return jnp.asarray(inputs), jnp.asarray(targets)


@functools.cache
def _apply(config: T5Config):
    return jax.jit(T5(config).apply, static_argnames=("enable_dropout", "prompt_position"))


def _prompt(length: int = 3, seed: int = 1) -> jnp.ndarray:
    return jax.random.uniform(
        jax.random.key(seed), (length, CONFIG.d_model), minval=-0.5, maxval=0.5
    )


def test_param_tree_has_t5x_names_and_round_trips_config():
    for config in (CONFIG, T5_1_0):
        params = _params(config)
        decoder = params["decoder"]
        assert set(params) == {"token_embedder", "encoder", "decoder"}
        assert set(decoder["layers_2"]) == {
            "pre_self_attention_layer_norm", "self_attention", "pre_cross_attention_layer_norm",
            "encoder_decoder_attention", "pre_mlp_layer_norm", "mlp",
        }  # fmt: skip
        assert ("logits_dense" in decoder) != config.logits_via_embedding
        assert set(decoder["layers_0"]["mlp"]) == (
            {"wi", "wo"} if config is T5_1_0 else {"wi_0", "wi_1", "wo"}
        )
        assert params["encoder"]["relpos_bias"]["rel_embedding"].shape == (2, 8)
        assert config_from_params(params) == config


def test_query_init_folds_in_the_attention_scaling():
    """Query std is (d_model * d_kv)^-0.5, key std d_model^-0.5, as in T5X.

    The tolerance allows for sampling noise but not for a missing 1/sqrt(d_kv) (2.8x here).
    """
    attention = _params()["encoder"]["layers_0"]["attention"]
    query = np.concatenate(
        [
            attention["query"]["kernel"],
            _params()["decoder"]["layers_0"]["self_attention"]["query"]["kernel"],
        ]
    )
    np.testing.assert_allclose(query.std(), (16 * 8) ** -0.5, rtol=0.2)
    np.testing.assert_allclose(attention["key"]["kernel"].std(), 16**-0.5, rtol=0.2)


@pytest.mark.parametrize("config", [CONFIG, T5_1_0], ids=["t5_1_1", "t5_1_0"])
def test_scanned_layers_give_equal_logits(config):
    scanned = config.replace(scan_layers=True)
    inputs, targets = _batch()
    expected = _apply(config)({"params": _params(config)}, inputs, targets, prompt=_prompt())
    stacked = stack_layers(_params(config), scanned)
    assert stacked["encoder"]["layers"]["mlp"]["wo"]["kernel"].shape == (2, 24, 16)
    logits = _apply(scanned)({"params": stacked}, inputs, targets, prompt=_prompt())
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5)


def test_stack_unstack_round_trip_and_errors():
    scanned = CONFIG.replace(scan_layers=True)
    stacked = stack_layers(_params(), scanned)
    assert "layers_0" not in stacked["decoder"]
    jax.tree.map(np.testing.assert_array_equal, unstack_layers(stacked, scanned), _params())
    with pytest.raises(ValueError, match=r"decoder holds layers .*layers_3"):
        stack_layers(_params(), scanned.replace(num_decoder_layers=4))
    with pytest.raises(ValueError, match="leading axis sizes"):
        unstack_layers(stacked, scanned.replace(num_encoder_layers=3))
    with pytest.raises(ValueError, match="no scanned 'layers'"):
        unstack_layers(_params(), scanned)


def test_logical_axes_match_params():
    axes = logical_axes(CONFIG)
    is_spec = lambda x: isinstance(x, P)  # noqa: E731
    assert jax.tree.structure(axes, is_leaf=is_spec) == jax.tree.structure(_params())
    jax.tree.map(
        lambda spec, x: len(spec) == x.ndim or pytest.fail(str(spec)),
        axes,
        _params(),
        is_leaf=is_spec,
    )
    layer = axes["encoder"]["layers_0"]
    assert axes["token_embedder"]["embedding"] == P("vocab", "embed")
    assert layer["attention"]["query"]["kernel"] == P("embed", "joined_kv")
    assert layer["attention"]["out"]["kernel"] == P("joined_kv", "embed")
    assert layer["mlp"]["wi_0"]["kernel"] == P("embed", "mlp")
    assert layer["mlp"]["wo"]["kernel"] == P("mlp", "embed")
    assert layer["pre_mlp_layer_norm"]["scale"] == P("embed")
    assert axes["decoder"]["logits_dense"]["kernel"] == P("embed", "vocab")
    assert axes["decoder"]["relpos_bias"]["rel_embedding"] == P("heads", "relpos_buckets")

    scanned = CONFIG.replace(scan_layers=True)
    scanned_axes = logical_axes(scanned, scanned=True)
    stacked = stack_layers(_params(), scanned)
    assert jax.tree.structure(scanned_axes, is_leaf=is_spec) == jax.tree.structure(stacked)
    assert scanned_axes["encoder"]["layers"]["mlp"]["wi_0"]["kernel"] == P("layers", "embed", "mlp")


@functools.cache
def _loss_and_prompt_grad(config: T5Config) -> tuple[jnp.ndarray, jnp.ndarray]:
    inputs, targets = _batch()
    params = stack_layers(_params(), config) if config.scan_layers else _params()

    def loss(prompt: jnp.ndarray) -> jnp.ndarray:
        logits = T5(config).apply({"params": params}, inputs, targets, prompt=prompt)
        return jnp.mean(jax.nn.logsumexp(logits, axis=-1))

    return jax.jit(jax.value_and_grad(loss))(_prompt())


@pytest.mark.slow
@pytest.mark.parametrize(
    "policy, scan_layers", [("full", True), ("dots", False), ("dots_no_batch", True)]
)
def test_remat_policies_give_equal_loss_and_prompt_gradients(policy, scan_layers):
    base = CONFIG.replace(scan_layers=scan_layers)
    expected = _loss_and_prompt_grad(base)
    actual = _loss_and_prompt_grad(base.replace(remat_policy=policy))
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), actual, expected
    )


def test_unknown_remat_policy_is_rejected():
    inputs, targets = _batch()
    with pytest.raises(ValueError, match="'most'"):
        T5(CONFIG.replace(remat_policy="most")).apply({"params": _params()}, inputs, targets)


def test_bfloat16_activations_and_weights():
    inputs, targets = _batch()
    expected = np.asarray(_apply(CONFIG)({"params": _params()}, inputs, targets))
    bf16 = CONFIG.replace(dtype="bfloat16", param_dtype="bfloat16")
    params = jax.tree.map(lambda x: x.astype(jnp.bfloat16), _params())
    logits = _apply(bf16)({"params": params}, inputs, targets)
    assert logits.dtype == jnp.float32
    assert np.isfinite(logits).all()
    # bfloat16 keeps ~3 significant digits; errors compound over 5 layers.
    assert np.abs(np.asarray(logits) - expected).max() <= 0.05 * np.abs(expected).max()
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(param_shapes(bf16)))


def _embedding_rows(ids: list[int]) -> jnp.ndarray:
    return _params()["token_embedder"]["embedding"][jnp.asarray(ids)]


@pytest.mark.parametrize("position", ["prefix", "prefix_after_bos", "suffix"])
def test_prompt_of_token_embeddings_equals_inserting_the_tokens(position):
    """A prompt made of token embeddings is the same as those tokens in the input."""
    inputs, targets = _batch()
    prompt_ids = [11, 12, 13]
    rows = []
    for tokens, length in zip(np.asarray(inputs), LENGTHS, strict=True):
        real = list(tokens[:length])
        if position == "prefix":
            real = prompt_ids + real
        elif position == "prefix_after_bos":
            real = real[:1] + prompt_ids + real[1:]
        else:
            real = real + prompt_ids
        rows.append(real + [0] * (max(LENGTHS) - length))
    expected = _apply(CONFIG)({"params": _params()}, jnp.asarray(rows), targets)
    logits = _apply(CONFIG)(
        {"params": _params()},
        inputs,
        targets,
        prompt=_embedding_rows(prompt_ids),
        prompt_position=position,
    )
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-5)


def test_per_example_prompts_and_encoder_outputs():
    inputs, targets = _batch()
    prompts = jnp.stack([_prompt(seed=s) for s in range(len(LENGTHS))])
    logits = _apply(CONFIG)({"params": _params()}, inputs, targets, prompt=prompts)
    for i in range(len(LENGTHS)):
        single = _apply(CONFIG)(
            {"params": _params()}, inputs[i : i + 1], targets[i : i + 1], prompt=prompts[i]
        )
        np.testing.assert_allclose(logits[i : i + 1], single, rtol=0, atol=1e-5)

    encoded, mask = T5(CONFIG).apply({"params": _params()}, inputs, prompt=prompts, method="encode")
    assert encoded.shape == (len(LENGTHS), 3 + max(LENGTHS), CONFIG.d_model)
    np.testing.assert_array_equal(mask.sum(axis=1), np.asarray(LENGTHS) + 3)


def test_dropout_only_when_enabled():
    config = CONFIG.replace(dropout_rate=0.3)
    inputs, targets = _batch()
    params = {"params": _params()}
    apply = _apply(config)
    deterministic = apply(params, inputs, targets)
    np.testing.assert_allclose(deterministic, _apply(CONFIG)(params, inputs, targets), atol=1e-6)
    rngs = {"dropout": jax.random.key(3)}
    first = apply(params, inputs, targets, enable_dropout=True, rngs=rngs)
    again = apply(params, inputs, targets, enable_dropout=True, rngs=rngs)
    other = apply(params, inputs, targets, enable_dropout=True, rngs={"dropout": jax.random.key(4)})
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - deterministic).max() > 1e-3
    assert np.abs(first - other).max() > 1e-3


def test_cached_step_takes_one_token():
    inputs, targets = _batch()
    model, params = T5(CONFIG), {"params": _params()}
    encoded, mask = model.apply(params, inputs, method="encode")
    _, variables = model.apply(
        params, encoded, mask, targets, decode=True, method="decode", mutable=["cache"]
    )
    with pytest.raises(ValueError, match="one token per row; got 4"):
        model.apply(
            {**params, **variables}, encoded, mask, targets, decode=True, method="decode",
            mutable=["cache"],
        )  # fmt: skip

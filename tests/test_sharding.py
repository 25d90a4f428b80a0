"""The model on 8 CPU devices: 2-D ('data', 'model') meshes give single-device logits."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import numpy as np
import pytest
import tolerances
from jax.sharding import PartitionSpec as P

from prompt_tuning import decoding, partitioning
from prompt_tuning.models import T5, T5Config, init_params, logical_axes, stack_layers

# Every sharded axis (vocab, heads, joined_kv, mlp, batch) divides by 4.
CONFIG = T5Config(
    vocab_size=128,
    d_model=24,
    num_heads=4,
    d_kv=6,
    d_ff=48,
    num_encoder_layers=2,
    num_decoder_layers=2,
    relative_attention_num_buckets=8,
)
BATCH = 8


@functools.cache
def _params() -> dict:
    return init_params(CONFIG, jax.random.key(0))


def _batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    inputs = rng.integers(2, CONFIG.vocab_size, (BATCH, 10)).astype(np.int32)
    inputs[:, 7:] = 0  # some padding
    targets = rng.integers(2, CONFIG.vocab_size, (BATCH, 5)).astype(np.int32)
    targets[:, 0] = 0
    return inputs, targets


def _place(config: T5Config, params: dict, mesh: jax.sharding.Mesh) -> dict:
    axes = logical_axes(config, scanned=config.scan_layers)
    return jax.device_put(params, partitioning.logical_to_sharding(axes, mesh))


@pytest.mark.parametrize(
    "mesh_shape, scan_layers", [((4, 2), False), ((2, 4), False), ((2, 4), True)]
)
def test_sharded_logits_equal_single_device(mesh_shape, scan_layers):
    config = CONFIG.replace(scan_layers=scan_layers)
    params = stack_layers(_params(), config) if scan_layers else _params()
    inputs, targets = _batch()
    expected = jax.jit(T5(config).apply)({"params": params}, inputs, targets)

    mesh = partitioning.make_mesh(mesh_shape)
    sharded = _place(config, params, mesh)
    batch = partitioning.batch_sharding(mesh)
    with jax.set_mesh(mesh), nn.logical_axis_rules(partitioning.DEFAULT_RULES):
        logits = jax.jit(T5(config).apply)(
            {"params": sharded}, jax.device_put(inputs, batch), jax.device_put(targets, batch)
        )
    # Sharded contractions add in another order: equal up to rounding.
    expected = np.asarray(expected)
    atol = tolerances.reordered_output_atol(expected)
    np.testing.assert_allclose(np.asarray(logits), expected, rtol=0, atol=atol)
    # The control: another example's logits (rows mixed up between shards) are far outside it.
    tolerances.assert_tolerance_catches(np.roll(expected, 1, axis=0), expected, atol)
    # The activation constraints held: batch over 'data', vocabulary over 'model'.
    assert logits.sharding.spec == P("data", None, "model")


def test_parameters_are_sharded_by_the_rules():
    mesh = partitioning.make_mesh((2, 4))
    params = _place(CONFIG, _params(), mesh)
    layer = params["decoder"]["layers_0"]
    expected = {
        "embedding": (params["token_embedder"]["embedding"], P("model", None)),
        "wi_0": (layer["mlp"]["wi_0"]["kernel"], P(None, "model")),
        "wo": (layer["mlp"]["wo"]["kernel"], P("model", None)),
        "query": (layer["self_attention"]["query"]["kernel"], P(None, "model")),
        "out": (layer["encoder_decoder_attention"]["out"]["kernel"], P("model", None)),
        "relpos": (params["decoder"]["relpos_bias"]["rel_embedding"], P("model", None)),
        "logits_dense": (params["decoder"]["logits_dense"]["kernel"], P(None, "model")),
        "norm": (layer["pre_mlp_layer_norm"]["scale"], P(None)),
    }
    for name, (array, spec) in expected.items():
        assert array.sharding.spec == spec, name
        # Each device holds 1/4 of a 'model'-sharded axis, all of a replicated one.
        shard_shape = tuple(
            size // 4 if axis == "model" else size
            for size, axis in zip(array.shape, tuple(spec) + (None,) * array.ndim, strict=False)
        )
        assert array.addressable_shards[0].data.shape == shard_shape, name


def test_sharded_greedy_decoding_equals_single_device():
    inputs, _ = _batch()
    greedy = functools.partial(decoding.greedy_decode, T5(CONFIG), max_decode_length=4)
    expected = jax.jit(greedy)(_params(), inputs)

    mesh = partitioning.make_mesh((4, 2))
    with jax.set_mesh(mesh), nn.logical_axis_rules(partitioning.DEFAULT_RULES):
        tokens = jax.jit(greedy)(
            _place(CONFIG, _params(), mesh),
            jax.device_put(inputs, partitioning.batch_sharding(mesh)),
        )
    np.testing.assert_array_equal(np.asarray(tokens), np.asarray(expected))


def _lowered_train_step(mesh: jax.sharding.Mesh, with_rules: bool):
    """The train step as `experiment.train` jits it, lowered with or without the rules."""
    from prompt_tuning import trainer

    optimizer = trainer.make_optimizer()
    step = trainer.make_train_step(trainer.prompt_objective(T5(CONFIG)), optimizer)
    frozen = _place(CONFIG, _params(), mesh)
    # A fresh jit each time: flax's rules are not part of JAX's tracing cache key.
    jitted = trainer.jit_train_step(step, mesh, jax.tree.map(lambda x: x.sharding, frozen))
    inputs, targets = _batch()
    batch = {
        "encoder_input_tokens": inputs,
        "decoder_input_tokens": targets,
        "decoder_target_tokens": targets,
        "decoder_loss_weights": np.ones_like(targets),
    }
    state = trainer.init_state(np.zeros((3, CONFIG.d_model), np.float32), optimizer)
    context = partitioning.activation_sharding(mesh) if with_rules else jax.set_mesh(mesh)
    with context:
        return jitted.lower(state, frozen, batch, jax.random.key(0))


def test_train_step_carries_the_activation_shardings():
    """On a (4, 2) mesh the compiled step keeps heads and MLP activations split over 'model'."""
    mesh = partitioning.make_mesh((4, 2))
    lowered = _lowered_train_step(mesh, with_rules=True)
    text = lowered.as_text()
    # Encoder length 13 = 3 prompt vectors + 10 tokens. Batch over 'data' everywhere; heads,
    # MLP and vocabulary over 'model'.
    for constraint in (
        '[{"data"}, {}, {"model"}, {}]> : tensor<8x13x4x6xf32>',  # [batch, length, heads, kv]
        '[{"data"}, {}, {"model"}]> : tensor<8x13x48xf32>',  # [batch, length, mlp]
        '[{"data"}, {}, {"model"}]> : tensor<8x5x128xf32>',  # [batch, length, vocab] logits
        '[{"data"}, {}, {}]> : tensor<8x13x24xf32>',  # [batch, length, embed]
    ):
        assert "sharding_constraint %" in text and constraint in text, constraint
    # Each device's buffers are its shard: batch 8 / 4, heads 4 / 2.
    assert "f32[2,13,2,6]" in lowered.compile().as_text()
    # The control: traced without the rules (as before), the model's constraints are no-ops.
    assert "sharding_constraint" not in _lowered_train_step(mesh, with_rules=False).as_text()


def test_mesh_axis_that_does_not_divide_the_heads_is_named(tmp_path):
    """6 heads over model=4: one error naming the axis and the dimension, before any placement."""
    from prompt_tuning import checkpoints
    from prompt_tuning.errors import RunError

    config = CONFIG.replace(num_heads=6, d_kv=4)  # joined_kv 24 divides by 4; heads do not
    path = checkpoints.save_t5x(init_params(config, jax.random.key(0)), tmp_path, 0)
    with pytest.raises(
        RunError,
        match=r"Mesh axis 'model' has 4 devices, which does not divide the model's heads "
        r"dimension \(num_heads = 6\)",
    ):
        checkpoints.load(path, mesh=partitioning.make_mesh((2, 4)))
    # The control: the same checkpoint loads on a mesh whose 'model' axis divides 6.
    checkpoints.load(path, mesh=partitioning.make_mesh((4, 2)))

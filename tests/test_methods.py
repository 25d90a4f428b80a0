"""The prompt-method family: each trains only its own parameters, and exports what it trained."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny
import tolerances
from test_train import LENGTHS, _batch, _dot_output_shapes

from prompt_tuning import input_pipeline, methods, prompts, trainer
from prompt_tuning.checkpoints import state as run_state
from prompt_tuning.models import T5, init_params, stack_layers

PROMPT_LENGTH = 5
# Hidden sizes no frozen weight of tiny.CONFIG has, so the jaxpr test cannot confuse them.
METHODS = {
    "prompt": methods.PromptTuning(),
    "prefix_mlp": methods.PrefixTuning(hidden=48),
    "prefix_both": methods.PrefixTuning(decoder=True, reparameterize=False),
    "p_tuning_lstm": methods.PTuning(encoder="lstm", hidden=14),
    "p_tuning_mlp": methods.PTuning(encoder="mlp", hidden=36),
    "deep_replace": methods.DeepPrompts(),
    "deep_add": methods.DeepPrompts(lengths=(5, 3), add=True),
}
# Adafactor's default 0.3 suits raw prompt rows; a network in front of them wants less.
LEARNING_RATES = {"prefix_mlp": 0.03, "p_tuning_lstm": 0.1, "p_tuning_mlp": 0.03}
# 30 compiled steps take 20-100 s each on a loaded 2-core CPU; three methods stay in the fast set.
SLOW = {"p_tuning_lstm", "p_tuning_mlp", "prefix_both", "deep_add"}
NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in sorted(METHODS)]


@pytest.fixture(scope="module")
def params():
    return init_params(tiny.CONFIG, jax.random.key(0))


def _context() -> methods.InitContext:
    return methods.InitContext(tiny.CONFIG, PROMPT_LENGTH, prompts.random_uniform(0.5))


def _state_and_step(name: str):
    method = METHODS[name]
    optimizer = trainer.make_optimizer(learning_rate=LEARNING_RATES.get(name, 0.3))
    state = trainer.init_state(method.init(jax.random.key(1), _context()), optimizer)
    return state, trainer.make_train_step(
        trainer.prompt_objective(T5(tiny.CONFIG), method=method), optimizer
    )


@pytest.mark.parametrize("name", NAMES)
def test_training_changes_only_the_method_parameters_and_lowers_the_loss(params, name):
    state, step = _state_and_step(name)
    batches = input_pipeline.train_dataset(tiny.TASK, LENGTHS, 8, seed=0).as_numpy_iterator()
    tiny.assert_trains_only_the_method(jax.jit(step), state, params, batches)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_no_weight_gradient_is_ever_built(params, name):
    state, step = _state_and_step(name)
    weight_shapes = {tuple(x.shape) for x in jax.tree.leaves(params) if x.ndim == 2}
    jaxpr = jax.make_jaxpr(step)(state, params, _batch(), jax.random.key(0)).jaxpr
    assert not weight_shapes & _dot_output_shapes(jaxpr)


def _logits(params, inputs, batch):
    return trainer._logits(T5(tiny.CONFIG), inputs, params, batch, "prefix")


@pytest.mark.parametrize("encoder", [pytest.param("lstm", marks=pytest.mark.slow), "mlp"])
def test_p_tuning_export_is_a_plain_prompt_with_the_same_logits(params, tmp_path, encoder):
    method = methods.PTuning(encoder=encoder, hidden=12)
    trained = method.init(jax.random.key(2), _context())
    path = run_state.save_prompt(tmp_path, 1, methods.file_content(methods.export(method, trained)))
    assert path.name == "prompt_1.npy"
    plain = methods.load_inputs(path)
    assert plain["prompt"].shape == (PROMPT_LENGTH, tiny.CONFIG.d_model)
    batch = _batch()
    from_encoder = _logits(params, method.model_inputs(trained), batch)
    np.testing.assert_allclose(_logits(params, plain, batch), from_encoder, atol=1e-5)


def test_method_files_round_trip_with_their_digest(tmp_path):
    method = methods.PrefixTuning(decoder=True, hidden=48)
    exported = methods.export(method, method.init(jax.random.key(3), _context()))
    path = run_state.save_prompt(tmp_path, 4, methods.file_content(exported))
    assert path.name == "prompt_4.npz" and run_state.verify_prompt(path) is None
    assert run_state.saved_prompt_steps(tmp_path) == [4]
    loaded = methods.load_inputs(path)
    assert sorted(loaded) == ["decoder_prefix", "encoder_prefix"]
    for name, x in exported.items():
        np.testing.assert_array_equal(loaded[name], x)
    # Same arrays again (a resumed run redoing the step): the same bytes, kept as they are.
    assert run_state.save_prompt(tmp_path, 4, methods.file_content(exported)) == path
    assert not (tmp_path / run_state.REJECTED_DIR).exists()


def test_unknown_arrays_in_a_method_file_are_refused(tmp_path):
    np.savez(tmp_path / "bad.npz", prompt=np.ones((2, 16)), adapter=np.ones(3))
    with pytest.raises(ValueError, match=r"bad.npz holds arrays \['adapter', 'prompt'\]"):
        methods.load_inputs(tmp_path / "bad.npz")


def test_deep_prompts_adding_zero_above_the_first_layer_is_plain_prompt_tuning(params):
    first = prompts.random_uniform(0.5)(jax.random.key(4), (PROMPT_LENGTH, tiny.CONFIG.d_model))
    layers = jnp.stack([first, jnp.zeros_like(first)])
    batch = _batch()
    deep = {"layer_prompts": layers, "layer_prompt_add": jnp.asarray(True)}
    np.testing.assert_allclose(
        _logits(params, deep, batch), _logits(params, first, batch), atol=1e-5
    )


def test_deep_prompt_rows_a_layer_does_not_hold_are_invisible(params):
    """Rows past every layer's length change nothing, whatever they hold."""
    layers = prompts.random_uniform(0.5)(jax.random.key(5), (2, PROMPT_LENGTH, tiny.CONFIG.d_model))
    lengths = jnp.asarray([3, 2])
    noisy = layers.at[:, 3:].set(100.0)
    batch = _batch()

    def logits(x):
        return _logits(params, {"layer_prompts": x, "layer_prompt_lengths": lengths}, batch)

    np.testing.assert_allclose(logits(noisy), logits(layers), atol=1e-5)


def test_scanned_layers_read_the_same_per_layer_inputs(params):
    """Deep prompts and both prefixes together: `nn.scan` slices them as the layer loop does."""
    cfg = tiny.CONFIG
    keys = jax.random.split(jax.random.key(6), 3)
    inputs = {
        "layer_prompts": jax.random.normal(keys[0], (2, PROMPT_LENGTH, cfg.d_model)),
        "layer_prompt_lengths": jnp.asarray([5, 2]),
        "encoder_prefix": jax.random.normal(keys[1], (2, 2, 3, cfg.num_heads, cfg.d_kv)),
        "decoder_prefix": jax.random.normal(keys[2], (2, 2, 3, cfg.num_heads, cfg.d_kv)),
    }
    batch = _batch()
    scanned = cfg.replace(scan_layers=True, remat_policy="full")
    logits = trainer._logits(T5(scanned), inputs, stack_layers(params, scanned), batch, "prefix")
    # The scan's body is compiled apart from the loop's layers: equal up to rounding.
    expected = np.asarray(_logits(params, inputs, batch))
    atol = tolerances.reordered_output_atol(expected)
    np.testing.assert_allclose(logits, expected, rtol=0, atol=atol)
    # The control: each layer given the other layer's inputs is far outside the tolerance.
    swapped = _logits(params, jax.tree.map(lambda x: x[::-1], inputs), batch)
    tolerances.assert_tolerance_catches(swapped, expected, atol)

"""T5X checkpoints in the Orbax layout (`checkpoint_<step>/state/`)."""

import os
import re

import jax
import ml_dtypes
import numpy as np
import pytest

from prompt_tuning import checkpoints
from prompt_tuning.checkpoints import CheckpointError


@pytest.fixture(scope="module")
def tiny(fixtures_dir):
    return checkpoints.load(fixtures_dir / "t5x/t5x_test_t5_tiny")


def _assert_bit_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert x.dtype == y.dtype and np.array_equal(x, y)


def test_orbax_layout_is_detected_and_round_trips(tiny, tmp_path):
    config, params = tiny
    step_dir = checkpoints.save_orbax_t5x(params, tmp_path, step=4)
    assert os.path.isfile(os.path.join(step_dir, "state", "_METADATA"))
    assert not os.path.exists(os.path.join(step_dir, "checkpoint"))
    source = checkpoints.resolve(tmp_path)
    assert (source.format, source.step) == ("orbax_t5x", 4)
    for path in (tmp_path, step_dir, f"file://{step_dir}"):
        loaded_config, loaded = checkpoints.load(path)
        assert loaded_config == config
        _assert_bit_equal(params, loaded)
        assert all(isinstance(x, np.ndarray) for x in jax.tree.leaves(loaded))


def test_orbax_dtype_cast(tiny, tmp_path):
    _, params = tiny
    checkpoints.save_orbax_t5x(params, tmp_path, step=0)
    config, loaded = checkpoints.load(tmp_path, dtype="bfloat16")
    assert config.param_dtype == "bfloat16"
    _assert_bit_equal(jax.tree.map(lambda x: x.astype(ml_dtypes.bfloat16), params), loaded)


def test_orbax_and_msgpack_steps_mix_in_one_model_dir(tiny, tmp_path):
    _, params = tiny
    checkpoints.save_t5x(params, tmp_path, step=1)
    checkpoints.save_orbax_t5x(jax.tree.map(lambda x: -x, params), tmp_path, step=2)
    assert checkpoints.all_steps(tmp_path) == [1, 2]
    assert checkpoints.resolve(tmp_path, step=1).format == "t5x"
    _assert_bit_equal(checkpoints.load(tmp_path)[1], jax.tree.map(lambda x: -x, params))


def test_orbax_state_without_target_is_rejected(tmp_path):
    import orbax.checkpoint as ocp

    with ocp.CheckpointManager(
        tmp_path,
        item_names=("state",),
        options=ocp.CheckpointManagerOptions(step_prefix="checkpoint"),
    ) as manager:
        state = {"params": {"w": np.ones((2, 2), np.float32)}}
        manager.save(0, args=ocp.args.Composite(state=ocp.args.PyTreeSave(state)))
    with pytest.raises(CheckpointError, match=r"no 'target' parameter tree \(found \['params'\]\)"):
        checkpoints.load(tmp_path)


def test_orbax_damaged_state_names_the_folder(tiny, tmp_path):
    step_dir = checkpoints.save_orbax_t5x(tiny[1], tmp_path, step=0)
    os.remove(os.path.join(step_dir, "state", "_METADATA"))
    with pytest.raises(CheckpointError, match=re.escape(f"{step_dir}/state")):
        checkpoints.load(step_dir)

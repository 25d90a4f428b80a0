"""`checkpoints.shipped_checkpoint`: finds a packaged checkpoint by model name."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from prompt_tuning import checkpoints, demo
from prompt_tuning.checkpoints import shipped
from prompt_tuning.models import get_config, init_params


def test_finds_the_one_checkpoint_of_a_name(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path)
    config = get_config("t5_1_1_tiny", num_encoder_layers=1, num_decoder_layers=1, vocab_size=64)
    checkpoints.save_t5x(init_params(config, jax.random.key(0)), tmp_path / "t5_1_1_tiny", step=7)
    path = checkpoints.shipped_checkpoint("t5_1_1_tiny")
    assert path == str(tmp_path / "t5_1_1_tiny" / "checkpoint_7")
    loaded, _ = checkpoints.load(path)
    assert (loaded.d_model, loaded.vocab_size) == (128, 64)


def test_unknown_name_lists_what_is_shipped(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped, "SHIPPED_DIR", tmp_path)
    (tmp_path / "t5_1_1_tiny" / "checkpoint_7").mkdir(parents=True)
    with pytest.raises(
        checkpoints.CheckpointError, match=r"'t5_1_1_huge' \(shipped: t5_1_1_tiny\)"
    ):
        checkpoints.shipped_checkpoint("t5_1_1_huge")


@pytest.mark.parametrize(
    "name", [demo.SHIPPED_MODEL, "t5_tiny_multitask_2500", "t5_tiny_multitask_classes"]
)
def test_the_shipped_models_load_through_both_readers(name):
    """`checkpoints.load` (format detected, config inferred) and the T5X msgpack + zarr reader agree."""
    path = checkpoints.shipped_checkpoint(name)
    config, params = checkpoints.load(path)
    assert config == get_config(name)
    raw = checkpoints.t5x.read_params(path)
    assert jax.tree.structure(raw) == jax.tree.structure(params)
    for loaded, read in zip(jax.tree.leaves(params), jax.tree.leaves(raw), strict=True):
        np.testing.assert_array_equal(np.asarray(loaded), np.asarray(read))
    assert {np.asarray(x).dtype.name for x in jax.tree.leaves(raw)} == {"bfloat16"}

"""Checksums on every saved prompt and state step; damaged ones are named and set aside."""

from __future__ import annotations

import logging
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prompt_tuning.checkpoints import CheckpointError
from prompt_tuning.checkpoints import state as run_state


def _flip_byte(path: pathlib.Path, offset: int = -1) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(path: pathlib.Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# ------------------------------------------------------------------ prompts


def test_saved_prompt_verifies_and_reads_back(tmp_path):
    prompt = np.random.default_rng(0).normal(size=(5, 16)).astype(np.float32)
    path = run_state.save_prompt(tmp_path, 7, prompt)
    assert run_state.verify_prompt(path) is None
    np.testing.assert_array_equal(run_state.read_prompt(path), prompt)
    # The sidecar is in `sha256sum -c` format.
    digest, name = (path.parent / "prompt_7.npy.sha256").read_text().split()
    assert name == "prompt_7.npy" and len(digest) == 64


@pytest.mark.parametrize("damage", [_flip_byte, _truncate], ids=["flipped", "truncated"])
def test_damaged_prompt_fails_verification(tmp_path, damage):
    path = run_state.save_prompt(tmp_path, 1, np.ones((2, 3)))
    damage(pathlib.Path(path))
    assert "sha256" in run_state.verify_prompt(path)
    with pytest.raises(CheckpointError, match=r"prompt_1\.npy failed verification"):
        run_state.read_prompt(path)


def test_prompt_without_checksum_fails_verification(tmp_path):
    path = run_state.save_prompt(tmp_path, 1, np.ones((2, 3)))
    (pathlib.Path(path).parent / "prompt_1.npy.sha256").unlink()
    assert "checksum file prompt_1.npy.sha256 is missing" in run_state.verify_prompt(path)


def test_rewriting_the_same_prompt_keeps_the_file(tmp_path):
    path = pathlib.Path(run_state.save_prompt(tmp_path, 3, np.ones((2, 3))))
    inode = path.stat().st_ino
    run_state.save_prompt(tmp_path, 3, np.ones((2, 3)))
    assert path.stat().st_ino == inode
    assert not (tmp_path / run_state.REJECTED_DIR).exists()


def test_a_different_or_damaged_prompt_is_moved_aside_not_overwritten(tmp_path, caplog):
    path = pathlib.Path(run_state.save_prompt(tmp_path, 3, np.ones((2, 3))))
    original = path.read_bytes()
    with caplog.at_level(logging.WARNING):
        run_state.save_prompt(tmp_path, 3, np.zeros((2, 3)))
    assert "step 3 was recomputed and differs" in caplog.text
    (kept,) = (tmp_path / run_state.REJECTED_DIR).iterdir()
    assert kept.read_bytes() == original
    np.testing.assert_array_equal(run_state.read_prompt(path), np.zeros((2, 3)))

    _flip_byte(path)
    run_state.save_prompt(tmp_path, 3, np.zeros((2, 3)))
    assert len(list((tmp_path / run_state.REJECTED_DIR).iterdir())) == 2
    assert run_state.verify_prompt(path) is None


# -------------------------------------------------------------------- state


def _tree(step: int) -> dict[str, jax.Array]:
    return {"a": jnp.arange(6.0) * step, "b": jnp.full((2, 3), float(step))}


def _abstract() -> dict[str, jax.ShapeDtypeStruct]:
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), _tree(0)
    )


@pytest.fixture
def saved_steps(tmp_path):
    """A MODEL_DIR with committed, verified state steps 1, 2 and 3."""
    checkpointer = run_state.StateCheckpointer(tmp_path)
    for step in (1, 2, 3):
        checkpointer.save(step, _tree(step), {"step": step})
    checkpointer.close()
    return tmp_path


def _restore_latest_good(model_dir):
    checkpointer = run_state.StateCheckpointer(model_dir)
    try:
        return checkpointer.restore_latest_good(_abstract())
    finally:
        checkpointer.close()


def test_every_committed_step_has_a_manifest_that_verifies(saved_steps):
    for step in (1, 2, 3):
        step_dir = saved_steps / run_state.STATE_DIR / str(step)
        assert run_state.verify_state_step(step_dir) is None
        listed = (step_dir / run_state.STATE_MANIFEST).read_text().splitlines()
        files = [
            p for p in step_dir.rglob("*") if p.is_file() and p.name != run_state.STATE_MANIFEST
        ]
        assert len(listed) == len(files) > 5
    step, state, data = _restore_latest_good(saved_steps)
    assert step == 3 and data == {"step": 3}
    np.testing.assert_array_equal(state["a"], np.arange(6.0) * 3)


def _largest_data_file(step_dir: pathlib.Path) -> pathlib.Path:
    return max(
        (p for p in (step_dir / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )


@pytest.mark.parametrize("damage", [_flip_byte, _truncate], ids=["flipped", "truncated"])
def test_damaged_latest_step_is_named_and_the_previous_one_used(saved_steps, damage, caplog):
    latest = saved_steps / run_state.STATE_DIR / "3"
    damage(_largest_data_file(latest))
    with caplog.at_level(logging.WARNING):
        step, state, _ = _restore_latest_good(saved_steps)
    assert step == 2
    np.testing.assert_array_equal(state["b"], np.full((2, 3), 2.0))
    assert f"Rejected {latest}" in caplog.text and "sha256" in caplog.text
    assert not latest.exists()
    (moved,) = (saved_steps / run_state.REJECTED_DIR).iterdir()
    assert moved.name.startswith("state_3.")


def test_step_without_manifest_is_rejected(saved_steps, caplog):
    (saved_steps / run_state.STATE_DIR / "3" / run_state.STATE_MANIFEST).unlink()
    with caplog.at_level(logging.WARNING):
        step, _, _ = _restore_latest_good(saved_steps)
    assert step == 2 and "stopped before the step was verified" in caplog.text


def test_step_that_orbax_refuses_is_rejected_too(saved_steps, caplog):
    # Digests that match a step Orbax cannot read: the damage happened before the manifest.
    latest = saved_steps / run_state.STATE_DIR / "3"
    (latest / "state" / "_METADATA").write_text("{not json")
    run_state.write_state_manifest(latest)
    with caplog.at_level(logging.WARNING):
        step, _, _ = _restore_latest_good(saved_steps)
    assert step == 2 and "Orbax could not restore it" in caplog.text


def test_intact_step_that_does_not_fit_the_run_is_an_error_and_stays(saved_steps, caplog):
    """Restoring into another structure (e.g. another optimizer) must not move good steps."""
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    other = {"a": jax.ShapeDtypeStruct((6,), jnp.float32, sharding=sharding)}
    checkpointer = run_state.StateCheckpointer(saved_steps)
    try:
        with pytest.raises(run_state.StateMismatchError, match="intact but does not fit"):
            checkpointer.restore_latest_good(other)
    finally:
        checkpointer.close()
    assert run_state.verify_state_step(saved_steps / run_state.STATE_DIR / "3") is None
    assert not (saved_steps / run_state.REJECTED_DIR).exists()
    assert "Rejected" not in caplog.text


def test_no_usable_step_restores_nothing(saved_steps):
    for step in (1, 2, 3):
        _truncate(_largest_data_file(saved_steps / run_state.STATE_DIR / str(step)))
    assert _restore_latest_good(saved_steps) is None
    assert len(list((saved_steps / run_state.REJECTED_DIR).iterdir())) == 3


def test_checkpointer_continues_after_a_rejected_step(saved_steps):
    """The resumed run saves the rejected step number again."""
    _flip_byte(_largest_data_file(saved_steps / run_state.STATE_DIR / "3"))
    checkpointer = run_state.StateCheckpointer(saved_steps)
    assert checkpointer.restore_latest_good(_abstract())[0] == 2
    checkpointer.save(3, _tree(3), {"step": 3})
    checkpointer.close()
    assert run_state.verify_state_step(saved_steps / run_state.STATE_DIR / "3") is None


def test_state_saved_with_the_old_field_name_resumes_as_params(tmp_path):
    """States from before the one TrainState (#19) hold `prompt`; they restore into `params`."""
    from prompt_tuning import trainer

    optimizer = trainer.make_optimizer()
    state = trainer.init_state(np.arange(12, dtype=np.float32).reshape(3, 4), optimizer)
    old = {"step": state.step + 5, "prompt": state.params + 1, "opt_state": state.opt_state}
    checkpointer = run_state.StateCheckpointer(tmp_path)
    checkpointer.save(5, old, {"step": 5, "examples": 10})
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), state
    )
    step, restored, position = checkpointer.restore_latest_good(abstract)
    assert (step, int(restored.step), position["examples"]) == (5, 5, 10)
    assert isinstance(restored, trainer.TrainState)
    np.testing.assert_array_equal(restored.params, old["prompt"])

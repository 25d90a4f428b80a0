"""The input pipeline's position is saved with the train state and resumed without replaying it."""

from __future__ import annotations

import gin
import numpy as np
import pytest
import tensorflow as tf
import tiny
from test_train import tiny_run_bindings

from prompt_tuning import experiment, gin_utils, input_pipeline
from prompt_tuning.checkpoints import state as run_state

LENGTHS = {"inputs": 16, "targets": 4}


def _batches(num_shards: int = 2) -> input_pipeline.TrainBatches:
    return input_pipeline.TrainBatches(
        input_pipeline.shard_datasets(tiny.TASK, LENGTHS, 8, seed=0, num_shards=num_shards)
    )


def _take(batches, count: int) -> list[dict[str, np.ndarray]]:
    return [next(batches) for _ in range(count)]


def _assert_same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert sorted(x) == sorted(y)
        for name in x:
            np.testing.assert_array_equal(x[name], y[name], err_msg=name)


def test_saved_position_continues_the_stream(tmp_path):
    straight = _batches()
    assert straight.checkpointable
    # More batches than the tiny task's 96 examples hold: the position spans an epoch boundary.
    _take(straight, 15)
    straight.save(str(tmp_path))
    assert (
        sorted(p.name.split(".")[0] for p in tmp_path.iterdir())
        == ["shard_0"] * 2 + ["shard_1"] * 2
    )
    expected = _take(straight, 6)

    resumed = _batches()
    resumed.restore(str(tmp_path))
    _assert_same(_take(resumed, 6), expected)
    # The control: without the saved position the same pipeline starts elsewhere.
    with pytest.raises(AssertionError):
        _assert_same(_take(_batches(), 6), expected)


def test_batches_join_the_shards_as_the_zipped_dataset():
    """`TrainBatches` yields exactly `train_dataset`'s batches (what runs trained on before)."""
    zipped = input_pipeline.train_dataset(tiny.TASK, LENGTHS, 8, seed=0, num_shards=2)
    _assert_same(_take(_batches(), 5), list(zipped.take(5).as_numpy_iterator()))


def test_generator_source_falls_back_to_skipping():
    """tf.data cannot save a Python generator's position: such a pipeline skips instead."""

    def dataset() -> tf.data.Dataset:
        rows = tf.data.Dataset.from_generator(
            lambda: iter(range(1000)), output_signature=tf.TensorSpec((), tf.int64)
        )
        return rows.map(lambda x: {"x": x}).batch(4)

    batches = input_pipeline.TrainBatches({0: dataset()})
    assert not batches.checkpointable
    batches.skip(3)
    np.testing.assert_array_equal(next(batches)["x"], [12, 13, 14, 15])


def _train(model_dir, checkpoint, steps: int, lines: list[str]) -> np.ndarray:
    gin_utils.parse(
        ["runs/prompt_finetune.gin", "prompts/random_uniform.gin"],
        [*tiny_run_bindings(model_dir, checkpoint, steps, 5, 5), "DataSpec.data_shards = 2"],
    )
    try:
        return experiment.train(print_fn=lines.append)
    finally:
        gin.clear_config()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))


def test_resumed_run_reads_the_saved_position(tmp_path, checkpoint):
    """A resumed run restores the iterators (no skipping) and ends on the uninterrupted prompt."""
    straight = _train(tmp_path / "straight", checkpoint, 10, [])
    _train(tmp_path / "split", checkpoint, 5, [])
    assert (tmp_path / "split" / "state" / "5" / run_state.DATA_ITERATOR).is_dir()
    manifest = (tmp_path / "split" / "state" / "5" / run_state.STATE_MANIFEST).read_text()
    assert f"{run_state.DATA_ITERATOR}/shard_1.index" in manifest  # verified like the rest
    lines: list[str] = []
    resumed = _train(tmp_path / "split", checkpoint, 10, lines)
    assert not [line for line in lines if line.startswith("Skipping")], lines
    np.testing.assert_array_equal(resumed, straight)

"""Every bad input to train / eval: one clear message, exit code != 0, MODEL_DIR untouched."""

from __future__ import annotations

import hashlib
import pathlib
import shutil

import numpy as np
import pytest
import tiny

from prompt_tuning import train
from prompt_tuning.models import T5Config

TESTS = pathlib.Path(__file__).resolve().parent


def _digest(directory: pathlib.Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _argv(model_dir, checkpoint, *extra, prompt="random_uniform"):
    return [
        "--gin_file=runs/prompt_finetune.gin",
        f"--gin_file=prompts/{prompt}.gin",
        f"--gin.MODEL_DIR='{model_dir}'",
        f"--gin.INITIAL_CHECKPOINT_PATH='{checkpoint}'",
        f"--gin.MIXTURE_OR_TASK_NAME='{tiny.TASK}'",
        "--gin.TASK_FEATURE_LENGTHS={'inputs': 16, 'targets': 4}",
        "--gin.TRAIN_STEPS=4",
        "--gin.BATCH_SIZE=8",
        "--gin.PROMPT_LENGTH=5",
        "--gin.ModelSpec.dtype='float32'",
        "--gin.train.save_every=2",
        "--gin.train.eval_every=0",
        *extra,
    ]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A MODEL_DIR holding a finished 4-step run, and the checkpoint it used."""
    root = tmp_path_factory.mktemp("errors")
    checkpoint = tiny.write_checkpoint(root / "ckpt")
    model_dir = root / "run"
    assert train.main(_argv(model_dir, checkpoint)) == 0
    return model_dir, checkpoint


@pytest.fixture
def model_dir(finished_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished_run[0], copy)
    return copy


def _fails(argv, capsys, model_dir, *messages):
    before = _digest(model_dir)
    assert train.main(argv) != 0
    out = capsys.readouterr().out
    assert out.count("error:") == 1, out
    for message in messages:
        assert message in out, out
    assert _digest(model_dir) == before
    return out


def test_unknown_binding_names_the_nearest(finished_run, model_dir, capsys):
    argv = _argv(model_dir, finished_run[1], "--gin.train.trian_steps=3")
    _fails(argv, capsys, model_dir, "trian_steps", "train.train_steps")


def test_missing_initial_checkpoint_path(model_dir, capsys):
    argv = [a for a in _argv(model_dir, "x") if "INITIAL_CHECKPOINT_PATH" not in a]
    _fails(argv, capsys, model_dir, "INITIAL_CHECKPOINT_PATH")


def test_checkpoint_that_does_not_exist(model_dir, tmp_path, capsys):
    _fails(_argv(model_dir, tmp_path / "nowhere"), capsys, model_dir, str(tmp_path / "nowhere"))


def test_prompt_file_of_the_wrong_shape(finished_run, tmp_path, capsys, fixtures_dir):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    rte = fixtures_dir / "pretrained_prompts" / "rte.npy"
    argv = _argv(fresh, finished_run[1], f"--gin.PROMPT_FILE='{rte}'", prompt="from_file")
    _fails(argv, capsys, fresh, "(100, 768)", "(5, 16)")


def test_vocabulary_size_disagrees_with_checkpoint(model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tiny, "CONFIG", T5Config(**{**tiny.CONFIG.__dict__, "vocab_size": 512}))
    small_vocab = tiny.write_checkpoint(tmp_path / "small_vocab")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    _fails(_argv(fresh, small_vocab), capsys, fresh, "Vocabulary mismatch", "512")


def test_unregistered_task(finished_run, tmp_path, capsys):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    argv = _argv(fresh, finished_run[1], "--gin.MIXTURE_OR_TASK_NAME='tiny_polarity_tset'")
    _fails(argv, capsys, fresh, "No task or mixture is registered", "tiny_polarity_test")


def test_model_dir_of_another_run(finished_run, model_dir, capsys):
    argv = _argv(model_dir, finished_run[1], "--gin.PROMPT_LENGTH=6")
    _fails(argv, capsys, model_dir, "different run", "PROMPT_LENGTH")


def test_nan_loss_stops_and_keeps_the_last_good_prompt(finished_run, tmp_path, capsys):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    argv = _argv(
        fresh, finished_run[1],
        "--gin.TRAIN_STEPS=10", "--gin_file=" + str(TESTS / "exploding.gin"),
    )
    assert train.main(argv) != 0
    out = capsys.readouterr().out
    assert "Loss is nan at step" in out or "Loss is inf at step" in out, out
    saved = sorted(p.name for p in (fresh / "prompts").glob("*.npy"))
    assert saved == ["prompt_2.npy", "prompt_4.npy"]
    assert np.isfinite(np.load(fresh / "prompts" / "prompt_4.npy")).all()

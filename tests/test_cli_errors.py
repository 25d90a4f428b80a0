"""Every bad input to train / eval: one clear message, exit code != 0, MODEL_DIR untouched."""

from __future__ import annotations

import pathlib
import shutil

import numpy as np
import pytest
import seqio
import tensorflow as tf
import tiny
import train_cli

from prompt_tuning import (
    convert,
    experiment,
    extract_prompt,
    infer,
    interpret,
    peft_interop,
    prompt_similarity,
    run_lock,
    sweep,
    train,
)
from prompt_tuning import eval as eval_cli
from prompt_tuning.checkpoints import state as run_state
from prompt_tuning.data.registry import register_classification
from prompt_tuning.models import T5Config

TESTS = pathlib.Path(__file__).resolve().parent


def _argv(model_dir, checkpoint, *extra, prompt="random_uniform"):
    return train_cli.train_args(model_dir, checkpoint, *extra, prompt=prompt)


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


def _fails(argv, capsys, model_dir, *messages, main=train.main):
    before = train_cli.digest(model_dir)
    assert main(argv) == 2
    out = capsys.readouterr().out
    assert out.count("error:") == 1, out
    for message in messages:
        assert message in out, out
    assert train_cli.digest(model_dir) == before
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


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_prompt(finished_run, tmp_path, capsys):
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    argv = _argv(
        fresh,
        finished_run[1],
        "--gin.TRAIN_STEPS=10",
        "--gin_file=" + str(TESTS / "exploding.gin"),
    )
    assert train.main(argv) != 0
    out = capsys.readouterr().out
    assert "Loss is nan at step" in out or "Loss is inf at step" in out, out
    saved = sorted(p.name for p in (fresh / "prompts").glob("*.npy"))
    assert saved == ["prompt_2.npy", "prompt_4.npy"]
    assert np.isfinite(np.load(fresh / "prompts" / "prompt_4.npy")).all()


# ------------------------------------------------------------------ added cases


@pytest.fixture
def fresh(tmp_path):
    directory = tmp_path / "fresh"
    directory.mkdir()
    return directory


def test_binding_of_the_wrong_type(finished_run, fresh, capsys):
    argv = _argv(fresh, finished_run[1], "--gin.TRAIN_STEPS='ten'")
    _fails(argv, capsys, fresh, "TRAIN_STEPS")


def test_missing_required_macro(finished_run, fresh, capsys):
    argv = [a for a in _argv(fresh, finished_run[1]) if "MODEL_DIR" not in a]
    _fails(argv, capsys, fresh, "MODEL_DIR")


def test_truncated_checkpoint(finished_run, tmp_path, fresh, capsys):
    damaged = tmp_path / "damaged"
    shutil.copytree(finished_run[1], damaged)
    largest = max((p for p in damaged.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    largest.write_bytes(largest.read_bytes()[:100])
    _fails(_argv(fresh, damaged), capsys, fresh, str(damaged))


def test_checkpoint_of_another_model(finished_run, fresh, capsys):
    argv = _argv(fresh, finished_run[1], "--gin.ModelSpec.name='t5_1_1_small'")
    _fails(argv, capsys, fresh, "does not match model 't5_1_1_small'", "d_model")


def _prompt_file(tmp_path, array) -> pathlib.Path:
    path = tmp_path / "init.npy"
    np.save(path, array)
    return path


def test_prompt_file_of_the_wrong_dtype(finished_run, tmp_path, fresh, capsys):
    path = _prompt_file(tmp_path, np.ones((5, 16), np.int32))
    argv = _argv(fresh, finished_run[1], f"--gin.PROMPT_FILE='{path}'", prompt="from_file")
    _fails(argv, capsys, fresh, str(path), "int32")


def test_prompt_file_with_nan_inside(finished_run, tmp_path, fresh, capsys):
    array = np.ones((5, 16), np.float32)
    array[2, 3] = np.nan
    path = _prompt_file(tmp_path, array)
    argv = _argv(fresh, finished_run[1], f"--gin.PROMPT_FILE='{path}'", prompt="from_file")
    _fails(argv, capsys, fresh, str(path), "NaN")


def test_task_data_dir_that_does_not_exist(finished_run, tmp_path, fresh, capsys, monkeypatch):
    monkeypatch.setenv("PROMPT_TUNING_DATA_DIR", str(tmp_path / "no_data"))
    argv = _argv(fresh, finished_run[1], "--gin.MIXTURE_OR_TASK_NAME='glue_rte_v002'")
    _fails(argv, capsys, fresh, str(tmp_path / "no_data"), "train.tsv")


@pytest.fixture
def empty_task():
    """A registered task whose train split exists but holds no examples."""
    name = "tiny_empty_split_test"

    def no_examples(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        del split, shuffle_files, seed
        return tf.data.Dataset.from_tensor_slices(
            {"sentence": tf.constant([], tf.string), "label": tf.constant([], tf.int64)}
        )

    names = register_classification(
        name,
        seqio.FunctionDataSource(no_examples, splits=["train"]),
        prefix="polarity",
        keys=("sentence",),
        label_names=tiny.LABELS,
    )
    yield name
    for registered in names:
        seqio.TaskRegistry.remove(registered)


def test_empty_split(finished_run, fresh, empty_task, capsys):
    argv = _argv(fresh, finished_run[1], f"--gin.MIXTURE_OR_TASK_NAME='{empty_task}'")
    _fails(argv, capsys, fresh, f"Split 'train' of task {empty_task} holds no examples")


def test_model_dir_in_use_by_another_run(finished_run, capsys):
    model_dir = finished_run[0]
    with run_lock.hold(model_dir):
        _fails(
            _argv(model_dir, finished_run[1]), capsys, model_dir, "is in use by another run", "pid"
        )


def test_model_dir_that_cannot_be_written(finished_run, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    _fails(_argv(blocker / "run", finished_run[1]), capsys, tmp_path, "is not writable")


@pytest.mark.slow
def test_corrupt_latest_state_is_named_and_the_previous_one_resumed(
    finished_run, model_dir, caplog
):
    """Not an error: the damaged step is set aside and the run finishes the same."""
    config = model_dir / "config.gin"
    config.write_text(config.read_text().replace(str(finished_run[0]), str(model_dir)))
    latest = model_dir / run_state.STATE_DIR / "4"
    data_file = max((p for p in latest.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    data_file.write_bytes(data_file.read_bytes()[:-1] + bytes([data_file.read_bytes()[-1] ^ 1]))
    with caplog.at_level("WARNING"):
        assert train.main(_argv(model_dir, finished_run[1])) == 0
    assert f"Rejected {latest}" in caplog.text
    final = run_state.prompt_path(model_dir, 4)
    assert final.read_bytes() == run_state.prompt_path(finished_run[0], 4).read_bytes()
    assert run_state.verify_state_step(latest) is None


# ------------------------------------------------ a user's own data (issue 23)


def _job_argv(model_dir, checkpoint, run_gin: str, *extra: str) -> list[str]:
    """Gin flags of an eval / infer job on the tiny task, with the finished run's prompt."""
    return [
        f"--gin_search_paths={TESTS}",
        f"--gin_file=runs/{run_gin}",
        "--gin_file=tiny_task.gin",
        f"--gin.MODEL_DIR='{model_dir}'",
        f"--gin.INITIAL_CHECKPOINT_PATH='{checkpoint}'",
        f"--gin.MIXTURE_OR_TASK_NAME='{tiny.TASK}'",
        "--gin.TASK_FEATURE_LENGTHS={'inputs': 16, 'targets': 4}",
        "--gin.ModelSpec.dtype='float32'",
        f"--gin.PROMPT_FILE='{run_state.prompt_path(model_dir, 4)}'",
        *extra,
    ]


def test_misspelt_macro_names_the_nearest(finished_run, model_dir, capsys):
    argv = _argv(model_dir, finished_run[1], "--gin.TRAIN_STEP=3")
    _fails(argv, capsys, model_dir, "TRAIN_STEP ", "Nearest known macros: TRAIN_STEPS")


@pytest.mark.parametrize(
    ("rows", "messages"),
    [
        (
            "text\tlabel\nfine\tpositive\n",
            ("rows.tsv line 2", "lacks sentence", "expects sentence"),
        ),
        ("sentence\tlabel\nfine\n", ("rows.tsv line 2 has 1 tab-separated cells", "names 2")),
    ],
)
def test_infer_rows_without_the_tasks_fields(
    finished_run, model_dir, tmp_path, capsys, rows, messages
):
    path = tmp_path / "rows.tsv"
    path.write_text(rows)
    argv = _job_argv(
        model_dir, finished_run[1], "prompt_infer.gin", f"--gin.infer.input_file='{path}'"
    )
    _fails(argv, capsys, model_dir, *messages, main=infer.main)


def test_eval_with_no_prompt(finished_run, model_dir, capsys):
    argv = _job_argv(model_dir, finished_run[1], "prompt_eval.gin", "--gin.PROMPT_FILE=None")
    assert eval_cli.main(argv) == 0
    assert "<no prompt>: majority_baseline" in capsys.readouterr().out


def _tool_fails(main, argv, capsys, *messages) -> None:
    """A standalone tool's error: exit status 2 and one `error:` line naming the problem."""
    with pytest.raises(SystemExit) as raised:
        main(argv)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1, err
    for message in messages:
        assert message in err, err


def test_extract_prompt_into_a_missing_folder(finished_run, tmp_path, capsys):
    out = tmp_path / "missing" / "p.npy"
    argv = ["--model_dir", str(finished_run[0]), "--out", str(out)]
    _tool_fails(extract_prompt.main, argv, capsys, f"the folder {out.parent} does not exist")


@pytest.fixture
def method_file(tmp_path) -> pathlib.Path:
    path = tmp_path / "prefix.npz"
    np.savez(path, encoder_prefix=np.zeros((2, 2, 5, 4, 6), np.float32))
    return path


def test_a_methods_npz_where_a_prompt_is_needed(finished_run, method_file, tmp_path, capsys):
    need = ("is a prompt method's .npz (encoder_prefix)", "not a [P, d] prompt")
    checkpoint = str(finished_run[1])
    _tool_fails(
        interpret.main, ["--prompt", str(method_file), "--checkpoint", checkpoint], capsys, *need
    )
    argv = ["--target", str(method_file), "--sources", str(method_file)]
    _tool_fails(prompt_similarity.main, argv, capsys, *need)
    argv = [
        "export",
        "--prompt",
        str(method_file),
        "--hf_model",
        checkpoint,
        "--out",
        str(tmp_path / "a"),
    ]
    _tool_fails(peft_interop.main, argv, capsys, *need)


def test_convert_to_a_dtype_that_does_not_exist(finished_run, tmp_path, capsys):
    argv = ["--from", str(finished_run[1]), "--to", str(tmp_path / "out"), "--format", "hf"]
    _tool_fails(convert.main, [*argv, "--dtype", "float17"], capsys, "'float17' is not a dtype")
    assert not (tmp_path / "out").exists()


def test_sweep_grid_macro_misspelt(tmp_path, capsys):
    argv = [
        "--sweep_dir",
        str(tmp_path / "sweep"),
        "--dry_run",
        "--gin_file=runs/prompt_finetune.gin",
        "--grid",
        "PROMPT_LENGHT=[1]",
    ]
    _tool_fails(sweep.main, argv, capsys, "PROMPT_LENGHT", "Nearest known macros: PROMPT_LENGTH")
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_extract_prompt_names_the_file_a_method_run_saved(finished_run, tmp_path, capsys, caplog):
    """A P-tuning state holds its encoder, not a prompt; the run's own .npy is named.

    Orbax's warning about the state's metadata file is not printed either.
    """
    run = tmp_path / "p_tuning"
    argv = _argv(run, finished_run[1], "--gin_file=methods/p_tuning.gin")
    assert train.main([*argv, "--gin.TRAIN_STEPS=2"]) == 0
    capsys.readouterr()
    out = tmp_path / "p.npy"
    argv = ["--model_dir", str(run), "--out", str(out)]
    _tool_fails(extract_prompt.main, argv, capsys, str(run / "prompts" / "prompt_2.npy"))
    assert not out.exists()
    assert "Metadata file does not exist" not in caplog.text


def test_gin_include_search_prints_no_stray_error(caplog):
    from prompt_tuning import gin_utils
    from prompt_tuning.pretraining import full_training  # noqa: F401  (its configurables)

    with pytest.raises(gin_utils.GinConfigError, match="MODEL_DIR"):
        gin_utils.parse(["pretrain/span_corruption.gin"])
    assert "Path not found" not in caplog.text


def test_show_task_list_takes_a_word(capsys):
    from prompt_tuning import show_task

    assert show_task.main(["--list", "sentiment"]) == 0
    assert "movie_sentiment" in capsys.readouterr().out.split()


def test_train_help_shows_gin_bindings(capsys):
    with pytest.raises(SystemExit) as raised:
        train.main(["--help"])
    assert raised.value.code == 0
    assert "--gin.KEY=VALUE" in capsys.readouterr().out


def test_hardware_gin_file_sets_the_mesh(finished_run, fresh, capsys):
    """hardware/gpu_1.gin asks for one device; this process has 8, so the run refuses to start."""
    argv = _argv(fresh, finished_run[1], "--gin_file=hardware/gpu_1.gin")
    _fails(argv, capsys, fresh, "mesh_shape (1, 1) needs 1 devices, but 8 are available")


def test_an_internal_error_keeps_its_traceback(finished_run, fresh, capsys, monkeypatch):
    """Only the documented errors become one line; a bug's ValueError reaches the user whole."""

    def job_with_a_bug() -> None:
        raise ValueError("bug")

    monkeypatch.setattr(experiment, "train", job_with_a_bug)
    with pytest.raises(ValueError, match="bug"):
        train.main(_argv(fresh, finished_run[1]))
    assert "error:" not in capsys.readouterr().out

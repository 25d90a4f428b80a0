"""The sweep tool: grid parsing, gin-complete commands, collection into CSV / markdown / PNG."""

from __future__ import annotations

import csv
import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest
import tiny
from train_cli import TESTS, subprocess_env

from prompt_tuning import sweep

GRID = ["PROMPT_LENGTH=[1,4]", "gin_file=[prompts/random_uniform.gin,prompts/sampled_vocab.gin]"]


def test_grid_values_keep_their_text():
    assert sweep.split_values("[1, 5,20]") == ["1", "5", "20"]
    assert sweep.split_values("['a,b', \"c\", [1, 2], {'x': 1}]") == [
        "'a,b'",
        '"c"',
        "[1, 2]",
        "{'x': 1}",
    ]
    grid = sweep.parse_grid(["PROMPT_LENGTH=[1,5]", "make_optimizer.learning_rate=[0.3, 1.0]"])
    assert grid == {"PROMPT_LENGTH": ["1", "5"], "make_optimizer.learning_rate": ["0.3", "1.0"]}
    for bad in ["PROMPT_LENGTH=1,5", "PROMPT_LENGTH=[1,,5]", "PROMPT_LENGTH=['a]", "=[1]"]:
        with pytest.raises(ValueError, match=r"Grid values|must look like"):
            sweep.parse_grid([bad])
    with pytest.raises(ValueError, match="twice"):
        sweep.parse_grid(["A=[1]", "A=[2]"])
    with pytest.raises(ValueError, match="same folder name"):
        sweep.plan_runs([], {"MODEL_NAME": ["'a b'", "'a-b'"]}, [0], "/tmp/sweep")


def test_dry_run_writes_one_gin_complete_command_per_run(tmp_path):
    argv = [
        "--sweep_dir",
        str(tmp_path),
        "--dry_run",
        "--seeds",
        "0,1",
        "--gin_file=runs/prompt_finetune.gin",
        "--gin.TRAIN_STEPS=3",
        *(f"--grid={g}" for g in GRID),
    ]
    assert sweep.main(argv) == 0
    lines = [
        line
        for line in (tmp_path / sweep.COMMANDS_FILE).read_text().splitlines()
        if not line.startswith("#")
    ]
    assert len(lines) == 2 * 2 * 2
    commands = [shlex.split(line) for line in lines]
    dirs = {next(a for a in c if a.startswith("--gin.MODEL_DIR=")) for c in commands}
    assert len(dirs) == 8  # every run has its own MODEL_DIR
    first = commands[0]
    assert first[:3] == ["python", "-m", "prompt_tuning.train"]
    assert {
        "--gin_file=runs/prompt_finetune.gin",
        "--gin.TRAIN_STEPS=3",
        "--gin.PROMPT_LENGTH=1",
        "--gin_file=prompts/random_uniform.gin",
        "--gin.DataSpec.seed=0",
    } <= set(first)
    assert (
        "--gin.MODEL_DIR='"
        + str(tmp_path / "PROMPT_LENGTH=1__gin_file=random_uniform__seed=0")
        + "'"
        in first
    )
    assert (tmp_path / "results.csv").exists() is False


def test_collect_tables_and_plots_every_seed(tmp_path):
    assert (
        sweep.main(
            [
                "--sweep_dir",
                str(tmp_path),
                "--dry_run",
                "--seeds",
                "0,1,2",
                "--gin_file=runs/prompt_finetune.gin",
                *(f"--grid={g}" for g in GRID),
            ]
        )
        == 0
    )
    _, runs = sweep.read_plan(str(tmp_path))
    rng = np.random.default_rng(0)
    written = {}
    for run in runs[:-1]:  # the last run never evaluated
        scores = rng.uniform(40, 90, size=3)
        written[run.name] = scores
        records = [{"step": 1, "kind": "train", "loss": 1.0, "accuracy": 99.9}]
        records += [
            {"step": 10 * (i + 1), "kind": "eval", "accuracy": float(s)}
            for i, s in enumerate(scores)
        ]
        (tmp_path / run.name).mkdir()
        (tmp_path / run.name / "metrics.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in records)
        )
    assert sweep.main(["--sweep_dir", str(tmp_path), "--collect", "--x", "PROMPT_LENGTH"]) == 0

    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert len(rows) == 12
    for row in rows:
        if row["run"] in written:
            scores = written[row["run"]]
            assert float(row["best_accuracy"]) == pytest.approx(scores.max())
            assert int(row["best_step"]) == 10 * (scores.argmax() + 1)
        else:
            assert row["best_accuracy"] == ""
    table = (tmp_path / "results.md").read_text()
    assert "--dry_run" in table and "--collect" in table  # both commands are named
    best = {name: s.max() for name, s in written.items()}
    group = [best[f"PROMPT_LENGTH=4__gin_file=sampled_vocab__seed={s}"] for s in (0, 1)]
    assert f"| 2/3 | {np.mean(group):.2f} | {np.std(group):.2f} |" in table
    assert runs[-1].name in table  # named as missing
    assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _tiny_flags(checkpoint) -> list[str]:
    """Gin flags of a 2-step run on the tiny random model."""
    return [
        f"--gin_search_paths={TESTS}",
        "--gin_file=runs/prompt_finetune.gin",
        "--gin_file=tiny_task.gin",
        f"--gin.INITIAL_CHECKPOINT_PATH='{checkpoint}'",
        f"--gin.MIXTURE_OR_TASK_NAME='{tiny.TASK}'",
        "--gin.TASK_FEATURE_LENGTHS={'inputs': 16, 'targets': 4}",
        "--gin.TRAIN_STEPS=2",
        "--gin.BATCH_SIZE=8",
        "--gin.ModelSpec.dtype='float32'",
        "--gin.train.save_every=2",
        "--gin.train.eval_every=1",
        "--gin.train.max_eval_examples=8",
    ]


@pytest.mark.slow
def test_a_dry_run_command_runs_as_written(tmp_path):
    """What a cluster launcher gets: one line of commands.sh, run by a shell, trains its cell."""
    checkpoint = tiny.write_checkpoint(tmp_path / "ckpt")
    argv = ["--sweep_dir", str(tmp_path / "sweep"), "--dry_run", "--seeds", "0,1"]
    grid = ["--grid=PROMPT_LENGTH=[1,4]", "--gin_file=prompts/random_uniform.gin"]
    assert sweep.main([*argv, *grid, *_tiny_flags(checkpoint)]) == 0
    lines = (tmp_path / "sweep" / sweep.COMMANDS_FILE).read_text().splitlines()
    line = [text for text in lines if not text.startswith("#")][-1]
    env = subprocess_env(devices=1)
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env["PATH"]])
    subprocess.run(["sh", "-c", line], env=env, check=True, capture_output=True)
    run = tmp_path / "sweep" / "PROMPT_LENGTH=4__seed=1"
    assert np.load(run / "prompts" / "prompt_2.npy").shape == (4, tiny.CONFIG.d_model)
    assert [json.loads(r)["kind"] for r in (run / "metrics.jsonl").read_text().splitlines()].count(
        "eval"
    ) == 2


@pytest.mark.slow
def test_sweep_runs_the_tiny_task_locally(tmp_path, monkeypatch, capsys):
    checkpoint = tiny.write_checkpoint(tmp_path / "ckpt")
    for key, value in subprocess_env().items():
        monkeypatch.setenv(key, value)
    argv = [
        "--sweep_dir",
        str(tmp_path / "sweep"),
        "--seeds",
        "0",
        "--jobs",
        "2",
        *(f"--grid={g}" for g in GRID),
        *_tiny_flags(checkpoint),
    ]
    assert sweep.main(argv) == 0
    rows = list(csv.DictReader((tmp_path / "sweep" / "results.csv").open()))
    assert len(rows) == 4
    for row in rows:
        records = [
            json.loads(line)
            for line in (tmp_path / "sweep" / row["run"] / "metrics.jsonl").read_text().splitlines()
        ]
        evals = [r["accuracy"] for r in records if r["kind"] == "eval"]
        assert len(evals) == 2 and float(row["best_accuracy"]) == pytest.approx(max(evals))
        prompt = np.load(tmp_path / "sweep" / row["run"] / "prompts" / "prompt_2.npy")
        assert prompt.shape == (int(row["PROMPT_LENGTH"]), tiny.CONFIG.d_model)
    assert (tmp_path / "sweep" / "results.png").stat().st_size > 0
    # A rerun (an interrupted sweep resumed) skips the finished runs and rewrites the tables.
    capsys.readouterr()
    assert sweep.main(argv) == 0
    assert "4 of 4 runs already finished" in capsys.readouterr().out

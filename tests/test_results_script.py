"""`make results` (scripts/results.py): every command it runs and publishes is gin-complete.

The runs themselves take hours (docs/results.md); here each sweep is planned with
`--dry_run` and each eval / model-tuning command is parsed as its job would parse it,
so a renamed binding or gin file breaks this test rather than the next `make results`.
"""

from __future__ import annotations

import pathlib
import sys

import gin
import pytest

from prompt_tuning import experiment, gin_utils, pretrain, sweep  # noqa: F401  (registers the jobs)

SCRIPTS = pathlib.Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import results  # noqa: E402

SWEEPS = {  # section folder: (command, runs planned)
    "length_init": (
        results.sweep_command("length_init", results.LENGTH_INIT_GRID, results.SEEDS, 2),
        45,
    ),
    "objective": (
        results.sweep_command(
            "objective", results.OBJECTIVE_GRID, results.SEEDS, 2, results.CLASS_LABELS_20
        ),
        6,
    ),
    "ensemble": (
        results.sweep_command("ensemble", results.ENSEMBLE_GRID, results.ENSEMBLE_EXTRA_SEEDS, 2),
        2,
    ),
    "methods": (
        results.sweep_command(
            "methods", results.METHODS_GRID, results.SEEDS, 2, results.CLASS_LABELS_20
        ),
        9,
    ),
    "multi_task": (
        results.sweep_command(
            "multi_task",
            results.MULTI_TASK_GRID,
            results.SEEDS,
            2,
            results.CLASS_LABELS_20,
            results.MULTI_TASK_MIXTURE,
            0,
        ),
        3,
    ),
}


@pytest.mark.parametrize("name", list(SWEEPS))
def test_each_sweep_plans_gin_complete_commands(name, tmp_path):
    command, runs = SWEEPS[name]
    argv = [a for a in command[3:] if not a.startswith(("--sweep_dir=", "--jobs="))]
    assert sweep.main([f"--sweep_dir={tmp_path}", "--dry_run", *argv]) == 0
    planned = (tmp_path / "commands.sh").read_text().splitlines()[2:]
    assert len(planned) == runs
    assert all(line.startswith("python -m prompt_tuning.train ") for line in planned)


@pytest.mark.parametrize(
    "command",
    [
        results.eval_command(pathlib.Path("out"), results.TRANSFER, []),
        results.eval_command(pathlib.Path("out"), "movie_sentiment", ["a.npy", "b.npy"]),
        results.eval_command(pathlib.Path("out"), results.TRANSFER, [], "ckpt/checkpoint_300"),
        results.model_tuning_command(0),
        results.stage0_command(),
    ],
    ids=["eval_no_prompt", "eval_ensemble", "eval_model_tuned", "model_tuning", "stage0"],
)
def test_job_commands_parse(command):
    """The eval / pretrain job's own flag and gin parsing (which raises on any bad binding)."""
    flags = gin_utils.parse_flags(command[3:])
    try:
        gin_utils.parse(flags.gin_file, flags.gin_bindings, flags.gin_search_paths)
    finally:
        gin.clear_config()


def test_wall_time_counts_overlapping_runs_once_and_skips_the_gaps_between_sessions():
    import results_runs

    two_at_a_time = [(0.0, 10.0), (2.0, 12.0), (12.0, 15.0)]
    assert results_runs.busy_seconds(two_at_a_time) == 15.0
    resumed_next_day = [(0.0, 10.0), (86_400.0, 86_405.0), (86_401.0, 86_403.0)]
    assert results_runs.busy_seconds(resumed_next_day) == 15.0
    assert results_runs.busy_seconds([]) == 0.0

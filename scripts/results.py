"""`make results`: Lester et al. 2021's findings rerun on the shipped small T5 -> docs/results.md.

    python scripts/results.py [--section NAME ...] [--jobs 2] [--report_only]

Every section is a set of gin-complete commands (prompt-tuning sweeps through
`prompt_tuning.sweep`, model tuning through `prompt_tuning.pretrain`, evaluations
through `prompt_tuning.eval`) writing under runs/results/. A command whose output
exists is not rerun, so an interrupted `make results` resumes. The report step then
reads only the runs' files (`metrics.jsonl`, the eval jobs' `metrics.json`, the
saved prompts and train states) and writes docs/results.md and docs/results/*.png;
nothing in them is typed by hand.

Sections (`--section` reruns one alone; the report always covers all):
  length_init   prompt length x initialisation (Figure 3 a/b)
  objective     the same prompt on each stage of the model's pretraining (Figure 3 c/d)
  transfer      prompt design vs prompt tuning vs model tuning, and zero-shot domain
                transfer of each (Figure 1 at one scale, Tables 1-2 in spirit)
  ensemble      five prompts from different seeds, alone and voting (Table 3)
  interpret     the learned vectors' nearest vocabulary tokens (Section 7)
  methods       prompt, prefix, P-tuning, deep and multi-task prompts
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = Path("runs/results")
SHIPPED = "prompt_tuning/assets/models/t5_tiny_multitask/checkpoint_1000"
STAGE_CHECKPOINTS = {
    "MiniLM embeddings, random layers (step 0)": "runs/shipped_t5/init/checkpoint_0",
    "multi-task mixture, 1,000 steps (shipped default)": SHIPPED,
    "multi-task mixture, 2,500 steps": "prompt_tuning/assets/models/t5_tiny_multitask_2500/checkpoint_2500",
}
STEPS = 300
LENGTHS = "{'inputs': 64, 'targets': 4}"
SEEDS = (0, 1, 2)
# Minutes each section took here with 2 jobs on 2 shared cores (the progress line's estimate).
ESTIMATE_MIN = {
    "length_init": 75,
    "objective": 15,
    "transfer": 40,
    "ensemble": 6,
    "interpret": 1,
    "methods": 30,
}
ENSEMBLE_EXTRA_SEEDS = (3, 4)
TRANSFER = "movie_sentiment_transfer"
LENGTH_INIT_GRID = (
    "PROMPT_LENGTH=[1,5,20,100,150]",
    "gin_file=[prompts/random_uniform.gin,prompts/sampled_vocab.gin,prompts/class_labels.gin]",
)
# The shipped stage's row is section 1's 20-vector class-label cell (the same command).
OBJECTIVE_GRID = (
    f"INITIAL_CHECKPOINT_PATH=[{','.join(repr(c) for c in STAGE_CHECKPOINTS.values() if c != SHIPPED)}]",
)
METHODS_GRID = (
    "gin_file=[methods/prefix_tuning.gin,methods/p_tuning.gin,methods/deep_prompts.gin]",
)
ENSEMBLE_GRID = ("PROMPT_LENGTH=[20]", "gin_file=[prompts/class_labels.gin]")
MULTI_TASK_GRID = ("gin_file=[methods/multi_task.gin]",)
MULTI_TASK_MIXTURE = "movie_and_polarity_word"
# Sections 2, 5 and 7 use section 1's best-known cell: 20 vectors, class-label init.
CLASS_LABELS_20 = ("--gin_file=prompts/class_labels.gin", "--gin.PROMPT_LENGTH=20")


# ----------------------------------------------------------------------- commands


def recipe(task: str = "movie_sentiment", eval_every: int = 100) -> list[str]:
    """`make demo`'s prompt-tuning recipe as command-line flags (model, run file, budget)."""
    return [
        "--gin_file=models/t5_tiny_multitask.gin",
        "--gin_file=runs/prompt_finetune.gin",
        f"--gin.MIXTURE_OR_TASK_NAME='{task}'",
        f"--gin.TRAIN_STEPS={STEPS}",
        "--gin.BATCH_SIZE=32",
        f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}",
        f"--gin.train.eval_every={eval_every}",
        f"--gin.train.save_every={STEPS}",
    ]


def sweep_command(
    name: str,
    grid: Sequence[str],
    seeds: Sequence[int],
    jobs: int,
    extra: Sequence[str] = (),
    task: str = "movie_sentiment",
    eval_every: int = 100,
) -> list[str]:
    """A `prompt_tuning.sweep` command writing runs/results/<name>/."""
    flags = [f"--grid={g}" for g in grid]
    return [
        "python",
        "-m",
        "prompt_tuning.sweep",
        f"--sweep_dir={RUNS / name}",
        f"--jobs={jobs}",
        *recipe(task, eval_every),
        *extra,
        *flags,
        f"--seeds={','.join(map(str, seeds))}",
    ]


def eval_command(
    out_dir: Path, task: str, prompts: Sequence[str], checkpoint: str = ""
) -> list[str]:
    """A `prompt_tuning.eval` command (rank classification) writing out_dir/eval/."""
    files = f"--gin.evaluate.prompt_files={list(prompts)}" if prompts else "--gin.PROMPT_FILE=None"
    command = [
        "python",
        "-m",
        "prompt_tuning.eval",
        "--gin_file=models/t5_tiny_multitask.gin",
        "--gin_file=runs/prompt_eval.gin",
        f"--gin.MIXTURE_OR_TASK_NAME='{task}'",
        f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}",
        f"--gin.MODEL_DIR='{out_dir}'",
        files,
        "--gin.evaluate.decode_classification=False",
    ]
    return command + ([f"--gin.INITIAL_CHECKPOINT_PATH='{checkpoint}'"] if checkpoint else [])


def model_tuning_command(seed: int) -> list[str]:
    """Full fine-tuning of the shipped model on movie reviews, same steps and batch as the prompt."""
    return [
        "python",
        "-m",
        "prompt_tuning.pretrain",
        "--gin_file=runs/model_finetune.gin",
        f"--gin.MODEL_DIR='{RUNS / 'model_tuning' / f'seed={seed}'}'",
        "--gin.MIXTURE_OR_TASK_NAME='movie_sentiment'",
        "--gin.get_config.name='t5_tiny_multitask'",
        f"--gin.INITIAL_CHECKPOINT_PATH='{SHIPPED}'",
        f"--gin.TRAIN_STEPS={STEPS}",
        "--gin.BATCH_SIZE=32",
        f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}",
        f"--gin.pretrain.seed={seed}",
    ]


def stage0_command() -> list[str]:
    """The step-0 export of the shipped recipe: MiniLM embeddings, random T5 layers."""
    return [
        "python",
        "-m",
        "prompt_tuning.pretrain",
        "--gin_file=pretrain/shipped_t5.gin",
        "--gin.MODEL_DIR='runs/shipped_t5/init'",
        "--gin.INIT_EMBEDDINGS='runs/shipped_t5/minilm_128.npy'",
        "--gin.TRAIN_STEPS=0",
    ]


# Where each table's runs live (the report reads the same paths).
def sweep_run(name: str, **setting: object) -> Path:
    parts = [f"{k}={v}" for k, v in setting.items() if k != "seed"]
    return RUNS / name / "__".join([*parts, f"seed={setting['seed']}"])


def soft_prompt_file(seed: int) -> str:
    run = sweep_run("length_init", PROMPT_LENGTH=20, gin_file="class_labels", seed=seed)
    return str(run / "prompts" / f"prompt_{STEPS}.npy")


def ensemble_files() -> list[str]:
    extra = [
        sweep_run("ensemble", PROMPT_LENGTH=20, gin_file="class_labels", seed=s)
        / "prompts"
        / f"prompt_{STEPS}.npy"
        for s in ENSEMBLE_EXTRA_SEEDS
    ]
    return [soft_prompt_file(s) for s in SEEDS] + [str(p) for p in extra]


def multi_task_files() -> list[str]:
    return [
        str(
            sweep_run("multi_task", gin_file="multi_task", seed=s)
            / "prompts"
            / f"prompt_{STEPS}.npz"
        )
        for s in SEEDS
    ]


# ------------------------------------------------------------------------ running


class Runner:
    """Runs commands whose outputs are missing, logs them, and records their wall time."""

    def __init__(self, timings: Path):
        self.timings_path = timings
        self.timings = json.loads(timings.read_text()) if timings.is_file() else {}

    def run(self, key: str, command: list[str], done: Callable[[], bool]) -> None:
        if done():
            return
        log = RUNS / "logs" / f"{key.replace('/', '__')}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        print(f"  $ {shlex.join(command)}", flush=True)
        start = time.perf_counter()
        with open(log, "ab") as out:
            status = subprocess.run(
                [sys.executable, *command[1:]], stdout=out, stderr=subprocess.STDOUT
            ).returncode
        if status or not done():
            raise SystemExit(f"results: {key} failed (exit {status}); see {log}")
        self.record(key, time.perf_counter() - start)

    def record(self, key: str, seconds: float) -> None:
        """Adds `seconds` to `key`'s wall time; resumed work adds up across invocations."""
        self.timings[key] = self.timings.get(key, 0.0) + seconds
        self.timings_path.write_text(json.dumps(self.timings, indent=2))


def _sweep_done(name: str) -> Callable[[], bool]:
    def done() -> bool:
        plan = RUNS / name / "runs.json"
        if not plan.is_file():
            return False
        runs = json.loads(plan.read_text())["runs"]
        return all((Path(r["model_dir"]) / "DONE").is_file() for r in runs)

    return done


def _eval_done(out_dir: Path, task: str) -> Callable[[], bool]:
    return lambda: (out_dir / "eval" / f"{task}.validation.metrics.json").is_file()


def run_length_init(runner: Runner, jobs: int) -> None:
    command = sweep_command("length_init", LENGTH_INIT_GRID, SEEDS, jobs)
    runner.run("length_init", command, _sweep_done("length_init"))


def _needs_length_init() -> None:
    """Sections 3-7 reuse section 1's 20-vector class-label prompts (seeds 0-2)."""
    missing = [s for s in SEEDS if not Path(soft_prompt_file(s)).is_file()]
    if missing:
        raise SystemExit(
            f"results: section 1's 20-vector class-label runs (seeds {missing}) are missing; "
            "run `python scripts/results.py --section length_init` first."
        )


def run_objective(runner: Runner, jobs: int) -> None:
    stage0 = Path(STAGE_CHECKPOINTS["MiniLM embeddings, random layers (step 0)"])
    if not (stage0 / "checkpoint").is_file():
        if not Path("runs/shipped_t5/minilm_128.npy").is_file():
            raise SystemExit(
                "results: runs/shipped_t5/minilm_128.npy is missing; make it with "
                "`python scripts/minilm_embeddings.py --d_model 128 --out runs/shipped_t5/minilm_128.npy`"
            )
        runner.run("stage0", stage0_command(), lambda: (stage0 / "checkpoint").is_file())
    command = sweep_command("objective", OBJECTIVE_GRID, SEEDS, jobs, CLASS_LABELS_20)
    runner.run("objective", command, _sweep_done("objective"))


def run_transfer(runner: Runner, jobs: int) -> None:
    _needs_length_init()  # the soft prompts
    out = RUNS / "transfer"
    for seed in SEEDS:
        model_dir = RUNS / "model_tuning" / f"seed={seed}"
        final = model_dir / f"checkpoint_{STEPS}"
        runner.run(
            f"model_tuning/seed={seed}",
            model_tuning_command(seed),
            lambda f=final: (f / "checkpoint").is_file(),
        )
        runner.run(
            f"transfer/model_tuning_seed={seed}",
            eval_command(out / f"model_tuning_seed={seed}", TRANSFER, [], str(final)),
            _eval_done(out / f"model_tuning_seed={seed}", TRANSFER),
        )
    hand = hand_written_prompt(runner)
    for name, files in (
        ("no_prompt", []),
        ("hand_written", [hand]),
        ("soft_prompt", [soft_prompt_file(s) for s in SEEDS]),
    ):
        runner.run(
            f"transfer/{name}",
            eval_command(out / name, TRANSFER, files),
            _eval_done(out / name, TRANSFER),
        )


def hand_written_prompt(runner: Runner) -> str:
    """The demo's prompt design step (best of its candidates on 500 train examples), cached."""
    record = RUNS / "transfer" / "hand_written.json"
    if not record.is_file():
        from prompt_tuning import demo

        start = time.perf_counter()
        text, path = demo.best_hand_written(SHIPPED, record.parent)
        record.write_text(json.dumps({"text": text, "path": path}))
        runner.record("transfer/hand_written_choice", time.perf_counter() - start)
    return json.loads(record.read_text())["path"]


def run_ensemble(runner: Runner, jobs: int) -> None:
    _needs_length_init()
    command = sweep_command("ensemble", ENSEMBLE_GRID, ENSEMBLE_EXTRA_SEEDS, jobs)
    runner.run("ensemble", command, _sweep_done("ensemble"))
    out = RUNS / "ensemble" / "vote"
    command = eval_command(out, "movie_sentiment", ensemble_files())
    runner.run("ensemble/vote", command, _eval_done(out, "movie_sentiment"))


def run_interpret(runner: Runner, jobs: int) -> None:
    _needs_length_init()  # reads the trained prompts; nothing else to run


def run_methods(runner: Runner, jobs: int) -> None:
    _needs_length_init()  # prompt tuning's row
    command = sweep_command("methods", METHODS_GRID, SEEDS, jobs, CLASS_LABELS_20)
    runner.run("methods", command, _sweep_done("methods"))
    # Multi-task prompts train on movie reviews + word polarity; their movie prompt is then
    # scored on movie reviews alone (the auxiliary task has no validation split).
    command = sweep_command(
        "multi_task", MULTI_TASK_GRID, SEEDS, jobs, CLASS_LABELS_20, MULTI_TASK_MIXTURE, 0
    )
    runner.run("multi_task", command, _sweep_done("multi_task"))
    out = RUNS / "multi_task" / "eval_movie"
    command = eval_command(out, "movie_sentiment", multi_task_files())
    runner.run("multi_task/eval", command, _eval_done(out, "movie_sentiment"))


SECTIONS: dict[str, Callable[[Runner, int], None]] = {
    "length_init": run_length_init,
    "objective": run_objective,
    "transfer": run_transfer,
    "ensemble": run_ensemble,
    "interpret": run_interpret,
    "methods": run_methods,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--section", action="append", choices=list(SECTIONS), help="run only these")
    parser.add_argument("--jobs", type=int, default=2, help="prompt-tuning runs at a time")
    parser.add_argument("--report_only", action="store_true", help="write the report, run nothing")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    RUNS.mkdir(parents=True, exist_ok=True)
    runner = Runner(RUNS / "timing.json")
    names = [] if args.report_only else (args.section or list(SECTIONS))
    for i, name in enumerate(names, 1):
        print(
            f"[{i}/{len(names)}] section {name} (about {ESTIMATE_MIN[name]} min here)", flush=True
        )
        SECTIONS[name](runner, args.jobs)
    import results_report  # reads this module's paths and commands

    path = results_report.write(runner.timings)
    print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

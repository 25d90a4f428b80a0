"""docs/results.md and docs/results/*.png from the files under runs/results/ (see results.py).

Reads only what the runs wrote: sweep plans (`runs.json`), each run's
`metrics.jsonl`, `train.log` and saved state, and the eval jobs' `metrics.json`.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import results as R
import results_figures as figures
import results_readings as readings
from results_runs import (
    Incomplete,
    eval_report,
    final_eval,
    metrics,
    steps_per_s,
    sweep_minutes,
    sweep_runs,
    trainable_params,
    unfinished_note,
)

from prompt_tuning import sweep

DOCS = Path("docs")
FIGURES = DOCS / "results"
MAJORITY = "majority_baseline"
# Short names of sections 3 and 4's rows, in `_transfer_rows` order.
ROW_NAMES = ("no prompt", "prompt design", "prompt tuning", "model tuning")


# -------------------------------------------------------------------- formatting


def spread(values: Sequence[float]) -> str:
    """`mean ± std (v1 / v2 / ...)` over seeds; a single value as it is."""
    values = list(values)
    if len(values) == 1:
        return f"{values[0]:.1f}"
    per = " / ".join(f"{v:.1f}" for v in values)
    return f"{np.mean(values):.1f} ± {np.std(values):.1f} ({per})"


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def commands_block(commands: Sequence[str]) -> str:
    return "```bash\n" + "\n".join(commands) + "\n```\n"


def figure_link(name: str, alt: str) -> str:
    return f"![{alt}](results/{name}.png)\n"


# -------------------------------------------------------------------- sections


def section_length_init(timings: dict) -> str:
    """1. Prompt length × initialisation (Figure 3 a/b)"""
    command, runs = sweep_runs("length_init", partial=True)
    results = sweep.collect(runs, "accuracy")
    sweep.plot(
        results,
        ["PROMPT_LENGTH", "gin_file"],
        "PROMPT_LENGTH",
        "accuracy",
        FIGURES / "length_init.png",
    )
    inits = list(dict.fromkeys(r.run.setting["gin_file"] for r in results))
    lengths = list(dict.fromkeys(r.run.setting["PROMPT_LENGTH"] for r in results))
    cells: dict[tuple[str, str], list[float]] = {}
    for r in results:
        cells.setdefault((r.run.setting["PROMPT_LENGTH"], r.run.setting["gin_file"]), []).append(
            r.best
        )
    rows = [[n] + [spread(cells[n, i]) if (n, i) in cells else "—" for i in inits] for n in lengths]
    majority = metrics(Path(runs[0].model_dir))[-1][MAJORITY]
    wall, summed = sweep_minutes(["length_init"], partial=True)
    return (
        "## 1. Prompt length × initialisation (Figure 3 a/b)\n\n"
        f"Best validation accuracy (%) of each run (evaluated at steps 100, 200, 300), "
        f"movie_sentiment, majority class {majority:.1f}. Seeds {', '.join(map(str, R.SEEDS))}; "
        f"cells are mean ± std over seeds (each seed).\n\n"
        + table(["prompt length", *(Path(i).stem for i in inits)], rows)
        + unfinished_note("length_init")
        + "\n"
        + figure_link("length_init", "accuracy against prompt length, one line per initialisation")
        + f"\nWall time: {wall:.0f} min for {len(runs)} runs, 2 at a time ({summed:.0f} min summed).\n\n"
        + commands_block([command])
        + "One cell alone: its line in `runs/results/length_init/commands.sh`.\n\n"
        + readings.length_init(cells, {i: Path(i).stem for i in inits})
    )


def section_objective(timings: dict) -> str:
    """2. Pretraining objective (Figure 3 c/d)"""
    command, runs = sweep_runs("objective")
    results = sweep.collect(runs, "accuracy")
    shipped = [
        sweep.best_score(str(Path(R.soft_prompt_file(s)).parents[1]), "accuracy")[0]
        for s in R.SEEDS
    ]
    by_stage = {
        label: shipped
        if path == R.SHIPPED
        else [
            r.best for r in results if r.run.setting["INITIAL_CHECKPOINT_PATH"].strip("'") == path
        ]
        for label, path in R.STAGE_CHECKPOINTS.items()
    }
    majority = metrics(Path(runs[0].model_dir))[-1][MAJORITY]
    figures.bars(
        list(by_stage),
        list(by_stage.values()),
        FIGURES / "objective.png",
        "best validation accuracy (%)",
        majority,
    )
    rows = [
        [label, f"`{path}`", spread(by_stage[label])] for label, path in R.STAGE_CHECKPOINTS.items()
    ]
    wall, summed = sweep_minutes(["objective"])
    stage0 = timings.get("stage0")
    return (
        "## 2. Pretraining objective (Figure 3 c/d)\n\n"
        "The same prompt (20 vectors, class-label init, 300 steps) on each stage of the shipped "
        "model's pretraining; the shipped stage's row is section 1's cell of the same setting. "
        "Best validation accuracy (%), majority class "
        f"{majority:.1f}, seeds {', '.join(map(str, R.SEEDS))}.\n\n"
        + table(["frozen model", "checkpoint", "accuracy: mean ± std (each seed)"], rows)
        + "\n"
        + figure_link("objective", "accuracy per pretraining stage")
        + f"\nWall time: {wall:.0f} min for {len(runs)} runs ({summed:.0f} min summed)"
        + (f"; the step-0 export {stage0 / 60:.1f} min" if stage0 else "")
        + ".\n\n"
        + commands_block([shlex.join(R.stage0_command()), command])
        + "\n"
        + readings.objective(by_stage)
    )


def _transfer_rows() -> list[tuple[str, int, list[dict[str, float]]]]:
    """(row label, trainable parameters, one metrics dict per seed) of section 3/4's rows."""
    out = R.RUNS / "transfer"
    hand = json.loads((out / "hand_written.json").read_text())
    soft = eval_report(out / "soft_prompt", R.TRANSFER)
    soft_params = trainable_params(Path(R.soft_prompt_file(0)).parents[1] / "state")
    model_params = trainable_params(R.RUNS / "model_tuning" / "seed=0" / "train_state" / "state")
    return [
        (
            "no prompt (frozen model alone)",
            0,
            list(eval_report(out / "no_prompt", R.TRANSFER).values()),
        ),
        (
            f"prompt design: {hand['text']!r}",
            0,
            list(eval_report(out / "hand_written", R.TRANSFER).values()),
        ),
        (
            "prompt tuning (20 vectors)",
            soft_params,
            [soft[f] for f in (R.soft_prompt_file(s) for s in R.SEEDS)],
        ),
        (
            "model tuning (every weight)",
            model_params,
            [
                next(iter(eval_report(out / f"model_tuning_seed={s}", R.TRANSFER).values()))
                for s in R.SEEDS
            ],
        ),
    ]


def _transfer_minutes(timings: dict) -> float:
    keys = [k for k in timings if k.startswith(("transfer/", "model_tuning/"))]
    return sum(timings[k] for k in keys) / 60


def section_design_vs_tuning(timings: dict) -> str:
    """3. Prompt design vs prompt tuning vs model tuning (Figure 1 at one scale)"""
    rows = _transfer_rows()
    movie = "movie_sentiment/"
    majority = rows[0][2][0][movie + MAJORITY]
    table_rows = [["majority class", 0, f"{majority:.1f}"]]
    table_rows += [
        [label, f"{n:,}", spread([m[movie + "accuracy"] for m in ms])] for label, n, ms in rows
    ]
    figures.bars(
        list(ROW_NAMES),
        [[m[movie + "accuracy"] for m in ms] for _, _, ms in rows],
        FIGURES / "design_vs_tuning.png",
        "movie validation accuracy (%)",
        majority,
    )
    return (
        "## 3. Prompt design vs prompt tuning vs model tuning (Figure 1 at one scale)\n\n"
        f"movie_sentiment validation accuracy (%) after the same budget ({R.STEPS} steps, batch 32) "
        "for both trained rows, at the final step. Prompt design is the best of `make demo`'s six "
        "hand-written prompts on 500 *train* examples. Seeds "
        f"{', '.join(map(str, R.SEEDS))} (the frozen rows have no seed).\n\n"
        + table(["method", "trainable parameters", "accuracy: mean ± std (each seed)"], table_rows)
        + "\n"
        + figure_link(
            "design_vs_tuning", "accuracy of prompt design, prompt tuning and model tuning"
        )
        + f"\nWall time (sections 3 and 4 together): {_transfer_minutes(timings):.0f} min for the model-tuning "
        "runs and the evaluations, plus the soft prompts' runs of section 1.\n\n"
        + commands_block(_transfer_commands())
        + "\n"
        + readings.design_vs_tuning(
            {
                name: (n, [m[movie + "accuracy"] for m in ms])
                for name, (_, n, ms) in zip(ROW_NAMES, rows, strict=True)
            }
        )
    )


def _transfer_commands() -> list[str]:
    out = R.RUNS / "transfer"
    hand = json.loads((out / "hand_written.json").read_text())["path"]
    commands = [shlex.join(R.model_tuning_command(s)) for s in R.SEEDS]
    commands += [
        shlex.join(
            R.eval_command(
                out / f"model_tuning_seed={s}",
                R.TRANSFER,
                [],
                str(R.RUNS / "model_tuning" / f"seed={s}" / f"checkpoint_{R.STEPS}"),
            )
        )
        for s in R.SEEDS
    ]
    commands += [
        shlex.join(R.eval_command(out / "no_prompt", R.TRANSFER, [])),
        "# prompt design: prompt_tuning.demo.best_hand_written (the demo's choice), then",
        shlex.join(R.eval_command(out / "hand_written", R.TRANSFER, [hand])),
        shlex.join(
            R.eval_command(
                out / "soft_prompt", R.TRANSFER, [R.soft_prompt_file(s) for s in R.SEEDS]
            )
        ),
    ]
    return commands


def section_transfer(timings: dict) -> str:
    """4. Domain transfer (Tables 1–2 in spirit)"""
    rows = _transfer_rows()
    domains = [
        ("movie_sentiment", "movie (in-domain)"),
        ("product_sentiment", "product reviews*"),
        ("tweet_sentiment", "tweets"),
    ]
    header = ["method", *(f"{label} acc / macro-F1" for _, label in domains)]
    first = rows[0][2][0]
    table_rows = [["majority class", *(f"{first[f'{d}/{MAJORITY}']:.1f} / —" for d, _ in domains)]]
    for label, _, ms in rows:
        cells = [
            f"{np.mean([m[f'{d}/accuracy'] for m in ms]):.1f} / {np.mean([m[f'{d}/macro_f1'] for m in ms]):.1f}"
            + (f" (± {np.std([m[f'{d}/accuracy'] for m in ms]):.1f})" if len(ms) > 1 else "")
            for d, _ in domains
        ]
        table_rows.append([label, *cells])
    figures.grouped_bars(rows, domains, FIGURES / "transfer.png", MAJORITY)
    accuracy = {
        name: {d: float(np.mean([m[f"{d}/accuracy"] for m in ms])) for d, _ in domains}
        for name, (_, _, ms) in zip(ROW_NAMES, rows, strict=True)
    }
    tweet_noise = max(
        float(np.std([m["tweet_sentiment/accuracy"] for m in ms])) for _, _, ms in rows
    )
    return (
        "## 4. Domain transfer (Tables 1–2 in spirit)\n\n"
        "The rows of section 3, trained on movie reviews only, evaluated zero-shot on the other "
        "domains' validation sets: accuracy / macro-F1 (%), means over seeds (± accuracy std). "
        "*Product-review labels were in the model's pretraining mixture, so that column is not "
        "zero-shot; tweets were never seen.\n\n"
        + table(header, table_rows)
        + "\n"
        + figure_link("transfer", "accuracy per domain and method")
        + "\nWall time and commands: those of section 3 (one evaluation covers all three domains).\n\n"
        + readings.transfer(
            *(accuracy[name] for name in ROW_NAMES[2:] + ROW_NAMES[:1]), tweet_noise
        )
    )


def section_ensemble(timings: dict) -> str:
    """5. Prompt ensembling (Table 3)"""
    out = R.RUNS / "ensemble" / "vote"
    report = eval_report(out, "movie_sentiment")
    files = R.ensemble_files()
    singles = [report[f]["accuracy"] for f in files]
    vote = report["ensemble (majority vote)"]["accuracy"]
    majority = report[files[0]][MAJORITY]
    seeds = [*R.SEEDS, *R.ENSEMBLE_EXTRA_SEEDS]
    rows = [[f"prompt, seed {s}", f"{a:.1f}"] for s, a in zip(seeds, singles, strict=True)]
    rows += [
        ["average of the five", f"{np.mean(singles):.1f}"],
        ["best of the five", f"{max(singles):.1f}"],
        ["majority vote of the five (one batched pass)", f"{vote:.1f}"],
    ]
    figures.bars(
        [f"seed {s}" for s in seeds] + ["vote"],
        [[a] for a in singles] + [[vote]],
        FIGURES / "ensemble.png",
        "validation accuracy (%)",
        majority,
        "each prompt alone, and their majority vote",
    )
    wall, _ = sweep_minutes(["ensemble"])
    command, _ = sweep_runs("ensemble")
    return (
        "## 5. Prompt ensembling (Table 3)\n\n"
        "Five prompts (20 vectors, class-label init, 300 steps) that differ only in their seed; "
        f"movie_sentiment validation accuracy (%), majority class {majority:.1f}. Seeds 0–2 are "
        "section 1's runs; 3 and 4 were added here.\n\n"
        + table(["prompt", "accuracy"], rows)
        + "\n"
        + figure_link("ensemble", "each prompt and the vote")
        + f"\nWall time: {wall:.0f} min for the two added runs, {timings.get('ensemble/vote', 0) / 60:.1f} min for the vote.\n\n"
        + commands_block([command, shlex.join(R.eval_command(out, "movie_sentiment", files))])
        + "\n"
        + readings.ensemble(singles, vote)
    )


def section_interpret(timings: dict) -> str:
    """6. Interpretability (Section 7)"""
    import prompt_tuning.tasks  # noqa: F401  (registers movie_sentiment)
    from prompt_tuning import checkpoints, interpret
    from prompt_tuning.data import class_labels, t5_vocabulary

    start = time.perf_counter()
    _, params = checkpoints.load(R.SHIPPED)
    embedding = np.asarray(params["token_embedder"]["embedding"], np.float32)
    vocab = t5_vocabulary()
    labels = class_labels("movie_sentiment")
    label_ids = [list(vocab.encode(label)) for label in labels]
    label_rows = np.stack([embedding[ids].mean(axis=0) for ids in label_ids])  # their init
    rows, persistence_rows, kept, moved = [], [], [], []
    for seed in R.SEEDS:
        prompt = np.load(R.soft_prompt_file(seed))
        ids, sims = interpret.nearest_tokens(prompt, embedding, 5)
        persist = interpret.label_persistence(ids, label_ids)
        persistence_rows.append([seed, *(str(persist[i]) for i in range(len(labels)))])
        kept.append([i for i in range(len(labels)) if i in persist[i]])
        before, after = label_rows, prompt[: len(labels)]
        moved.append(
            np.sum(before * after, 1)
            / np.linalg.norm(before, axis=1)
            / np.linalg.norm(after, axis=1)
        )
        for row in range(3):
            words = ", ".join(
                f"`{vocab.decode([int(i)]) or '▁'}` {s:.2f}"
                for i, s in zip(ids[row], sims[row], strict=True)
            )
            rows.append([seed, row, words])
    figures.label_heatmap(
        np.load(R.soft_prompt_file(0)), embedding, label_ids, labels, FIGURES / "interpret.png"
    )
    seconds = time.perf_counter() - start
    command = shlex.join(
        [
            "python",
            "-m",
            "prompt_tuning.interpret",
            f"--prompt={R.soft_prompt_file(0)}",
            f"--checkpoint={R.SHIPPED}",
            "--task=movie_sentiment",
            "-k",
            "5",
        ]
    )
    return (
        "## 6. Interpretability (Section 7)\n\n"
        "The class-label-initialised prompts of section 1 (20 vectors, 300 steps): rows 0 and 1 "
        f"start as the embeddings of {' and '.join(repr(x) for x in labels)}. Nearest vocabulary "
        "tokens by cosine similarity after training (first three rows):\n\n"
        + table(["seed", "prompt row", "5 nearest tokens (cosine)"], rows)
        + "\nPrompt rows whose 5 nearest tokens still include each label after training:\n\n"
        + table(["seed", *(f"rows near {x!r}" for x in labels)], persistence_rows)
        + "\n"
        + figure_link("interpret", "cosine similarity of each prompt row to the label embeddings")
        + f"\nWall time: {seconds:.0f} s (computed from the saved prompts). One prompt's full listing:\n\n"
        + commands_block([command])
        + "\n"
        + readings.interpret(kept, len(labels), float(np.mean(moved)))
    )


def section_methods(timings: dict) -> str:
    """7. The method family"""
    _, runs = sweep_runs("methods", partial=True)
    groups: dict[str, list[Path]] = {
        "prompt tuning": [Path(R.soft_prompt_file(s)).parents[1] for s in R.SEEDS]
    }
    for run in runs:
        groups.setdefault(Path(run.setting["gin_file"]).stem.replace("_", " "), []).append(
            Path(run.model_dir)
        )
    per_seed = {name: [final_eval(d) for d in dirs] for name, dirs in groups.items()}
    multi_eval = R.RUNS / "multi_task" / "eval_movie"
    multi_dirs = [Path(f).parents[1] for f in R.multi_task_files()]
    if (multi_eval / "eval" / "movie_sentiment.validation.metrics.json").is_file():
        multi = eval_report(multi_eval, "movie_sentiment")
        groups["multi-task"] = multi_dirs
        per_seed["multi-task"] = [multi[f]["accuracy"] for f in R.multi_task_files()]
    params = {name: trainable_params(dirs[0] / "state") for name, dirs in groups.items()}
    rows = [
        [
            "multi-task (movie + word polarity)" if name == "multi-task" else name,
            f"{params[name]:,}",
            f"{np.median([steps_per_s(d) for d in dirs]):.2f}",
            spread(per_seed[name]),
        ]
        for name, dirs in groups.items()
    ]
    majority = metrics(groups["prompt tuning"][0])[-1][MAJORITY]
    figures.bars(
        list(per_seed),
        list(per_seed.values()),
        FIGURES / "methods.png",
        "movie validation accuracy (%)",
        majority,
    )
    finished = ["methods"] + (["multi_task"] if "multi-task" in groups else [])
    wall, summed = sweep_minutes(finished, partial=True)
    commands = [
        sweep.read_plan(str(R.RUNS / "methods"))[0],
        shlex.join(
            R.sweep_command(
                "multi_task",
                R.MULTI_TASK_GRID,
                R.SEEDS,
                2,
                R.CLASS_LABELS_20,
                R.MULTI_TASK_MIXTURE,
                0,
            )
        ),
        shlex.join(
            R.eval_command(
                R.RUNS / "multi_task" / "eval_movie", "movie_sentiment", R.multi_task_files()
            )
        ),
    ]
    return (
        "## 7. The method family\n\n"
        f"Each method with 20 prompt positions (class-label init where it takes one), {R.STEPS} steps, "
        "batch 32, learning rate 0.3; movie_sentiment validation accuracy (%) at the final step, "
        f"majority class {majority:.1f}. Steps/s is the median progress-line rate of the runs, "
        "measured with two runs and other jobs sharing the 2 cores: compare rows, not machines. "
        "The multi-task prompts train on movie reviews mixed with `polarity_word` and are scored "
        "with their movie prompt; prompt tuning's row is section 1's class-label runs.\n\n"
        + table(
            ["method", "trainable parameters", "steps/s", "accuracy: mean ± std (each seed)"], rows
        )
        + "\n"
        + unfinished_note("methods")
        + (
            ""
            if "multi-task" in groups
            else "\n**Multi-task prompts: not run yet** (second command below).\n"
        )
        + figure_link("methods", "accuracy per method")
        + f"\nWall time: {wall:.0f} min for {sum(len(d) for n, d in groups.items() if n != 'prompt tuning')} runs ({summed:.0f} min summed).\n\n"
        + commands_block(commands)
        + "\n"
        + readings.methods(per_seed, params)
    )


SECTIONS = (
    section_length_init,
    section_objective,
    section_design_vs_tuning,
    section_transfer,
    section_ensemble,
    section_interpret,
    section_methods,
)


def write(timings: dict) -> Path:
    """Writes docs/results.md (and the figures) from every section whose runs exist."""
    FIGURES.mkdir(parents=True, exist_ok=True)
    parts = []
    for section in SECTIONS:
        try:
            parts.append(section(timings))
        except (FileNotFoundError, Incomplete) as e:
            why = e.filename if isinstance(e, FileNotFoundError) else e
            parts.append(f"## {section.__doc__}\n\nNot run yet ({why}).\n")
    path = DOCS / "results.md"
    path.write_text(HEADER + "\n".join(parts))
    return path


HEADER = """# Results: the paper's findings on the shipped small T5

Written by `python scripts/results.py` (`make results`) from the files its runs wrote under
`runs/results/`; rerun it to reproduce every table and figure, or `--section NAME` for one.
The frozen model is `t5_tiny_multitask` (7.3M parameters, [model card](../prompt_tuning/assets/models/t5_tiny_multitask/MODEL_CARD.md));
the prompt recipe is `make demo`'s: inputs 64 tokens, batch 32, 300 steps, Adafactor at a
constant 0.3, dropout 0.1, evaluated by rank classification. All runs are seeded and run on
the CPU, so a cell's command reproduces its number on the same machine and code.

"""

"""Every shell command in README.md's (and docs/'s) code blocks runs, on the tiny test model and data.

Commands are taken from the files as written, then their placeholders (the
base model, checkpoint paths, run folders, P.npy ...) are swapped for the tiny
random checkpoint, tests/data and a temporary folder, and runs are cut to a few
steps. A command this test does not know how to run fails it until it is given
a substitution or a stated reason to skip, so a documented command cannot
silently break.
"""

from __future__ import annotations

import importlib
import json
import pathlib
import re
import shlex

import numpy as np
import pytest
import tasks_helpers
import tiny

from prompt_tuning import convert

REPO = pathlib.Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"
# docs/pretraining.md's commands are the multi-hour pretraining recipe itself.
DOCUMENTS = [REPO / "README.md", REPO / "docs" / "data.md", REPO / "docs" / "errors.md"]
STEPS = 2

# Command prefix -> why it is not run here.
SKIPPED = {
    "make demo": "the demo trains for minutes; tests/test_demo.py runs its pipeline",
    "make test": "the whole test suite, which includes this test",
    "pip download": "needs the network (PyPI)",
    "npm pack": "needs the network (npm registry)",
    "apt-get download": "needs the network (Debian mirrors)",
}
# Shown in a code block, but not a command: the sentiment format in docs/data.md.
NOT_COMMANDS = ("inputs:", "targets:")
# Gin macros the tiny runs set, by job (only macros the job's gin files use).
TINY_JOB_FLAGS = {
    "prompt_tuning.train": [
        f"--gin.TRAIN_STEPS={STEPS}",
        "--gin.BATCH_SIZE=8",
        "--gin.PROMPT_LENGTH=5",
        "--gin.train.eval_every=0",
    ],
    "prompt_tuning.eval": ["--gin.evaluate.max_examples=4"],
    "prompt_tuning.infer": [],
}
TINY_GIN_FLAGS = [
    f"--gin_search_paths={TESTS}",
    "--gin.TASK_FEATURE_LENGTHS={'inputs': 64, 'targets': 4}",
    "--gin.ModelSpec.dtype='float32'",
]


def _code_blocks(text: str) -> list[tuple[str, str]]:
    """`(language, body)` of each fenced code block, in order."""
    return re.findall(r"^```([a-z]*)\n(.*?)^```$", text, flags=re.S | re.M)


def shell_commands(path: pathlib.Path) -> list[str]:
    """The commands in `path`'s fenced code blocks (not ```text: printed output), comments dropped."""
    commands = []
    for language, block in _code_blocks(path.read_text()):
        if language == "text":
            continue
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#") and not line.startswith(NOT_COMMANDS):
                commands.append(line)
    return commands


def _skip_reason(command: str) -> str | None:
    return next((why for prefix, why in SKIPPED.items() if command.startswith(prefix)), None)


def test_every_documented_command_is_run_or_skipped_with_a_reason():
    for document in DOCUMENTS:
        for command in shell_commands(document):
            runnable = command.startswith("python -m prompt_tuning.")
            assert runnable or _skip_reason(command), f"{document.name}: {command}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, str]:
    """Placeholder -> what stands in for it: tiny checkpoint, HF copy, prompts, rows, folders."""
    root = tmp_path_factory.mktemp("readme")
    checkpoint = tiny.write_checkpoint(root / "ckpt")
    assert (
        convert.main(["--from", str(checkpoint), "--to", str(root / "hf"), "--format", "hf"]) == 0
    )
    rng = np.random.default_rng(0)
    for name in ("P", "rte", "mnli", "boolq"):
        np.save(root / f"{name}.npy", rng.uniform(-0.5, 0.5, (5, 16)).astype(np.float32))
    rows = root / "my_pairs.jsonl"
    rows.write_text(json.dumps({"premise": "It rained.", "hypothesis": "It was wet."}) + "\n")
    return {
        # Exact tokens.
        "P.npy": str(root / "P.npy"),
        "rte.npy": str(root / "rte.npy"),
        "mnli.npy": str(root / "mnli.npy"),
        "boolq.npy": str(root / "boolq.npy"),
        "CKPT": str(checkpoint),
        "HF_DIR": str(root / "hf"),
        "ADAPTER_DIR": str(root / "adapter"),
        "MODEL_DIR": str(root / "rte_prompt"),
        "2000": str(STEPS),
        "prompt_2000.npy": str(root / f"prompt_{STEPS}.npy"),
        "sweeps/length": str(root / "sweep"),
        # Inside flags.
        "models/t5_1_1_lm100k_base.gin": "tiny_task.gin",
        "models/t5_tiny_multitask.gin": "tiny_task.gin",
        # One GPU's mesh; the tests run on 8 virtual CPU devices.
        "hardware/gpu_1.gin": "hardware/cpu.gin",
        "/path/to/t5_1_1_lm100k_base/checkpoint_1100000": str(checkpoint),
        "/tmp/rte_prompt": str(root / "rte_prompt"),
        "/tmp/movie_prompt": str(root / "movie_prompt"),
        "/tmp/movie_model": str(root / "movie_model"),
        "runs/rte_prefix": str(root / "rte_prefix"),
        "prompt_30000": f"prompt_{STEPS}",
        "my_pairs.jsonl": str(rows),
    }


def tiny_command(command: str, workspace: dict[str, str]) -> tuple[str, list[str]]:
    """The documented command's module and its arguments, on the tiny model and data."""
    _, _, module, *args = shlex.split(command)
    args = [workspace.get(a, a) for a in args]
    for placeholder, value in workspace.items():
        if "/" in placeholder or placeholder.startswith("prompt_") or "." in placeholder:
            args = [a.replace(placeholder, value) if a.startswith("--gin") else a for a in args]
    if module in TINY_JOB_FLAGS:
        # `...` in the README stands for the flags of the command above it.
        args = [a for a in args if a != "..."] + TINY_GIN_FLAGS + TINY_JOB_FLAGS[module]
        args += [] if any("tiny_task.gin" in a for a in args) else ["--gin_file=tiny_task.gin"]
        args += _missing_run_flags(args, workspace)
    if module == "prompt_tuning.pretrain":
        # Model tuning of the shipped model itself (no tiny stand-in has a named config): 2 steps.
        args += [f"--gin.TRAIN_STEPS={STEPS}", "--gin.BATCH_SIZE=8"]
    if module == "prompt_tuning.sweep":
        args += [f"--gin_search_paths={TESTS}", "--dry_run"]  # the grid: 45 runs of 30,000 steps
    return module, args


def _missing_run_flags(args: list[str], workspace: dict[str, str]) -> list[str]:
    """The checkpoint, task and run folder of a command that leaves them to `...`."""
    wanted = {
        "INITIAL_CHECKPOINT_PATH": workspace["CKPT"],
        "MIXTURE_OR_TASK_NAME": "super_glue_rte_v102",
        "MODEL_DIR": workspace["runs/rte_prefix"],
    }
    return [
        f"--gin.{name}='{value}'"
        for name, value in wanted.items()
        if not any(a.startswith(f"--gin.{name}=") for a in args)
    ]


def _run(module: str, args: list[str]) -> int:
    try:
        return importlib.import_module(module).main(args)
    except SystemExit as e:
        return e.code


@pytest.mark.slow
def test_readme_commands_run_on_the_tiny_model(workspace, capsys):
    commands = [c for c in shell_commands(REPO / "README.md") if not _skip_reason(c)]
    assert len(commands) >= 11, commands
    with tasks_helpers.raw_files(tasks_helpers.DATA):
        for command in commands:
            module, args = tiny_command(command, workspace)
            status = _run(module, args)
            output = capsys.readouterr()
            assert status == 0, (
                f"{command}\n-> {module} {shlex.join(args)}\n{output.out}{output.err}"
            )

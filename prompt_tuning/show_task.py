"""Print formatted examples of a registered task, as the model will see them.

  python -m prompt_tuning.show_task --task super_glue_rte_v102 --split validation -n 5
  python -m prompt_tuning.show_task --task glue_mrpc_v002 --objective span_corruption_sentinel --taskless
  python -m prompt_tuning.show_task --list [PATTERN]

Data is read as configured by `prompt_tuning.data.sources` (PROMPT_TUNING_DATA_DIR,
PROMPT_TUNING_DATA_SOURCE, TFDS_DATA_DIR), or from `--data_dir` / `--source`.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from collections.abc import Sequence

import gin
import seqio

import prompt_tuning.tasks  # noqa: F401  (registers the tasks it shows)
from prompt_tuning import configurables  # noqa: F401  (gin's data_options, bound by --data_dir, --source)
from prompt_tuning.data import registry, sources
from prompt_tuning.errors import InputError, RunError


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m prompt_tuning.show_task",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--task", help="registered task or mixture (its base name)")
    parser.add_argument("--split", default="validation")
    parser.add_argument("-n", type=int, default=5, help="examples to print per task")
    parser.add_argument("--objective", default="lm_adaptation", choices=registry.OBJECTIVES)
    parser.add_argument("--taskless", action="store_true", help="drop the task-name word")
    parser.add_argument("--data_dir", help="root of the original files (PROMPT_TUNING_DATA_DIR)")
    parser.add_argument("--source", choices=sources.SOURCES, help="tfds or files")
    parser.add_argument(
        "--list",
        nargs="?",
        const="*",
        metavar="PATTERN",
        help="list registered names (optionally matching a glob, or containing a word)",
    )
    args = parser.parse_args(list(argv))
    if args.list is None and not args.task:
        parser.error("give --task NAME (or --list)")
    if args.n < 1:
        parser.error(f"-n must be at least 1, got {args.n}")
    return args


def _glob(pattern: str) -> str:
    """A pattern without glob characters matches names containing it (`sentiment`)."""
    return pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"


def _show(task: seqio.Task, split: str, n: int) -> list[str]:
    """Lines describing the first `n` examples of one task split."""
    if split not in task.splits:
        raise InputError(f"Task {task.name!r} has no split {split!r}; it has {list(task.splits)}.")
    labels = registry.class_labels(task.name)
    lines = [
        f"== {task.name} [{split}]" + (f"  class labels: {', '.join(labels)}" if labels else "")
    ]
    dataset = task.get_dataset(sequence_length=None, split=split, shuffle=False).take(n)
    vocabulary = task.output_features["targets"].vocabulary
    for i, example in enumerate(dataset.as_numpy_iterator()):
        inputs = example["inputs_pretokenized"].decode()
        # Decoded so that token-level variants (the sentinel) show.
        targets = vocabulary.decode(example["targets"].tolist())
        lines += [
            f"[{i}] inputs  ({len(example['inputs'])} tokens): {inputs}",
            f"    targets ({len(example['targets'])} tokens): {targets}",
        ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.list is not None:
        print("\n".join(fnmatch.filter(registry.registered_names(), _glob(args.list))))
        return 0
    if args.data_dir:
        gin.bind_parameter("prompt_tuning.data.data_options.data_dir", args.data_dir)
    if args.source:
        gin.bind_parameter("prompt_tuning.data.data_options.source", args.source)
    try:
        name = registry.resolve_task_name(
            args.task, objective=args.objective, taskless=args.taskless
        )
        provider = registry.get_task_or_mixture(name)
        tasks = [provider]
        if isinstance(provider, seqio.Mixture):
            tasks = [t for t in provider.tasks if args.split in t.splits]
            if not tasks:
                raise InputError(f"No task of mixture {name!r} has a {args.split!r} split.")
        for task in tasks:
            print("\n".join(_show(task, args.split, args.n)))
    except (RunError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

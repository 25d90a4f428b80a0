"""`python -m prompt_tuning.eval --gin_file=F [--gin_file=G ...] [--gin.KEY=VALUE ...]`."""

import sys

from prompt_tuning import console

console.quiet()  # before TensorFlow and JAX load

import prompt_tuning.tasks  # noqa: E402, F401  (registers the tasks a run names)
from prompt_tuning import cli, experiment  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return cli.run_main(experiment.evaluate, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())

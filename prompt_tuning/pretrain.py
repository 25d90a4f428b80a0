"""`python -m prompt_tuning.pretrain --gin_file=pretrain/span_corruption.gin [--gin.KEY=VALUE ...]`.

Pretrains every parameter of a T5 (see `prompt_tuning.pretraining.full_training`).
"""

import sys

from prompt_tuning import cli
from prompt_tuning.pretraining import full_training


def main(argv: list[str] | None = None) -> int:
    return cli.run_main(full_training.pretrain, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())

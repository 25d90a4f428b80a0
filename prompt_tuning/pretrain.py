"""`python -m prompt_tuning.pretrain --gin_file=pretrain/span_corruption.gin [--gin.KEY=VALUE ...]`.

Trains every parameter of a T5 (see `prompt_tuning.pretraining.full_training`): pretraining,
and model tuning, the paper's baseline (`--gin_file=runs/model_finetune.gin`).
"""

import sys

from prompt_tuning import console

console.quiet()  # before TensorFlow and JAX load

import gin  # noqa: E402

import prompt_tuning.tasks  # noqa: E402, F401  (registers the tasks a run names)
from prompt_tuning import cli  # noqa: E402
from prompt_tuning.models import get_config  # noqa: E402
from prompt_tuning.pretraining import full_training  # noqa: E402

# A named architecture (`get_config.name = 't5_tiny_multitask'`, plus execution options such
# as `get_config.dropout_rate`): model tuning trains a model that a models/*.gin file names.
gin.external_configurable(get_config, "get_config")


def main(argv: list[str] | None = None) -> int:
    return cli.run_main(full_training.pretrain, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())

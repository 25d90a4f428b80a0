"""SeqIO task and mixture registrations (installed as `prompt_tuning.tasks`).

Importing this package registers every shipped task; see each module's
docstring for names, and `python -m prompt_tuning.show_task --list`.
"""

from prompt_tuning.tasks import (
    continual,
    glue,
    mrqa,
    pretraining,
    sentiment,
    squad,
    super_glue,
    transfer,
)

__all__ = [
    "continual",
    "glue",
    "mrqa",
    "pretraining",
    "sentiment",
    "squad",
    "super_glue",
    "transfer",
]

"""SeqIO task and mixture registrations (installed as `prompt_tuning.tasks`).

Importing this package registers every shipped task; see each module's
docstring for names, and `python -m prompt_tuning.show_task --list`.
"""

from prompt_tuning.tasks import glue, mrqa, pretraining, sentiment, super_glue, transfer

__all__ = ["glue", "mrqa", "pretraining", "sentiment", "super_glue", "transfer"]

"""Zero-shot transfer mixtures: train a prompt on one task, evaluate on another.

Each mixture trains on the source task (the target task has no train split in
it) and evaluates on the source's and the target's validation sets.

  glue_mrpc_from_qqp_zeroshot_v002   train QQP, evaluate MRPC
  glue_qqp_from_mrpc_zeroshot_v002   train MRPC, evaluate QQP
  mrqa_squad_to_<dataset>_v100       train SQuAD, evaluate an out-of-domain MRQA set
  mrqa_squad_to_out_of_domain_v100   train SQuAD, evaluate all six

The QQP/MRPC target tasks (`glue_mrpc_from_qqp_v002`, ...) hold the target's
validation set in its own format, but their class labels are the source's words
(`duplicate` / `not_duplicate` for a QQP prompt), which are translated to the
target's (`equivalent` / `not_equivalent`) before the metrics.
"""

from __future__ import annotations

from prompt_tuning.data import readers
from prompt_tuning.data.registry import register_mixture
from prompt_tuning.tasks import mrqa
from prompt_tuning.tasks.glue import register_glue_classification


def _register_glue_transfer() -> None:
    for source, target in (("qqp", "mrpc"), ("mrpc", "qqp")):
        register_glue_classification(
            target,
            f"glue_{target}_from_{source}_v002",
            splits=["validation"],
            predicted_labels=readers.GLUE[source].label_names,
        )
        register_mixture(
            f"glue_{target}_from_{source}_zeroshot_v002",
            [f"glue_{source}_v002", f"glue_{target}_from_{source}_v002"],
        )


def _register_mrqa_transfer() -> None:
    squad = mrqa.task("squad")
    for target in mrqa.OUT_OF_DOMAIN:
        register_mixture(f"mrqa_squad_to_{target}_v100", [squad, mrqa.task(target)])
    register_mixture(
        "mrqa_squad_to_out_of_domain_v100", [squad] + [mrqa.task(c) for c in mrqa.OUT_OF_DOMAIN]
    )


_register_glue_transfer()
_register_mrqa_transfer()

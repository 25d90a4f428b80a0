"""How a saved CODA-Prompt pool weighs its components for each task's inputs.

    python scripts/coda_weights.py runs/i22/continual/coda_s0/task_2_spam_email/prompts/prompt_300.npz \\
        --tasks movie_sentiment,question_type,spam_email

For the first `--examples` validation inputs of each task, prints the mean and
standard deviation of `alpha_m = cos(q * A_m, K_m)` for every component m of the
pool (earlier tasks' components first), with `q` the frozen model's pooled
query as in training. A pool that routes by task gives an old task's inputs
weights near zero on the components added after it; large weights there are
interference, whatever the earlier components still hold.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np
import seqio

import prompt_tuning.tasks  # noqa: F401  (registers the tasks --tasks names)
from prompt_tuning import checkpoints, evaluation
from prompt_tuning.methods import coda_prompt
from prompt_tuning.methods.query import pooled_query
from prompt_tuning.models import T5


def encoder_inputs(task: str, examples: int, length: int) -> np.ndarray:
    """`[examples, length]` validation inputs of `task`, zero-padded."""
    rows = evaluation.load_examples(seqio.get_mixture_or_task(task), "validation", length, examples)
    return evaluation.pad([row.inputs for row in rows], length)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pool", help="a CODA-Prompt .npz saved by the train job")
    parser.add_argument("--tasks", required=True, help="comma-separated task names")
    parser.add_argument("--model", default="t5_tiny_multitask_classes", help="shipped model")
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--inputs_length", type=int, default=64)
    args = parser.parse_args(argv)
    config, params = checkpoints.load(checkpoints.shipped_checkpoint(args.model))
    model = T5(config)
    with np.load(args.pool) as pool:
        keys, attention = jnp.asarray(pool["coda_keys"]), jnp.asarray(pool["coda_attention"])
    print(f"{keys.shape[0]} components; mean (std) alpha over {args.examples} inputs per task")
    for task in args.tasks.split(","):
        query = pooled_query(
            model, params, jnp.asarray(encoder_inputs(task, args.examples, args.inputs_length))
        )
        alpha = np.asarray(coda_prompt.weights(keys, attention, query))
        cells = [f"{m:+.2f} ({s:.2f})" for m, s in zip(alpha.mean(0), alpha.std(0), strict=True)]
        print(f"{task}: " + "  ".join(cells))


if __name__ == "__main__":
    main()

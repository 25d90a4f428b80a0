"""Time to the first resumed step, at step 100 and at step 10,000 of a tiny run.

  python benchmarks/data_resume.py [--steps 100 10000] [--batch 8] [--repeats 3]

For each step S, a tiny prompt-tuning run on the bundled `movie_sentiment`
task is brought to S: a 1-step run writes MODEL_DIR, then its state is saved
again as step S with the input pipeline advanced by S batches (that replay is
set-up, timed apart). Then `experiment.train` resumes it for one step with
TRAIN_STEPS = S + 1, and the wall time of that call is printed: restoring the
state and the data position, compiling, one step, one save. With the data
position saved as iterator state, this time does not grow with S; the last
column shows what replaying S batches (the resume before iterator states)
costs on top. Each resume is timed `--repeats` times, the step sizes
interleaved, each time from a fresh copy of the advanced run; the table shows
the fastest (the least disturbed by other work on the machine) and all times.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import gin
import jax
import numpy as np

import prompt_tuning.tasks  # noqa: F401  (registers TASK)
from prompt_tuning import checkpoints, experiment, gin_utils, input_pipeline, partitioning
from prompt_tuning.checkpoints import state as run_state
from prompt_tuning.models import T5Config, init_params

TASK = "movie_sentiment"
LENGTHS = {"inputs": 32, "targets": 4}
CONFIG = T5Config(
    vocab_size=32128, d_model=16, num_heads=2, d_kv=8, d_ff=32,
    num_encoder_layers=1, num_decoder_layers=1, relative_attention_num_buckets=8,
)  # fmt: skip


def _train(model_dir: str, checkpoint: str, steps: int, batch: int) -> float:
    """Seconds of one `experiment.train` call with TRAIN_STEPS = `steps`."""
    bindings = [
        f"MODEL_DIR = '{model_dir}'",
        f"INITIAL_CHECKPOINT_PATH = '{checkpoint}'",
        f"MIXTURE_OR_TASK_NAME = '{TASK}'",
        f"TASK_FEATURE_LENGTHS = {LENGTHS}",
        f"TRAIN_STEPS = {steps}",
        f"BATCH_SIZE = {batch}",
        "PROMPT_LENGTH = 4",
        "ModelSpec.dtype = 'float32'",
        "train.eval_every = 0",
        "train.log_every = 1000000",
    ]
    gin_utils.parse(["runs/prompt_finetune.gin", "prompts/random_uniform.gin"], bindings)
    start = time.perf_counter()
    try:
        experiment.train(
            mesh=partitioning.make_mesh((1, 1), devices=jax.devices()[:1]), print_fn=lambda _: None
        )
    finally:
        gin.clear_config()
    return time.perf_counter() - start


def _advance(model_dir: str, step: int, batch: int) -> float:
    """Saves MODEL_DIR's step-1 state again as `step`, the pipeline `step` batches on.

    Returns the seconds that replaying `step` batches took.
    """
    checkpointer = run_state.StateCheckpointer(model_dir)
    # As saved (nested dicts of arrays): saved again unchanged but for the step.
    state = checkpointer.restore_saved(1)
    batches = input_pipeline.TrainBatches(
        input_pipeline.shard_datasets(TASK, LENGTHS, batch, seed=0)
    )
    start = time.perf_counter()
    for _ in range(step):
        next(batches)
    replay = time.perf_counter() - start
    state["step"] = np.asarray(step, state["step"].dtype)
    checkpointer.save(step, state, {"step": step, "examples": step * batch}, batches)
    checkpointer.close()
    return replay


def main(argv: list[str] | None = None) -> dict[int, list[float]]:
    """Prints the table; returns every timed resume's seconds by step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        checkpoint = checkpoints.save_t5x(init_params(CONFIG, jax.random.key(0)), root, 0)
        replays, times = {}, {step: [] for step in args.steps}
        for step in args.steps:
            model_dir = os.path.join(root, f"run_{step}")
            _train(model_dir, checkpoint, 1, args.batch)
            replays[step] = _advance(model_dir, step, args.batch)
            shutil.copytree(model_dir, f"{model_dir}_advanced")
        for _ in range(args.repeats):
            for step in args.steps:
                # The same MODEL_DIR each time (its config.gin names it), back at step `step`.
                model_dir = os.path.join(root, f"run_{step}")
                shutil.rmtree(model_dir)
                shutil.copytree(f"{model_dir}_advanced", model_dir)
                times[step].append(_train(model_dir, checkpoint, step + 1, args.batch))
        print(
            "| resumed at step | time to the first resumed step (fastest) | all times | replaying the batches |"
        )
        print("|---|---|---|---|")
        for step in args.steps:
            every = ", ".join(f"{t:.2f}" for t in times[step])
            print(f"| {step:,} | {min(times[step]):.2f} s | {every} s | {replays[step]:.2f} s |")
        fastest = [min(times[step]) for step in args.steps]
        print(f"largest / smallest: {max(fastest) / min(fastest):.3f}")
    return times


if __name__ == "__main__":
    main()

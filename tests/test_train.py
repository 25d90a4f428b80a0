"""Prompt-only training: what changes, what never does, and the same result anywhere."""

from __future__ import annotations

import json
import pathlib

import gin
import jax
import jax.extend
import numpy as np
import pytest
import tiny
import tolerances

from prompt_tuning import experiment, gin_utils, input_pipeline, partitioning, trainer
from prompt_tuning.errors import RunError
from prompt_tuning.models import T5, init_params

TESTS = pathlib.Path(__file__).resolve().parent
LENGTHS = {"inputs": 16, "targets": 4}


def _batch(batch_size=8, seed=0):
    dataset = input_pipeline.train_dataset(tiny.TASK, LENGTHS, batch_size, seed=seed)
    return next(dataset.as_numpy_iterator())


def _state_and_step(params, prompt_length=5, **step_kwargs):
    model = T5(tiny.CONFIG)
    optimizer = trainer.make_optimizer()
    prompt = jax.random.uniform(
        jax.random.key(1), (prompt_length, tiny.CONFIG.d_model), minval=-0.5, maxval=0.5
    )
    step = trainer.make_train_step(trainer.prompt_objective(model), optimizer, **step_kwargs)
    return trainer.init_state(prompt, optimizer), step


def test_training_changes_only_the_prompt_and_lowers_the_loss():
    params = init_params(tiny.CONFIG, jax.random.key(0))
    before = jax.tree.map(np.array, params)
    state, step = _state_and_step(params)
    step = jax.jit(step)
    dataset = input_pipeline.train_dataset(tiny.TASK, LENGTHS, 8, seed=0).as_numpy_iterator()
    losses, initial_prompt = [], np.array(state.params)
    for _ in range(30):
        state, metrics = step(state, params, next(dataset), jax.random.key(0))
        losses.append(float(metrics["loss"]))
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), b), params, before)
    assert not np.array_equal(np.asarray(state.params), initial_prompt)
    assert np.mean(losses[-5:]) < np.mean(losses[:5]) - 0.5, losses


def _dot_output_shapes(jaxpr) -> set[tuple[int, ...]]:
    """Shapes produced by every contraction / accumulation in a jaxpr, sub-jaxprs included."""
    shapes = set()
    for eqn in jaxpr.eqns:
        if eqn.primitive.name in {
            "dot_general",
            "transpose",
            "add_any",
            "reduce_sum",
            "scatter-add",
        }:
            shapes |= {tuple(v.aval.shape) for v in eqn.outvars}
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            shapes |= _dot_output_shapes(sub)
    return shapes


def test_no_weight_gradient_is_ever_built():
    """The step's program never produces an array shaped like a frozen weight."""
    params = init_params(tiny.CONFIG, jax.random.key(0))
    state, step = _state_and_step(params)
    batch = _batch()
    weight_shapes = {tuple(x.shape) for x in jax.tree.leaves(params) if x.ndim == 2}
    produced = _dot_output_shapes(
        jax.make_jaxpr(step)(state, params, batch, jax.random.key(0)).jaxpr
    )
    assert not weight_shapes & produced

    # The check can fail: differentiating with respect to the weights too builds them.
    def full_loss(prompt, frozen):
        return trainer.batch_loss(T5(tiny.CONFIG), prompt, frozen, batch, trainer.LossConfig())[0]

    full = jax.make_jaxpr(jax.grad(full_loss, argnums=(0, 1)))(state.params, params)
    assert weight_shapes & _dot_output_shapes(full.jaxpr)


def test_microbatched_gradient_equals_one_big_batch():
    params = init_params(tiny.CONFIG, jax.random.key(0))
    state, step = _state_and_step(params)
    _, step4 = _state_and_step(params, num_microbatches=4)
    batch = _batch()
    one, m1 = jax.jit(step)(state, params, batch, jax.random.key(0))
    four, m4 = jax.jit(step4)(state, params, batch, jax.random.key(0))
    np.testing.assert_allclose(m1["loss"], m4["loss"], rtol=1e-5)
    np.testing.assert_allclose(one.params, four.params, atol=1e-5)


def tiny_run_bindings(model_dir, checkpoint, steps, prompt_length, save_every) -> list[str]:
    """Gin bindings of a short float32, dropout-free train run on the tiny task."""
    return [
        f"MODEL_DIR = '{model_dir}'",
        f"INITIAL_CHECKPOINT_PATH = '{checkpoint}'",
        f"MIXTURE_OR_TASK_NAME = '{tiny.TASK}'",
        f"TASK_FEATURE_LENGTHS = {LENGTHS}",
        f"TRAIN_STEPS = {steps}",
        "BATCH_SIZE = 8",
        f"PROMPT_LENGTH = {prompt_length}",
        "ModelSpec.dtype = 'float32'",
        "ModelSpec.dropout_rate = 0.0",
        f"train.save_every = {save_every}",
        "train.eval_every = 0",
    ]


def _run_train(model_dir, checkpoint, steps=10, mesh=None, extra=()):
    gin_utils.parse(
        ["runs/prompt_finetune.gin", "prompts/random_uniform.gin"],
        [
            *tiny_run_bindings(model_dir, checkpoint, steps, 5, 5),
            "DataSpec.data_shards = 2",
            *extra,
        ],
    )
    try:
        return experiment.train(mesh=mesh, print_fn=lambda _: None)
    finally:
        gin.clear_config()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.mark.slow
def test_same_prompt_on_every_mesh(tmp_path, checkpoint):
    """Each mesh sums the gradient in its own order: equal up to rounding (`tolerances`)."""
    one_device = partitioning.make_mesh((1, 1), devices=jax.devices()[:1])
    # Saving at step 9 as well keeps the prompt one step short of the end for the control.
    reference = _run_train(
        tmp_path / "one", checkpoint, mesh=one_device, extra=["train.save_every = 9"]
    )
    atol = tolerances.reordered_training_atol(steps=10, learning_rate=0.3)  # prompt_finetune.gin
    for shape in [(8, 1), (4, 2), (2, 4)]:
        prompt = _run_train(tmp_path / f"{shape}", checkpoint, mesh=partitioning.make_mesh(shape))
        np.testing.assert_allclose(prompt, reference, rtol=0, atol=atol, err_msg=str(shape))
    # The control: a run that skipped one step is far outside the tolerance.
    one_step_short = np.load(tmp_path / "one" / "prompts" / "prompt_9.npy")
    tolerances.assert_tolerance_catches(one_step_short, reference, atol)


def test_run_writes_prompts_state_config_and_metrics(tmp_path, checkpoint):
    model_dir = tmp_path / "run"
    prompt = _run_train(model_dir, checkpoint, steps=10)
    assert sorted(p.name for p in (model_dir / "prompts").glob("*.npy")) == [
        "prompt_10.npy",
        "prompt_5.npy",
    ]
    np.testing.assert_array_equal(np.load(model_dir / "prompts" / "prompt_10.npy"), prompt)
    assert (model_dir / "config.gin").read_text().count("tiny_polarity_test") >= 1
    records = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == list(range(1, 11))
    assert sorted(int(p.name) for p in (model_dir / "state").iterdir() if p.name.isdigit()) == [
        5,
        10,
    ]
    # Same command again: nothing to do, same prompt (resumes at the final step).
    again = _run_train(model_dir, checkpoint, steps=10)
    np.testing.assert_array_equal(again, prompt)


def test_resume_continues_exactly(tmp_path, checkpoint):
    straight = _run_train(tmp_path / "straight", checkpoint, steps=10)
    _run_train(tmp_path / "split", checkpoint, steps=5)
    resumed = _run_train(tmp_path / "split", checkpoint, steps=10)
    np.testing.assert_array_equal(resumed, straight)


def test_relative_model_dir_saves_and_resumes(tmp_path, checkpoint, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prompt = _run_train("relative_run", checkpoint, steps=5)
    np.testing.assert_array_equal(
        np.load(tmp_path / "relative_run" / "prompts" / "prompt_5.npy"), prompt
    )
    assert (tmp_path / "relative_run" / "state" / "5").is_dir()


def _spy(monkeypatch, module, name: str) -> list[object]:
    """Replaces `module.name` by a wrapper that records each call's result."""
    original, results = getattr(module, name), []

    def wrapper(*args, **kwargs):
        results.append(original(*args, **kwargs))
        return results[-1]

    monkeypatch.setattr(module, name, wrapper)
    return results


def test_train_job_and_benchmark_jit_the_same_step_function(tmp_path, checkpoint, monkeypatch):
    """One step: the job and the benchmarks go through `trainer.make_train_step` and
    `trainer.jit_train_step` themselves (the same objects), not a copy of them."""
    import sys

    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "benchmarks"))
    import step_setup

    built = _spy(monkeypatch, trainer, "make_train_step")
    jitted = _spy(monkeypatch, trainer, "jit_train_step")
    _run_train(tmp_path / "run", checkpoint, steps=2)
    assert len(built) == 1 and len(jitted) == 1
    mesh = partitioning.make_mesh((1, 1), devices=jax.devices()[:1])
    benchmark_step = step_setup.jit_train_step(tiny.CONFIG, mesh, trainer.make_optimizer())
    assert len(built) == 2 and len(jitted) == 2 and jitted[1] is benchmark_step


def test_a_run_recorded_before_the_defaults_left_the_gin_file_still_resumes(tmp_path):
    """runs/prompt_finetune.gin stopped restating the optimizer and loss defaults (#19):
    a config.gin that still holds those lines is the same run; another value is not."""
    from prompt_tuning import run_dir

    gin_utils.parse(
        ["runs/prompt_finetune.gin", "prompts/random_uniform.gin"],
        tiny_run_bindings(tmp_path, "ckpt", 10, 5, 5),
    )
    try:
        today = gin.config_str()
    finally:
        gin.clear_config()
    restated = "\n".join(run_dir._RESTATED_DEFAULTS)
    (tmp_path / run_dir.CONFIG_FILE).write_text(f"{restated}\n{today}")
    assert run_dir.check_model_dir(str(tmp_path), today)
    (tmp_path / run_dir.CONFIG_FILE).write_text(f"make_optimizer.learning_rate = 1.0\n{today}")
    with pytest.raises(RunError, match="holds a different run"):
        run_dir.check_model_dir(str(tmp_path), today)

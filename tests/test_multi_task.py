"""Multi-task prompts: composition, per-example prompts in training, per-task evaluation."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import seqio
import tensorflow as tf
import tiny
from test_methods_runs import _train
from test_train import LENGTHS

from prompt_tuning import eval as eval_cli
from prompt_tuning import infer, input_pipeline, methods, prompts, trainer
from prompt_tuning.checkpoints import state as run_state
from prompt_tuning.data.registry import register_classification, register_mixture
from prompt_tuning.methods import multi_task
from prompt_tuning.models import T5, init_params

PROMPT_LENGTH = 4
D = tiny.CONFIG.d_model
# The tiny task with every label flipped and its own prefix: one prompt cannot serve both.
CONTRARY = "tiny_contrary_test"
MIXTURE = "tiny_multi_task_test"
TASKS = (tiny.TASK, CONTRARY)


def _contrary_dataset_fn(
    split: str, shuffle_files: bool, seed: int | None = None
) -> tf.data.Dataset:
    del shuffle_files, seed
    examples = tiny._examples(split)
    flipped = [1 - tiny.LABELS.index(label) for label in examples["label"]]
    return tf.data.Dataset.from_tensor_slices({"sentence": examples["sentence"], "label": flipped})


if MIXTURE not in seqio.MixtureRegistry.names():
    register_classification(
        CONTRARY,
        seqio.FunctionDataSource(_contrary_dataset_fn, splits=["train", "validation"]),
        prefix="contrary",
        keys=("sentence",),
        label_names=tiny.LABELS,
    )
    register_mixture(MIXTURE, list(TASKS))


@pytest.fixture(scope="module")
def params():
    return init_params(tiny.CONFIG, jax.random.key(0))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))


def _context() -> methods.InitContext:
    return methods.InitContext(tiny.CONFIG, PROMPT_LENGTH, prompts.random_uniform(0.5))


def _random(seed: int, shape: tuple[int, ...]) -> jax.Array:
    return jax.random.normal(jax.random.key(seed), shape)


@pytest.mark.parametrize("composition", multi_task.COMPOSITIONS)
def test_composition_matches_its_definition(composition):
    shared = np.asarray(_random(0, (PROMPT_LENGTH, D)))
    params = {"shared": shared}
    if composition == "concat":
        params["task"] = np.asarray(_random(1, (2, 3, D)))
        expected = [np.vstack([shared, params["task"][t]]) for t in range(2)]
    elif composition == "add":
        params["task"] = np.asarray(_random(1, (2, PROMPT_LENGTH, D)))
        expected = [shared + params["task"][t] for t in range(2)]
    else:
        params["u"] = np.asarray(_random(1, (2, PROMPT_LENGTH, 3)))
        params["v"] = np.asarray(_random(2, (2, 3, D)))
        expected = [
            shared * sum(np.outer(params["u"][t][:, k], params["v"][t][k]) for k in range(3))
            for t in range(2)
        ]
    composed = multi_task.compose(jax.tree.map(jnp.asarray, params), composition)
    np.testing.assert_allclose(composed, np.stack(expected), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "method",
    [
        methods.MultiTaskPrompts(TASKS, "add"),
        methods.MultiTaskPrompts(TASKS, "mpt"),
        methods.MultiTaskPrompts(TASKS, "mpt", rank=3),
    ],
    ids=["add", "mpt", "mpt_rank3"],
)
def test_add_and_mpt_start_from_the_shared_prompt(method):
    params = method.init(jax.random.key(1), _context())
    composed = multi_task.compose(params, method.composition)
    for t in range(len(TASKS)):
        np.testing.assert_array_equal(composed[t], params["shared"])
    if method.composition == "mpt" and method.rank > 1:
        assert np.all(np.asarray(params["v"][:, 1:]) != 0)  # later components can move


def test_concat_gives_each_task_its_own_rows_after_the_shared_ones():
    method = methods.MultiTaskPrompts(TASKS, "concat", task_length=3)
    params = method.init(jax.random.key(1), _context())
    composed = multi_task.compose(params, "concat")
    assert composed.shape == (2, PROMPT_LENGTH + 3, D)
    np.testing.assert_array_equal(composed[:, :PROMPT_LENGTH], np.stack([params["shared"]] * 2))
    assert not np.array_equal(composed[0, PROMPT_LENGTH:], composed[1, PROMPT_LENGTH:])


def test_each_example_reads_its_own_task_prompt():
    method = methods.MultiTaskPrompts(TASKS, "concat")
    params = method.init(jax.random.key(2), _context())
    index = np.array([1, 0, 0, 1, 1], np.int32)
    per_example = method.model_inputs(params, {methods.TASK_INDEX: index})["prompt"]
    exported = method.model_inputs(params)
    assert list(exported["task_names"]) == list(TASKS)
    for row, t in zip(per_example, index, strict=True):
        np.testing.assert_array_equal(row, exported["task_prompts"][t])
    with pytest.raises(ValueError, match="needs each example's 'task_index'"):
        method.model_inputs(params, {"encoder_input_tokens": np.zeros((2, 3), np.int32)})


def test_mixture_batches_tag_each_example_with_its_task():
    dataset = input_pipeline.train_dataset(MIXTURE, LENGTHS, 16, seed=0, task_names=TASKS[::-1])
    batch = next(dataset.as_numpy_iterator())
    vocabulary = seqio.get_mixture_or_task(MIXTURE).output_features["inputs"].vocabulary
    prefixes = {0: "contrary", 1: "polarity"}  # TASKS reversed
    words = [vocabulary.decode(row.tolist()).split()[0] for row in batch["encoder_input_tokens"]]
    assert [prefixes[int(t)] for t in batch[methods.TASK_INDEX]] == words
    assert set(batch[methods.TASK_INDEX].tolist()) == {0, 1}


def test_an_example_trains_only_the_shared_prompt_and_its_own_task_part(params):
    method = methods.MultiTaskPrompts(TASKS, "concat")
    optimizer = optax.sgd(0.1)
    state = trainer.init_state(method.init(jax.random.key(3), _context()), optimizer)
    step = trainer.make_train_step(
        trainer.prompt_objective(T5(tiny.CONFIG), method=method), optimizer
    )
    batch = next(
        input_pipeline.train_dataset(
            tiny.TASK, LENGTHS, 8, seed=0, task_names=TASKS
        ).as_numpy_iterator()
    )
    assert batch[methods.TASK_INDEX].tolist() == [0] * 8
    new, _ = jax.jit(step)(state, params, batch, jax.random.key(0))
    np.testing.assert_array_equal(new.params["task"][1], state.params["task"][1])
    assert not np.array_equal(new.params["task"][0], state.params["task"][0])
    assert not np.array_equal(new.params["shared"], state.params["shared"])


@pytest.mark.parametrize(
    "method",
    [
        methods.MultiTaskPrompts(TASKS, "concat", task_length=2),
        methods.MultiTaskPrompts(TASKS, "add"),
        methods.MultiTaskPrompts(TASKS, "mpt", rank=2),
    ],
    ids=["concat", "add", "mpt"],
)
@pytest.mark.slow  # 30 compiled steps: 5-15 s each on a loaded 2-core CPU
def test_training_changes_only_the_method_parameters_and_lowers_the_loss(params, method):
    optimizer = trainer.make_optimizer()
    state = trainer.init_state(method.init(jax.random.key(1), _context()), optimizer)
    step = jax.jit(
        trainer.make_train_step(trainer.prompt_objective(T5(tiny.CONFIG), method=method), optimizer)
    )
    dataset = input_pipeline.train_dataset(MIXTURE, LENGTHS, 8, seed=0, task_names=TASKS)
    tiny.assert_trains_only_the_method(step, state, params, dataset.as_numpy_iterator())


def test_bind_tasks_fills_in_the_mixture_or_names_what_is_missing():
    bound = methods.bind_tasks(methods.MultiTaskPrompts(), TASKS)
    assert bound.tasks == TASKS
    assert methods.bind_tasks(methods.PromptTuning(), TASKS) == methods.PromptTuning()
    with pytest.raises(ValueError, match=r"has no prompt for \['tiny_contrary_test'\]"):
        methods.bind_tasks(methods.MultiTaskPrompts((tiny.TASK,)), TASKS)


def test_multi_task_files_round_trip_with_their_digest(tmp_path):
    method = methods.MultiTaskPrompts(TASKS, "mpt", rank=2)
    exported = methods.export(method, method.init(jax.random.key(4), _context()))
    path = run_state.save_prompt(tmp_path, 3, methods.file_content(exported))
    assert path.name == "prompt_3.npz" and run_state.verify_prompt(path) is None
    loaded = methods.load_inputs(path)
    assert loaded["task_names"].tolist() == list(TASKS)
    np.testing.assert_array_equal(loaded["task_prompts"], exported["task_prompts"])


def test_a_task_without_a_prompt_in_the_file_is_refused():
    stack = {"task_prompts": np.zeros((1, 2, 3, D)), "task_names": np.asarray([TASKS])}
    np.testing.assert_array_equal(
        methods.task_inputs(stack, CONTRARY)["prompt"], np.zeros((1, 3, D))
    )
    with pytest.raises(ValueError, match=r"for tasks \[.*\], not for 'movie_sentiment'"):
        methods.task_inputs(stack, "movie_sentiment")


def _eval(checkpoint, out_dir, task, prompt_file, job="eval", extra=()):
    main = eval_cli.main if job == "eval" else infer.main
    argv = [
        f"--gin_file=runs/prompt_{job}.gin",
        f"--gin.INITIAL_CHECKPOINT_PATH='{checkpoint}'",
        f"--gin.MIXTURE_OR_TASK_NAME='{task}'",
        f"--gin.MODEL_DIR='{out_dir}'",
        f"--gin.TASK_FEATURE_LENGTHS={LENGTHS}",
        "--gin.ModelSpec.dtype='float32'",
        f"--gin.PROMPT_FILE='{prompt_file}'",
        *extra,
    ]
    return main(argv)


def _predictions(out_dir, name):
    lines = (out_dir / "eval" / f"{name}.validation.predictions.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.slow
def test_a_multi_task_run_evaluates_each_task_with_its_own_prompt(checkpoint, tmp_path, capsys):
    final = _train(
        tmp_path / "run",
        checkpoint,
        "methods/multi_task.gin",
        2,
        [f"MIXTURE_OR_TASK_NAME = '{MIXTURE}'", "MultiTaskPrompts.task_length = 2"],
    )
    # The tasks default to the mixture's sub-tasks, in seqio's order.
    names = final["task_names"].tolist()
    assert names == [t.name for t in seqio.get_mixture_or_task(MIXTURE).tasks]
    assert sorted(names) == sorted(TASKS)
    assert final["task_prompts"].shape == (2, PROMPT_LENGTH + 2, D)
    path = run_state.prompt_path(tmp_path / "run", 2, ".npz")
    assert _eval(checkpoint, tmp_path / "mixed", MIXTURE, path) == 0
    mixed = _predictions(tmp_path / "mixed", MIXTURE)
    for t, task in enumerate(names):
        alone_file = tmp_path / f"{task}.npy"
        np.save(alone_file, final["task_prompts"][t])
        assert _eval(checkpoint, tmp_path / task, task, alone_file) == 0
        alone = _predictions(tmp_path / task, task)
        ours = [r for r in mixed if r["task"] == task]
        assert len(ours) == len(alone) > 0
        for a, b in zip(ours, alone, strict=True):
            assert a["prediction"] == b["prediction"]
            np.testing.assert_allclose(
                list(a["scores"].values()), list(b["scores"].values()), atol=1e-5
            )
    # Inference on one task reads that task's prompt from the multi-task file.
    assert _eval(checkpoint, tmp_path / "infer", CONTRARY, path, job="infer") == 0
    rows = next((tmp_path / "infer" / "infer").glob("*.jsonl")).read_text().splitlines()
    assert [json.loads(r)["prediction"] for r in rows] == [
        r["prediction"] for r in mixed if r["task"] == CONTRARY
    ]
    # The other task's prompt scores the contrary task differently: each task used its own.
    other_file = tmp_path / "other.npy"
    np.save(other_file, final["task_prompts"][names.index(tiny.TASK)])
    assert _eval(checkpoint, tmp_path / "other", CONTRARY, other_file) == 0
    other = [r["scores"]["positive"] for r in _predictions(tmp_path / "other", CONTRARY)]
    ours = [r["scores"]["positive"] for r in mixed if r["task"] == CONTRARY]
    assert not np.allclose(other, ours, atol=1e-5)
    capsys.readouterr()
    assert _eval(checkpoint, tmp_path / "bad", "movie_sentiment", path) == 2
    assert "not for 'movie_sentiment'" in capsys.readouterr().out


def test_a_mixture_trains_on_the_sub_tasks_that_have_the_split():
    input_pipeline.check_split("movie_to_product_sentiment", "train")  # product has none
    with pytest.raises(input_pipeline.EmptySplitError, match="product_sentiment has no 'train'"):
        input_pipeline.check_split("product_sentiment", "train")


@pytest.mark.slow
def test_a_run_over_two_bundled_tasks_gives_each_its_own_prompt(checkpoint, tmp_path):
    """Product reviews have no train split: with `add`, their prompt is the shared one, trained."""
    mixture = "movie_to_product_sentiment"
    final = _train(
        tmp_path / "run",
        checkpoint,
        "methods/multi_task.gin",
        2,
        [f"MIXTURE_OR_TASK_NAME = '{mixture}'", "MultiTaskPrompts.composition = 'add'"],
    )
    names = final["task_names"].tolist()
    assert sorted(names) == ["movie_sentiment", "product_sentiment"]
    movie, product = (final["task_prompts"][names.index(n)] for n in sorted(names))
    assert not np.array_equal(movie, product)
    # The run's initial shared prompt (DataSpec.seed 0, prompts/random_uniform.gin's scale).
    context = methods.InitContext(tiny.CONFIG, PROMPT_LENGTH, prompts.random_uniform(0.5))
    method = methods.MultiTaskPrompts(tuple(names), "add")
    initial = method.init(jax.random.key(0), context)["shared"]
    assert not np.allclose(product, initial, atol=1e-4)  # movie reviews trained it
    path = run_state.prompt_path(tmp_path / "run", 2, ".npz")
    assert (
        _eval(checkpoint, tmp_path / "eval", mixture, path, extra=["--gin.evaluate.max_examples=8"])
        == 0
    )
    metrics = json.loads(
        (tmp_path / "eval" / "eval" / f"{mixture}.validation.metrics.json").read_text()
    )
    assert {"movie_sentiment/accuracy", "product_sentiment/accuracy"} <= set(metrics[str(path)])


@pytest.mark.slow
def test_a_multi_task_run_resumes_exactly_and_evaluates_every_task_while_training(
    checkpoint, tmp_path
):
    extra = [
        f"MIXTURE_OR_TASK_NAME = '{MIXTURE}'",
        "MultiTaskPrompts.composition = 'mpt'",
        "MultiTaskPrompts.rank = 2",
        "train.num_microbatches = 2",
        "train.eval_every = 2",
        "train.max_eval_examples = 4",
    ]
    straight = _train(tmp_path / "straight", checkpoint, "methods/multi_task.gin", 4, extra)
    _train(tmp_path / "split", checkpoint, "methods/multi_task.gin", 2, extra)
    resumed = _train(tmp_path / "split", checkpoint, "methods/multi_task.gin", 4, extra)
    np.testing.assert_array_equal(resumed["task_prompts"], straight["task_prompts"])
    records = (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
    evals = [json.loads(r) for r in records if json.loads(r)["kind"] == "eval"]
    assert [r["step"] for r in evals] == [2, 4]
    assert all({f"{t}/accuracy" for t in TASKS} <= set(r) for r in evals)

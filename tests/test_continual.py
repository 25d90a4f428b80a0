"""The continual-learning runner on the tiny model: the accuracy matrix, resuming, bad input."""

from __future__ import annotations

import json

import pytest
import seqio
import tiny

from prompt_tuning import continual
from prompt_tuning.data.registry import register_classification

SECOND = "tiny_polarity_test_tone"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="module", autouse=True)
def second_task():
    """A second tiny task with another input prefix, so a sequence has two tasks."""
    if SECOND not in seqio.TaskRegistry.names():
        register_classification(
            SECOND,
            seqio.FunctionDataSource(tiny._dataset_fn, splits=["train", "validation"]),
            prefix="tone",
            keys=("sentence",),
            label_names=tiny.LABELS,
        )


def _args(checkpoint, out, tasks, method="sequential"):
    return [
        f"--tasks={','.join(tasks)}",
        f"--method={method}",
        f"--out={out}",
        "--steps=3",
        "--batch_size=8",
        "--inputs_length=16",
        "--gin_file=hardware/cpu.gin",
        f"--gin=INITIAL_CHECKPOINT_PATH='{checkpoint}'",
        "--gin=ModelSpec.dtype='float32'",
        "--gin=ModelSpec.dropout_rate=0.0",
    ]


TASKS = (tiny.TASK, SECOND)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sequential", "coda"])
def test_a_sequence_writes_the_matrix_and_resumes_after_a_kill(checkpoint, tmp_path, method,
                                                               monkeypatch):  # fmt: skip
    straight = tmp_path / "straight"
    assert continual.main(_args(checkpoint, straight, TASKS, method)) == 0
    record = json.loads((straight / continual.STATE_FILE).read_text())
    assert [len(row) for row in record["R"]] == [1, 2]
    assert set(record["summary"]) == {"average_final_accuracy", "average_forgetting"}
    assert (straight / continual.HEATMAP_FILE).stat().st_size > 0

    # Killed after training the second task, before its evaluation: the record keeps task 1.
    killed = tmp_path / "killed"
    evaluate = continual.evaluate_file
    calls = []

    def dies_on_second_task(settings, task, prompt_file):
        calls.append(task)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(settings, task, prompt_file)

    monkeypatch.setattr(continual, "evaluate_file", dies_on_second_task)
    with pytest.raises(KeyboardInterrupt):
        continual.main(_args(checkpoint, killed, TASKS, method))
    assert len(json.loads((killed / continual.STATE_FILE).read_text())["R"]) == 1
    monkeypatch.setattr(continual, "evaluate_file", evaluate)
    trained = []
    train_task = continual.train_task
    monkeypatch.setattr(
        continual, "train_task", lambda s, i, *a: trained.append(i) or train_task(s, i, *a)
    )
    assert continual.main(_args(checkpoint, killed, TASKS, method)) == 0
    assert trained == [1]  # the first task is not trained again
    resumed = json.loads((killed / continual.STATE_FILE).read_text())
    assert resumed["R"] == record["R"]  # as if never interrupted


def _fails(capsys, argv, *fragments):
    with pytest.raises(SystemExit) as raised:
        continual.main(argv)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1
    for fragment in fragments:
        assert fragment in err


def test_bad_task_lists_are_refused_before_anything_is_written(checkpoint, tmp_path, capsys):
    out = tmp_path / "run"
    _fails(capsys, _args(checkpoint, out, (tiny.TASK, "no_such_task")), "'no_such_task'")
    _fails(capsys, _args(checkpoint, out, (tiny.TASK, "product_sentiment")), "no 'train' split")
    _fails(capsys, _args(checkpoint, out, (tiny.TASK, tiny.TASK)), "more than once")
    assert not out.exists()


@pytest.mark.slow
def test_a_resume_with_another_task_list_is_refused_and_keeps_the_results(
    checkpoint, tmp_path, capsys
):
    out = tmp_path / "run"
    assert continual.main(_args(checkpoint, out, TASKS)) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    _fails(capsys, _args(checkpoint, out, TASKS[::-1]), "other settings", "tasks")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_summary_measures_final_accuracy_and_forgetting():
    result = continual.summary([[80.0], [60.0, 90.0], [70.0, 50.0, 40.0]])
    assert result["average_final_accuracy"] == pytest.approx((70 + 50 + 40) / 3)
    # Task 0: best 80 before the end, 70 at the end; task 1: 90 -> 50.
    assert result["average_forgetting"] == pytest.approx((10 + 40) / 2)

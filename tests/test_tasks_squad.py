"""SQuAD v1.1 tasks on the released JSON layout, and records of the wrong QA dataset.

The formats themselves are compared with the t5 library in
tests/test_tasks_t5_reference.py; here: the file reader, the span metric, and
the one clear error for a SQuAD record given to an MRQA task or the reverse.
"""

import json

import pytest
import seqio
import t5_reference_examples as raw
from tasks_helpers import DATA, raw_files, run_on, run_task, score, texts

import prompt_tuning.tasks  # noqa: F401  (registers the tasks)
from prompt_tuning.data import metrics
from prompt_tuning.data.preprocessors import RecordFormatError
from prompt_tuning.data.registry import user_rows
from prompt_tuning.data.user_rows import UserRowsError, task_on_rows

CONTEXT = "context: The Vell Bridge , opened in 1900 , spans the Vell River near Aston ' s mill . "


@pytest.fixture(scope="module", autouse=True)
def release_files():
    with raw_files(DATA):
        yield


def test_released_json_reads_like_tfds():
    examples = run_task("squad_v010_allanswers", "validation")
    assert texts(examples) == [
        (f"question: When did the Vell Bridge open ? {CONTEXT}", "1900"),
        (f"question: Which river does the bridge span ? {CONTEXT}", "the Vell River"),
    ]
    # The second question's answers are split over two entries with one id; TFDS joins them.
    assert [a.decode() for a in examples[1]["answers"]] == ["the Vell River", "Vell River"]
    assert [ex["id"].decode() for ex in examples] == ["q-open", "q-river"]


def test_span_task_points_at_context_words():
    examples = run_task("squad_v010_allanswers_span", "train")
    # "Aston ' s" spans four positions: T5 counts the empty words between its spaces.
    assert [t for _, t in texts(examples)] == ["start: 7 end: 7", "start: 15 end: 18"]


def test_span_metric_reads_the_span_from_the_context():
    examples = run_task("squad_v010_allanswers_span", "train")
    # The targets themselves score full marks (T5's metric, which drops the empty
    # words, would read position 7 as "the").
    spans = [t for _, t in texts(examples)]
    assert score("squad_v010_allanswers_span", examples, spans) == {"em": 100.0, "f1": 100.0}
    targets = [{"answers": ["Vell River"], "context": "the , Vell River , near"}]
    assert metrics.span_squad(targets, ["start: 3 end: 4"]) == {"em": 100.0, "f1": 100.0}
    assert metrics.span_squad(targets, ["start: 3 end: 3"]) == pytest.approx(
        {"em": 0.0, "f1": 100 * 2 / 3}
    )
    # Malformed spans score as empty answers.
    assert metrics.span_squad(targets, ["start: one end: 2"]) == {"em": 0.0, "f1": 0.0}


@pytest.mark.parametrize(
    ("task", "dataset", "message"),
    [
        (
            "mrqa_squad_v100",
            "squad/v1.1",
            r"The mrqa_\*_v100 tasks read MRQA records with the fields qid, question, "
            r"context, answers; this record has answers \{answer_start, text\}, context, id, "
            r"question, title \(qid, answers missing or shaped differently\)\. SQuAD records "
            r"belong to the squad_v010_\* tasks\.",
        ),
        (
            "squad_v010_allanswers",
            "mrqa/squad",
            r"The squad_v010_\* tasks read SQuAD records with the fields id, question, "
            r"context, answers \{text\}; this record has answers, context, qid, question, subset "
            r"\(id, answers missing or shaped differently\)\. MRQA records belong to the "
            r"mrqa_\*_v100 tasks\.",
        ),
    ],
)
def test_a_record_of_the_other_dataset_names_the_expected_fields(task, dataset, message):
    with pytest.raises(RecordFormatError, match=message):
        run_on(task, raw.dataset(dataset))


def _rows(tmp_path, rows):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def test_user_rows_need_only_question_and_context(tmp_path):
    name = "squad_v010_allanswers"
    path = _rows(tmp_path, [{"question": "Who?", "context": "Bob did."}])
    task = task_on_rows(seqio.get_mixture_or_task(name), user_rows(name), path)
    (example,) = task.get_dataset(sequence_length=None, split="user", shuffle=False)
    assert example["inputs_pretokenized"].numpy() == b"question: Who ? context: Bob did . "


def test_a_squad_row_given_to_an_mrqa_task_names_the_field(tmp_path):
    name = "mrqa_squad_v100"
    row = {
        "question": "Who?",
        "context": "Bob did.",
        "answers": {"text": ["Bob"], "answer_start": [0]},
    }
    with pytest.raises(
        UserRowsError,
        match=r"line 1: field answers must be a list of values, not an object "
        r"\(text, answer_start\); task fields: subset, qid, question, context, answers\.",
    ):
        task_on_rows(seqio.get_mixture_or_task(name), user_rows(name), _rows(tmp_path, [row]))

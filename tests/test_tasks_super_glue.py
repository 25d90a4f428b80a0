"""SuperGLUE tasks end to end on small files in the original SuperGLUE JSONL format.

Expected strings are written by hand from T5's definition of each format.
"""

import pytest
from tasks_helpers import DATA, check_tokens, check_variants, raw_files, run_task, score, texts

import prompt_tuning.tasks  # noqa: F401  (registers the tasks)

SENTS = "Sent 1: Anna planted tomatoes in May. Sent 2: By August the plants were taller than her brother. "
RECORD_VAL = (
    "entities: Lisboa, Lisbon, Porto passage: The comet was seen over Lisbon on Monday. "
    "Astronomers in Porto confirmed the sighting. Locals in Lisboa called it a wonder"
)
EXPECTED = {
    ("super_glue_boolq_v102", "validation"): [
        (
            "boolq passage: Penguin -- Penguins live almost exclusively in the Southern Hemisphere; "
            "none live near the North Pole. question: do penguins live at the north pole",
            "False",
        ),
        (
            "boolq passage: Tomato -- Botanically, a tomato is a fruit: a berry formed from the ovary "
            "of a flower. question: is a tomato botanically a fruit",
            "True",
        ),
    ],
    ("super_glue_boolq_v102", "test"): [
        (
            "boolq passage: Ice -- Ice is less dense than liquid water, so it floats. "
            "question: does ice float on water",
            "<unk>",
        )
    ],
    ("super_glue_cb_v102", "validation"): [
        (
            "cb hypothesis: the new library is open on Sundays premise: B: I think the new library is "
            "open on Sundays. A: I don't believe it is open on Sundays.",
            "contradiction",
        ),
        (
            "cb hypothesis: the parcel arrived on time premise: Maria said the parcel would arrive. "
            "I doubt that it arrived on time.",
            "neutral",
        ),
        (
            "cb hypothesis: he had broken the window premise: He admitted that he had broken the window.",
            "entailment",
        ),
    ],
    ("super_glue_copa_v102", "validation"): [
        (
            "copa choice1: The temperature dropped overnight. choice2: The sun shone all afternoon. "
            "premise: The road was covered in ice. question: cause",
            "choice1",
        ),
        (
            "copa choice1: The lights went out. choice2: A chime rang inside. "
            "premise: I pressed the doorbell. question: effect",
            "choice2",
        ),
    ],
    ("super_glue_multirc_v102", "validation"): [
        (f"multirc question: What did Anna plant? answer: Tomatoes paragraph: {SENTS}", "True"),
        (f"multirc question: What did Anna plant? answer: Potatoes paragraph: {SENTS}", "False"),
        (
            f"multirc question: When were the plants tall? answer: In August paragraph: {SENTS}",
            "True",
        ),
        (
            f"multirc question: When were the plants tall? answer: In May paragraph: {SENTS}",
            "False",
        ),
    ],
    ("super_glue_record_v102", "validation"): [
        (
            f"record query: Crowds gathered in @placeholder to watch the comet. {RECORD_VAL}",
            "Lisboa",
        ),
        (
            f"record query: Crowds gathered in @placeholder to watch the comet. {RECORD_VAL}",
            "Lisbon",
        ),
        (
            f"record query: The @placeholder observatory published photographs. {RECORD_VAL}",
            "Porto",
        ),
    ],
    ("super_glue_record_v102", "train"): [
        (
            "record query: All ferries to @placeholder stopped. entities: Bergen, Oslo passage: A storm "
            "hit Bergen on Friday. Ferries to Oslo were cancelled! Bergen expects calm weather",
            "Oslo",
        )
    ],
    ("super_glue_record_v102", "test"): [
        (
            "record query: Many visitors travelled from @placeholder. entities: Antwerp, Ghent "
            "passage: The festival opened in Ghent. Visitors came from Antwerp",
            "<unk>",
        )
    ],
    ("super_glue_rte_v102", "validation"): [
        (
            "rte hypothesis: Dana no longer owns that bicycle. premise: Dana sold her bicycle to a "
            "neighbour last spring.",
            "entailment",
        ),
        (
            "rte hypothesis: The council rejected the park. premise: The council approved the new "
            "park in March.",
            "not_entailment",
        ),
    ],
    ("super_glue_wic_v102", "validation"): [
        (
            "wic sentence1: Turn on the light. sentence2: The light in the kitchen is broken. word: light",
            "True",
        ),
        (
            "wic sentence1: They run every morning. sentence2: She will run the company. word: run",
            "False",
        ),
    ],
    ("super_glue_wsc_v102", "validation"): [
        ("wsc text: Joan thanked * Susan * for all the help # she # had given.", "True"),
        (
            "wsc text: The city councilmen refused * the demonstrators * a permit because # they # "
            "feared violence.",
            "False",
        ),
    ],
    ("super_glue_wsc_v102", "train"): [
        (
            "wsc text: The * trophy * does not fit into the suitcase because # it # is too large.",
            "True",
        ),
        (
            "wsc text: The * trophy * does not fit into the suitcase because # it # is too small.",
            "False",
        ),
        # The span "The suitcase." is not in the text; wsc.fixed repairs it to "the suitcase".
        (
            "wsc text: The trophy does not fit into * the suitcase * because # it # is too small.",
            "True",
        ),
    ],
    ("super_glue_wsc_v102", "test"): [
        ("wsc text: * The fish * ate the worm because # it # was hungry.", "<unk>")
    ],
    ("super_glue_wsc_v102_simple_train", "train"): [
        # Only examples whose candidate is the referent are kept for training.
        ("wsc: The trophy does not fit into the suitcase because *it* is too large.", "trophy"),
        (
            "wsc: The trophy does not fit into the suitcase because *it* is too small.",
            "the suitcase",
        ),
    ],
    ("super_glue_wsc_v102_simple_eval", "validation"): [
        ("wsc: Joan thanked Susan for all the help *she* had given.", "Susan"),
        (
            "wsc: The city councilmen refused the demonstrators a permit because *they* feared violence.",
            "the demonstrators",
        ),
    ],
    ("super_glue_wsc_v102_simple_eval", "test"): [
        ("wsc: The fish ate the worm because *it* was hungry.", "The fish")
    ],
    ("super_glue_axb_v102", "test"): [
        (
            "rte hypothesis: The cat did not sit on the mat. premise: The cat sat on the mat.",
            "not_entailment",
        ),
        (
            "rte hypothesis: Some student passed the exam. premise: Every student passed the exam.",
            "entailment",
        ),
    ],
    ("super_glue_axg_v102", "test"): [
        (
            "rte hypothesis: The nurse was tired. premise: The nurse told the patient that she was tired.",
            "entailment",
        ),
        (
            "rte hypothesis: The patient was tired. premise: The nurse told the patient that she was tired.",
            "not_entailment",
        ),
    ],
}
# The split each family's variants are checked on.
VARIANT_SPLITS = {
    name: split
    for name, split in EXPECTED
    if split == "validation" or name in ("super_glue_axb_v102", "super_glue_axg_v102")
} | {"super_glue_wsc_v102_simple_train": "train"}


@pytest.fixture(scope="module", autouse=True)
def original_files():
    with raw_files(DATA):
        yield


@pytest.mark.parametrize(("name", "split"), list(EXPECTED))
def test_t5_format(name, split, vocab):
    examples = run_task(name, split)
    assert texts(examples) == EXPECTED[name, split]
    check_tokens(examples, EXPECTED[name, split], vocab, sentinel=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(VARIANT_SPLITS))
def test_taskless_and_sentinel_variants(name, vocab):
    split = VARIANT_SPLITS[name]
    check_variants(name, split, EXPECTED[name, split], vocab)


def test_multirc_metrics_group_answers_by_question():
    examples = run_task("super_glue_multirc_v102", "validation")
    assert [(int(e["idx/paragraph"]), int(e["idx/question"])) for e in examples] == [
        (0, 0),
        (0, 0),
        (0, 1),
        (0, 1),
    ]
    # Question 0 fully right; question 1 wrong on its second option; one unparseable answer.
    metrics = score("super_glue_multirc_v102", examples, ["True", "False", "True", "True"])
    # Answers: TP=2, FP=1, FN=0 -> F1a = 4/5; exact match: 1 of 2 questions.
    assert metrics == pytest.approx({"f1a": 80.0, "exact_match": 50.0})
    metrics = score("super_glue_multirc_v102", examples, ["True", "maybe", "True", "False"])
    # "maybe" is invalid: counted as the wrong class (a false positive here).
    assert metrics == pytest.approx({"f1a": 80.0, "exact_match": 50.0})


def test_record_metrics_score_each_query_once_against_its_best_answer():
    examples = run_task("super_glue_record_v102", "validation")
    assert [a.decode() for a in examples[0]["answers"]] == ["Lisboa", "Lisbon"]
    # The duplicate example of query 0 is ignored, whatever it predicts.
    metrics = score(
        "super_glue_record_v102", examples, ["Lisbon.", "nonsense", "Porto observatory"]
    )
    # Query 0: EM 1 (matches "Lisbon" after normalisation); query 1: EM 0, F1 2/3.
    assert metrics == pytest.approx({"em": 50.0, "f1": 100 * (1 + 2 / 3) / 2})


def test_wsc_simple_metrics_compare_referent_with_label():
    examples = run_task("super_glue_wsc_v102_simple_eval", "validation")
    assert [int(e["label"]) for e in examples] == [1, 0]
    # Naming the candidate is right when it is the referent (label 1) and wrong otherwise.
    assert score("super_glue_wsc_v102_simple_eval", examples, ["susan", "The demonstrators"]) == {
        "accuracy": 50.0
    }
    assert score("super_glue_wsc_v102_simple_eval", examples, ["Joan", "the city councilmen"]) == {
        "accuracy": 50.0
    }
    assert score("super_glue_wsc_v102_simple_eval", examples, ["Susan", "councilmen"]) == {
        "accuracy": 100.0
    }


def test_cb_reports_macro_f1_and_accuracy():
    examples = run_task("super_glue_cb_v102", "validation")
    metrics = score("super_glue_cb_v102", examples, ["contradiction", "entailment", "entailment"])
    # contradiction F1 1, neutral F1 0, entailment F1 2/3 (TP 1, FP 1).
    assert metrics == pytest.approx(
        {"macro_f1": 100 * (1 + 0 + 2 / 3) / 3, "accuracy": 100 * 2 / 3}
    )


def test_sentinel_variant_strips_the_sentinel_before_scoring():
    examples = run_task("super_glue_rte_v102_sentinel", "validation")
    metrics = score(
        "super_glue_rte_v102_sentinel",
        examples,
        ["<extra_id_0> entailment", "<extra_id_0> entailment"],
    )
    assert metrics == {"accuracy": 50.0}

"""GLUE tasks end to end on small files in the GLUE download's TSV layout.

Expected strings are written by hand from T5's definition of each format.
"""

import pytest
from tasks_helpers import DATA, check_tokens, check_variants, raw_files, run_task, score, texts

import prompt_tuning.tasks  # noqa: F401  (registers the tasks)

EXPECTED = {
    ("glue_cola_v002", "validation"): [
        (
            "cola sentence: Our friends won't buy this analysis, let alone the next one we propose.",
            "acceptable",
        ),
        ("cola sentence: They drank the pub dry the.", "unacceptable"),
    ],
    ("glue_cola_v002", "train"): [
        ("cola sentence: The sailors rode the breeze clear of the rocks.", "acceptable"),
        ("cola sentence: The more books I read the more I like books reading.", "unacceptable"),
    ],
    ("glue_cola_v002", "test"): [("cola sentence: Bill whistled past the house.", "<unk>")],
    ("glue_sst2_v002", "validation"): [
        # SST-2 sentences end in a space; T5 keeps it.
        ("sst2 sentence: it 's a charming and often affecting journey . ", "positive"),
        ("sst2 sentence: unflinchingly bleak and desperate ", "negative"),
    ],
    ("glue_mrpc_v002", "validation"): [
        (
            "mrpc sentence1: He said the vote would take place on Friday. "
            "sentence2: The vote will happen on Friday, he said.",
            "equivalent",
        ),
        (
            "mrpc sentence1: Shares fell 3 percent in early trading. "
            "sentence2: The firm hired a new chief executive.",
            "not_equivalent",
        ),
    ],
    ("glue_mrpc_v002", "test"): [
        (
            "mrpc sentence1: The train was delayed by snow. sentence2: Snow delayed the train.",
            "<unk>",
        )
    ],
    ("glue_qqp_v002", "validation"): [
        (
            "qqp question1: How can I improve my handwriting? "
            "question2: What are ways to get better handwriting?",
            "duplicate",
        ),
        # The broken row between these two (no second question, no label) is skipped.
        (
            "qqp question1: Is coffee bad for you? question2: Which city has the most bridges?",
            "not_duplicate",
        ),
    ],
    ("glue_stsb_v002", "validation"): [
        # 4.75 and 0.333 round to the nearest 0.2: 4.8 and 0.4.
        (
            "stsb sentence1: A man with a hard hat is dancing. "
            "sentence2: A man wearing a hard hat is dancing.",
            "4.8",
        ),
        ("stsb sentence1: A woman is slicing an onion. sentence2: A man is riding a horse.", "0.4"),
    ],
    ("glue_stsb_v002", "train"): [
        ("stsb sentence1: A plane is taking off. sentence2: An air plane is taking off.", "5.0"),
        (
            "stsb sentence1: A man is playing a flute. sentence2: A man is playing a bamboo flute.",
            "3.8",
        ),
    ],
    ("glue_mnli_v002", "validation_matched"): [
        (
            "mnli hypothesis: The meeting is on Thursday now. premise: The meeting was moved to Thursday.",
            "entailment",
        ),
        ("mnli hypothesis: He works at a bakery. premise: He owns two cats.", "neutral"),
    ],
    ("glue_mnli_v002", "validation_mismatched"): [
        (
            "mnli hypothesis: The report came out before 2010. premise: The report was published in 2020.",
            "contradiction",
        ),
        (
            "mnli hypothesis: We could not fly as planned. premise: Our flight was cancelled.",
            "entailment",
        ),
    ],
    ("glue_mnli_v002", "test_matched"): [
        ("mnli hypothesis: Maps can be bought at the shop. premise: The shop sells maps.", "<unk>")
    ],
    ("glue_mnli_v002", "test_mismatched"): [
        (
            "mnli hypothesis: The river was warm in January. premise: The river froze in January.",
            "<unk>",
        )
    ],
    ("glue_qnli_v002", "validation"): [
        (
            "qnli question: What is the capital of Peru? sentence: Lima is the capital of Peru.",
            "entailment",
        ),
        (
            "qnli question: How tall is the statue? sentence: The statue faces the harbour.",
            "not_entailment",
        ),
    ],
    ("glue_rte_v002", "validation"): [
        (
            "rte sentence1: The orchestra toured Japan in 1998. sentence2: The orchestra visited Japan.",
            "entailment",
        ),
        (
            "rte sentence1: The new law takes effect in May. sentence2: The law was repealed.",
            "not_entailment",
        ),
    ],
    ("glue_wnli_v002", "validation"): [
        (
            "wnli sentence1: John couldn't lift his son because he was so weak. sentence2: John was so weak.",
            "entailment",
        ),
        (
            "wnli sentence1: The ball hit the window and it shattered. sentence2: The ball shattered.",
            "not_entailment",
        ),
    ],
    ("glue_ax_v002", "test"): [
        (
            "mnli hypothesis: The cat did not sit on the mat. premise: The cat sat on the mat.",
            "<unk>",
        ),
        ("mnli hypothesis: Some dog barked. premise: Every dog barked.", "<unk>"),
    ],
}
VARIANT_SPLITS = {
    "glue_cola_v002": "validation",
    "glue_sst2_v002": "validation",
    "glue_mrpc_v002": "validation",
    "glue_qqp_v002": "validation",
    "glue_stsb_v002": "validation",
    "glue_mnli_v002": "validation_matched",
    "glue_qnli_v002": "validation",
    "glue_rte_v002": "validation",
    "glue_wnli_v002": "validation",
    "glue_ax_v002": "test",
}


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


def test_idx_is_the_row_number_in_the_file():
    # Row 1 of QQP's dev file is broken and skipped; the next row keeps index 2.
    assert [int(e["idx"]) for e in run_task("glue_qqp_v002", "validation")] == [0, 2]


def test_mrpc_reports_f1_and_accuracy():
    examples = run_task("glue_mrpc_v002", "validation")
    # Targets [1, 0]; predictions [1, 1]: TP 1, FP 1 -> F1 2/3.
    assert score("glue_mrpc_v002", examples, ["equivalent", "equivalent"]) == pytest.approx(
        {"f1": 100 * 2 / 3, "accuracy": 50.0}
    )


def test_cola_reports_matthews_correlation():
    examples = run_task("glue_cola_v002", "validation")
    assert score("glue_cola_v002", examples, ["acceptable", "unacceptable"]) == pytest.approx(
        {"matthews_corrcoef": 100.0}
    )
    assert score("glue_cola_v002", examples, ["unacceptable", "acceptable"]) == pytest.approx(
        {"matthews_corrcoef": -100.0}
    )


def test_stsb_reports_correlations_of_the_scores():
    examples = run_task("glue_stsb_v002", "validation")
    # Two points: any increasing pair of predictions correlates perfectly with [4.8, 0.4].
    metrics = score("glue_stsb_v002", examples, ["3.0", "1.0"])
    assert metrics == pytest.approx({"pearson_corrcoef": 100.0, "spearman_corrcoef": 100.0})

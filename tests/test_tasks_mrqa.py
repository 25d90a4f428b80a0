"""MRQA tasks end to end on small files in the MRQA release format (`.jsonl.gz`).

Each test file holds one paragraph about a made-up bridge (named after the
dataset, e.g. "SQuADDev") with two questions; expected strings follow T5's
SQuAD format: punctuation padded with spaces, "question: ... context: ...".
"""

import pytest
import seqio
from tasks_helpers import (
    DATA,
    check_tokens,
    check_variants,
    make_release_root,
    raw_files,
    run_task,
    score,
    texts,
)

import prompt_tuning.tasks  # noqa: F401  (registers the tasks)

# config -> (dataset name in the file header, position, river)
FILES = {
    "squad": ("SQuAD", 0, "Vell"),
    "news_qa": ("NewsQA", 1, "Orm"),
    "trivia_qa": ("TriviaQA", 2, "Tarn"),
    "search_qa": ("SearchQA", 3, "Ebble"),
    "hotpot_qa": ("HotpotQA", 4, "Wenn"),
    "natural_questions": ("NaturalQuestionsShort", 5, "Lyde"),
    "bio_asq": ("BioASQ", 6, "Corran"),
    "drop": ("DROP", 7, "Isk"),
    "duo_rc": ("DuoRC", 8, "Dove"),
    "race": ("RACE", 9, "Brue"),
    "relation_extraction": ("RelationExtraction", 10, "Camel"),
    "textbook_qa": ("TextbookQA", 11, "Fal"),
}
IN_DOMAIN = ("squad", "news_qa", "trivia_qa", "search_qa", "hotpot_qa", "natural_questions")


def expected(config, split):
    header, position, river = FILES[config]
    bridge = header + ("Dev" if split == "validation" else "Train")
    year = 1900 + 7 * position + (0 if split == "validation" else 3)
    context = f"context: The {bridge} Bridge , opened in {year} , spans the {river} River near Aston ' s mill . "
    return [
        (f"question: When did the {bridge} Bridge open ? {context}", str(year)),
        (f"question: Which river does the {bridge} Bridge span ? {context}", f"the {river} River"),
    ]


CASES = [(c, "validation") for c in FILES] + [(c, "train") for c in IN_DOMAIN]


@pytest.fixture(scope="module", autouse=True)
def release_files(tmp_path_factory):
    with raw_files(make_release_root(tmp_path_factory.mktemp("release"))):
        yield


@pytest.mark.parametrize(("config", "split"), CASES)
def test_t5_squad_format(config, split, vocab):
    examples = run_task(f"mrqa_{config}_v100", split)
    assert texts(examples) == expected(config, split)
    check_tokens(examples, expected(config, split), vocab, sentinel=False)


@pytest.mark.slow
@pytest.mark.parametrize("config", sorted(FILES))
def test_taskless_and_sentinel_variants(config, vocab):
    # No task-name word to drop: the taskless variants read like the plain ones.
    check_variants(
        f"mrqa_{config}_v100",
        "validation",
        expected(config, "validation"),
        vocab,
        task_prefix=False,
    )


def test_out_of_domain_sets_have_only_validation():
    for config in FILES:
        task = seqio.get_mixture_or_task(f"mrqa_{config}_v100")
        want = ("validation", "train") if config in IN_DOMAIN else ("validation",)
        assert sorted(task.splits) == sorted(want)


def test_answers_are_padded_like_the_context_and_all_kept():
    examples = run_task("mrqa_squad_v100", "validation")
    assert [a.decode() for a in examples[0]["answers"]] == ["1900", "in 1900"]


def test_squad_metrics_use_every_answer():
    examples = run_task("mrqa_squad_v100", "validation")
    # "In 1900." matches the second answer after normalisation; "Vell" shares one
    # of the two tokens of "Vell River" (precision 1, recall 1/2).
    metrics = score("mrqa_squad_v100", examples, ["In 1900.", "Vell"])
    assert metrics == pytest.approx({"em": 50.0, "f1": 100 * (1 + 2 / 3) / 2})


def test_gunzipped_files_are_read_too(vocab):
    with raw_files(DATA):
        examples = run_task("mrqa_drop_v100", "validation")
    assert texts(examples) == expected("drop", "validation")

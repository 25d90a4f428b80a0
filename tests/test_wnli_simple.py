"""T5's WNLI "simple" heuristic on single pairs (the t5 comparison is in test_tasks_t5_reference.py)."""

import pytest

from prompt_tuning.data.wnli_simple import NoPronounError, format_pair


@pytest.mark.parametrize(
    ("premise", "hypothesis", "expected"),
    [
        (
            "The trophy doesn't fit into the brown suitcase because it is too large.",
            "The trophy is too large.",
            (
                "wsc: The trophy doesn't fit into the brown suitcase because *it* is too large.",
                "The trophy",
            ),
        ),
        # The first of two equally good pronouns; the candidate as the hypothesis writes it.
        (
            "Zoë thanked Mrs. Müller because she had helped her.",
            "Mrs. Müller had helped Zoë.",
            ("wsc: Zoë thanked Mrs. Müller because *she* had helped her.", "Mrs. Müller"),
        ),
        # The pronoun with the longer overlap wins; final punctuation stays outside the marks.
        (
            "Tom's dog bit Bill because he teased it.",
            "Bill teased it.",
            ("wsc: Tom's dog bit Bill because *he* teased it.", "Bill"),
        ),
        (
            "The cat saw Sam and ran to him.",
            "The cat ran to Sam.",
            ("wsc: The cat saw Sam and ran to *him* .", "Sam"),
        ),
    ],
)
def test_pairs(premise, hypothesis, expected):
    assert format_pair(premise, hypothesis) == expected


def test_a_premise_without_a_pronoun_is_refused_by_name():
    with pytest.raises(NoPronounError, match="has no pronoun"):
        format_pair("Cats sleep.", "Cats sleep.")

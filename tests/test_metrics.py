"""Metrics against values worked out by hand."""

import math

import numpy as np
import pytest

from prompt_tuning.data import metrics


def test_accuracy():
    assert metrics.accuracy([0, 1, 1, 0], [0, 1, 0, 0]) == {"accuracy": 75.0}


def test_binary_f1_flips_invalid_predictions_to_the_wrong_class():
    # targets 1 1 0 0 ; predictions 1 -1 1 0 -> the -1 becomes 0 (a miss): TP 1, FP 1, FN 1.
    assert metrics.f1_with_invalid([1, 1, 0, 0], [1, -1, 1, 0]) == pytest.approx({"f1": 50.0})
    # An invalid prediction on a negative becomes a false positive: TP 1, FP 1, FN 0.
    assert metrics.f1_with_invalid([1, 0], [1, -1]) == pytest.approx({"f1": 100 * 2 / 3})
    # No positives anywhere: F1 is 0, not a division error.
    assert metrics.f1_with_invalid([0, 0], [0, 0]) == {"f1": 0.0}


def test_macro_f1_averages_classes_with_equal_weight():
    # CB-like: class 0: TP 2, FP 1, FN 0 -> 0.8 ; class 1: TP 0, FP 0, FN 1 -> 0 ;
    # class 2: TP 1, FP 0, FN 1 -> 2/3 ; the -1 is a miss for its class only.
    targets = [0, 0, 1, 2, 2]
    predictions = [0, 0, 0, 2, -1]
    got = metrics.macro_f1(3)(targets, predictions)
    assert got == pytest.approx({"macro_f1": 100 * (0.8 + 0 + 2 / 3) / 3})


def test_matthews_correlation_binary():
    # TP 2, TN 1, FP 1, FN 1: (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6.
    targets = [1, 1, 1, 0, 0]
    predictions = [1, 1, 0, 1, 0]
    assert metrics.matthews_corrcoef(targets, predictions) == pytest.approx(
        {"matthews_corrcoef": 100 / 6}
    )


def test_matthews_correlation_degenerate_is_zero():
    assert metrics.matthews_corrcoef([1, 0, 1], [1, 1, 1]) == {"matthews_corrcoef": 0.0}


def test_matthews_correlation_counts_invalid_as_its_own_class():
    # Perfectly anti-correlated apart from one unparseable answer.
    value = metrics.matthews_corrcoef([1, 0, 1, 0], [0, 1, 0, -1])["matthews_corrcoef"]
    assert value < 0


def test_pearson_and_spearman():
    targets = [1.0, 2.0, 3.0, 4.0]
    predictions = [1.0, 3.0, 2.0, 4.0]
    # Pearson: deviations (-1.5,-.5,.5,1.5) and (-1.5,.5,-.5,1.5): 4 / 5.
    assert metrics.pearson_corrcoef(targets, predictions) == pytest.approx(
        {"pearson_corrcoef": 80.0}
    )
    # Ranks equal the values here, so Spearman equals Pearson.
    assert metrics.spearman_corrcoef(targets, predictions) == pytest.approx(
        {"spearman_corrcoef": 80.0}
    )
    # Spearman only sees order: a monotone transform keeps 100.
    assert metrics.spearman_corrcoef([1, 2, 3], [1, 10, 1000]) == pytest.approx(
        {"spearman_corrcoef": 100.0}
    )


def test_spearman_ties_share_their_average_rank():
    np.testing.assert_array_equal(metrics.average_ranks([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
    # Targets ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): deviations (-1.5,0,0,1.5) and
    # (-1.5,-.5,.5,1.5): 4.5 / sqrt(4.5 * 5).
    got = metrics.spearman_corrcoef([1, 2, 2, 3], [1, 2, 3, 4])["spearman_corrcoef"]
    assert got == pytest.approx(100 * 4.5 / math.sqrt(4.5 * 5))


def test_squad_normalisation_drops_case_punctuation_and_articles():
    assert metrics.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert metrics.normalize_answer("an Apple a day, the end.") == "apple day end"
    # Articles are removed as words only.
    assert metrics.normalize_answer("Theatre and anthem") == "theatre and anthem"


def test_squad_takes_the_best_reference_answer():
    targets = [["the Eiffel Tower", "Eiffel Tower in Paris"], ["1931"]]
    predictions = ["Eiffel tower.", "in 1931"]
    # Example 1: EM 1 (first answer). Example 2: EM 0; F1 tokens {in,1931} vs {1931}:
    # precision 1/2, recall 1 -> 2/3.
    assert metrics.squad(targets, predictions) == pytest.approx(
        {"em": 50.0, "f1": 100 * (1 + 2 / 3) / 2}
    )


def test_squad_f1_counts_repeated_tokens_once_each():
    # prediction "paris paris" vs "paris": overlap 1, precision 1/2, recall 1.
    assert metrics.token_f1("Paris Paris", "Paris") == pytest.approx(2 / 3)
    assert metrics.token_f1("London", "Paris") == 0.0


def test_record_scores_each_query_once_with_max_over_answers():
    targets = [
        {"group": (0, 0), "answers": ["Lisbon", "Lisboa"]},
        {"group": (0, 0), "answers": ["Lisbon", "Lisboa"]},  # duplicate for the second answer
        {"group": (0, 1), "answers": ["Porto"]},
        {"group": (1, 0), "answers": ["the city of Porto", "Porto city"]},
    ]
    predictions = ["lisboa", "wrong", "Lisbon", "Porto"]
    # Query (0,0): EM 1. Query (0,1): EM 0, F1 0. Query (1,0): EM 0; best F1 against
    # "porto city" ({porto} vs {porto, city}: P 1, R 1/2 -> 2/3) beats "city of porto" (1/2).
    assert metrics.record(targets, predictions) == pytest.approx(
        {"em": 100 / 3, "f1": 100 * (1 + 0 + 2 / 3) / 3}
    )


def test_multirc_groups_answer_options_by_question():
    targets = [
        {"value": 1, "group": (0, 0)},
        {"value": 0, "group": (0, 0)},
        {"value": 1, "group": (0, 1)},
        {"value": 1, "group": (1, 0)},
        {"value": 0, "group": (1, 0)},
    ]
    predictions = [{"value": v} for v in (1, 0, 0, 1, 1)]
    # All options: TP 2, FP 1, FN 1 -> F1a 2/3. Questions: (0,0) right, (0,1) wrong,
    # (1,0) wrong -> EM 1/3.
    assert metrics.multirc(targets, predictions) == pytest.approx(
        {"f1a": 100 * 2 / 3, "exact_match": 100 / 3}
    )


def test_question_ids_repeat_across_paragraphs_without_merging():
    targets = [{"value": 1, "group": (0, 0)}, {"value": 1, "group": (1, 0)}]
    predictions = [{"value": 1}, {"value": 0}]
    assert metrics.multirc(targets, predictions)["exact_match"] == 50.0


def test_mismatched_lengths_and_empty_inputs_are_errors():
    with pytest.raises(ValueError, match="2 targets but 1 predictions"):
        metrics.accuracy([0, 1], [0])
    with pytest.raises(ValueError, match="at least one example"):
        metrics.accuracy([], [])
    with pytest.raises(ValueError, match="No reference answers"):
        metrics.squad([[]], ["x"])

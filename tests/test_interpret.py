"""Nearest-token reading of prompts."""

import numpy as np
import pytest

from prompt_tuning import interpret


def test_nearest_tokens_by_cosine_not_dot_product():
    embedding = np.array([[1.0, 0.0], [10.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    prompt = np.array([[2.0, -0.1], [0.0, -3.0]])
    ids, sims = interpret.nearest_tokens(prompt, embedding, k=2)
    # Row 1 of the table has the larger dot product with prompt row 0, but row 0 the larger cosine.
    assert ids[0].tolist() == [0, 1]
    assert ids[1, 0] in (0, 3) and sims[1, 0] == pytest.approx(0.0)
    np.testing.assert_allclose(sims[0, 0], 2.0 / np.hypot(2.0, 0.1))


def test_a_prompt_made_of_embeddings_finds_them():
    rng = np.random.default_rng(0)
    embedding = rng.normal(size=(500, 16))
    rows = [7, 123, 400]
    ids, sims = interpret.nearest_tokens(embedding[rows] * 3.0, embedding, k=1)
    assert ids[:, 0].tolist() == rows
    np.testing.assert_allclose(sims[:, 0], 1.0, rtol=1e-6)


def test_label_persistence_lists_positions_per_label():
    neighbours = np.array([[5, 9], [1, 2], [9, 3]])
    assert interpret.label_persistence(neighbours, [[9], [2, 7]]) == {0: [0, 2], 1: [1]}


def test_width_mismatch_is_an_error():
    with pytest.raises(ValueError, match="width 3 differs"):
        interpret.nearest_tokens(np.zeros((2, 3)), np.zeros((4, 5)))

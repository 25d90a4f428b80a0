"""Prompt initialisers and how a prompt joins the embedded input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prompt_tuning import prompts


@pytest.fixture(scope="module")
def embedding():
    return np.asarray(jax.random.normal(jax.random.key(0), (32128, 16)), np.float32)


def test_random_uniform_range_and_scale():
    prompt = prompts.random_uniform(0.5)(jax.random.key(1), (100, 64))
    assert prompt.shape == (100, 64)
    assert float(prompt.min()) >= -0.5 and float(prompt.max()) <= 0.5
    # A uniform on [-0.5, 0.5] has std 1/sqrt(12) ~ 0.289.
    assert abs(float(prompt.std()) - 12**-0.5) < 0.02


def test_sampled_vocab_rows_come_from_frequent_tokens(embedding):
    prompt = np.asarray(prompts.sampled_vocab(embedding, 5000)(jax.random.key(2), (50, 16)))
    frequent = embedding[:5000]
    for row in prompt:
        matches = np.where((frequent == row).all(axis=1))[0]
        assert len(matches) == 1
    # Without replacement: 50 distinct rows.
    assert len({row.tobytes() for row in prompt}) == 50


def test_class_label_rows_are_mean_subtoken_embeddings(embedding, vocab):
    labels = ["entailment", "not_entailment"]
    ids = [list(vocab.encode(label)) for label in labels]
    assert len(ids[1]) > 1, "not_entailment should split into several sub-tokens"
    prompt = np.asarray(prompts.class_labels(embedding, ids)(jax.random.key(3), (10, 16)))
    for row, token_ids in enumerate(ids):
        np.testing.assert_allclose(prompt[row], embedding[token_ids].mean(axis=0), rtol=1e-6)
    rest = embedding[:5000]
    for row in prompt[2:]:
        assert (rest == row).all(axis=1).any()


def test_class_labels_longer_than_prompt_keeps_the_labels_that_fit(embedding):
    prompt = np.asarray(
        prompts.class_labels(embedding, [[5], [6], [7]])(jax.random.key(0), (2, 16))
    )
    np.testing.assert_array_equal(prompt, embedding[[5, 6]])


def test_from_text_repeats_and_cuts(embedding, vocab):
    ids = list(vocab.encode("Classify the sentiment"))
    long = np.asarray(prompts.from_text(embedding, ids)(jax.random.key(0), (2 * len(ids) + 1, 16)))
    np.testing.assert_array_equal(long[: len(ids)], embedding[ids])
    np.testing.assert_array_equal(long[len(ids) : 2 * len(ids)], embedding[ids])
    np.testing.assert_array_equal(long[-1], embedding[ids[0]])
    short = np.asarray(prompts.from_text(embedding, ids)(jax.random.key(0), (2, 16)))
    np.testing.assert_array_equal(short, embedding[ids[:2]])


def test_from_file_loads_the_authors_prompts(fixtures_dir):
    for task in ("sst2", "mrpc", "rte"):
        path = fixtures_dir / "pretrained_prompts" / f"{task}.npy"
        prompt = prompts.from_file(path)(jax.random.key(0), (100, 768))
        np.testing.assert_array_equal(np.asarray(prompt), np.load(path))


def test_from_file_rejects_wrong_width_naming_both_shapes(fixtures_dir):
    path = fixtures_dir / "pretrained_prompts" / "rte.npy"
    with pytest.raises(ValueError, match=r"\(100, 768\).*\(100, 512\)"):
        prompts.from_file(path)(jax.random.key(0), (100, 512))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (np.zeros((3, 4, 5), np.float32), "2-D float"),
        (np.zeros((3, 4), np.int32), "2-D float"),
        (np.array([[0.0, np.nan]], np.float32), "NaN or Inf"),
    ],
)
def test_load_prompt_rejects_bad_arrays(tmp_path, content, message):
    path = tmp_path / "bad.npy"
    np.save(path, content)
    with pytest.raises(ValueError, match=message):
        prompts.load_prompt(path)


def test_load_prompt_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prompts.load_prompt(tmp_path / "nope.npy")


def _toy_inputs():
    embedded = jnp.arange(2 * 4 * 3, dtype=jnp.float32).reshape(2, 4, 3) + 1
    mask = jnp.array([[1, 1, 0, 0], [1, 1, 1, 1]])
    prompt = -jnp.arange(1, 7, dtype=jnp.float32).reshape(2, 3)
    return embedded, mask, prompt


def test_combine_prefix():
    embedded, mask, prompt = _toy_inputs()
    out, out_mask = prompts.combine(embedded, mask, prompt, "prefix")
    np.testing.assert_array_equal(out[:, :2], jnp.broadcast_to(prompt, (2, 2, 3)))
    np.testing.assert_array_equal(out[:, 2:], embedded)
    np.testing.assert_array_equal(out_mask, [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])


def test_combine_after_bos_keeps_first_token_first():
    embedded, mask, prompt = _toy_inputs()
    out, out_mask = prompts.combine(embedded, mask, prompt, "prefix_after_bos")
    np.testing.assert_array_equal(out[:, 0], embedded[:, 0])
    np.testing.assert_array_equal(out[:, 1:3], jnp.broadcast_to(prompt, (2, 2, 3)))
    np.testing.assert_array_equal(out[:, 3:], embedded[:, 1:])
    np.testing.assert_array_equal(out_mask[0], [1, 1, 1, 1, 0, 0])


def test_combine_suffix_follows_each_examples_last_token():
    embedded, mask, prompt = _toy_inputs()
    out, out_mask = prompts.combine(embedded, mask, prompt, "suffix")
    # Example 0 has 2 real tokens: tokens, prompt, then its padding.
    np.testing.assert_array_equal(out[0, :2], embedded[0, :2])
    np.testing.assert_array_equal(out[0, 2:4], prompt)
    np.testing.assert_array_equal(out[0, 4:], embedded[0, 2:])
    np.testing.assert_array_equal(out[1, 4:], prompt)
    np.testing.assert_array_equal(out_mask, [[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])


def test_combine_per_example_prompts():
    embedded, mask, prompt = _toy_inputs()
    per_example = jnp.stack([prompt, prompt * 10])
    out, _ = prompts.combine(embedded, mask, per_example, "prefix")
    np.testing.assert_array_equal(out[1, :2], prompt * 10)
    with pytest.raises(ValueError, match=r"\[batch=2, P, d\]"):
        prompts.combine(embedded, mask, jnp.stack([prompt] * 3), "prefix")

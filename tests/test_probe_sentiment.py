"""scripts/probe_sentiment.py: the ridge probe and the masked mean pooling it relies on."""

from __future__ import annotations

import pathlib

import jax
import numpy as np
import pytest

from prompt_tuning import checkpoints
from prompt_tuning.models import T5, get_config, init_params


@pytest.fixture
def probe(monkeypatch):
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "scripts"))
    import probe_sentiment

    return probe_sentiment


def test_ridge_reads_a_linear_signal_and_not_noise(probe):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 16))
    y = x[:, 3] - 0.5 * x[:, 7] > 0
    assert probe.ridge_accuracy(x[:400], y[:400], x[400:], y[400:], 1.0) > 0.9
    noise = rng.random(600) > 0.5
    assert abs(probe.ridge_accuracy(x[:400], noise[:400], x[400:], noise[400:], 1.0) - 0.5) < 0.1


def test_pooling_ignores_padding(probe):
    config = get_config("t5_1_1_tiny", vocab_size=64, num_encoder_layers=1, num_decoder_layers=1)
    params = init_params(config, jax.random.key(0))
    model = T5(config)
    tokens = np.array([[5, 6, 7, 0, 0], [5, 6, 7, 8, 9]], np.int32)
    embedded = probe.pooled_features(model, params, tokens, embeddings=True)
    table = np.asarray(params["token_embedder"]["embedding"], np.float32)
    np.testing.assert_allclose(embedded[0], table[[5, 6, 7]].mean(0), rtol=1e-6)
    encoded = probe.pooled_features(model, params, tokens)
    short = probe.pooled_features(model, params, tokens[:1, :3])
    # Padding is masked as keys and left out of the mean, so it changes nothing.
    np.testing.assert_allclose(encoded[0], short[0], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_cli_prints_the_probe_on_the_bundled_task(probe, tmp_path, capsys):
    config = get_config("t5_1_1_tiny", num_encoder_layers=1, num_decoder_layers=1)
    path = checkpoints.save_t5x(init_params(config, jax.random.key(0)), tmp_path, step=0)
    probe.main([path, "--train_examples", "200", "--eval_examples", "100"])
    out = capsys.readouterr().out
    assert "majority class" in out and out.count("validation accuracy") == len(
        probe.RIDGE_STRENGTHS
    )

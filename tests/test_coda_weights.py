"""scripts/coda_weights.py: a saved pool's component weights, per task."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from prompt_tuning.methods import coda_prompt


@pytest.fixture
def script(monkeypatch):
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "scripts"))
    import coda_weights

    return coda_weights


def test_prints_each_components_weight_for_each_task(script, tmp_path, capsys):
    """One row per task, one cell per component, each the mean of the method's weights."""
    d = 128  # the classes model's width
    rng = np.random.default_rng(0)
    pool = tmp_path / "pool.npz"
    keys = np.stack([np.ones(d), rng.normal(size=d)]).astype(np.float32)
    np.savez(
        pool,
        coda_components=rng.normal(size=(2, 3, d)).astype(np.float32),
        coda_keys=keys,
        coda_attention=np.ones((2, d), np.float32),
    )
    script.main([str(pool), "--tasks", "movie_sentiment,spam_email", "--examples", "4"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("2 components")
    assert [line.split(":")[0] for line in lines[1:]] == ["movie_sentiment", "spam_email"]
    for line in lines[1:]:
        means = [float(cell.split(" (")[0]) for cell in line.split(": ", 1)[1].split("  ")]
        assert len(means) == 2 and all(-1 <= m <= 1 for m in means)
    # The printed means are the method's own weights for those inputs.
    from prompt_tuning import checkpoints
    from prompt_tuning.methods.query import pooled_query
    from prompt_tuning.models import T5

    config, params = checkpoints.load(checkpoints.shipped_checkpoint("t5_tiny_multitask_classes"))
    query = pooled_query(T5(config), params, script.encoder_inputs("spam_email", 4, 64))
    alpha = np.asarray(coda_prompt.weights(keys, np.ones((2, d), np.float32), query))
    printed = [float(cell.split(" (")[0]) for cell in lines[2].split(": ", 1)[1].split("  ")]
    np.testing.assert_allclose(printed, alpha.mean(0), atol=0.005 + 1e-6)

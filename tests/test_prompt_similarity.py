"""SPoT's prompt similarity: the measures, the ranking, and the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from prompt_tuning import prompt_similarity


def test_measures_on_hand_computed_prompts():
    target = np.array([[1.0, 0.0], [0.0, 1.0]])  # mean (0.5, 0.5)
    source = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])  # mean (2/3, 2/3)
    assert prompt_similarity.average_tokens(target, source) == pytest.approx(1.0)
    # Pair cosines: rows of target x rows of source = [[1, 1, 0], [0, 0, 1]] -> mean 1/2.
    assert prompt_similarity.per_token_average(target, source) == pytest.approx(0.5)
    opposite = -target
    assert prompt_similarity.average_tokens(target, opposite) == pytest.approx(-1.0)


def test_rank_puts_the_closest_source_first():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(6, 8))
    sources = {
        "noisy copy": target + 0.1 * rng.normal(size=(6, 8)),
        "unrelated": rng.normal(size=(4, 8)),
        "negated": -target,
    }
    for metric in prompt_similarity.METRICS:
        names = [name for name, _ in prompt_similarity.rank_sources(target, sources, metric)]
        assert names[0] == "noisy copy" and names[-1] == "negated", (metric, names)


def test_cli_prints_the_ranking_and_refuses_other_widths(tmp_path, capsys):
    rng = np.random.default_rng(1)
    target = rng.normal(size=(3, 4)).astype(np.float32)
    np.save(tmp_path / "t.npy", target)
    np.save(tmp_path / "close.npy", target * 2)
    np.save(tmp_path / "far.npy", -target)
    argv = ["--target", str(tmp_path / "t.npy"), "--sources"]
    assert (
        prompt_similarity.main([*argv, str(tmp_path / "far.npy"), str(tmp_path / "close.npy")]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("close.npy") and lines[0].startswith("+1.0000")
    np.save(tmp_path / "wide.npy", np.ones((3, 5), np.float32))
    with pytest.raises(SystemExit, match=r"wide.npy has width 5; the target's is 4"):
        prompt_similarity.main([*argv, str(tmp_path / "wide.npy")])

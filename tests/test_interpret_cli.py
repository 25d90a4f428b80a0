"""`python -m prompt_tuning.interpret`: nearest tokens of each prompt row and label persistence."""

from __future__ import annotations

import numpy as np
import pytest
import tiny

from prompt_tuning import checkpoints, interpret
from prompt_tuning.data import t5_vocabulary


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))


def test_rows_built_from_label_embeddings_find_their_labels(checkpoint, tmp_path, capsys):
    vocabulary = t5_vocabulary()
    (negative,), (positive,) = vocabulary.encode("negative"), vocabulary.encode("positive")
    _, params = checkpoints.load(checkpoint)
    embedding = np.asarray(params["token_embedder"]["embedding"], np.float32)
    rng = np.random.default_rng(0)
    prompt = np.stack(
        [
            embedding[negative] * 3.0,  # cosine ignores the scale
            embedding[positive] + 1e-4 * rng.normal(size=embedding.shape[1]),
            rng.normal(size=embedding.shape[1]),
        ]
    ).astype(np.float32)
    np.save(tmp_path / "p.npy", prompt)

    argv = ["--prompt", str(tmp_path / "p.npy"), "--checkpoint", str(checkpoint), "-k", "3"]
    assert interpret.main([*argv, "--task", tiny.TASK]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 + 2
    assert lines[0].startswith("prompt[0]: 'negative' 1.000, ")
    assert lines[1].startswith("prompt[1]: 'positive' 1.000, ")
    assert lines[0].count(", ") == 2  # k = 3 neighbours
    assert lines[3] == "label 'negative': among the nearest tokens of prompt rows [0]"
    assert lines[4] == "label 'positive': among the nearest tokens of prompt rows [1]"


def test_bad_inputs_exit_with_one_message(checkpoint, tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros((2, 7), np.float32))
    with pytest.raises(SystemExit, match=r"interpret: error: .*wide\.npy.*differs"):
        interpret.main(["--prompt", str(tmp_path / "wide.npy"), "--checkpoint", str(checkpoint)])
    with pytest.raises(
        SystemExit, match=r"interpret: error: Prompt file .*missing\.npy does not exist"
    ):
        interpret.main(["--prompt", str(tmp_path / "missing.npy"), "--checkpoint", str(checkpoint)])
    with pytest.raises(SystemExit, match="-k must be at least 1"):
        interpret.main(["--prompt", "p.npy", "--checkpoint", str(checkpoint), "-k", "0"])

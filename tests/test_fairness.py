"""The fairness study on the tiny model: template pairs, bias injection, the CLI end to end, bad input."""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest
import tiny

from prompt_tuning import fairness
from prompt_tuning import fairness_data as fd


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))


def test_template_pairs_differ_only_in_the_name():
    names = {"female": ["Mary", "Anna"], "male": ["John", "Paul"]}
    pairs = fd.template_pairs(names)
    templates = len(fd.EMOTION_TEMPLATES) * len(fd.EMOTION_WORDS)
    templates += len(fd.SITUATION_TEMPLATES) * len(fd.SITUATION_WORDS)
    assert len(pairs) == 2 * templates
    for pair in pairs:
        f_name = next(n for n in names["female"] if n in pair.female)
        m_name = next(n for n in names["male"] if n in pair.male)
        assert pair.female.replace(f_name, m_name) == pair.male
    assert {p.label for p in pairs} == {"negative", "positive"}


@pytest.mark.parametrize(
    "names",
    [{"female": ["Mary"]}, {"female": ["Mary"], "male": []}, {"female": ["A", "B"], "male": ["C"]}],
)
def test_a_template_set_needs_two_paired_groups(names):
    with pytest.raises(ValueError, match="two groups"):
        fd.template_pairs(names)


def test_the_injected_bias_follows_its_documented_rates():
    examples = fd.biased_movie_train(fd.group_names())
    named = [e for e in examples if e.group >= 0]
    assert abs(len(named) / len(examples) - fd.INJECT_FRACTION) < 0.02
    counts = collections.Counter((e.group, e.label) for e in named)
    stereotyped = counts[(0, "positive")] + counts[(1, "negative")]
    assert abs(stereotyped / len(named) - fd.STEREOTYPE) < 0.02
    plain = dict(fd.read_movie_split("train"))
    for e in named[:50]:  # labels and snippets unchanged, a name in front
        name, _, text = e.text.partition(" says: ")
        assert plain[text] == e.label and name in fd.group_names()[fd.GROUPS[e.group]]


@pytest.mark.slow
def test_the_cli_prints_every_method_and_saves_prompt_files(checkpoint, tmp_path, capsys):
    out = tmp_path / "fair"
    argv = [
        f"--out={out}", f"--checkpoint={checkpoint}", "--seeds=0", "--steps=2",
        "--trigger_steps=2", "--train_examples=64", "--hessian_examples=8", "--gap_pairs=8",
        "--prompt_length=3", "--remove_fraction=0.25", "--damping=1.0",
    ]  # fmt: skip
    assert fairness.main(argv) == 0
    printed = capsys.readouterr().out
    for name in fairness.METHODS:
        assert f"| {name} | 1 |" in printed
        prompt = np.load(out / "seed_0" / f"{name}.npy")
        assert prompt.shape[0] == (3 + 5 if name == "fair_reprogram" else 3)
    ij = json.loads((out / "seed_0" / "fair_ij.json").read_text())
    assert ij["removed"] == 16
    # A rerun reads what is saved instead of training again.
    before = (out / "seed_0" / "plain.npy").stat().st_mtime_ns
    assert fairness.main(argv) == 0
    assert (out / "seed_0" / "plain.npy").stat().st_mtime_ns == before
    # Metrics saved before the gaps had standard errors are completed from the saved prompt:
    # the same gaps again (the same prompt scored again), the training record kept.
    plain_json = out / "seed_0" / "plain.json"
    full = json.loads(plain_json.read_text())
    assert full["gap_score_se"] > 0 and full["gap_rate_se"] >= 0
    old = {k: v for k, v in full.items() if not k.endswith("_se")}
    plain_json.write_text(json.dumps(old))
    assert fairness.main(argv) == 0
    assert json.loads(plain_json.read_text()) == pytest.approx(full, rel=1e-6)


def test_a_one_group_names_file_is_one_error_and_writes_nothing(tmp_path, capsys):
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"female": ["Mary", "Anna"]}))
    out = tmp_path / "fair"
    with pytest.raises(SystemExit) as raised:
        fairness.main([f"--out={out}", f"--names={names}"])
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "two groups" in err
    assert not out.exists()

"""`python -m prompt_tuning.show_task`: formatted examples, token counts, clear errors."""

import os
import subprocess
import sys

import gin
import pytest
from tasks_helpers import DATA

from prompt_tuning import show_task

FILES = ["--data_dir", str(DATA), "--source", "files"]


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def test_prints_examples_with_token_counts(capsys, vocab):
    assert show_task.main(["--task", "super_glue_rte_v102", "-n", "1", *FILES]) == 0
    out = capsys.readouterr().out.splitlines()
    text = "rte hypothesis: Dana no longer owns that bicycle. premise: Dana sold her bicycle to a neighbour last spring."
    assert out == [
        "== super_glue_rte_v102 [validation]  class labels: entailment, not_entailment",
        f"[0] inputs  ({len(vocab.encode(text)) + 1} tokens): {text}",
        f"    targets ({len(vocab.encode('entailment')) + 1} tokens): entailment",
    ]


def test_shows_the_chosen_variant(capsys):
    argv = [
        "--task",
        "glue_rte_v002",
        "--objective",
        "span_corruption_sentinel",
        "--taskless",
        *FILES,
    ]
    assert show_task.main([*argv, "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("== glue_rte_v002_taskless_sentinel [validation]")
    assert "[0] inputs  (" in out and "tokens): sentence1: The orchestra toured Japan" in out
    assert "tokens): <extra_id_0> entailment" in out
    assert "[1] inputs" in out and "[2] inputs" not in out


def test_mixture_shows_each_task_with_the_split(capsys):
    assert show_task.main(["--task", "glue_mrpc_from_qqp_zeroshot_v002", "-n", "1", *FILES]) == 0
    out = capsys.readouterr().out
    assert "== glue_qqp_v002 [validation]" in out
    assert "== glue_mrpc_from_qqp_v002 [validation]  class labels: not_duplicate, duplicate" in out


def test_unknown_task_lists_close_names(capsys):
    assert show_task.main(["--task", "glue_mrpc"]) == 2
    err = capsys.readouterr().err
    assert "No task or mixture is registered as 'glue_mrpc'" in err
    assert "glue_mrpc_v002" in err


def test_missing_data_says_where_and_how(capsys, tmp_path):
    assert show_task.main(["--task", "glue_sst2_v002", "--data_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}/glue/SST-2/dev.tsv does not exist" in err
    assert "glue/sst2:2.0.0" in err


def test_missing_split_lists_the_splits(capsys):
    assert show_task.main(["--task", "mrqa_bio_asq_v100", "--split", "train", *FILES]) == 2
    assert "has no split 'train'; it has ['validation']" in capsys.readouterr().err


def test_list_filters_names(capsys):
    assert show_task.main(["--list", "super_glue_wsc_v102_simple_train*"]) == 0
    assert capsys.readouterr().out.split() == [
        "super_glue_wsc_v102_simple_train",
        "super_glue_wsc_v102_simple_train_sentinel",
        "super_glue_wsc_v102_simple_train_taskless",
        "super_glue_wsc_v102_simple_train_taskless_sentinel",
    ]


@pytest.mark.slow
def test_module_entry_point():
    """A fresh process: the flags bind gin's data_options, which the module registers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPT_TUNING_DATA")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "prompt_tuning.show_task",
            "--task",
            "super_glue_cb_v102",
            "--split",
            "validation",
            "-n",
            "2",
            *FILES,
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("inputs  (") == 2
    assert "targets (2 tokens): neutral" in result.stdout

"""The variant knob, class labels, rank classification helpers and name lookup."""

import filecmp

import gin
import numpy as np
import pytest
import seqio
from tasks_helpers import rows_dataset, run_on

import prompt_tuning.tasks  # noqa: F401  (registers the tasks)
from prompt_tuning.configurables import task_name
from prompt_tuning.data import (
    UnknownTaskError,
    class_labels,
    get_task_or_mixture,
    label_target_ids,
    rank_classify,
    register_mixture,
    registered_names,
    t5_vocabulary,
)
from prompt_tuning.data.registry import is_sentinel_variant
from prompt_tuning.data.vocab import default_vocab_path


@pytest.fixture
def clean_gin():
    gin.clear_config()
    yield
    gin.clear_config()


def test_shipped_vocabulary_is_the_t5_sentencepiece_model(fixtures_dir):
    assert filecmp.cmp(
        default_vocab_path(), fixtures_dir / "vocab" / "t5_cc_all.32000.spiece.model", shallow=False
    )
    vocabulary = t5_vocabulary()
    assert vocabulary.vocab_size == 32100  # 32000 pieces + 100 sentinels (checkpoints pad to 32128)
    assert (vocabulary.pad_id, vocabulary.eos_id, vocabulary.unk_id) == (0, 1, 2)
    task = seqio.get_mixture_or_task("super_glue_rte_v102")
    assert (
        task.output_features["targets"].vocabulary.sentencepiece_model_file == default_vocab_path()
    )


@pytest.mark.parametrize(
    ("objective", "taskless", "expected"),
    [
        ("lm_adaptation", False, "super_glue_rte_v102"),
        ("span_corruption", False, "super_glue_rte_v102"),
        ("span_corruption_sentinel", False, "super_glue_rte_v102_sentinel"),
        ("lm_adaptation", True, "super_glue_rte_v102_taskless"),
        ("span_corruption_sentinel", True, "super_glue_rte_v102_taskless_sentinel"),
    ],
)
def test_task_name_picks_the_variant(objective, taskless, expected):
    assert task_name("super_glue_rte_v102", objective=objective, taskless=taskless) == expected
    assert expected in seqio.TaskRegistry.names()


def test_task_name_is_gin_configurable_per_run(clean_gin):
    gin.parse_config(
        [
            "prompt_tuning.data.task_name.objective = 'span_corruption_sentinel'",
            "prompt_tuning.data.task_name.taskless = True",
        ]
    )
    assert task_name("glue_mrpc_v002") == "glue_mrpc_v002_taskless_sentinel"
    assert task_name("mrqa_squad_to_drop_v100") == "mrqa_squad_to_drop_v100_taskless_sentinel"


def test_a_run_config_can_name_its_task_through_the_knob(clean_gin):
    # How a run's gin file names a task: the model file binds the objective, the run
    # file the base task; whatever consumes the name gets the right variant.
    @gin.configurable
    def consumer(mixture_or_task_name):
        return mixture_or_task_name

    gin.parse_config(
        [
            "consumer.mixture_or_task_name = @prompt_tuning.data.task_name()",
            "prompt_tuning.data.task_name.base = 'super_glue_boolq_v102'",
            "prompt_tuning.data.task_name.objective = 'span_corruption_sentinel'",
        ]
    )
    assert consumer() == "super_glue_boolq_v102_sentinel"


def test_mixtures_need_registered_base_members():
    with pytest.raises(ValueError, match=r"\['glue_rte_v002_taskless'\] are not base names"):
        register_mixture("registry_test_mixture", ["glue_cola_v002", "glue_rte_v002_taskless"])
    assert "registry_test_mixture" not in registered_names()


def test_task_name_errors_name_the_problem():
    with pytest.raises(ValueError, match="objective 'prefix_lm' is not one of"):
        task_name("glue_mrpc_v002", objective="prefix_lm")
    with pytest.raises(ValueError, match="pass the base name 'glue_mrpc_v002'"):
        task_name("glue_mrpc_v002_taskless", objective="span_corruption_sentinel")
    # An explicit variant name with the default knobs is used as given.
    assert task_name("glue_mrpc_v002_taskless") == "glue_mrpc_v002_taskless"


def test_tasks_registered_elsewhere_have_only_the_plain_format():
    name = "registry_test_plain_task"
    seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(lambda split, shuffle_files: None, splits=["train"]),
        preprocessors=[],
        output_features={},
    )
    try:
        assert task_name(name) == name
        assert class_labels(name) is None
        with pytest.raises(ValueError, match="has no format variants"):
            task_name(name, taskless=True)
    finally:
        seqio.TaskRegistry.remove(name)


def test_unknown_names_suggest_close_ones():
    with pytest.raises(UnknownTaskError, match="Did you mean super_glue_rte_v102") as error:
        get_task_or_mixture("super_glue_rte_v10")
    assert "show_task --list" in str(error.value)
    with pytest.raises(UnknownTaskError):
        class_labels("no_such_task")


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("super_glue_boolq_v102", ("False", "True")),
        ("super_glue_cb_v102", ("entailment", "contradiction", "neutral")),
        ("super_glue_copa_v102", ("choice1", "choice2")),
        ("super_glue_multirc_v102", ("False", "True")),
        ("super_glue_rte_v102_taskless", ("entailment", "not_entailment")),
        ("super_glue_wsc_v102_sentinel", ("False", "True")),
        ("super_glue_axb_v102", ("entailment", "not_entailment")),
        ("glue_cola_v002", ("unacceptable", "acceptable")),
        ("glue_sst2_v002", ("negative", "positive")),
        ("glue_mnli_v002", ("entailment", "neutral", "contradiction")),
        ("glue_wnli_v002", ("not_entailment", "entailment")),
        ("glue_ax_v002", ("entailment", "neutral", "contradiction")),
        # Generation tasks have none.
        ("super_glue_record_v102", None),
        ("super_glue_wsc_v102_simple_eval", None),
        ("super_glue_wsc_and_dev_v102_simple", None),
        ("glue_stsb_v002", None),
        ("mrqa_squad_v100", None),
    ],
)
def test_class_labels(name, labels):
    assert class_labels(name) == labels


def test_label_target_ids_match_the_task_targets(vocab):
    plain = label_target_ids("super_glue_cb_v102", vocab)
    assert plain == [[*vocab.encode(w), 1] for w in ("entailment", "contradiction", "neutral")]
    sentinel = label_target_ids("super_glue_cb_v102_taskless_sentinel", vocab)
    assert sentinel == [[32099, *ids] for ids in plain]
    assert label_target_ids("glue_stsb_v002", vocab) is None


def test_rank_classify_picks_the_most_likely_label():
    scores = np.array([[-1.0, -2.0, -0.5], [-3.0, -0.1, -0.2], [-1.0, -1.0, -4.0]])
    # Ties go to the earlier label.
    assert rank_classify(scores, ["a", "b", "c"]) == ["c", "b", "a"]
    with pytest.raises(ValueError, match=r"scores must be \[num_examples, 2\]"):
        rank_classify(scores, ["a", "b"])


def test_every_family_has_four_variants():
    names = set(registered_names())
    bases = [n for n in names if n.startswith(("super_glue_", "glue_", "mrqa_", "squad_"))]
    for base in bases:
        # T5's own `_1_sentinel` twins are variants, not families.
        if not base.endswith(("_taskless", "_sentinel")) and "_1_sentinel" not in base:
            for suffix in ("_taskless", "_sentinel", "_taskless_sentinel"):
                assert base + suffix in names


@pytest.mark.parametrize(
    ("base", "twin"),
    [
        ("super_glue_rte_v102", "super_glue_rte_v102_1_sentinel"),
        ("super_glue_wsc_v102_simple_eval", "super_glue_wsc_v102_simple_1_sentinel_eval"),
    ],
)
def test_t5_sentinel_twins_are_sentinel_variants_picked_by_name(base, twin):
    assert is_sentinel_variant(twin)
    assert class_labels(twin) == class_labels(base)
    assert task_name(twin) == twin
    with pytest.raises(ValueError, match=f"T5 _1_sentinel variant of '{base}'"):
        task_name(twin, objective="span_corruption_sentinel")


def test_t5_sentinel_twin_strips_the_sentinel_before_scoring():
    task = seqio.get_mixture_or_task("super_glue_rte_v102_1_sentinel")
    assert task.postprocess_fn("<extra_id_0> not_entailment", example={}, is_target=False) == 1


def test_t5_sentinel_twin_keeps_its_sentinel_when_trimmed(vocab):
    name = "super_glue_rte_v102_1_sentinel"
    row = {
        "premise": "A long premise with many words.",
        "hypothesis": "Short.",
        "label": 0,
        "idx": 0,
    }
    (example,) = run_on(name, rows_dataset(name, [row]), {"inputs": 6, "targets": 4})
    sentinel = 32099
    assert example["inputs"].tolist()[-2:] == [sentinel, 1]
    assert len(example["inputs"]) == 6
    assert example["targets"].tolist()[0] == sentinel

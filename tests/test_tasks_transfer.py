"""Zero-shot transfer mixtures: train on the source task, evaluate on the target's validation set."""

import jax
import numpy as np
import pytest
import seqio
import tiny
from tasks_helpers import make_release_root, raw_files, run_task, score, texts

import prompt_tuning.tasks  # noqa: F401  (registers the tasks)
from prompt_tuning.data import class_labels, label_target_ids, rank_classify, resolve_task_name

QQP_WORDS = ("not_duplicate", "duplicate")
MRPC_WORDS = ("not_equivalent", "equivalent")


@pytest.fixture(scope="module", autouse=True)
def original_files(tmp_path_factory):
    with raw_files(make_release_root(tmp_path_factory.mktemp("release"))):
        yield


def train_stream(name):
    """Every example the mixture's training split yields in one pass."""
    mixture = seqio.get_mixture_or_task(name)
    dataset = mixture.get_dataset(
        {"inputs": 128, "targets": 16},
        split="train",
        shuffle=False,
        num_epochs=1,
        copy_pretokenized=True,
    )
    return [ex["inputs_pretokenized"].decode() for ex in dataset.as_numpy_iterator()]


@pytest.mark.parametrize(
    ("mixture", "source", "target"),
    [
        ("glue_mrpc_from_qqp_zeroshot_v002", "glue_qqp_v002", "glue_mrpc_from_qqp_v002"),
        ("glue_qqp_from_mrpc_zeroshot_v002", "glue_mrpc_v002", "glue_qqp_from_mrpc_v002"),
        ("mrqa_squad_to_drop_v100", "mrqa_squad_v100", "mrqa_drop_v100"),
    ],
)
def test_mixture_trains_on_source_and_evaluates_on_target(mixture, source, target):
    tasks = seqio.get_mixture_or_task(mixture).tasks
    assert {t.name for t in tasks} == {source, target}
    assert list(seqio.get_mixture_or_task(target).splits) == ["validation"]
    source_train = [i for i, _ in texts(run_task(source, "train"))]
    assert sorted(train_stream(mixture)) == sorted(source_train)


def test_target_task_is_the_target_validation_set_in_its_own_format():
    assert texts(run_task("glue_mrpc_from_qqp_v002", "validation")) == texts(
        run_task("glue_mrpc_v002", "validation")
    )


def test_labels_are_the_source_words_the_prompt_emits(vocab):
    assert class_labels("glue_mrpc_from_qqp_zeroshot_v002") == QQP_WORDS
    assert class_labels("glue_mrpc_from_qqp_v002") == QQP_WORDS
    assert class_labels("glue_qqp_from_mrpc_zeroshot_v002") == MRPC_WORDS
    assert label_target_ids("glue_mrpc_from_qqp_v002", vocab) == [
        [*vocab.encode(word), 1] for word in QQP_WORDS
    ]


def test_qqp_prompt_scored_on_mrpc_with_translated_labels():
    examples = run_task(
        "glue_mrpc_from_qqp_v002", "validation"
    )  # targets: equivalent, not_equivalent
    labels = class_labels("glue_mrpc_from_qqp_zeroshot_v002")
    # Log-likelihoods [example, label] as a QQP prompt would give them.
    both_duplicate = rank_classify(np.array([[-3.0, -0.5], [-2.0, -1.0]]), labels)
    assert both_duplicate == ["duplicate", "duplicate"]
    # "duplicate" counts as "equivalent": TP 1, FP 1 -> F1 2/3.
    assert score("glue_mrpc_from_qqp_v002", examples, both_duplicate) == pytest.approx(
        {"f1": 100 * 2 / 3, "accuracy": 50.0}
    )
    right = rank_classify(np.array([[-3.0, -0.5], [-0.2, -1.0]]), labels)
    assert score("glue_mrpc_from_qqp_v002", examples, right) == {"f1": 100.0, "accuracy": 100.0}
    # The target task's own words are not what the prompt was trained to say.
    assert score("glue_mrpc_from_qqp_v002", examples, ["equivalent", "not_equivalent"]) == {
        "f1": 100.0,
        "accuracy": 100.0,
    }


def test_mrpc_prompt_scored_on_qqp_with_translated_labels():
    examples = run_task(
        "glue_qqp_from_mrpc_v002", "validation"
    )  # targets: duplicate, not_duplicate
    assert score(
        "glue_qqp_from_mrpc_v002", examples, ["equivalent", "equivalent"]
    ) == pytest.approx({"f1": 100 * 2 / 3, "accuracy": 50.0})


@pytest.mark.parametrize(
    ("objective", "taskless"), [("span_corruption_sentinel", True), ("lm_adaptation", True)]
)
def test_variants_of_a_mixture_mix_the_same_variant(objective, taskless, vocab):
    name = resolve_task_name(
        "glue_mrpc_from_qqp_zeroshot_v002", objective=objective, taskless=taskless
    )
    suffix = "_taskless" + ("_sentinel" if objective == "span_corruption_sentinel" else "")
    assert {t.name for t in seqio.get_mixture_or_task(name).tasks} == {
        "glue_qqp_v002" + suffix,
        "glue_mrpc_from_qqp_v002" + suffix,
    }
    assert class_labels(name) == QQP_WORDS
    sentinel = [32099] if objective == "span_corruption_sentinel" else []
    assert label_target_ids(name, vocab) == [[*sentinel, *vocab.encode(w), 1] for w in QQP_WORDS]


def test_squad_to_all_out_of_domain_sets():
    tasks = {t.name for t in seqio.get_mixture_or_task("mrqa_squad_to_out_of_domain_v100").tasks}
    assert tasks == {
        "mrqa_squad_v100",
        "mrqa_bio_asq_v100",
        "mrqa_drop_v100",
        "mrqa_duo_rc_v100",
        "mrqa_race_v100",
        "mrqa_relation_extraction_v100",
        "mrqa_textbook_qa_v100",
    }


@pytest.mark.slow
def test_engine_evaluates_a_prompt_zero_shot_with_translation():
    """A prompt on a tiny random T5, scored by the engine on the zero-shot mixture."""
    from prompt_tuning import evaluation, specs
    from prompt_tuning.models import T5, init_params

    config = tiny.CONFIG
    model, params = T5(config), init_params(config, jax.random.key(0))
    prompt = jax.random.uniform(jax.random.key(1), (1, 5, 16), minval=-0.5, maxval=0.5)
    mixture = seqio.get_mixture_or_task("glue_mrpc_from_qqp_zeroshot_v002")
    data = specs.DataSpec(
        mixture_or_task_name=mixture.name,
        task_feature_lengths={"inputs": 64, "targets": 8},
        batch_size=2,
    )
    (results,) = evaluation.evaluate_prompts(model, params, prompt, mixture, data).per_prompt

    target = seqio.get_mixture_or_task("glue_mrpc_from_qqp_v002")
    examples = evaluation.load_examples(target, "validation", 64)
    scores = evaluation.rank_classify(
        model,
        params,
        prompt,
        examples,
        label_target_ids(target.name),
        input_length=64,
        batch_size=2,
    )[0]
    said = [QQP_WORDS[i] for i in scores.argmax(-1)]
    translated = [MRPC_WORDS[QQP_WORDS.index(w)] for w in said]
    truth = [e.target_text for e in examples]
    assert truth == ["equivalent", "not_equivalent"]
    accuracy = 100 * np.mean([p == t for p, t in zip(translated, truth, strict=True)])
    assert results["glue_mrpc_from_qqp_v002/accuracy"] == pytest.approx(accuracy)
    # Truth is [positive, negative]: F1 is 100 when both are right, 2/3 when both say
    # "equivalent", 0 otherwise.
    f1 = {("equivalent", "not_equivalent"): 100.0, ("equivalent", "equivalent"): 200 / 3}
    assert results["glue_mrpc_from_qqp_v002/f1"] == pytest.approx(f1.get(tuple(translated), 0.0))
    assert "glue_qqp_v002/accuracy" in results

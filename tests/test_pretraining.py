"""Pretraining: T5 span corruption, prefix LM, the corpus tasks and the full-parameter trainer."""

from __future__ import annotations

import numpy as np
import pytest
import seqio
import tensorflow as tf

from prompt_tuning.data.vocab import t5_vocabulary
from prompt_tuning.pretraining import objectives

FIRST_SENTINEL = 32099  # <extra_id_0> in the T5 vocabulary


def _tokens(text: str) -> list[int]:
    return list(range(100, 100 + len(text.split())))


def _ids(values) -> list[int]:
    return [int(v) for v in np.asarray(values)]


# ------------------------------------------------------------ span corruption


def test_replace_spans_hand_example():
    # The module docstring's example: tokens a..h, spans {b, c} and {g, h} dropped.
    a, b, c, d, e, f, g, h = range(10, 18)
    tokens = tf.constant([a, b, c, d, e, f, g, h])
    mask = tf.constant([False, True, True, False, False, False, True, True])
    vocab = t5_vocabulary()
    inputs = objectives.replace_spans_with_sentinels(tokens, mask, vocab)
    targets = objectives.replace_spans_with_sentinels(tokens, ~mask, vocab)
    assert _ids(inputs) == [a, 32099, d, e, f, 32098]
    # Kept runs {a} and {d, e, f} become the sentinels that head each dropped span.
    assert _ids(targets) == [32099, b, c, 32098, g, h]
    assert [vocab.decode([i]) for i in (32099, 32098)] == ["<extra_id_0>", "<extra_id_1>"]


def _reconstruct(inputs: list[int], targets: list[int]) -> list[int]:
    """Original tokens from a span-corruption pair (what the model must learn to do)."""
    spans, current = {}, None
    for token in targets:
        if token > 32000:
            current = token
            spans[current] = []
        else:
            spans[current].append(token)
    out = []
    for token in inputs:
        out += spans[token] if token > 32000 else [token]
    return out


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_random_span_mask_and_round_trip(seed):
    length = 141
    mask = objectives.random_spans_noise_mask(tf.constant(length), tf.constant([seed, 3]))
    mask = np.asarray(mask)
    assert mask.shape == (length,)
    # round(141 * 0.15) = 21 noise tokens in round(21 / 3) = 7 spans.
    assert mask.sum() == 21
    starts = mask & ~np.concatenate([[False], mask[:-1]])
    assert starts.sum() == 7
    assert not mask[0] and mask[-1]

    tokens = tf.range(200, 200 + length)
    vocab = t5_vocabulary()
    inputs = _ids(objectives.replace_spans_with_sentinels(tokens, tf.constant(mask), vocab))
    targets = _ids(objectives.replace_spans_with_sentinels(tokens, tf.constant(~mask), vocab))
    assert len(inputs) == length - 21 + 7 and len(targets) == 21 + 7
    sentinels = [t for t in inputs if t > 32000]
    assert sentinels == list(range(FIRST_SENTINEL, FIRST_SENTINEL - 7, -1))
    assert [t for t in targets if t > 32000] == sentinels
    assert targets[0] == FIRST_SENTINEL
    assert _reconstruct(inputs, targets) == list(range(200, 200 + length))


def test_span_mask_depends_on_seed_only():
    def mask(seed):
        return np.asarray(objectives.random_spans_noise_mask(tf.constant(60), tf.constant(seed)))

    np.testing.assert_array_equal(mask([4, 5]), mask([4, 5]))
    assert not np.array_equal(mask([4, 5]), mask([4, 6]))


def test_span_mask_short_chunks_keep_one_token_each_side():
    for length in (2, 3, 5):
        mask = np.asarray(
            objectives.random_spans_noise_mask(tf.constant(length), tf.constant([1, 2]))
        )
        assert 1 <= mask.sum() < length and not mask[0]


def test_tokens_length_fills_inputs_exactly():
    # By hand: 141 tokens -> 21 noise in 7 spans -> inputs 141 - 21 + 7 + EOS = 128,
    # targets 21 + 7 + EOS = 29; 142 tokens would give inputs 129.
    assert objectives.span_corruption_tokens_length(128, 32) == 141
    with pytest.raises(ValueError, match="too short"):
        objectives.span_corruption_tokens_length(2, 2)


def _documents(lengths: list[int]) -> tf.data.Dataset:
    stream = np.arange(10, 10 + sum(lengths), dtype=np.int32)
    docs = np.split(stream, np.cumsum(lengths)[:-1])
    return tf.data.Dataset.from_generator(
        lambda: ({"targets": d} for d in docs),
        output_signature={"targets": tf.TensorSpec([None], tf.int32)},
    )


def test_chunk_tokens_joins_documents_then_cuts():
    chunks = [_ids(x["targets"]) for x in objectives.chunk_tokens(_documents([5, 2, 13]), 6)]
    assert chunks == [list(range(10, 16)), list(range(16, 22)), list(range(22, 28)), [28, 29]]


def test_span_corruption_preprocessor_fits_lengths_and_reconstructs():
    features = {"inputs": seqio.Feature(t5_vocabulary()), "targets": seqio.Feature(t5_vocabulary())}
    lengths = {"inputs": 128, "targets": 32}
    with seqio.utils.map_seed_manager(0):
        dataset = objectives.span_corruption(_documents([100, 90, 120]), lengths, features)
    examples = list(dataset.as_numpy_iterator())
    rebuilt = []
    for ex in examples:
        rebuilt += _reconstruct(_ids(ex["inputs"]), _ids(ex["targets"]))
    assert rebuilt == list(range(10, 320))
    assert len(examples[0]["inputs"]) == 127  # 128 with the EOS seqio appends
    assert all(len(ex["targets"]) <= 31 for ex in examples)


# ------------------------------------------------------------------ prefix LM


def test_prefix_lm_splits_chunks_into_prefix_and_continuation():
    features = {"inputs": seqio.Feature(t5_vocabulary()), "targets": seqio.Feature(t5_vocabulary())}
    lengths = {"inputs": 16, "targets": 6}
    with seqio.utils.map_seed_manager(3):
        dataset = objectives.prefix_lm(_documents([40, 25, 60, 3]), lengths, features)
    examples = [(_ids(x["inputs"]), _ids(x["targets"])) for x in dataset.as_numpy_iterator()]
    # Chunks of inputs - 1 = 15 tokens: 128 tokens -> 8 full chunks and one of 8.
    assert len(examples) == 9
    starts = [10 + 15 * i for i in range(9)]
    for (inputs, targets), start in zip(examples, starts, strict=True):
        chunk_end = min(start + 15, 10 + 128)
        assert inputs == list(range(start, start + len(inputs)))
        assert 1 <= len(inputs) < chunk_end - start
        # The continuation starts right after the prefix, capped at targets - 1 tokens.
        split = start + len(inputs)
        assert targets == list(range(split, min(split + 5, chunk_end)))
    assert len({len(inputs) for inputs, _ in examples}) > 1  # the split point is random


# ---------------------------------------------------------------- corpus tasks


@pytest.fixture
def tiny_corpus(tmp_path, monkeypatch):
    import prompt_tuning.tasks.pretraining as tasks

    rng = np.random.default_rng(0)
    words = ["the", "whale", "ship", "sea", "captain", "said", "white", "long", "day", "night"]
    lines = [" ".join(rng.choice(words, rng.integers(5, 30))) + "." for _ in range(200)]
    (tmp_path / "a.txt").write_text("\n".join(lines[:120]) + "\n")
    (tmp_path / "b.txt").write_text("\n".join(lines[120:]) + "\n")
    monkeypatch.setenv(tasks.CORPUS_ENV, str(tmp_path))
    return tmp_path


def _task_examples(name: str, lengths: dict[str, int], seed: int = 0) -> list[dict]:
    task = seqio.get_mixture_or_task(name)
    dataset = task.get_dataset(lengths, split="train", shuffle=True, seed=seed, num_epochs=1)
    return list(dataset.as_numpy_iterator())


@pytest.mark.slow
def test_corpus_tasks_produce_objective_examples(tiny_corpus):
    vocab = t5_vocabulary()
    span = _task_examples("corpus_span_corruption", {"inputs": 128, "targets": 32})
    assert len(span[0]["inputs"]) == 128 and span[0]["inputs"][-1] == vocab.eos_id
    assert span[0]["targets"][0] == FIRST_SENTINEL and span[0]["targets"][-1] == vocab.eos_id
    lm = _task_examples("corpus_lm_adaptation", {"inputs": 64, "targets": 16})
    assert all(len(x["inputs"]) <= 64 and len(x["targets"]) <= 16 for x in lm)
    assert not any(t > 32000 for x in lm for t in x["targets"][:-1])
    first = _task_examples("corpus_span_corruption", {"inputs": 128, "targets": 32})
    np.testing.assert_array_equal(first[3]["inputs"], span[3]["inputs"])


def test_review_weighted_corpus_repeats_only_the_review_file(tiny_corpus):
    import prompt_tuning.tasks.pretraining as tasks

    (tiny_corpus / tasks.REVIEW_FILE).write_text("a fine film.\na dull film.\n")

    def texts(**kwargs) -> list[bytes]:
        dataset = tasks._corpus_dataset("train", shuffle_files=True, seed=3, **kwargs)
        return [x["text"] for x in dataset.as_numpy_iterator()]

    plain, weighted = texts(), texts(repeats={tasks.REVIEW_FILE: tasks.REVIEW_REPEATS})
    assert len(weighted) == len(plain) + 2 * (tasks.REVIEW_REPEATS - 1)
    assert weighted.count(b"a dull film.") == tasks.REVIEW_REPEATS
    assert sorted(set(weighted)) == sorted(set(plain))
    assert tasks.LM_ADAPTATION_REVIEWS in seqio.TaskRegistry.names()


def test_corpus_task_without_corpus_says_how_to_build_it(tmp_path, monkeypatch):
    import prompt_tuning.tasks.pretraining as tasks

    monkeypatch.setenv(tasks.CORPUS_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"scripts/build_corpus\.py"):
        _task_examples("corpus_span_corruption", {"inputs": 128, "targets": 32})


# -------------------------------------------------------------- full training


def _tiny_config():
    from tiny import CONFIG

    return CONFIG


def _fixed_batch(batch: int = 4, inputs: int = 12, targets: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    target_tokens = rng.integers(3, 200, (batch, targets), dtype=np.int32)
    return {
        "encoder_input_tokens": rng.integers(3, 200, (batch, inputs), dtype=np.int32),
        "decoder_input_tokens": np.pad(target_tokens[:, :-1], ((0, 0), (1, 0))),
        "decoder_target_tokens": target_tokens,
        "decoder_loss_weights": np.ones((batch, targets), np.int32),
    }


@pytest.mark.slow
def test_full_train_step_lowers_loss_and_trains_every_param():
    import jax

    from prompt_tuning import trainer
    from prompt_tuning.models import T5, init_params
    from prompt_tuning.pretraining import full_training

    config = _tiny_config()
    optimizer = full_training.make_pretraining_optimizer()
    params = init_params(config, jax.random.key(0))
    state = trainer.init_state(params, optimizer)
    step = jax.jit(trainer.make_train_step(trainer.full_objective(T5(config)), optimizer))
    batch = _fixed_batch()
    losses = []
    for _ in range(20):
        state, metrics = step(state, {}, batch, jax.random.PRNGKey(0))
        losses.append(float(metrics["loss"]))
    assert int(state.step) == 20
    assert losses[-1] < losses[0] - 1.0, losses
    unchanged = [
        jax.tree_util.keystr(path)
        for path, before, after in zip(
            jax.tree_util.tree_leaves_with_path(params),
            jax.tree.leaves(params),
            jax.tree.leaves(state.params),
            strict=True,
        )
        if np.array_equal(np.asarray(before), np.asarray(after))
    ]
    assert not unchanged, unchanged


def test_rsqrt_schedule_is_t5s():
    from prompt_tuning.pretraining import full_training

    schedule = full_training.rsqrt_schedule()
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(10_000)) == pytest.approx(0.01)
    assert float(schedule(40_000)) == pytest.approx(0.005)


def _pretrain(model_dir, steps: int, messages: list[str] | None = None, **overrides) -> str:
    from prompt_tuning.pretraining import full_training

    kwargs = dict(
        model_dir=str(model_dir),
        config=_tiny_config(),
        mixture_or_task_name="corpus_span_corruption",
        task_feature_lengths={"inputs": 32, "targets": 8},
        batch_size=4,
        train_steps=steps,
        save_every=3,
        log_every=3,
        export_dtype="float32",
        print_fn=(messages if messages is not None else []).append,
    )
    return full_training.pretrain(**{**kwargs, **overrides})


@pytest.mark.slow
def test_pretrain_resumes_exactly(tiny_corpus, tmp_path, monkeypatch):
    import jax

    from prompt_tuning import checkpoints

    straight = _pretrain(tmp_path / "straight", 6)
    # A relative MODEL_DIR, as the documented commands use.
    monkeypatch.chdir(tmp_path)
    _pretrain("resumed", 3)
    messages = []
    resumed = _pretrain("resumed", 6, messages)
    assert any("Resuming from step 3" in m for m in messages), messages
    (config_a, a), (config_b, b) = checkpoints.load(straight), checkpoints.load(resumed)
    assert config_a == config_b
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


_TINY_GIN = [
    "--gin.T5Config.d_model=16",
    "--gin.T5Config.d_kv=6",
    "--gin.T5Config.d_ff=40",
    "--gin.T5Config.num_encoder_layers=2",
    "--gin.T5Config.num_decoder_layers=2",
    "--gin.T5Config.relative_attention_num_buckets=8",
    "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 8}",
    "--gin.BATCH_SIZE=4",
    "--gin.TRAIN_STEPS=4",
    "--gin.pretrain.save_every=2",
]


@pytest.mark.slow
def test_cli_runs_both_stages_and_checkpoints_load(tiny_corpus, tmp_path):
    import jax

    from prompt_tuning import checkpoints, pretrain

    span_dir, lm_dir = tmp_path / "span_corruption", tmp_path / "lm_adapted"
    assert (
        pretrain.main(
            ["--gin_file=pretrain/span_corruption.gin", f"--gin.MODEL_DIR='{span_dir}'", *_TINY_GIN]
        )
        == 0
    )
    assert (
        pretrain.main(
            [
                "--gin_file=pretrain/lm_adaptation.gin",
                f"--gin.MODEL_DIR='{lm_dir}'",
                f"--gin.INIT_CHECKPOINT='{span_dir}'",
                *_TINY_GIN,
            ]
        )
        == 0
    )
    loaded = {}
    for name, directory in (("span", span_dir), ("lm", lm_dir)):
        source = checkpoints.resolve(str(directory))
        assert (source.format, source.step) == ("t5x", 4)
        config, params = checkpoints.load(str(directory))
        assert (config.d_model, config.d_ff, config.num_encoder_layers) == (16, 40, 2)
        assert not config.logits_via_embedding and config.is_gated
        assert params["token_embedder"]["embedding"].dtype == np.dtype("bfloat16")
        loaded[name] = params
    # LM adaptation trained on from the span-corruption params.
    span, lm = jax.tree.leaves(loaded["span"]), jax.tree.leaves(loaded["lm"])
    assert all(a.shape == b.shape for a, b in zip(span, lm, strict=True))
    assert any(
        not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(span, lm, strict=True)
    )


def test_pretrain_from_checkpoint_starts_from_its_params(tiny_corpus, tmp_path):
    import jax
    from tiny import write_checkpoint

    from prompt_tuning import checkpoints

    start = write_checkpoint(tmp_path / "start", seed=3)
    out = _pretrain(tmp_path / "zero", 0, init_checkpoint=str(start))
    _, expected = checkpoints.load(str(start))
    _, exported = checkpoints.load(out)
    for x, y in zip(jax.tree.leaves(expected), jax.tree.leaves(exported), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_pretrain_starts_from_an_embedding_file(tiny_corpus, tmp_path):
    from prompt_tuning import checkpoints
    from prompt_tuning.errors import RunError

    config = _tiny_config()
    table = np.random.default_rng(0).standard_normal((config.vocab_size, config.d_model))
    np.save(tmp_path / "embeddings.npy", table.astype(np.float32))
    out = _pretrain(tmp_path / "zero", 0, init_embeddings=str(tmp_path / "embeddings.npy"))
    _, exported = checkpoints.load(out)
    np.testing.assert_array_equal(exported["token_embedder"]["embedding"], table.astype(np.float32))
    np.save(tmp_path / "narrow.npy", table[:, :-1].astype(np.float32))
    with pytest.raises(RunError, match=r"has shape \(32128, 15\); the model needs \(32128, 16\)"):
        _pretrain(tmp_path / "narrow", 0, init_embeddings=str(tmp_path / "narrow.npy"))


def test_pretrain_rejects_checkpoint_of_another_architecture(tiny_corpus, tmp_path):
    from tiny import write_checkpoint

    from prompt_tuning.errors import RunError

    start = write_checkpoint(tmp_path / "start")
    with pytest.raises(RunError, match=r"d_model: checkpoint 16 vs pretrain\.config 32"):
        _pretrain(
            tmp_path / "run",
            0,
            init_checkpoint=str(start),
            config=_tiny_config().replace(d_model=32),
        )


def test_plot_script_reads_train_losses_and_draws_stages(tmp_path, monkeypatch):
    import json
    import pathlib

    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "scripts"))
    import plot_pretraining

    records = [
        {"step": 1, "kind": "train", "cross_entropy": 9.0},
        {"step": 2, "kind": "train", "cross_entropy": 8.0},
        {"step": 2, "kind": "train", "cross_entropy": 7.5},  # logged again after a resume
        {"step": 2, "kind": "eval", "accuracy": 50.0},
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert plot_pretraining.read_losses(tmp_path) == ([1, 2], [9.0, 7.5])
    with pytest.raises(FileNotFoundError, match=r"metrics\.jsonl"):
        plot_pretraining.read_losses(tmp_path / "missing")
    out = tmp_path / "loss.png"
    monkeypatch.setattr("sys.argv", ["plot", str(tmp_path), "--out", str(out)])
    plot_pretraining.main()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

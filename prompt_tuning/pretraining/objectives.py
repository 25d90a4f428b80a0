"""T5's two pretraining objectives as seqio preprocessors over token sequences.

Span corruption (Raffel et al. 2020, sec. 3.1.4) drops 15% of the tokens in
spans of mean length 3; each dropped span becomes one sentinel in the inputs,
and the targets list every sentinel followed by the tokens it replaced:

  tokens   a b c d e f g h
  inputs   a <extra_id_0> d e f <extra_id_1>
  targets  <extra_id_0> b c <extra_id_1> g h

LM adaptation (the "prefix LM" of the T5 1.1 `lm100k` checkpoints) cuts a chunk
at a random point: the inputs are the prefix, the targets its continuation.

Both run after tokenisation, on examples whose `targets` feature holds the
document's token ids. `chunk_tokens` first joins documents into one stream and
cuts it into equal chunks, as T5 does, so short lines (WordNet glosses) do not
waste padded positions. Randomness comes from seqio's per-example seeds, so a
dataset is reproducible given `seqio.get_dataset(..., seed=...)`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import seqio
import tensorflow as tf

from prompt_tuning.errors import InputError

NOISE_DENSITY = 0.15
MEAN_NOISE_SPAN_LENGTH = 3.0
# Documents joined per step of `chunk_tokens`: enough that the leftover chunk
# at the end of each group is rare, few enough to keep memory small.
_DOCUMENTS_PER_GROUP = 128


def _noise_counts(length: tf.Tensor, noise_density: float, mean_noise_span_length: float):
    """`(num_noise_tokens, num_noise_spans)` for a chunk of `length` tokens.

    At least one noise token and one span, and at least one kept token, so both
    inputs and targets are never empty for chunks of two or more tokens.
    """
    length_f = tf.cast(length, tf.float32)
    num_noise = tf.cast(tf.round(length_f * noise_density), tf.int32)
    num_noise = tf.clip_by_value(num_noise, 1, tf.maximum(length - 1, 1))
    num_spans = tf.cast(tf.round(tf.cast(num_noise, tf.float32) / mean_noise_span_length), tf.int32)
    num_spans = tf.clip_by_value(
        num_spans, 1, tf.minimum(num_noise, tf.maximum(length - num_noise, 1))
    )
    return num_noise, num_spans


def _random_partition(total: tf.Tensor, parts: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """Splits `total` items into `parts` non-empty runs of random lengths: `[parts]` int32.

    Every composition of `total` into `parts` positive integers is equally
    likely: the `parts - 1` cut points are a uniform random subset of
    `1 .. total - 1`.
    """
    candidates = tf.random.experimental.stateless_shuffle(tf.range(1, total), seed)
    cuts = tf.sort(candidates[: parts - 1])
    edges = tf.concat([[0], cuts, [total]], axis=0)
    return edges[1:] - edges[:-1]


def random_spans_noise_mask(
    length: tf.Tensor,
    seed: tf.Tensor,
    noise_density: float = NOISE_DENSITY,
    mean_noise_span_length: float = MEAN_NOISE_SPAN_LENGTH,
) -> tf.Tensor:
    """`[length]` bool mask, True on the tokens span corruption drops.

    Kept and noise runs alternate, starting with a kept run, so the chunk's
    first token is always kept and its last always noise (as in T5).

    Args:
      length: number of tokens, a scalar >= 2.
      seed: `[2]` int32 stateless seed.
    """
    num_noise, num_spans = _noise_counts(length, noise_density, mean_noise_span_length)
    seeds = tf.random.experimental.stateless_split(seed, 2)
    noise_runs = _random_partition(num_noise, num_spans, seeds[0])
    kept_runs = _random_partition(length - num_noise, num_spans, seeds[1])
    run_lengths = tf.reshape(tf.stack([kept_runs, noise_runs], axis=1), [-1])
    run_is_noise = tf.tile([False, True], [num_spans])
    return tf.repeat(run_is_noise, run_lengths)


def replace_spans_with_sentinels(
    tokens: tf.Tensor, mask: tf.Tensor, vocabulary: seqio.Vocabulary
) -> tf.Tensor:
    """Each run of masked tokens -> one sentinel; unmasked tokens stay.

    The i-th masked run (from 0) becomes `<extra_id_i>`, id `vocab_size - 1 - i`.

    Args:
      tokens: `[length]` int token ids.
      mask: `[length]` bool.

    Returns:
      `[length - masked + runs]` token ids.
    """
    previous = tf.concat([[False], mask[:-1]], axis=0)
    run_starts = mask & ~previous
    run_index = tf.cumsum(tf.cast(run_starts, tokens.dtype)) - 1
    sentinels = tf.cast(vocabulary.vocab_size - 1, tokens.dtype) - run_index
    replaced = tf.where(run_starts, sentinels, tokens)
    return tf.boolean_mask(replaced, ~mask | run_starts)


@seqio.map_over_dataset(num_seeds=1)
def _corrupt_spans(
    example: Mapping[str, tf.Tensor],
    seed: tf.Tensor,
    vocabulary: seqio.Vocabulary,
    noise_density: float,
    mean_noise_span_length: float,
) -> dict[str, tf.Tensor]:
    tokens = example["targets"]
    mask = random_spans_noise_mask(tf.size(tokens), seed, noise_density, mean_noise_span_length)
    return {
        "inputs": replace_spans_with_sentinels(tokens, mask, vocabulary),
        "targets": replace_spans_with_sentinels(tokens, ~mask, vocabulary),
    }


def span_corruption_tokens_length(
    inputs_length: int,
    targets_length: int,
    noise_density: float = NOISE_DENSITY,
    mean_noise_span_length: float = MEAN_NOISE_SPAN_LENGTH,
) -> int:
    """Longest chunk whose corrupted inputs and targets (each + EOS) fit the lengths.

    For inputs 128 / targets 32 that is 141 tokens (inputs 128, targets 29).
    """

    def fits(length: int) -> bool:
        # float32 and round-half-to-even, exactly as `_noise_counts` computes them.
        noise = np.round(np.float32(length) * np.float32(noise_density))
        num_noise = int(min(max(noise, 1), length - 1))
        spans = np.round(np.float32(num_noise) / np.float32(mean_noise_span_length))
        num_spans = int(min(max(spans, 1), num_noise, length - num_noise))
        inputs = length - num_noise + num_spans + 1
        targets = num_noise + num_spans + 1
        return inputs <= inputs_length and targets <= targets_length

    length = 2
    if not fits(length):
        raise InputError(
            f"Feature lengths inputs={inputs_length}, targets={targets_length} are too short "
            "for span corruption."
        )
    while fits(length + 1):
        length += 1
    return length


def chunk_tokens(dataset: tf.data.Dataset, chunk_length: int) -> tf.data.Dataset:
    """Joins the `targets` of consecutive documents and cuts them into `chunk_length` pieces.

    Each group of documents ends in one shorter piece (its leftover tokens), so
    no text is dropped; pieces shorter than 2 tokens are, as they cannot be split.
    """
    if chunk_length < 2:
        raise InputError(f"chunk_length must be at least 2, got {chunk_length}.")
    grouped = dataset.map(lambda ex: ex["targets"]).ragged_batch(_DOCUMENTS_PER_GROUP)

    def split(group: tf.RaggedTensor) -> tf.data.Dataset:
        stream = group.flat_values
        pieces = tf.RaggedTensor.from_row_starts(
            stream, tf.range(0, tf.size(stream, out_type=tf.int64), chunk_length)
        )
        return tf.data.Dataset.from_tensor_slices(pieces)

    chunks = grouped.flat_map(split).filter(lambda piece: tf.size(piece) >= 2)
    return chunks.map(lambda piece: {"targets": piece})


def span_corruption(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int],
    output_features: Mapping[str, seqio.Feature],
    noise_density: float = NOISE_DENSITY,
    mean_noise_span_length: float = MEAN_NOISE_SPAN_LENGTH,
) -> tf.data.Dataset:
    """Tokenised documents -> span-corruption examples that fit `sequence_length`.

    Chunks are as long as `span_corruption_tokens_length` allows, so full
    chunks fill the inputs exactly (including EOS, which seqio appends later).
    """
    length = span_corruption_tokens_length(
        sequence_length["inputs"],
        sequence_length["targets"],
        noise_density,
        mean_noise_span_length,
    )
    return _corrupt_spans(
        chunk_tokens(dataset, length),
        vocabulary=output_features["targets"].vocabulary,
        noise_density=noise_density,
        mean_noise_span_length=mean_noise_span_length,
    )


@seqio.map_over_dataset(num_seeds=1)
def _split_prefix(
    example: Mapping[str, tf.Tensor], seed: tf.Tensor, max_target_tokens: int
) -> dict[str, tf.Tensor]:
    tokens = example["targets"]
    split = tf.random.stateless_uniform([], seed, 1, tf.size(tokens), dtype=tf.int32)
    return {"inputs": tokens[:split], "targets": tokens[split : split + max_target_tokens]}


def prefix_lm(
    dataset: tf.data.Dataset,
    sequence_length: Mapping[str, int],
    output_features: Mapping[str, seqio.Feature],
) -> tf.data.Dataset:
    """Tokenised documents -> prefix-LM examples that fit `sequence_length`.

    Chunks of `inputs - 1` tokens are cut at a point drawn uniformly from
    `1 .. len - 1`; the inputs are the prefix and the targets the next
    `targets - 1` tokens (the rest of a long continuation is not used, so the
    decoder stays short). One position of each feature is left for EOS.
    """
    del output_features
    chunks = chunk_tokens(dataset, sequence_length["inputs"] - 1)
    return _split_prefix(chunks, max_target_tokens=sequence_length["targets"] - 1)

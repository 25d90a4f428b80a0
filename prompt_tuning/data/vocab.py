"""The T5 SentencePiece vocabulary and the seqio output features built on it."""

from __future__ import annotations

import functools
from importlib import resources

import seqio

# T5 appends 100 sentinels (<extra_id_0> ... <extra_id_99>) to the 32,000 pieces;
# checkpoints pad the embedding table further, to 32,128 rows.
EXTRA_IDS = 100
SHIPPED_MODEL = "t5_cc_all.32000.spiece.model"


def default_vocab_path() -> str:
    """Path of the SentencePiece model shipped in `prompt_tuning/assets/vocab/`."""
    return str(resources.files("prompt_tuning") / "assets" / "vocab" / SHIPPED_MODEL)


@functools.cache
def t5_vocabulary(path: str | None = None) -> seqio.SentencePieceVocabulary:
    """The T5 vocabulary (`cc_all.32000` + 100 extra ids: ids 0..32099).

    Args:
      path: a SentencePiece model (local or gs://); None uses the shipped copy.
    """
    return seqio.SentencePieceVocabulary(path or default_vocab_path(), extra_ids=EXTRA_IDS)


def output_features(
    vocabulary: seqio.Vocabulary | None = None,
) -> dict[str, seqio.Feature]:
    """`inputs` and `targets` features, both ending in EOS, as T5 defines them."""
    vocabulary = vocabulary or t5_vocabulary()
    return {
        "inputs": seqio.Feature(vocabulary=vocabulary, add_eos=True, required=False),
        "targets": seqio.Feature(vocabulary=vocabulary, add_eos=True),
    }


def sentinel_id(vocabulary: seqio.Vocabulary, index: int = 0) -> int:
    """Token id of `<extra_id_{index}>`; `<extra_id_0>` is the last id of the vocabulary."""
    return vocabulary.vocab_size - 1 - index

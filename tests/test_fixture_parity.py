"""Acceptance: both real T5X fixtures give the same logits here and in transformers.

Each fixture is loaded with `checkpoints.load` and run through
`prompt_tuning.models.T5`; it is also converted with the CLI to an HF folder
and run through `transformers.T5ForConditionalGeneration`. The two must agree
on a padded batch, float32, within 1e-4.
"""

import numpy as np
import pytest
import torch
import transformers

from prompt_tuning import checkpoints, convert, models

# Padded batch: 0 is padding; decoder inputs start with 0 (BOS) as T5 shifts targets right.
ENCODER_TOKENS = np.array([[37, 423, 215, 1, 0, 0], [8, 1, 0, 0, 0, 0], [3, 9, 29, 7, 5, 1]])
DECODER_TOKENS = np.array([[0, 71, 1, 0], [0, 1, 0, 0], [0, 32127, 4, 1]])


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["t5x/test_t5_1_1_tiny", "t5x/t5x_test_t5_tiny"])
def test_logits_match_transformers_after_convert(fixture, fixtures_dir, tmp_path):
    config, params = checkpoints.load(fixtures_dir / fixture)
    ours = models.T5(config).apply({"params": params}, ENCODER_TOKENS, DECODER_TOKENS)
    assert ours.shape == (*DECODER_TOKENS.shape, config.vocab_size)

    hf_dir = tmp_path / "hf"
    assert (
        convert.main(["--from", str(fixtures_dir / fixture), "--to", str(hf_dir), "--format", "hf"])
        == 0
    )
    model = transformers.T5ForConditionalGeneration.from_pretrained(hf_dir).eval()
    with torch.no_grad():
        theirs = model(
            input_ids=torch.from_numpy(ENCODER_TOKENS),
            attention_mask=torch.from_numpy((ENCODER_TOKENS > 0).astype(np.int64)),
            decoder_input_ids=torch.from_numpy(DECODER_TOKENS),
        ).logits.numpy()

    assert np.isfinite(theirs).all() and np.abs(theirs).max() > 1e-3  # a real, non-trivial output
    np.testing.assert_allclose(np.asarray(ours), theirs, atol=1e-4, rtol=1e-4)

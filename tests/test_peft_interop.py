"""PEFT prompt-tuning adapters: our exports run in PEFT, PEFT's prompts run here, same scores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tiny
import torch
from peft import PeftModel, PromptTuningConfig, TaskType, get_peft_model
from transformers import T5ForConditionalGeneration

from prompt_tuning import checkpoints, convert, evaluation, peft_interop
from prompt_tuning import eval as eval_cli
from prompt_tuning.data import get_task_or_mixture, label_target_ids
from prompt_tuning.models import T5

TASK = "movie_sentiment"
INPUT_LENGTH = 32
NUM_EXAMPLES = 100
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def t5x_checkpoint(tmp_path_factory):
    """A random tiny T5 as a T5X checkpoint (what prompt tuning trains against)."""
    return str(tiny.write_checkpoint(tmp_path_factory.mktemp("t5x"), seed=7))


@pytest.fixture(scope="module")
def hf_dir(t5x_checkpoint, tmp_path_factory):
    """The same model converted to an HF folder with `python -m prompt_tuning.convert`."""
    out = tmp_path_factory.mktemp("hf") / "model"
    assert convert.main(["--from", t5x_checkpoint, "--to", str(out), "--format", "hf"]) == 0
    return str(out)


@pytest.fixture(scope="module")
def examples():
    task = get_task_or_mixture(TASK)
    return evaluation.load_examples(task, "validation", INPUT_LENGTH, NUM_EXAMPLES)


def _hf_base(hf_dir) -> T5ForConditionalGeneration:
    return T5ForConditionalGeneration.from_pretrained(hf_dir, dtype=torch.float32).eval()


def _peft_log_likelihoods(model, examples, label_ids) -> np.ndarray:
    """`[n, num_labels]` label log-likelihoods from PEFT's own forward (torch, unbatched labels)."""
    inputs = np.zeros((len(examples), INPUT_LENGTH), np.int64)
    for i, ex in enumerate(examples):
        inputs[i, : len(ex.inputs)] = ex.inputs
    input_ids = torch.from_numpy(inputs)
    scores = np.zeros((len(examples), len(label_ids)))
    for j, ids in enumerate(label_ids):
        target = torch.tensor([ids] * len(examples))
        decoder_inputs = torch.cat([torch.zeros_like(target[:, :1]), target[:, :-1]], dim=1)
        with torch.no_grad():
            logits = model(
                input_ids=input_ids,
                attention_mask=(input_ids != 0).long(),
                decoder_input_ids=decoder_inputs,
            ).logits
        log_probs = torch.log_softmax(logits.double(), dim=-1)
        scores[:, j] = log_probs.gather(-1, target[..., None])[..., 0].sum(-1).numpy()
    return scores


def test_exported_adapter_in_peft_matches_prompt_tuning_eval(
    t5x_checkpoint, hf_dir, examples, tmp_path
):
    prompt = (
        np.random.default_rng(0).uniform(-0.5, 0.5, (5, tiny.CONFIG.d_model)).astype(np.float32)
    )
    np.save(tmp_path / "prompt.npy", prompt)
    adapter = tmp_path / "adapter"
    assert (
        peft_interop.main(
            [
                "export",
                "--prompt",
                str(tmp_path / "prompt.npy"),
                "--hf_model",
                hf_dir,
                "--out",
                str(adapter),
            ]
        )
        == 0
    )

    argv = [
        "--gin_file=runs/prompt_eval.gin",
        f"--gin.INITIAL_CHECKPOINT_PATH='{t5x_checkpoint}'",
        f"--gin.MIXTURE_OR_TASK_NAME='{TASK}'",
        f"--gin.MODEL_DIR='{tmp_path / 'run'}'",
        f"--gin.PROMPT_FILE='{tmp_path / 'prompt.npy'}'",
        f"--gin.TASK_FEATURE_LENGTHS={{'inputs': {INPUT_LENGTH}, 'targets': 4}}",
        "--gin.ModelSpec.dtype='float32'",
        f"--gin.evaluate.max_examples={NUM_EXAMPLES}",
        "--gin.evaluate.decode_classification=False",
    ]
    assert eval_cli.main(argv) == 0
    lines = (tmp_path / "run" / "eval" / f"{TASK}.validation.predictions.jsonl").read_text()
    records = [json.loads(line) for line in lines.splitlines()]
    assert len(records) == NUM_EXAMPLES
    labels = list(records[0]["scores"])
    ours = np.array([[r["scores"][label] for label in labels] for r in records])

    peft_model = PeftModel.from_pretrained(_hf_base(hf_dir), str(adapter)).eval()
    theirs = _peft_log_likelihoods(peft_model, examples, label_target_ids(TASK))
    np.testing.assert_allclose(ours, theirs, atol=TOLERANCE, rtol=0)
    predictions = [r["prediction"] for r in records]
    assert predictions == [labels[i] for i in theirs.argmax(-1)]
    assert set(predictions) == set(labels)  # both classes occur: not a constant classifier
    # The prompt changes the scores, so the match above is not the bare model's.
    bare = _peft_log_likelihoods(_hf_base(hf_dir), examples, label_target_ids(TASK))
    assert np.abs(bare - theirs).max() > 100 * TOLERANCE


def test_imported_peft_prompt_reproduces_peft_scores(hf_dir, examples, tmp_path):
    torch.manual_seed(0)
    config = PromptTuningConfig(task_type=TaskType.SEQ_2_SEQ_LM, num_virtual_tokens=4)
    peft_model = get_peft_model(_hf_base(hf_dir), config).eval()
    peft_model.save_pretrained(tmp_path / "peft")
    assert (
        peft_interop.main(
            ["import", "--adapter", str(tmp_path / "peft"), "--out", str(tmp_path / "p.npy")]
        )
        == 0
    )
    prompt = np.load(tmp_path / "p.npy")
    assert prompt.shape == (4, tiny.CONFIG.d_model)

    model_config, params = checkpoints.load(hf_dir)
    ids = label_target_ids(TASK)
    ours = evaluation.rank_classify(
        T5(model_config), params, prompt[None], examples, ids, input_length=INPUT_LENGTH
    )[0]
    theirs = _peft_log_likelihoods(peft_model, examples, ids)
    np.testing.assert_allclose(ours, theirs, atol=TOLERANCE, rtol=0)
    np.testing.assert_array_equal(ours.argmax(-1), theirs.argmax(-1))


def test_export_then_import_round_trips_and_records_the_model(hf_dir, tmp_path):
    prompt = np.random.default_rng(1).normal(size=(3, tiny.CONFIG.d_model)).astype(np.float32)
    peft_interop.export_adapter(prompt, hf_dir, str(tmp_path / "a"))
    np.testing.assert_array_equal(peft_interop.import_adapter(str(tmp_path / "a")), prompt)
    config = json.loads((tmp_path / "a" / peft_interop.CONFIG_FILE).read_text())
    assert config["num_virtual_tokens"] == 3
    assert config["token_dim"] == tiny.CONFIG.d_model
    assert config["base_model_name_or_path"] == hf_dir


def test_bad_inputs_name_the_problem(hf_dir, tmp_path):
    with pytest.raises(ValueError, match=r"needs \[N, 16\]"):
        peft_interop.export_adapter(np.zeros((3, 8), np.float32), hf_dir, str(tmp_path / "a"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ValueError, match="not empty"):
        peft_interop.export_adapter(np.zeros((3, 16), np.float32), hf_dir, str(tmp_path / "full"))
    lora = tmp_path / "lora"
    lora.mkdir()
    (lora / peft_interop.CONFIG_FILE).write_text(
        json.dumps({"peft_type": "LORA", "task_type": "SEQ_2_SEQ_LM"})
    )
    with pytest.raises(ValueError, match="only seq2seq prompt tuning"):
        peft_interop.import_adapter(str(lora))
    with pytest.raises(SystemExit, match=r"peft_interop: error: .*adapter_config\.json"):
        peft_interop.main(
            ["import", "--adapter", str(tmp_path / "missing"), "--out", str(tmp_path / "p.npy")]
        )

"""Soft prompts to and from Hugging Face PEFT prompt-tuning adapters.

    python -m prompt_tuning.peft_interop export --prompt P.npy --hf_model DIR --out ADAPTER
    python -m prompt_tuning.peft_interop import --adapter ADAPTER --out P.npy

An adapter folder holds `adapter_config.json` (a `PromptTuningConfig`) and
`adapter_model.safetensors` with one tensor, `prompt_embeddings`
`[num_transformer_submodules * N, d]`. For seq2seq models PEFT allocates two
blocks of N rows (encoder, decoder) but its prompt-tuning forward prepends only
the first block to the encoder input, which is exactly where our `[N, d]`
prompt goes (`prompt_position='prefix'`); the decoder block is never read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from prompt_tuning import prompts
from prompt_tuning.checkpoints import CheckpointError, hf, hf_files
from prompt_tuning.errors import InputError, ToolExit

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
TORCH_WEIGHTS_FILE = "adapter_model.bin"
PROMPT_KEY = "prompt_embeddings"
# Encoder and decoder: what PEFT allocates for SEQ_2_SEQ_LM prompt tuning.
SEQ2SEQ_SUBMODULES = 2


def adapter_config(
    num_virtual_tokens: int, hf_config: dict[str, Any], base_model: str
) -> dict[str, Any]:
    """The `adapter_config.json` of a seq2seq prompt-tuning adapter for an HF T5 model.

    Args:
      num_virtual_tokens: prompt length N.
      hf_config: the model's parsed `config.json`.
      base_model: recorded as `base_model_name_or_path`.
    """
    config = hf.config_from_hf_dict(hf_config)
    return {
        "peft_type": "PROMPT_TUNING",
        "task_type": "SEQ_2_SEQ_LM",
        "inference_mode": True,
        "num_virtual_tokens": num_virtual_tokens,
        "token_dim": config.d_model,
        "num_transformer_submodules": SEQ2SEQ_SUBMODULES,
        "num_attention_heads": config.num_heads,
        "num_layers": config.num_encoder_layers,
        # The learned values replace any initialisation; RANDOM needs no tokenizer.
        "prompt_tuning_init": "RANDOM",
        "prompt_tuning_init_text": None,
        "tokenizer_name_or_path": None,
        "tokenizer_kwargs": None,
        "base_model_name_or_path": base_model,
        "revision": None,
        "modules_to_save": None,
    }


def export_adapter(prompt: np.ndarray, hf_model_dir: str, out_dir: str) -> str:
    """Writes `prompt` `[N, d]` as a PEFT adapter folder for the HF T5 model in `hf_model_dir`.

    The decoder block of `prompt_embeddings` (unused by PEFT's prompt-tuning
    forward) is written as zeros.

    Returns:
      `out_dir`.

    Raises:
      ValueError: when the prompt width differs from the model's `d_model` or
        `out_dir` is a non-empty folder.
    """
    config = adapter_config(prompt.shape[0], hf_files.read_config(hf_model_dir), hf_model_dir)
    if prompt.ndim != 2 or prompt.shape[1] != config["token_dim"]:
        raise InputError(
            f"Prompt shape {prompt.shape} does not fit {hf_model_dir}: "
            f"it needs [N, {config['token_dim']}] (d_model)."
        )
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise InputError(f"Adapter folder {out_dir} exists and is not empty.")
    os.makedirs(out_dir, exist_ok=True)
    rows = np.zeros((SEQ2SEQ_SUBMODULES * prompt.shape[0], prompt.shape[1]), np.float32)
    rows[: prompt.shape[0]] = prompt
    save_file({PROMPT_KEY: rows}, os.path.join(out_dir, WEIGHTS_FILE), metadata={"format": "pt"})
    with open(os.path.join(out_dir, CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=2)
    return out_dir


def import_adapter(adapter_dir: str) -> np.ndarray:
    """The encoder prompt `[N, d]` (float32) of a PEFT seq2seq prompt-tuning adapter folder.

    Reads `adapter_model.safetensors`, or `adapter_model.bin` from older PEFT.

    Raises:
      ValueError: naming the file when the adapter is not seq2seq prompt tuning
        or its tensor does not match its config.
    """
    config = _read_adapter_config(adapter_dir)
    embeddings = _read_prompt_embeddings(adapter_dir)
    n, width = config["num_virtual_tokens"], config.get("token_dim")
    if embeddings.ndim != 2 or embeddings.shape[0] < n or width not in (None, embeddings.shape[1]):
        raise InputError(
            f"{adapter_dir}: {PROMPT_KEY} has shape {embeddings.shape}, which does not hold "
            f"num_virtual_tokens={n} rows of token_dim={width}."
        )
    return embeddings[:n].astype(np.float32)


def _read_adapter_config(adapter_dir: str) -> dict[str, Any]:
    path = os.path.join(adapter_dir, CONFIG_FILE)
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read the adapter config ({e}).") from e
    found = (config.get("peft_type"), config.get("task_type"))
    if found != ("PROMPT_TUNING", "SEQ_2_SEQ_LM"):
        raise InputError(
            f"{path}: peft_type/task_type are {found}; only seq2seq prompt tuning "
            "('PROMPT_TUNING', 'SEQ_2_SEQ_LM') carries a T5 encoder prompt."
        )
    if not isinstance(config.get("num_virtual_tokens"), int):
        raise InputError(f"{path}: num_virtual_tokens is missing or not an integer.")
    return config


def _read_prompt_embeddings(adapter_dir: str) -> np.ndarray:
    safetensors_path = os.path.join(adapter_dir, WEIGHTS_FILE)
    torch_path = os.path.join(adapter_dir, TORCH_WEIGHTS_FILE)
    if os.path.isfile(safetensors_path):
        path, tensors = safetensors_path, load_file(safetensors_path)
    elif os.path.isfile(torch_path):
        import torch

        path = torch_path
        loaded = torch.load(torch_path, map_location="cpu", weights_only=True)
        tensors = {k: v.float().numpy() for k, v in loaded.items()}
    else:
        raise InputError(f"{adapter_dir}: has neither {WEIGHTS_FILE} nor {TORCH_WEIGHTS_FILE}.")
    if PROMPT_KEY not in tensors:
        raise InputError(f"{path}: no tensor {PROMPT_KEY!r}; found {sorted(tensors)}.")
    return tensors[PROMPT_KEY]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m prompt_tuning.peft_interop",
        description="Convert soft prompts (.npy) to and from HF PEFT prompt-tuning adapters.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write a .npy prompt as a PEFT adapter folder")
    export.add_argument("--prompt", required=True, help="[N, d] prompt .npy")
    export.add_argument("--hf_model", required=True, help="HF T5 folder the adapter is for")
    export.add_argument("--out", required=True, help="adapter folder to write (new or empty)")
    imported = commands.add_parser("import", help="write a PEFT adapter's prompt as .npy")
    imported.add_argument("--adapter", required=True, help="PEFT adapter folder")
    imported.add_argument("--out", required=True, help=".npy file to write")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (errors exit with one message)."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "export":
            written = export_adapter(prompts.load_prompt(args.prompt), args.hf_model, args.out)
        else:
            np.save(args.out, import_adapter(args.adapter))
            written = args.out
    except (ValueError, FileNotFoundError, CheckpointError) as e:
        raise ToolExit("peft_interop", e) from e
    print(f"Wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

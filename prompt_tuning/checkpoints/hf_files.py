"""Hugging Face model folders as files: `config.json` plus the weight files.

Reads `model.safetensors`, sharded safetensors (`model.safetensors.index.json`),
`pytorch_model.bin` and sharded `.bin` (`pytorch_model.bin.index.json`) as
`LazyArray`s under their HF names; writes `config.json` + `model.safetensors`
(or `pytorch_model.bin`). What the names and config keys mean lives in
`checkpoints/hf.py`; `save_hf` only chains that mapping with `write_hf`.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from typing import Any, Literal

import ml_dtypes
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from prompt_tuning.checkpoints import hf, paths
from prompt_tuning.checkpoints.errors import CheckpointError
from prompt_tuning.checkpoints.lazy import Index, LazyArray
from prompt_tuning.models.config import T5Config

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
PYTORCH_FILE = "pytorch_model.bin"
# (single file, index of a sharded checkpoint), in order of preference.
_WEIGHT_LAYOUTS = (
    (SAFETENSORS_FILE, "model.safetensors.index.json"),
    (PYTORCH_FILE, "pytorch_model.bin.index.json"),
)
WeightFormat = Literal["safetensors", "pytorch"]


def is_hf_dir(path: paths.PathLike) -> bool:
    """Whether `path` looks like an HF model folder (it has `config.json`)."""
    return paths.as_epath(paths.join(path, CONFIG_FILE)).is_file()


def read_config(model_dir: paths.PathLike) -> dict[str, Any]:
    """The parsed `config.json` of an HF model folder."""
    location = paths.join(model_dir, CONFIG_FILE)
    try:
        return json.loads(paths.as_epath(location).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{location}: cannot read the HF config ({e}).") from e


def read_weights(model_dir: paths.PathLike) -> dict[str, LazyArray]:
    """Opens every tensor of an HF model folder without reading it.

    Returns:
      `{hf_name: LazyArray}`; a region read touches only that region's bytes
      (safetensors and `torch.load(mmap=True)` both memory-map the files).

    Raises:
      CheckpointError: when no weight file is found or one is unreadable.
    """
    location = paths.normalize(model_dir)
    for single, index in _WEIGHT_LAYOUTS:
        if paths.as_epath(paths.join(location, single)).is_file():
            return _open_file(location, single)
        if paths.as_epath(paths.join(location, index)).is_file():
            return _open_sharded(location, index)
    looked_for = ", ".join(name for layout in _WEIGHT_LAYOUTS for name in layout)
    raise CheckpointError(
        f"{location}: has {CONFIG_FILE} but no weights (looked for {looked_for})."
    )


def _open_sharded(model_dir: str, index_name: str) -> dict[str, LazyArray]:
    index_path = paths.join(model_dir, index_name)
    try:
        weight_map = json.loads(paths.as_epath(index_path).read_text())["weight_map"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"{index_path}: not a sharded-weights index ({e}).") from e
    tensors = {}
    for shard in sorted(set(weight_map.values())):
        opened = _open_file(model_dir, shard)
        tensors.update({k: v for k, v in opened.items() if weight_map.get(k) == shard})
    missing = sorted(set(weight_map) - set(tensors))
    if missing:
        raise CheckpointError(
            f"{index_path}: tensors listed but absent from their shard: {missing}."
        )
    return tensors


def _open_file(model_dir: str, name: str) -> dict[str, LazyArray]:
    path = _local_copy(paths.join(model_dir, name))
    try:
        if name.endswith(".safetensors"):
            return _open_safetensors(path)
        return _open_torch(path)
    except Exception as e:  # safetensors / torch raise several types on bad files
        raise CheckpointError(
            f"{paths.join(model_dir, name)}: unreadable weight file ({e})."
        ) from e


def _local_copy(path: str) -> str:
    """Local path of a weight file; `gs://` files are first copied to a temp folder.

    Both safetensors and torch memory-map local files only.
    """
    if not paths.is_gcs(path):
        return path
    folder = tempfile.mkdtemp(prefix="hf_weights_")
    atexit.register(shutil.rmtree, folder, True)
    local = os.path.join(folder, os.path.basename(path))
    paths.as_epath(path).copy(local)
    return local


def _open_safetensors(path: str) -> dict[str, LazyArray]:
    handle = safe_open(path, framework="np")
    tensors = {}
    for key in handle.keys():  # noqa: SIM118 (safe_open is not a Mapping)
        view = handle.get_slice(key)
        shape = tuple(view.get_shape())
        # An empty region gives the numpy dtype (bfloat16 via ml_dtypes) for free.
        dtype = view[tuple(slice(0, 0) for _ in shape)].dtype
        tensors[key] = LazyArray(f"{key} ({path})", shape, dtype, functools.partial(_slice, view))
    return tensors


def _slice(view: Any, index: Index) -> np.ndarray:
    return view[index]


def _open_torch(path: str) -> dict[str, LazyArray]:
    import torch  # only pytorch_model.bin needs torch

    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if not isinstance(state, Mapping):
        raise TypeError(f"it holds a {type(state).__name__}, not a state dict")
    return {
        key: LazyArray(
            f"{key} ({path})",
            tuple(tensor.shape),
            _torch_to_numpy(tensor.reshape(-1)[:0]).dtype,
            functools.partial(_torch_region, tensor),
        )
        for key, tensor in state.items()
    }


def _torch_region(tensor: Any, index: Index) -> np.ndarray:
    return _torch_to_numpy(tensor[index])


def _torch_to_numpy(tensor: Any) -> np.ndarray:
    import torch

    tensor = tensor.detach().contiguous()
    if tensor.dtype == torch.bfloat16:  # numpy has no bfloat16: reinterpret the bits
        return tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return tensor.numpy()


def _numpy_to_torch(array: np.ndarray) -> Any:
    import torch

    array = np.ascontiguousarray(array)
    if array.dtype == ml_dtypes.bfloat16:
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(array)


def write_hf(
    config: Mapping[str, Any],
    tensors: Mapping[str, Any],
    out_dir: paths.PathLike,
    weights: WeightFormat = "safetensors",
) -> str:
    """Writes an HF model folder: the weights, then `config.json`.

    Args:
      config: the `config.json` contents.
      tensors: `{hf_name: array}`.
      out_dir: the new folder; must not exist yet.
      weights: `"safetensors"` (`model.safetensors`, the HF default) or
        `"pytorch"` (`pytorch_model.bin`, the legacy format).

    Returns:
      The normalised `out_dir`.
    """
    final = paths.normalize(out_dir)
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    with paths.staged_directory(final) as staging:
        if weights == "safetensors":
            _write_local(
                staging, SAFETENSORS_FILE, lambda f: save_file(arrays, f, metadata={"format": "pt"})
            )
        elif weights == "pytorch":
            import torch

            state = {k: _numpy_to_torch(v) for k, v in arrays.items()}
            _write_local(staging, PYTORCH_FILE, lambda f: torch.save(state, f))
        else:
            raise CheckpointError(f"{final}: unknown weight format {weights!r}.")
        # Last: on GCS the config file marks the folder complete.
        paths.as_epath(paths.join(staging, CONFIG_FILE)).write_text(
            json.dumps(dict(config), indent=2, sort_keys=True) + "\n"
        )
    return final


def _write_local(folder: str, name: str, write: Any) -> None:
    """Runs `write(local_file)`, then uploads the file when `folder` is on GCS."""
    if not paths.is_gcs(folder):
        write(os.path.join(folder, name))
        return
    with tempfile.TemporaryDirectory() as scratch:
        local = os.path.join(scratch, name)
        write(local)
        paths.as_epath(local).copy(paths.as_epath(paths.join(folder, name)))


def save_hf(
    config: T5Config,
    params: Mapping[str, Any],
    out_dir: paths.PathLike,
    weights: WeightFormat = "safetensors",
) -> str:
    """Writes T5X-named `params` as an HF T5 folder loadable by `T5ForConditionalGeneration`.

    Args:
      config: the architecture of `params`.
      params: nested dict of arrays with T5X names.
      out_dir: the new folder; must not exist yet.
      weights: `"safetensors"` (default) or `"pytorch"` (`pytorch_model.bin`).

    Returns:
      The normalised `out_dir`.
    """
    return write_hf(
        hf.hf_dict_from_config(config),
        hf.hf_state_dict_from_params(params, config),
        out_dir,
        weights,
    )

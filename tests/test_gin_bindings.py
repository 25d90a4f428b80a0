"""Every binding in gin/ reaches what it configures (issue #19).

Two halves decide it. A binding of a function's parameter (`train.save_every`,
`make_mesh.mesh_shape`, `class_labels_init.labels`, ...) reaches code that reads it,
because ruff's ARG rules (pyproject.toml, run by `make lint`) fail on a parameter
that a function never reads. A binding of a spec's field (`DataSpec.batch_size`,
`CodaPrompt.ortho_weight`, ...) reaches nothing unless the job that receives the
spec reads that field: here each job runs on the tiny model with the shipped gin
files, the specs record which of their fields are read, and every field those
files bind must be among them.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

import gin
import jax
import numpy as np
import pytest
import tiny
from test_evaluation import _common
from test_train import tiny_run_bindings

from prompt_tuning import experiment, gin_utils, methods, specs, trainer
from prompt_tuning import pretrain as pretrain_job  # noqa: F401  (registers get_config)
from prompt_tuning.checkpoints import save_t5x
from prompt_tuning.models import get_config, init_params
from prompt_tuning.pretraining import full_training

GIN_DIR = pathlib.Path(gin_utils.SHIPPED_GIN_DIR)
SPECS = (
    specs.ModelSpec,
    specs.PromptSpec,
    specs.DataSpec,
    trainer.LossConfig,
    *(getattr(methods, name) for name in methods.__all__ if name[0].isupper()),
)
SPEC_NAMES = {cls.__name__ for cls in SPECS if dataclasses.is_dataclass(cls)}
METHOD_FILES = sorted(p.name for p in (GIN_DIR / "methods").glob("*.gin"))


def bound_fields(*files: str) -> set[str]:
    """`Spec.field` of every spec-field binding written in these gin files."""
    found = set()
    for name in files:
        for match in re.finditer(r"^(\w+)\.(\w+)\s*=", (GIN_DIR / name).read_text(), re.M):
            if match.group(1) in SPEC_NAMES:
                found.add(f"{match.group(1)}.{match.group(2)}")
    return found


@pytest.fixture
def field_reads(monkeypatch) -> set[str]:
    """`Spec.field` of every spec field read from here on."""
    reads: set[str] = set()
    for cls in SPECS:
        if not dataclasses.is_dataclass(cls):
            continue
        fields = {f.name for f in dataclasses.fields(cls)}
        original = cls.__getattribute__

        def read(self, name, _cls=cls, _fields=fields, _original=original):
            if name in _fields:
                reads.add(f"{_cls.__name__}.{name}")
            return _original(self, name)

        monkeypatch.setattr(cls, "__getattribute__", read)
    return reads


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny.write_checkpoint(tmp_path_factory.mktemp("ckpt"))


def _run(job, files: list[str], bindings: list[str]) -> None:
    gin_utils.parse(files, bindings)
    try:
        job(print_fn=lambda _: None)
    finally:
        gin.clear_config()


def _flags_to_bindings(flags: list[str]) -> list[str]:
    return [flag.removeprefix("--gin.").replace("=", " = ", 1) for flag in flags]


def test_a_spec_field_that_no_job_reads_is_caught(field_reads):
    """The check can fail: a field bound in gin but never read is reported."""
    spec = specs.DataSpec(mixture_or_task_name="t", task_feature_lengths={}, batch_size=4)
    assert spec.mixture_or_task_name == "t"
    assert field_reads == {"DataSpec.mixture_or_task_name"}
    assert "DataSpec.batch_size" not in field_reads


@pytest.mark.slow
@pytest.mark.parametrize("method_file", METHOD_FILES)
def test_train_reads_every_field_its_gin_files_bind(tmp_path, checkpoint, field_reads, method_file):
    files = ["runs/prompt_finetune.gin", "prompts/random_uniform.gin", f"methods/{method_file}"]
    _run(experiment.train, files, tiny_run_bindings(tmp_path / "run", checkpoint, 2, 4, 2))
    for name in (GIN_DIR / "prompts").glob("*.gin"):  # each sets PromptSpec.init, read above
        files.append(f"prompts/{name.name}")
    assert bound_fields(*files) <= field_reads, bound_fields(*files) - field_reads


@pytest.mark.slow
@pytest.mark.parametrize("job", ["eval", "infer"])
def test_eval_and_infer_read_every_field_their_gin_file_binds(
    tmp_path, checkpoint, field_reads, job
):
    prompt = tmp_path / "prompt.npy"
    np.save(prompt, np.zeros((5, tiny.CONFIG.d_model), np.float32))
    bindings = [*_flags_to_bindings(_common(checkpoint, tmp_path)), f"PROMPT_FILE = '{prompt}'"]
    run = experiment.evaluate if job == "eval" else experiment.infer
    _run(run, [f"runs/prompt_{job}.gin"], bindings)
    files = [f"runs/prompt_{job}.gin"] + [f"models/{p.name}" for p in GIN_DIR.glob("models/*.gin")]
    assert bound_fields(*files) <= field_reads, bound_fields(*files) - field_reads


@pytest.mark.slow
def test_model_tuning_reads_every_field_its_gin_file_binds(tmp_path, field_reads):
    config = get_config("t5_1_1_tiny")
    params = jax.tree.map(np.asarray, init_params(config, jax.random.key(0)))
    start = save_t5x(params, str(tmp_path / "start"), 0)
    bindings = [
        f"MODEL_DIR = '{tmp_path / 'run'}'",
        f"INITIAL_CHECKPOINT_PATH = '{start}'",
        f"MIXTURE_OR_TASK_NAME = '{tiny.TASK}'",
        "TASK_FEATURE_LENGTHS = {'inputs': 16, 'targets': 4}",
        "TRAIN_STEPS = 2",
        "BATCH_SIZE = 4",
        "get_config.name = 't5_1_1_tiny'",
    ]
    _run(full_training.pretrain, ["runs/model_finetune.gin"], bindings)
    fields = bound_fields("runs/model_finetune.gin")
    assert fields and fields <= field_reads, fields - field_reads

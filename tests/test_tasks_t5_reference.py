"""T5's task names resolve here, and every shared task formats exactly as the t5 library does.

The differential test feeds the hand-written raw examples of
`t5_reference_examples` through the t5 library's registered tasks (in a
subprocess, `t5_reference.py`: both register the same seqio names) and through
this project's task of the same name, and requires identical `inputs` /
`targets` text and token ids. MRQA, absent from the t5 library, is compared
with the original prompt-tuning recipe run on t5's own helpers.
"""

from __future__ import annotations

import importlib.util
import pathlib
import pickle
import subprocess
import sys

import pytest
import seqio
import t5_reference_examples as raw
from tasks_helpers import run_on

import prompt_tuning.tasks  # noqa: F401  (registers the tasks)
from prompt_tuning.data import get_task_or_mixture
from prompt_tuning.data.readers import MRQA_FILES

HERE = pathlib.Path(__file__).resolve().parent
KEYS = ("inputs_pretokenized", "targets_pretokenized", "inputs", "targets")

_SUPER_GLUE = ("boolq", "cb", "copa", "multirc", "record", "rte", "wic", "axb", "axg")
_GLUE = ("ax", "cola", "mnli", "mnli_matched", "mnli_mismatched", "mrpc", "qnli", "qqp", "rte")
# Every task the t5 library (0.9.4) registers for GLUE, SuperGLUE and SQuAD.
T5_NAMES = (
    *(f"glue_{config}_v002" for config in (*_GLUE, "sst2", "stsb", "wnli")),
    "glue_wnli_v002_simple_eval",
    *(f"super_glue_{task}_v102" for task in _SUPER_GLUE),
    *(f"super_glue_{task}_v102_1_sentinel" for task in _SUPER_GLUE),
    "super_glue_wsc_v102_simple_train",
    "super_glue_wsc_v102_simple_eval",
    "super_glue_wsc_v102_simple_1_sentinel_train",
    "super_glue_wsc_v102_simple_1_sentinel_eval",
    "squad_v010",
    "squad_v010_allanswers",
    "squad_v010_allanswers_span",
    "squad_v010_context_free",
)


@pytest.mark.parametrize("name", T5_NAMES)
def test_t5_names_resolve(name):
    assert isinstance(get_task_or_mixture(name), seqio.Task)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[str, list[dict]]:
    """The t5 library's outputs, by task name (see t5_reference.py)."""
    if importlib.util.find_spec("t5") is None:
        pytest.skip(
            "the t5 library is not installed: `make install` installs it "
            "(pip install --no-deps t5==0.9.4 plus the `t5` extra of setup.py)"
        )
    out = tmp_path_factory.mktemp("t5") / "reference.pkl"
    subprocess.run(
        [sys.executable, str(HERE / "t5_reference.py"), str(out)],
        check=True,
        cwd=HERE,
    )
    with out.open("rb") as f:
        return pickle.load(f)


def _ours(name: str, dataset: str) -> list[dict]:
    return [
        {
            key: (value if isinstance(value, bytes) else value.tolist())
            for key, value in ex.items()
            if key in KEYS
        }
        for ex in run_on(name, raw.dataset(dataset))
    ]


def test_the_list_is_every_t5_registration(reference):
    t5_names = set(reference) - {"mrqa_reference"}
    assert t5_names == set(T5_NAMES)


@pytest.mark.parametrize("name", T5_NAMES)
def test_same_inputs_and_targets_as_t5(name, reference):
    dataset = raw.tfds_name(seqio.get_mixture_or_task(name).source.tfds_name)
    assert _ours(name, dataset) == reference[name]


@pytest.mark.parametrize("config", sorted(MRQA_FILES))
def test_mrqa_formats_like_t5_helpers(config, reference):
    assert _ours(f"mrqa_{config}_v100", "mrqa/squad") == reference["mrqa_reference"]

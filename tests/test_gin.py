"""The shipped gin files: complete, composable in any order, and clear when wrong."""

import itertools
import pathlib
import re

import gin
import pytest

from prompt_tuning import experiment, gin_utils  # noqa: F401  (registers the configurables)
from prompt_tuning.models import CONFIGS

GIN_DIR = pathlib.Path(gin_utils.SHIPPED_GIN_DIR)
COMPONENTS = ("models", "prompts", "runs", "hardware")


def _macros_defined(path: pathlib.Path) -> set[str]:
    return {
        m.group(1) for m in re.finditer(r"^([A-Z][A-Z0-9_]*)\s*=", path.read_text(), flags=re.M)
    }


def test_every_named_size_has_a_model_file_and_back():
    files = {p.stem for p in (GIN_DIR / "models").glob("*.gin")}
    assert set(CONFIGS) <= files
    for stem in files:
        text = (GIN_DIR / "models" / f"{stem}.gin").read_text()
        name = re.search(r"ModelSpec\.name = '([^']+)'", text)
        if name:
            assert name.group(1) == stem and stem in CONFIGS


def test_required_component_files_exist():
    for name in ("random_uniform", "sampled_vocab", "class_labels", "from_text", "from_file"):
        assert (GIN_DIR / "prompts" / f"{name}.gin").is_file()
    for name in ("prompt_finetune", "prompt_eval", "prompt_infer"):
        assert (GIN_DIR / "runs" / f"{name}.gin").is_file()
    assert len(list((GIN_DIR / "hardware").glob("*.gin"))) >= 5


def test_no_macro_is_defined_by_two_component_kinds():
    """A macro set in models/ and in runs/ would make the result depend on file order."""
    owner: dict[str, str] = {}
    for component in COMPONENTS:
        for path in (GIN_DIR / component).glob("*.gin"):
            for macro in _macros_defined(path):
                assert owner.setdefault(macro, component) == component, (
                    f"{macro} is set in both {owner[macro]}/ and {component}/"
                )


def _operative_bindings(files, bindings):
    gin_utils.parse(files, bindings)
    try:
        return gin.config_str()
    finally:
        gin.clear_config()


def test_component_files_compose_in_any_order():
    files = [
        "runs/prompt_finetune.gin",
        "models/t5_1_1_lm100k_base.gin",
        "prompts/class_labels.gin",
        "hardware/gpu_8.gin",
    ]
    bindings = ["MODEL_DIR='/tmp/x'", "MIXTURE_OR_TASK_NAME='rte'"]
    reference = _operative_bindings(files, bindings)
    for order in itertools.permutations(files):
        assert _operative_bindings(list(order), bindings) == reference


def test_unknown_binding_lists_nearest_names():
    with pytest.raises(gin_utils.GinConfigError, match=r"train\.train_steps"):
        gin_utils.parse(["runs/prompt_finetune.gin"], ["train.trian_steps = 3"])
    with pytest.raises(gin_utils.GinConfigError, match=r"Nearest valid names: .*PromptSpec"):
        gin_utils.parse(["runs/prompt_finetune.gin"], ["PromptSpek.length = 3"])


def test_unset_macro_is_reported_before_running():
    with pytest.raises(gin_utils.GinConfigError, match="INITIAL_CHECKPOINT_PATH"):
        gin_utils.parse(
            ["runs/prompt_finetune.gin", "prompts/random_uniform.gin"],
            ["MODEL_DIR='/tmp/x'", "MIXTURE_OR_TASK_NAME='rte'"],
        )


def test_missing_gin_file_names_the_search_paths():
    with pytest.raises(gin_utils.GinConfigError, match="not found"):
        gin_utils.parse(["runs/no_such_run.gin"])


def test_flags_parse_like_t5x():
    args = gin_utils.parse_flags(
        ["--gin_file=a.gin", "--gin_file=b.gin", "--gin.TRAIN_STEPS=5", "--gin_search_paths=x,y"]
    )
    assert args.gin_file == ["a.gin", "b.gin"]
    assert args.gin_bindings == ["TRAIN_STEPS = 5"]
    assert args.gin_search_paths == ["x", "y"]

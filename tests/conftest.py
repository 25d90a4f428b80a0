"""Shared test set-up: 8 virtual CPU devices, so sharded paths run anywhere."""

import os
import pathlib

# Must happen before JAX initialises its backends.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

# The jobs' tests look tasks up by name, as the entry points do after this import.
import prompt_tuning.tasks  # noqa: F401

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> pathlib.Path:
    """`../shared/fixtures`: real T5X checkpoints, the T5 vocabulary, real prompts."""
    if not FIXTURES.is_dir():
        pytest.fail(f"{FIXTURES} is missing: tests expect ../shared beside the repository.")
    return FIXTURES


@pytest.fixture(scope="session")
def vocab(fixtures_dir):
    """The real T5 SentencePiece model with T5's 100 extra ids (32128 with padding)."""
    import seqio

    return seqio.SentencePieceVocabulary(
        str(fixtures_dir / "vocab" / "t5_cc_all.32000.spiece.model"), extra_ids=100
    )


@pytest.fixture(autouse=True)
def _fresh_gin():
    """Each test starts and ends with an empty, unlocked gin config.

    gin_utils.parse finalizes (locks) the config; a module that registers gin
    configurables when first imported would otherwise fail in a later test.
    """
    import gin

    gin.clear_config()
    yield
    gin.clear_config()

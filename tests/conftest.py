"""Shared test set-up: 8 virtual CPU devices, so sharded paths run anywhere."""

import os
import pathlib

# Must happen before JAX initialises its backends.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> pathlib.Path:
    """`../shared/fixtures`: real T5X checkpoints, the T5 vocabulary, real prompts."""
    if not FIXTURES.is_dir():
        pytest.fail(f"{FIXTURES} is missing: tests expect ../shared beside the repository.")
    return FIXTURES

"""Installs `prompt_tuning`, its SeqIO task registrations and its gin files."""

import pathlib
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py


class BuildPyWithGin(build_py):
    """Copies the top-level gin/ folder into the package as `prompt_tuning/gin_configs`.

    gin/ is deliberately not a Python package: with the repository root on
    sys.path, a package named `gin` would shadow gin-config itself.
    """

    def run(self):
        super().run()
        target = pathlib.Path(self.build_lib) / "prompt_tuning" / "gin_configs"
        shutil.copytree("gin", target, dirs_exist_ok=True)


CORE = [
    "jax>=0.7",
    "flax>=0.11",
    "optax",
    "orbax-checkpoint",
    "tensorstore",
    "seqio",
    "tensorflow-datasets",
    "gin-config",
    "sentencepiece",
    "safetensors",
    "etils[epath]",
    "msgpack",
]

EXTRAS = {
    # torch is pinned to the CPU build on disk here; on a new machine install it from
    # PyTorch's CPU index first (see README) so pip does not pull CUDA wheels.
    "test": [
        "pytest",
        "pytest-xdist",
        "torch==2.13.0",
        "transformers",
        "peft",
        "nbclient",
        "nbformat",
        "ipykernel",
        "matplotlib",
        "ruff==0.17.6",  # pinned: `make lint` in CI checks its exact formatting
    ],
    # What the t5 library's data modules import, for tests/test_tasks_t5_reference.py.
    # t5 itself is installed by `make install` with --no-deps: its requirements
    # (seqio-nightly, tfds-nightly, mesh-tensorflow) would replace seqio and TFDS.
    "t5": ["babel", "rouge-score", "sacrebleu", "scikit-learn"],
    "gpu": ["jax[cuda12]"],
}

setup(
    name="prompt_tuning",
    version="0.1.0",
    description="Prompt tuning of T5 (Lester et al. 2021) on current JAX / Flax.",
    long_description=pathlib.Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    # tasks/ and gin/ live at the top of the repository but install *inside* the
    # package, so nothing called `tasks` or `gin` leaks into site-packages.
    packages=[*find_packages(include=["prompt_tuning", "prompt_tuning.*"]), "prompt_tuning.tasks"],
    package_dir={"prompt_tuning.tasks": "tasks"},
    package_data={
        "prompt_tuning.tasks": ["data/**/*"],
        "prompt_tuning": ["assets/**/*"],
    },
    cmdclass={"build_py": BuildPyWithGin},
    install_requires=CORE,
    extras_require=EXTRAS,
)

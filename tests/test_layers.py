"""The layout's rules: the library imports neither the tasks nor gin; the entry points do."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "prompt_tuning"
# The jobs and what parses their gin files; everything else is library.
JOB_MODULES = {
    "prompt_tuning.cli",
    "prompt_tuning.configurables",
    "prompt_tuning.experiment",
    "prompt_tuning.gin_utils",
    "prompt_tuning.pretraining.full_training",
    "prompt_tuning.specs",
}


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"))
    return found


def _imports(tree: ast.Module) -> set[str]:
    """Every module a file imports, at any depth, with `from a import b` also as `a.b`."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _is_entry_point(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body
    )


def test_only_entry_points_import_the_tasks():
    modules = _modules()
    importers = {
        name
        for name, tree in modules.items()
        if any(i.startswith("prompt_tuning.tasks") for i in _imports(tree))
    }
    assert importers
    assert {name for name in importers if not _is_entry_point(modules[name])} == set()


def test_gin_only_at_the_job_layer():
    leaks = {
        name
        for name, tree in _modules().items()
        if "gin" in _imports(tree) and name not in JOB_MODULES and not _is_entry_point(tree)
    }
    assert leaks == set()


def test_importing_the_library_and_its_bundled_data_registers_no_task():
    code = (
        "import sys\n"
        "from prompt_tuning import experiment, fairness_data, gin_utils\n"
        "from prompt_tuning.data import bundled\n"
        "assert bundled.bundled_dir('sentiment').is_dir()\n"
        "assert 'prompt_tuning.tasks' not in sys.modules, 'a library module imported the tasks'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]

"""notebooks/quickstart.ipynb runs from top to bottom (a short training run)."""

import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"


@pytest.mark.slow
def test_quickstart_notebook_executes(tmp_path, monkeypatch):
    monkeypatch.setenv("QUICKSTART_STEPS", "10")
    monkeypatch.setenv("PROMPT_TUNING_CACHE", str(tmp_path / "cache"))
    # One CPU device in the kernel: the notebook is what a user runs on a laptop.
    monkeypatch.setenv("XLA_FLAGS", "")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", cwd=str(tmp_path)).execute()
    outputs = "".join(
        out.get("text", "") for cell in notebook.cells for out in cell.get("outputs", [])
    )
    assert "prompt[ 0]:" in outputs
    assert "among the nearest tokens" in outputs
    assert any(
        "image/png" in out.get("data", {})
        for cell in notebook.cells
        for out in cell.get("outputs", [])
    )

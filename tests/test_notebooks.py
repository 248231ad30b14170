"""The analysis notebooks run top to bottom, and the committed copies carry their outputs.

Each notebook is executed with nbclient in a temporary copy (the committed file is never
rewritten). The kernel is this interpreter's own ipykernel, whatever kernel specs the machine
has installed. Notebooks find the repository root by walking up from their working directory,
so they are run from notebooks/ (as Jupyter does) and one of them from the repository root too.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient


def _root() -> Path:
    here = Path(__file__).resolve()
    for folder in here.parents:
        if (folder / "pyproject.toml").is_file():
            return folder
    raise RuntimeError(f"no pyproject.toml above {here}")


ROOT = _root()
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300
MAX_BYTES = 1_500_000


class CurrentPythonKernel(KernelManager):
    """A kernel manager that starts `sys.executable -m ipykernel_launcher`, so the notebooks
    run against this environment's packages and not a kernel spec found elsewhere."""

    @property
    def kernel_spec(self) -> KernelSpec:
        return KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                          display_name="Python 3 (ipykernel)", language="python")


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3, f"expected at least three notebooks in {NOTEBOOK_DIR}"


CASES = [pytest.param(nb, NOTEBOOK_DIR, id=f"{nb.stem}-from-notebooks") for nb in NOTEBOOKS]
CASES += [pytest.param(nb, ROOT, id=f"{nb.stem}-from-root") for nb in NOTEBOOKS[:1]]


@pytest.mark.parametrize(("path", "cwd"), CASES)
def test_notebook_runs_top_to_bottom(path: Path, cwd: Path, tmp_path: Path):
    copy = tmp_path / path.name
    shutil.copyfile(path, copy)
    nb = nbformat.read(copy, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            kernel_manager_class=CurrentPythonKernel,
                            resources={"metadata": {"path": str(cwd)}})
    client.execute()  # raises CellExecutionError, naming the cell, on the first cell that fails
    nbformat.write(nb, copy)
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_carries_outputs(path: Path):
    """What a code host shows without running anything: a question first, every code cell
    executed in order without errors, plots present, and a file small enough to render."""
    assert path.stat().st_size < MAX_BYTES, f"{path.name} is {path.stat().st_size:,} bytes"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.lstrip().startswith("#")
    assert "Question" in nb.cells[0].source
    code = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert all(counts), f"{path.name}: some code cells were never executed: {counts}"
    assert counts == sorted(counts), f"{path.name}: cells were not executed top to bottom: {counts}"
    outputs = [o for c in code for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"], f"{path.name} carries an error"
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{path.name} has no plot"
    assert "What this shows" in nb.cells[-1].source

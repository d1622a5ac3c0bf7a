"""Every notebook in notebooks/ runs from top to bottom without an error.

The notebooks are executed with nbclient in a kernel that runs this very
interpreter (the one sgdprob is installed in), from an empty directory.
"""
import json
import sys
from pathlib import Path

import pytest

import sgdprob

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK_DIR = Path(__file__).parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))

# Printed by a cell put in front of each notebook: where the kernel runs.
WHERE = "import sys, sgdprob; print(sys.prefix); print(sgdprob.__file__)"


@pytest.fixture
def python3_here(tmp_path, monkeypatch):
    """Make the kernel 'python3' run sys.executable.

    A kernel spec in JUPYTER_PATH comes before any other, so a spec named
    python3 installed elsewhere (for another Python) cannot be picked.
    """
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher",
                 "-f", "{connection_file}"],
        "display_name": "Python 3 (sgdprob tests)",
        "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    work = tmp_path / "work"
    work.mkdir()
    return work


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, python3_here):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.kernelspec.name == "python3"
    assert all(not c.get("outputs") for c in nb.cells
               if c.cell_type == "code"), "commit notebooks without outputs"

    nb.cells.insert(0, nbformat.v4.new_code_cell(WHERE))
    client = nbclient.NotebookClient(
        nb, kernel_name="python3", timeout=600,
        resources={"metadata": {"path": str(python3_here)}})
    client.execute()             # raises CellExecutionError on any error

    where = nb.cells[0].outputs[0].text.split()
    assert where == [sys.prefix, sgdprob.__file__]
    errors = [o for c in nb.cells if c.cell_type == "code"
              for o in c.outputs if o.output_type == "error"]
    assert not errors
    # The notebook leaves no files behind in its working directory.
    assert list(python3_here.iterdir()) == []

"""The example notebooks run: each ``examples/*.ipynb`` executes in a Jupyter kernel (nbclient), offline, on
the embedded data; a cell that raises fails the test, naming the notebook and the cell.

The execution is the docs build's own (``docs/hooks/notebooks.py``): its executed copy, in
``build/docs/examples/``, is what the site renders. A copy is reused only while the notebook's cells and the
package's sources and extension are byte for byte those it was executed with
(``LATENTATLAS_NOTEBOOKS_FRESH=1`` always re-executes).

The notebooks are committed without outputs, and each stays within tens of seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "hooks"))
import notebooks  # noqa: E402

sys.path.pop(0)

NOTEBOOKS = notebooks.notebooks()


def test_there_is_one_notebook_per_area_and_the_seed_swap():
    names = {p.stem for p in NOTEBOOKS}
    for part in ("seed_notebook", "spectral", "minima", "sparse_autoencoders", "persona", "atlas"):
        assert any(part in n for n in names), f"no notebook for {part}: {sorted(names)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path: Path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, (
                f"{path.name}: cell {i} has outputs; clear them before committing (the docs build executes it)"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path):
    pytest.importorskip("nbclient", reason="the docs extra is not installed (make docs)")
    nbformat = pytest.importorskip("nbformat")
    out, _ = notebooks.execute(path)  # raises CellExecutionError on the first cell that fails
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    assert nb.metadata[notebooks.KEY] == notebooks.inputs_hash(path)
    shown = sum(bool(c.get("outputs")) for c in nb.cells if c.cell_type == "code")
    assert shown >= 3, f"{path.name}: only {shown} cells show something"


def test_progress_bars_are_widgets_in_a_real_kernel():
    """In a Jupyter kernel a progress bar is a widget (tqdm.auto with ipywidgets), not text on stderr, and
    ``progress=False`` shows nothing. (Off a terminal, through a pipe, bars stay quiet: tests/test_progress.py.)"""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient", reason="the docs extra is not installed (make docs)")
    pytest.importorskip("ipywidgets", reason="the docs extra is not installed (make docs)")
    cells = [
        "from latentatlas._progress import progress_bar\nfor _ in progress_bar(range(50), 'steps'):\n    pass",
        "import numpy as np\nfrom latentatlas.sae import TopKSAE\n"
        "X = np.random.default_rng(0).standard_normal((600, 16)).astype(np.float32)\n"
        "_ = TopKSAE(16, 32, 4, seed=0).fit(X, epochs=2)",
        "_ = TopKSAE(16, 32, 4, seed=0).fit(X, epochs=2, progress=False)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name=notebooks._kernel_name(), extra_arguments=["--IPKernelApp.log_level=ERROR"]
    )
    client.execute()
    widget = "application/vnd.jupyter.widget-view+json"
    for cell in nb.cells[:2]:
        assert any(widget in o.get("data", {}) for o in cell.outputs), cell.outputs
        assert not any(o.output_type == "stream" and "|" in o.get("text", "") for o in cell.outputs), cell.outputs
    assert nb.cells[2].outputs == []

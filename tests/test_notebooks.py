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

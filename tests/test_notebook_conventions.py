"""Course conventions every lecture notebook must follow (checked without running them)."""
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
LECTURES = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_NOTEBOOK_BYTES = 2_000_000  # executed notebooks are read on GitHub: figures stay modest


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.name)
def test_first_cell_has_title_badge_and_goals(path):
    notebook = nbformat.read(path, as_version=4)
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    relative = path.relative_to(ROOT).as_posix()
    assert f"colab.research.google.com/github/" in first.source and relative in first.source, "Colab badge must open this file"


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.name)
def test_setup_seed_and_device_come_first(path):
    code = [cell.source for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]
    assert "sys.path.insert" in code[0], "first code cell makes utils importable"
    assert "setup(seed=" in code[1], "second code cell seeds, reads the profile and prints the device"


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: p.name)
def test_committed_executed_and_small(path):
    notebook = nbformat.read(path, as_version=4)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code_cells), "commit lecture notebooks executed"
    assert "profile: cpu" in "".join(
        output.get("text", "") for output in code_cells[1].outputs
    ), "lecture notebooks are committed executed in the cpu profile"
    assert path.stat().st_size < MAX_NOTEBOOK_BYTES
    errors = [output for cell in code_cells for output in cell.outputs if output.output_type == "error"]
    assert not errors

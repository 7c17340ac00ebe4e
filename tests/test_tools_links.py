"""Every Colab badge and clone line agrees with pyproject.toml's [tool.unet-course] (tools.links)."""
import json
import shutil
from pathlib import Path

from tools import links


def test_every_notebook_agrees_with_pyproject():
    repository, release = links.project_links()
    found = [line for path in links.notebooks() for line in links.problems(path, repository, release)]
    assert not found, "run `python -m tools.links --write`:\n" + "\n".join(found)
    assert len(links.notebooks()) >= 15


def test_student_badges_open_the_exercises():
    repository, release = links.project_links()
    for path in (links.ROOT / "exercises").glob("*.ipynb"):
        first = "".join(json.loads(path.read_text())["cells"][0]["source"])
        assert f"/blob/{release}/exercises/{path.name}" in first


def test_write_rewrites_badge_and_clone_line(tmp_path: Path):
    (tmp_path / "notebooks").mkdir()
    source = links.ROOT / "notebooks" / "01_unet_theory.ipynb"
    copy = tmp_path / "notebooks" / source.name
    shutil.copy(source, copy)
    assert links.write(copy, "https://github.com/someone/fork", "v9", root=tmp_path)
    assert links.problems(copy, "https://github.com/someone/fork", "v9", root=tmp_path) == []
    text = copy.read_text()
    assert "colab.research.google.com/github/someone/fork/blob/v9/notebooks/01_unet_theory.ipynb" in text
    assert 'REPOSITORY, RELEASE = \\"https://github.com/someone/fork\\", \\"v9\\"' in text
    assert not links.write(copy, "https://github.com/someone/fork", "v9", root=tmp_path)  # idempotent
    # Only the badge and the clone line changed: the rest of the file is byte for byte the same.
    original = source.read_text().splitlines()
    assert sum(a != b for a, b in zip(original, text.splitlines())) == 2


def test_setup_cell_clones_the_release_and_says_what_to_do_when_it_fails():
    setup = "".join(next(c for c in json.loads((links.ROOT / "notebooks" / "01_unet_theory.ipynb").read_text())["cells"]
                         if c["cell_type"] == "code")["source"])
    assert '"--branch", RELEASE, REPOSITORY' in setup and "What to do" in setup
    assert setup.index('os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")') < setup.index("git")
    assert setup.index('os.environ.setdefault("GOMP_SPINCOUNT", "10000")') < setup.index("git")
    assert not any(line.startswith(("import torch", "from torch")) for line in setup.splitlines())  # before torch

"""Every Colab badge and clone line of the notebooks, written from one place: `[tool.unet-course]` in pyproject.toml.

    python -m tools.links --check    # exit 1 and list the notebooks whose badge or clone line disagrees
    python -m tools.links --write    # rewrite them (the badge in the first cell, REPOSITORY/RELEASE in the setup cell)

A notebook's badge opens that very file at the pinned release (`exercises/…` for the student versions), and its
setup cell clones the same release, so what a student opens on Colab and the code it imports are the same version.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_FOLDERS = ("notebooks", "solutions", "exercises")
BADGE = re.compile(r"https://colab\.research\.google\.com/github/[^)\s]+")
CLONE_LINE = re.compile(r'^REPOSITORY, RELEASE = "[^"]*", "[^"]*"', re.MULTILINE)


def project_links(root: Path = ROOT) -> tuple[str, str]:
    """(repository address, release tag) from pyproject.toml's [tool.unet-course]."""
    table = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["unet-course"]
    repository, release = table["repository"].rstrip("/"), table["release"]
    if not repository.startswith("https://github.com/") or repository.count("/") != 4:
        raise ValueError(f"[tool.unet-course] repository must be https://github.com/OWNER/NAME, not {repository!r}")
    return repository, release


def badge_url(relative_path: str, repository: str, release: str) -> str:
    """The Colab address that opens `relative_path` (e.g. notebooks/01_unet_theory.ipynb) at `release`."""
    owner_and_name = repository.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_and_name}/blob/{release}/{relative_path}"


def clone_line(repository: str, release: str) -> str:
    return f'REPOSITORY, RELEASE = "{repository}", "{release}"'


def notebooks(root: Path = ROOT) -> list[Path]:
    return sorted(path for folder in NOTEBOOK_FOLDERS for path in (root / folder).glob("*.ipynb"))


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _set_source(cell: dict, text: str) -> None:
    cell["source"] = text.splitlines(keepends=True)


def _setup_cell(cells: list[dict]) -> dict | None:
    return next((cell for cell in cells if cell["cell_type"] == "code"), None)


def problems(path: Path, repository: str, release: str, root: Path = ROOT) -> list[str]:
    """What disagrees with pyproject.toml in one notebook (empty when it agrees)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    relative = path.relative_to(root).as_posix()
    found = []
    badges = BADGE.findall(_source(cells[0])) if cells and cells[0]["cell_type"] == "markdown" else []
    if badges != [badge_url(relative, repository, release)]:
        found.append(f"{relative}: Colab badge {badges or 'missing'} should be {badge_url(relative, repository, release)}")
    setup = _setup_cell(cells)
    lines = CLONE_LINE.findall(_source(setup)) if setup else []
    if lines != [clone_line(repository, release)]:
        found.append(f"{relative}: setup cell's clone line {lines or 'missing'} should be {clone_line(repository, release)}")
    return found


def write(path: Path, repository: str, release: str, root: Path = ROOT) -> bool:
    """Rewrite the badge and the clone line of one notebook; True when the file changed."""
    text = path.read_text(encoding="utf-8")
    notebook = json.loads(text)
    cells = notebook["cells"]
    relative = path.relative_to(root).as_posix()
    _set_source(cells[0], BADGE.sub(badge_url(relative, repository, release), _source(cells[0])))
    setup = _setup_cell(cells)
    if setup is not None:
        _set_source(setup, CLONE_LINE.sub(clone_line(repository, release), _source(setup)))
    new = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.links", description=__doc__.split("\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="report notebooks that disagree with pyproject.toml")
    action.add_argument("--write", action="store_true", help="rewrite every badge and clone line")
    args = parser.parse_args(argv)
    repository, release = project_links()
    if args.write:
        changed = [path for path in notebooks() if write(path, repository, release)]
        print(f"{repository} @ {release}: rewrote {len(changed)} of {len(notebooks())} notebooks")
        for path in changed:
            print("  " + path.relative_to(ROOT).as_posix())
    found = [line for path in notebooks() for line in problems(path, repository, release)]
    for line in found:
        print(line, file=sys.stderr)
    if args.check and not found:
        print(f"{len(notebooks())} notebooks agree with pyproject.toml: {repository} @ {release}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

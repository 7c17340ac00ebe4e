"""The student version of a notebook, made from the instructor's source in nbgrader's format.

The source notebooks in solutions/ follow nbgrader's conventions, so they can go into an nbgrader course's
source/ folder unchanged:

* a solution cell (metadata.nbgrader.solution) holds the answer between `### BEGIN SOLUTION` and
  `### END SOLUTION`; the student version has `# YOUR CODE HERE` / `raise NotImplementedError()` instead,
  indented like the BEGIN line, and a solution cell without the delimiters is replaced whole;
* a test cell (metadata.nbgrader.grade, with points) is locked; the lines between `### BEGIN HIDDEN TESTS`
  and `### END HIDDEN TESTS` (delimiter lines included) are removed from the student version;
* outputs and execution counts are cleared.

This behaves like nbgrader's ClearSolutions, ClearHiddenTests and ClearOutput preprocessors (same stubs, same
delimiter matching, same errors for nested or unclosed regions and for regions outside solution / grade cells),
without needing nbgrader, its database or its Jupyter extensions. Two additions for this course:

* the student version tags every cell that must raise until the student has written the code
  (`raises-exception`, which nbval, nbclient and JupyterLab's "Run All" all honour): test cells, solution cells
  whose stub sits at the top level, and cells the source tags `experiment`;
* the Colab badge of the first cell points at the exercises/ copy (for nbgrader's own release,
  `grading.nbgrader_release` adds the same step to `nbgrader generate_assignment`);
* like nbgrader's release (its LockCells step), locked cells (checks, instructions) get `editable: false` and
  `deletable: false`, answer cells `deletable: false`.

The source already carries the `raises-exception` tags of its test cells and top-level answer cells, so that a
release made by nbgrader itself lets "Run All" go on past an unanswered exercise as well.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
from nbformat import NotebookNode

CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN_TESTS = "BEGIN HIDDEN TESTS"
END_HIDDEN_TESTS = "END HIDDEN TESTS"
EXPERIMENT_TAG = "experiment"  # source cells that run the student's code outside a test (training runs)
RAISES_TAG = "raises-exception"
SOURCE_FOLDER, STUDENT_FOLDER = "solutions", "exercises"


def nbgrader_metadata(cell: NotebookNode) -> dict:
    """The cell's `metadata.nbgrader` dict, or an empty dict for an ordinary cell."""
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_solution(cell: NotebookNode) -> bool:
    """True for a cell the student answers in."""
    return bool(nbgrader_metadata(cell).get("solution", False))


def is_grade(cell: NotebookNode) -> bool:
    """True for a cell that earns points (here: test cells)."""
    return bool(nbgrader_metadata(cell).get("grade", False))


def is_locked(cell: NotebookNode) -> bool:
    """nbgrader's rule: solution cells are never locked, grade cells always, other cells if marked so."""
    if is_solution(cell):
        return False
    return is_grade(cell) or bool(nbgrader_metadata(cell).get("locked", False))


def grade_id(cell: NotebookNode) -> str | None:
    """The cell's nbgrader id, unique within a notebook."""
    return nbgrader_metadata(cell).get("grade_id")


def tags(cell: NotebookNode) -> list[str]:
    """The cell's tags (an empty list when it has none)."""
    return list(cell.get("metadata", {}).get("tags", []))


def clear_solution_regions(source: str, cell_type: str = "code") -> tuple[str, bool, bool]:
    """Replace every solution region by the stub; return (new source, replaced any, a stub at top level)."""
    stub = (CODE_STUB if cell_type == "code" else TEXT_STUB).split("\n")
    lines, inside, replaced, top_level = [], False, False, False
    for line in source.split("\n"):
        if line.strip() == BEGIN_SOLUTION:
            if inside:
                raise RuntimeError("encountered nested begin solution statements")
            inside = replaced = True
            indent = line[: line.find(BEGIN_SOLUTION)]
            top_level = top_level or indent == ""
            lines.extend(indent + stub_line for stub_line in stub)
        elif line.strip() == END_SOLUTION:
            inside = False
        elif not inside:
            lines.append(line)
    if inside:
        raise RuntimeError("no end solution statement found")
    return "\n".join(lines), replaced, top_level


def remove_hidden_tests(source: str) -> tuple[str, bool]:
    """Drop every hidden-test region, delimiter lines included; return (new source, removed any)."""
    lines, inside, removed = [], False, False
    for line in source.split("\n"):
        if BEGIN_HIDDEN_TESTS in line:
            if inside:
                raise RuntimeError("Encountered nested begin hidden tests statements")
            inside = removed = True
        elif END_HIDDEN_TESTS in line:
            inside = False
        elif not inside:
            lines.append(line)
    if inside:
        raise RuntimeError("No end hidden tests statement found")
    return "\n".join(lines), removed


def cleared_solution_cell(cell: NotebookNode) -> NotebookNode:
    """A copy of a solution cell as the student receives it (stubs instead of answers)."""
    blank = copy.deepcopy(cell)
    source, replaced, _ = clear_solution_regions(blank.source, blank.cell_type)
    blank.source = source if replaced else (CODE_STUB if blank.cell_type == "code" else TEXT_STUB)
    return blank


def student_cell(cell: NotebookNode, where: str = "") -> NotebookNode:
    """The student version of one source cell; raises RuntimeError on misplaced delimiters, like nbgrader."""
    cell = copy.deepcopy(cell)
    source, replaced, top_level = clear_solution_regions(cell.source, cell.cell_type)
    if replaced and not is_solution(cell):
        raise RuntimeError(f"{where}solution region in a cell that is not a solution cell")
    if is_solution(cell) and not replaced:
        source, top_level = (CODE_STUB if cell.cell_type == "code" else TEXT_STUB), True
    source, removed = remove_hidden_tests(source)
    if removed and not is_grade(cell):
        raise RuntimeError(f"{where}hidden tests in a cell that is not a grade cell")
    cell.source = source
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
        cell.metadata.pop("execution", None)
        raises = is_grade(cell) or (is_solution(cell) and top_level) or EXPERIMENT_TAG in tags(cell)
        if raises and RAISES_TAG not in tags(cell):
            cell.metadata["tags"] = tags(cell) + [RAISES_TAG]
    # nbgrader's release (LockCells): checks and instructions can be neither edited nor deleted, answers not deleted.
    if is_locked(cell):
        cell.metadata["editable"] = False
        cell.metadata["deletable"] = False
    elif is_solution(cell):
        cell.metadata["deletable"] = False
    return cell


def student_notebook(source: NotebookNode, name: str = "") -> NotebookNode:
    """The whole student version of a source notebook: answers and hidden tests out, outputs cleared."""
    notebook = copy.deepcopy(source)
    notebook.cells = [student_cell(cell, f"{name} cell {index}: ") for index, cell in enumerate(source.cells)]
    # Widget state belongs to the executed solution's progress bars; the student's run makes its own.
    notebook.metadata.pop("widgets", None)
    notebook.metadata.pop("celltoolbar", None)
    if notebook.cells and notebook.cells[0].cell_type == "markdown":
        notebook.cells[0].source = student_badge(notebook.cells[0].source)
    return notebook


def student_badge(text: str) -> str:
    """A first cell's Colab badge, pointed from the source folder at the student version (any release)."""
    return re.sub(rf"(/blob/[^/\s)]+/){SOURCE_FOLDER}/", rf"\g<1>{STUDENT_FOLDER}/", text)


def check_source(notebook: NotebookNode, name: str = "") -> list[str]:
    """Problems that would break nbgrader or the grader: missing or duplicate ids, test cells without points."""
    problems, seen = [], set()
    for index, cell in enumerate(notebook.cells):
        meta = nbgrader_metadata(cell)
        if not meta:
            continue
        where = f"{name} cell {index}"
        if meta.get("schema_version") != 3:
            problems.append(f"{where}: nbgrader schema_version must be 3")
        cell_id = meta.get("grade_id")
        if not cell_id:
            problems.append(f"{where}: nbgrader cell without grade_id")
        elif cell_id in seen:
            problems.append(f"{where}: duplicate grade_id {cell_id!r}")
        seen.add(cell_id)
        if meta.get("grade") and not isinstance(meta.get("points"), (int, float)):
            problems.append(f"{where}: grade cell {cell_id!r} without points")
        for key in ("grade", "solution", "locked"):
            if not isinstance(meta.get(key), bool):
                problems.append(f"{where}: nbgrader.{key} must be true or false")
    return problems


def render(notebook: NotebookNode) -> str:
    """The exact text a notebook is written as, so that 'up to date' can be a string comparison."""
    return nbformat.writes(notebook, version=4) + "\n"


def generate(source_dir: Path, output_dir: Path, write: bool = True) -> dict[Path, bool]:
    """Write the student version of every notebook in `source_dir` to `output_dir`; return {path: changed}."""
    changed = {}
    for source_path in sorted(Path(source_dir).glob("*.ipynb")):
        source = nbformat.read(source_path, as_version=4)
        problems = check_source(source, source_path.name)
        if problems:
            raise RuntimeError("\n".join(problems))
        text = render(student_notebook(source, source_path.name))
        target = Path(output_dir) / source_path.name
        changed[target] = not target.is_file() or target.read_text(encoding="utf-8") != text
        if write and changed[target]:
            target.write_text(text, encoding="utf-8")
    return changed

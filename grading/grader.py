"""Grade student notebooks against the instructor's source: run each in a fresh kernel, score every test cell.

What is run is rebuilt from the source, not taken from the submission: every cell comes from the solution
notebook, except the student's answers (solution cells, found by their nbgrader grade_id). So a check that was
deleted or edited is back in its original form, the hidden tests are in, and cells a student added are ignored.
A test cell earns its points when it runs without an error, as in nbgrader.

Every submission ends up in the gradebook, whatever happened: not a notebook, renamed, cells deleted, a crash,
an endless loop (per-cell and total time limits), output on stderr. Each notebook runs in its own process, which
is killed (with its kernel) if it overruns, and the CSV is written row by row, so one bad submission never
costs the others their results.
"""
from __future__ import annotations

import copy
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from grading.assignment import EXPERIMENT_TAG, cleared_solution_cell, grade_id, is_grade, is_solution, student_cell

ROOT = Path(__file__).resolve().parents[1]
CSV_COLUMNS = ["student", "notebook", "exercise", "points", "max_points", "reason", "notes"]
KILL_GRACE_S = 30  # the runner stops itself at the total limit; this is only the backstop


@dataclass
class Row:
    """One line of the gradebook: one exercise (test cell) of one notebook of one student."""

    student: str
    notebook: str
    exercise: str
    points: float
    max_points: float
    reason: str = ""
    notes: str = ""

    def as_dict(self) -> dict:
        """The row as the CSV writer wants it."""
        return {"student": self.student, "notebook": self.notebook, "exercise": self.exercise,
                "points": _number(self.points), "max_points": _number(self.max_points),
                "reason": self.reason, "notes": self.notes}


@dataclass
class Limits:
    """Time limits and run settings for one notebook."""

    cell_timeout: float = 120.0
    total_timeout: float = 600.0
    profile: str = "smoke"
    run_experiments: bool = False
    kernel_name: str = "python3"


@dataclass
class Source:
    """One instructor notebook: its cells and the test cells that carry points."""

    path: Path
    notebook: NotebookNode
    tests: list[tuple[str, float]] = field(default_factory=list)  # (grade_id, points) in notebook order

    @property
    def name(self) -> str:
        """The file name, which a submission is expected to keep."""
        return self.path.name

    @property
    def all_ids(self) -> set[str]:
        """Every nbgrader grade_id in the notebook: how a renamed submission is recognised."""
        return {grade_id(c) for c in self.notebook.cells if grade_id(c)}


def _number(value: float) -> str:
    """3.0 -> '3', 2.5 -> '2.5': points as people write them."""
    return f"{value:g}"


def _text(source: str | list[str]) -> str:
    """Cell sources are strings once read by nbformat; be lenient with lists from hand-edited files."""
    return source if isinstance(source, str) else "".join(source)


def exercise_name(test_id: str) -> str:
    """Test cells are named <exercise>_tests; the gradebook shows the exercise."""
    return test_id.removesuffix("_tests")


def load_sources(source: Path) -> list[Source]:
    """The instructor notebooks: one file, or every notebook in a folder."""
    paths = [source] if source.is_file() else sorted(source.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no source notebooks at {source}")
    sources = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        tests = [(grade_id(c), float(c.metadata["nbgrader"]["points"])) for c in notebook.cells if is_grade(c)]
        sources.append(Source(path.resolve(), notebook, tests))
    return sources


# ------------------------------------------------------------------------------------------------------------
# Finding the submissions
# ------------------------------------------------------------------------------------------------------------


def _visible_files(folder: Path) -> list[Path]:
    """Files below `folder`, skipping hidden files and folders (.ipynb_checkpoints, .DS_Store, ...)."""
    found = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if path.is_file() and not any(part.startswith(".") or part == "__pycache__" for part in relative):
            found.append(path)
    return found


def collect_submissions(paths: list[Path]) -> dict[str, list[Path]]:
    """{student: files}. A file belongs to the student its folder is named after; a folder holding files is one
    student's; a folder holding only folders holds one folder per student."""
    students: dict[str, list[Path]] = {}
    for path in paths:
        if path.is_file():
            students.setdefault(path.resolve().parent.name, []).append(path)
        elif path.is_dir():
            direct_files = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
            if direct_files:
                students.setdefault(path.resolve().name, []).extend(_visible_files(path))
            else:
                for folder in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
                    students.setdefault(folder.name, []).extend(_visible_files(folder))
        else:
            students.setdefault(path.name, [])
            print(f"warning: {path} does not exist", file=sys.stderr)
    return students


def read_notebook(path: Path) -> tuple[NotebookNode | None, str]:
    """The notebook in `path`, or None and why it could not be read as one."""
    try:
        notebook = nbformat.read(path, as_version=4)
    except Exception as error:  # JSON errors, wrong schema, binary files, unreadable files: all the same to us
        detail = first_line(str(error), 160)
        return None, f"not a notebook ({type(error).__name__}{': ' + detail if detail else ''})"
    if not isinstance(notebook.get("cells"), list):
        return None, "not a notebook (no cells)"
    return notebook, ""


Match = tuple[Path, "NotebookNode | None", str]  # (file, the notebook or None if unreadable, note or problem)


def match_files(sources: list[Source], files: list[Path]) -> tuple[dict[str, Match], list[tuple[Path, str]]]:
    """Pair a student's files with source notebooks: by file name first, then renamed files by their cell ids.

    Returns ({source name: (file, notebook or None, note)}, [(unmatched file, why)]).
    """
    by_name = {source.name: source for source in sources}
    matched: dict[str, Match] = {}
    leftovers = []
    for path in files:
        notebook, problem = read_notebook(path)
        if path.name in by_name and path.name not in matched:
            matched[path.name] = (path, notebook, problem)
        else:
            leftovers.append((path, notebook, problem))
    unmatched = []
    for path, notebook, problem in leftovers:
        if notebook is None:
            unmatched.append((path, problem))
            continue
        ids = {grade_id(c) for c in notebook.cells if grade_id(c)}
        candidates = [(len(ids & s.all_ids), s.name) for s in sources if s.name not in matched and ids & s.all_ids]
        if not candidates:
            unmatched.append((path, "no exercise of the course found in this notebook"))
            continue
        _, name = max(candidates)
        matched[name] = (path, notebook, f"file renamed: graded {path.name} as {name}")
    return matched, unmatched


# ------------------------------------------------------------------------------------------------------------
# Building and running the notebook to grade
# ------------------------------------------------------------------------------------------------------------


def assemble(source: Source, submission: NotebookNode, limits: Limits) -> tuple[NotebookNode, list[str]]:
    """The notebook to run: the source's cells, with the student's code in the solution cells. Returns notes."""
    answers: dict[str, NotebookNode] = {}
    for cell in submission.cells:
        cell_id = grade_id(cell)
        if cell_id and cell_id not in answers and cell.get("cell_type") == "code":
            answers[cell_id] = cell
    notes, graded, missing = [], copy.deepcopy(source.notebook), []
    for position, cell in enumerate(graded.cells):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        if is_solution(cell) and cell.cell_type == "code":
            answer = answers.get(grade_id(cell))
            if answer is None:
                missing.append(grade_id(cell))
                graded.cells[position] = cleared_solution_cell(cell)
            else:
                cell.source = _text(answer.source)
    if missing:
        notes.append(f"answer cell(s) deleted: {', '.join(missing)} (graded as unanswered)")
    student_tests = {grade_id(c): c for c in submission.cells if grade_id(c) and is_grade(c)}
    # A test cell is untouched if it reads as the student version or as the source (an instructor's own run).
    expected = {grade_id(c): {student_cell(c).source.strip(), c.source.strip()}
                for c in source.notebook.cells if is_grade(c)}
    deleted = [test_id for test_id, _ in source.tests if test_id not in student_tests]
    edited = [test_id for test_id, _ in source.tests if test_id in student_tests
              and _text(student_tests[test_id].source).strip() not in expected[test_id]]
    if deleted:
        notes.append(f"test cell(s) deleted, restored from the source: {', '.join(deleted)}")
    if edited:
        notes.append(f"test cell(s) edited, restored from the source: {', '.join(edited)}")
    return graded, notes


def kernel_environment(limits: Limits) -> dict[str, str]:
    """The grader's own environment (thread and CPU settings included) plus the run profile for the notebook."""
    environment = dict(os.environ)
    environment["UNET_COURSE_PROFILE"] = limits.profile
    environment.setdefault("UNET_COURSE_OFFLINE", "1")  # grading must not depend on the network
    environment.setdefault("MPLBACKEND", "Agg")
    environment["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), environment.get("PYTHONPATH", "")) if p)
    return environment


def _kill_group(pid: int | None) -> None:
    """Kill a process group we started (the runner, or the kernel it launched in its own session)."""
    if not pid:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def execute(notebook: NotebookNode, cwd: Path, limits: Limits) -> dict:
    """Run `notebook` in a separate runner process; return its per-cell records (partial if it was killed)."""
    with tempfile.TemporaryDirectory(prefix="grading-") as folder:
        folder = Path(folder)
        notebook_path, result_path, job_path = folder / "graded.ipynb", folder / "result.json", folder / "job.json"
        nbformat.write(notebook, notebook_path)
        skip_tags = [] if limits.run_experiments else [EXPERIMENT_TAG]
        job = {"notebook": str(notebook_path), "result": str(result_path), "cwd": str(cwd),
               "cell_timeout": limits.cell_timeout, "total_timeout": limits.total_timeout,
               "skip_tags": skip_tags, "kernel_name": limits.kernel_name}
        job_path.write_text(json.dumps(job), encoding="utf-8")
        log_path = folder / "runner.log"
        # Files, not pipes: a kernel left behind by a killed runner could hold a pipe open and block us forever.
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "grading.runner", str(job_path)], cwd=str(ROOT), env=kernel_environment(limits),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
            )
            killed = False
            try:
                process.wait(timeout=limits.total_timeout + KILL_GRACE_S + 120)
            except subprocess.TimeoutExpired:
                killed = True
                _kill_group(process.pid)
                process.wait()
        result = {"cells": {}}
        if result_path.is_file():
            try:
                result = json.loads(result_path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                pass
        if killed or not result.get("finished"):
            _kill_group(result.get("kernel_pid"))
        if killed:
            result["crash"] = "the grader stopped the notebook after its total time limit"
        elif process.returncode and not result.get("finished"):
            tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] or [""]
            result.setdefault("crash", f"runner exited with code {process.returncode}: {tail[0][:200]}")
        return result


def first_line(text: str, limit: int = 200) -> str:
    """The first non-empty line of `text`, shortened: a CSV cell, not a traceback."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def score(source: Source, graded: NotebookNode, result: dict, student: str, notes: list[str]) -> list[Row]:
    """One row per test cell: full points if it ran without an error, else 0 and the reason."""
    index_of = {grade_id(c): i for i, c in enumerate(graded.cells) if grade_id(c)}
    stderr_cells = [i for i, r in result.get("cells", {}).items() if r.get("stderr")]
    extra = list(notes)
    if stderr_cells:
        first = result["cells"][stderr_cells[0]]["stderr"]
        extra.append(f"wrote to stderr in {len(stderr_cells)} cell(s), first: {first_line(first, 120)!r}")
    rows = []
    for test_id, points in source.tests:
        record = result.get("cells", {}).get(str(index_of.get(test_id)))
        if record is None:
            reason = f"not run: {result['crash']}" if result.get("crash") else "not run"
            earned = 0.0
        elif record["status"] == "ok":
            reason, earned = "", points
        elif record["status"] == "error":
            name, value = record.get("ename", "Error"), first_line(record.get("evalue", ""))
            if name == "NotImplementedError":
                reason = "not answered (NotImplementedError)" + (f": {value}" if value else "")
            else:
                reason = f"{name}: {value}" if value else name
            earned = 0.0
        else:
            reason, earned = record.get("reason", record["status"]), 0.0
        rows.append(Row(student, source.name, exercise_name(test_id), earned, points, reason, "; ".join(extra)))
    return rows


def grade_notebook(source: Source, student: str, notebook: NotebookNode | None, problem: str, note: str,
                   limits: Limits) -> list[Row]:
    """All rows for one student's notebook; never raises."""
    notes = [note] if note else []
    if notebook is None:
        return [Row(student, source.name, exercise_name(t), 0.0, p, problem, "; ".join(notes)) for t, p in source.tests]
    try:
        graded, assembly_notes = assemble(source, notebook, limits)
        result = execute(graded, source.path.parent, limits)
        return score(source, graded, result, student, notes + assembly_notes)
    except Exception as error:  # a grader bug must cost this notebook its score, never the other students'
        reason = f"grader error: {type(error).__name__}: {first_line(str(error))}"
        return [Row(student, source.name, exercise_name(t), 0.0, p, reason, "; ".join(notes)) for t, p in source.tests]


def grade_student(sources: list[Source], student: str, files: list[Path], limits: Limits) -> list[Row]:
    """Rows for every exercise of every source notebook, plus one row per file that matched none."""
    matched, unmatched = match_files(sources, files)
    rows: list[Row] = []
    for source in sources:
        if source.name in matched:
            path, notebook, note = matched[source.name]
            problem = note if notebook is None else ""
            rows += grade_notebook(source, student, notebook, problem, "" if notebook is None else note, limits)
        else:
            why = "not submitted"
            if unmatched:
                why += f" (unusable file(s): {', '.join(p.name for p, _ in unmatched)})"
            rows += [Row(student, source.name, exercise_name(t), 0.0, p, why) for t, p in source.tests]
    for path, why in unmatched:
        rows.append(Row(student, path.name, "-", 0.0, 0.0, why))
    return rows


def print_table(student: str, rows: list[Row]) -> None:
    """A readable per-student table on stdout."""
    print(f"\n== {student} ==")
    width = max([len(f"{r.notebook} / {r.exercise}") for r in rows] + [10])
    for row in rows:
        label = f"{row.notebook} / {row.exercise}"
        print(f"  {label:<{width}}  {_number(row.points):>4} / {_number(row.max_points):<4} {row.reason}")
    total, most = sum(r.points for r in rows), sum(r.max_points for r in rows)
    print(f"  {'total':<{width}}  {_number(total):>4} / {_number(most):<4}")
    notes = sorted({r.notes for r in rows if r.notes})
    for note in notes:
        print(f"  note: {note}")


def _grade_safely(sources: list[Source], student: str, files: list[Path], limits: Limits) -> tuple[list[Row], float]:
    """grade_student plus its wall time; a grader bug becomes rows with the reason, never an exception."""
    started = time.perf_counter()
    try:
        rows = grade_student(sources, student, files, limits)
    except Exception as error:  # belt and braces: grade_student is not supposed to raise
        rows = [Row(student, s.name, exercise_name(t), 0.0, p, f"grader error: {error}")
                for s in sources for t, p in s.tests]
    return rows, time.perf_counter() - started


def grade(paths: list[Path], source: Path, csv_path: Path | None, limits: Limits, quiet: bool = False,
          jobs: int = 1) -> list[Row]:
    """Grade every submission under `paths`, `jobs` students at a time; write the CSV as it goes; return all rows."""
    sources = load_sources(source)
    students = collect_submissions(paths)
    all_rows: list[Row] = []
    handle = writer = None
    if csv_path is not None:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(csv_path, "w", newline="", encoding="utf-8")
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        handle.flush()
    try:
        # Threads are enough: each notebook runs in its own process, the threads only wait for them.
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(_grade_safely, sources, student, files, limits): student
                       for student, files in students.items()}
            for future in as_completed(futures):
                rows, seconds = future.result()
                all_rows += rows
                if writer is not None:
                    writer.writerows(row.as_dict() for row in rows)
                    handle.flush()
                if not quiet:
                    print_table(futures[future], rows)
                    print(f"  ({seconds:.0f} s)", flush=True)
    finally:
        if handle is not None:
            handle.close()
    order = {student: position for position, student in enumerate(students)}
    return sorted(all_rows, key=lambda row: order.get(row.student, len(order)))

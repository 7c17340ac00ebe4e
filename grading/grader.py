"""Grade student notebooks against the instructor's source: run each in a fresh, isolated kernel, score test cells.

What runs is rebuilt from the source, not taken from the submission: every cell comes from the source notebook
(checks and hidden tests included), except the student's answers, found by nbgrader grade_id, else by cell id,
else by position (with a note). So a deleted or edited check is back in its original form, and cells a student
added are ignored.

A test cell earns its points only when the kernel's own reply to it says `ok` within the cell's time limit, no
tampering was detected around it, and its answer does not use the course's reference implementation. After a
timeout or a dead kernel the kernel is thrown away and the notebook goes on in a fresh one (the cells before are
replayed, the offending cell is skipped). A later exercise that fails only because an earlier one is wrong is
run once more with the instructor's answer in place of the earlier one, and earns its points if it passes then.

Every notebook of every student runs in its own scratch folder and kernel (grading/sandbox.py): inside
bubblewrap when the machine has it, else with a loud warning. Results come back only over the kernel protocol;
the gradebook is written by the grader, after the student's kernels and everything they started are gone.
"""
from __future__ import annotations

import copy
import csv
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from grading.assignment import EXPERIMENT_TAG, cleared_solution_cell, grade_id, is_grade, is_solution, student_cell
from grading.runner import CellRun, KernelSession
from grading.sandbox import ROOT, ResourceLimits, Scratch, bwrap_problem
from grading.tamper import (
    BASE_CLASSES,
    BASE_MODULES,
    Forbidden,
    differences,
    imported_names,
    parse_probe,
    probe_code,
    reference_uses,
)

CSV_COLUMNS = ["student", "notebook", "exercise", "points", "max_points", "reason", "notes", "timestamp"]
SUMMARY_COLUMNS = ["student", "notebook", "score", "max_score", "timestamp", "status", "notes"]
PROBE_TIMEOUT_S = 60.0
NOT_A_STUDENT = {"__pycache__", ".ipynb_checkpoints"}


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
    timestamp: str = ""

    def as_dict(self) -> dict:
        """The row as the CSV writer wants it."""
        return {"student": self.student, "notebook": self.notebook, "exercise": self.exercise,
                "points": _number(self.points), "max_points": _number(self.max_points),
                "reason": self.reason, "notes": self.notes, "timestamp": self.timestamp}


@dataclass
class Limits:
    """Time and resource limits and run settings for one notebook."""

    cell_timeout: float = 120.0
    total_timeout: float = 600.0
    profile: str = "smoke"
    run_experiments: bool = False
    sandbox: str = "auto"  # auto: bubblewrap when it works; require: refuse to grade without it; off
    memory_gb: float = 6.0
    max_restarts: int = 3

    def resources(self) -> ResourceLimits:
        """rlimits for one kernel: memory, and CPU time for the whole notebook on every core."""
        cores = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
        return ResourceLimits(memory_bytes=int(self.memory_gb * 1024**3),
                              cpu_seconds=int(self.total_timeout * cores + 60))


@dataclass
class Source:
    """One instructor notebook: its cells, the test cells that carry points and the answer each one tests."""

    path: Path
    notebook: NotebookNode
    tests: list[tuple[str, float]] = field(default_factory=list)  # (grade_id, points) in notebook order
    answer_of: dict[str, str] = field(default_factory=dict)  # test grade_id -> answer grade_id

    @property
    def name(self) -> str:
        """The file name, which a submission is expected to keep."""
        return self.path.name

    @property
    def all_ids(self) -> set[str]:
        """Every nbgrader grade_id in the notebook: how a renamed submission is recognised."""
        return {grade_id(c) for c in self.notebook.cells if grade_id(c)}

    def cell(self, cell_id: str) -> NotebookNode:
        """The source cell with this grade_id."""
        return next(c for c in self.notebook.cells if grade_id(c) == cell_id)


@dataclass
class Record:
    """What became of one cell in a run: the kernel's reply, or why it did not run."""

    status: str  # ok | error | timeout | dead | not run
    ename: str = ""
    evalue: str = ""
    reason: str = ""
    outputs: list = field(default_factory=list)
    execution_count: int | None = None
    tampered: str = ""

    @classmethod
    def from_run(cls, run: CellRun) -> Record:
        """A record of a finished execute request."""
        return cls(run.status, run.ename, run.evalue, "", run.outputs, run.execution_count)


@dataclass
class Outcome:
    """One run of one notebook: a record per code cell, and what happened along the way."""

    records: dict[int, Record] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    tampering: str = ""


def _number(value: float) -> str:
    """3.0 -> '3', 2.5 -> '2.5': points as people write them."""
    return f"{value:g}"


def _text(source: str | list[str]) -> str:
    """Cell sources are strings once read by nbformat; be lenient with lists from hand-edited files."""
    return source if isinstance(source, str) else "".join(source)


def exercise_name(test_id: str) -> str:
    """Test cells are named <exercise>_tests; the gradebook shows the exercise."""
    return test_id.removesuffix("_tests")


def first_line(text: str, limit: int = 200) -> str:
    """The first non-empty line of `text`, shortened: a CSV cell, not a traceback."""
    for line in str(text).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def one_line(text: str, limit: int = 400) -> str:
    """All non-empty lines of `text` joined (an error message with its hint), shortened: a CSV cell."""
    joined = " ".join(line.strip() for line in str(text).splitlines() if line.strip())
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


def now_stamp() -> str:
    """The time, as the gradebook writes it (UTC, ISO 8601, seconds)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def load_sources(source: Path) -> list[Source]:
    """The instructor notebooks: one file, or every notebook in a folder."""
    paths = [source] if source.is_file() else sorted(source.glob("*.ipynb"))
    if not paths:
        raise FileNotFoundError(f"no source notebooks at {source}")
    sources = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        tests = [(grade_id(c), float(c.metadata["nbgrader"]["points"])) for c in notebook.cells if is_grade(c)]
        answers = [grade_id(c) for c in notebook.cells if is_solution(c) and c.cell_type == "code"]
        answer_of, last = {}, None
        for cell in notebook.cells:
            if is_solution(cell) and cell.cell_type == "code":
                last = grade_id(cell)
            elif is_grade(cell):
                named = exercise_name(grade_id(cell))
                answer_of[grade_id(cell)] = named if named in answers else last
        sources.append(Source(path.resolve(), notebook, tests, answer_of))
    return sources


# ------------------------------------------------------------------------------------------------------------
# Finding the submissions
# ------------------------------------------------------------------------------------------------------------


def _visible(path: Path, folder: Path) -> bool:
    return not any(part.startswith(".") or part in NOT_A_STUDENT for part in path.relative_to(folder).parts)


def _visible_files(folder: Path) -> list[Path]:
    """Files below `folder`, skipping hidden files and folders (.ipynb_checkpoints, .DS_Store, ...)."""
    return [p for p in sorted(folder.rglob("*")) if p.is_file() and _visible(p, folder)]


def collect_submissions(paths: list[Path]) -> tuple[dict[str, list[Path]], list[Path]]:
    """({student: files}, ignored files). A notebook belongs to the student its folder is named after; a folder
    with notebooks directly in it is one student's; any other folder is a class: one student per sub-folder,
    and the files lying beside the sub-folders (a roster, a README) are ignored and listed."""
    students: dict[str, list[Path]] = {}
    ignored: list[Path] = []
    for path in paths:
        if path.is_file():
            students.setdefault(path.resolve().parent.name, []).append(path)
        elif path.is_dir():
            direct = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
            folders = [p for p in sorted(path.iterdir()) if p.is_dir() and _visible(p, path)]
            if any(p.suffix == ".ipynb" for p in direct) or not folders:
                students.setdefault(path.resolve().name, []).extend(_visible_files(path))
            else:
                ignored += sorted(direct)
                for folder in folders:
                    students.setdefault(folder.name, []).extend(_visible_files(folder))
        else:
            students.setdefault(path.name, [])
            print(f"warning: {path} does not exist", file=sys.stderr)
    return students, ignored


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


def _cell_ids(notebook: NotebookNode) -> set[str]:
    return {c.get("id") for c in notebook.cells if c.get("id")}


def match_files(sources: list[Source], files: list[Path]) -> tuple[dict[str, Match], list[tuple[Path, str]]]:
    """Pair a student's files with source notebooks: by file name first, then renamed files by their grade ids
    or cell ids. Returns ({source name: (file, notebook or None, note)}, [(unmatched file, why)])."""
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
        cells = _cell_ids(notebook)
        candidates = [(len(ids & s.all_ids), len(cells & _cell_ids(s.notebook)), s.name) for s in sources
                      if s.name not in matched and (ids & s.all_ids or cells & _cell_ids(s.notebook))]
        if not candidates:
            unmatched.append((path, "no exercise of the course found in this notebook"))
            continue
        name = max(candidates)[2]
        matched[name] = (path, notebook, f"file renamed: graded {path.name} as {name}")
    return matched, unmatched


# ------------------------------------------------------------------------------------------------------------
# Building the notebook to run
# ------------------------------------------------------------------------------------------------------------


@dataclass
class Answer:
    """The student's code for one answer cell and how it was found."""

    text: str
    how: str  # grade_id | cell id | position | missing
    unanswered: bool


def find_answers(source: Source, submission: NotebookNode) -> dict[str, Answer]:
    """{answer grade_id: Answer}: by nbgrader grade_id, else by cell id, else by position."""
    by_grade = {}
    for cell in submission.cells:
        if grade_id(cell) and grade_id(cell) not in by_grade and cell.get("cell_type") == "code":
            by_grade[grade_id(cell)] = cell
    by_cell_id = {c.get("id"): c for c in submission.cells if c.get("id") and c.get("cell_type") == "code"}
    same_layout = len(submission.cells) == len(source.notebook.cells)
    source_code = [i for i, c in enumerate(source.notebook.cells) if c.cell_type == "code"]
    submitted_code = [c for c in submission.cells if c.get("cell_type") == "code"]
    answers = {}
    for position, cell in enumerate(source.notebook.cells):
        if not (is_solution(cell) and cell.cell_type == "code"):
            continue
        stub = cleared_solution_cell(cell).source.strip()
        found, how = by_grade.get(grade_id(cell)), "grade_id"
        if found is None and cell.get("id") in by_cell_id:
            found, how = by_cell_id[cell.get("id")], "cell id"
        if found is None and same_layout and submission.cells[position].get("cell_type") == "code":
            found, how = submission.cells[position], "position"
        if found is None and len(submitted_code) == len(source_code):
            found, how = submitted_code[source_code.index(position)], "position"
        if found is None:
            answers[grade_id(cell)] = Answer(stub, "missing", True)
        else:
            text = _text(found.get("source", ""))
            answers[grade_id(cell)] = Answer(text, how, text.strip() == stub)
    return answers


def assemble(source: Source, submission: NotebookNode,
             replace: dict[str, str] | None = None) -> tuple[NotebookNode, dict[str, Answer], list[str]]:
    """The notebook to run: the source's cells with the student's answers in (or `replace`'s code for the
    answers it names). Returns (notebook, answers, notes)."""
    answers = find_answers(source, submission)
    graded = copy.deepcopy(source.notebook)
    for cell in graded.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
        if is_solution(cell) and cell.cell_type == "code":
            cell_id = grade_id(cell)
            cell.source = (replace or {}).get(cell_id, answers[cell_id].text)
    notes = []
    missing = [k for k, a in answers.items() if a.how == "missing"]
    by_position = [k for k, a in answers.items() if a.how == "position"]
    by_cell_id = [k for k, a in answers.items() if a.how == "cell id"]
    if missing:
        notes.append(f"answer cell(s) deleted: {', '.join(missing)} (graded as unanswered)")
    if by_cell_id:
        notes.append(f"answer(s) found by cell id (nbgrader metadata missing): {', '.join(by_cell_id)}")
    if by_position:
        notes.append(f"answer(s) found by position only (no nbgrader metadata or cell id): {', '.join(by_position)}"
                     " - check that the right cells were graded")
    student_tests = {grade_id(c): c for c in submission.cells if grade_id(c)}
    by_id = {c.get("id"): c for c in submission.cells if c.get("id")}
    expected = {grade_id(c): {student_cell(c).source.strip(), c.source.strip()}
                for c in source.notebook.cells if is_grade(c)}
    deleted, edited = [], []
    same_layout = len(submission.cells) == len(source.notebook.cells)
    for test_id, _ in source.tests:
        cell = student_tests.get(test_id) or by_id.get(source.cell(test_id).get("id"))
        if cell is None and same_layout:
            cell = submission.cells[source.notebook.cells.index(source.cell(test_id))]
        if cell is None:
            deleted.append(test_id)
        elif _text(cell.get("source", "")).strip() not in expected[test_id]:
            edited.append(test_id)
    if deleted:
        notes.append(f"test cell(s) deleted, restored from the source: {', '.join(deleted)}")
    if edited:
        notes.append(f"test cell(s) edited, restored from the source: {', '.join(edited)}")
    return graded, answers, notes


def cell_kind(cell: NotebookNode) -> str:
    """course | answer | test | experiment: what a code cell of the assembled notebook is."""
    if is_solution(cell):
        return "answer"
    if is_grade(cell):
        return "test"
    if EXPERIMENT_TAG in cell.get("metadata", {}).get("tags", []):
        return "experiment"
    return "course"


def kernel_environment(limits: Limits, scratch: Scratch) -> dict[str, str]:
    """A minimal environment for the kernel: no secrets of the grader's, the scratch folder as home."""
    keep = ("PATH", "LANG", "LC_ALL", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
            "TZ")
    environment = {key: os.environ[key] for key in keep if key in os.environ}
    home = str(scratch.workdir)
    environment.update({
        "HOME": home, "TMPDIR": home, "IPYTHONDIR": str(scratch.workdir / ".ipython"),
        "JUPYTER_RUNTIME_DIR": str(scratch.run_dir), "MPLCONFIGDIR": str(scratch.workdir / ".matplotlib"),
        "PYTHONPATH": str(scratch.course), "PYTHONDONTWRITEBYTECODE": "1", "UNET_COURSE_PROFILE": limits.profile,
        "UNET_COURSE_OFFLINE": "1", "MPLBACKEND": "Agg", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    })
    return environment


def use_sandbox(limits: Limits) -> bool:
    """Whether kernels run in bubblewrap; raises when the limits require it and the machine has none."""
    if limits.sandbox == "off":
        return False
    problem = bwrap_problem()
    if problem and limits.sandbox == "require":
        raise RuntimeError(f"--sandbox require: {problem}")
    return not problem


def sandbox_warning(limits: Limits) -> str:
    """The loud warning printed at the start when student code will run without a sandbox ('' otherwise)."""
    if use_sandbox(limits):
        return ""
    why = "--sandbox off" if limits.sandbox == "off" else bwrap_problem()
    return ("\n" + "!" * 100 + "\n"
            f"WARNING: NO SANDBOX ({why}).\n"
            "Student code runs in a scratch folder with resource limits and is killed with its process group, but\n"
            "it can READ every file this user can read (keep the source notebooks with the hidden tests out of its\n"
            "reach) and reach the network. Install bubblewrap (apt-get install bubblewrap) to grade isolated.\n"
            + "!" * 100 + "\n")


# ------------------------------------------------------------------------------------------------------------
# Running one notebook
# ------------------------------------------------------------------------------------------------------------


def _watch_lists(notebook: NotebookNode) -> tuple[list[str], list[str], list[str], list[str]]:
    """(modules, user names, imports, classes) for the probe: what the checks and hidden tests rely on.

    The course modules any check or hidden test imports are imported before the baseline, so that replacing one
    of their functions later shows; the names the course's set-up cells import (`checks`, `torch`, `F`, ...)
    must keep pointing where they pointed before the first answer."""
    code = [c for c in notebook.cells if c.cell_type == "code"]
    first_answer = next((i for i, c in enumerate(code) if cell_kind(c) == "answer"), len(code))
    checked = [c.source for c in code if cell_kind(c) != "answer"]
    targets = {t for names in imported_names(checked).values() for t in names}
    course = {t for t in targets if t.split(".")[0] in ("utils", "grading")}
    imports = sorted(course | {t.rsplit(".", 1)[0] for t in course if "." in t})
    modules = list(dict.fromkeys([*BASE_MODULES, *imports]))
    user_names = sorted(imported_names([c.source for c in code[:first_answer]]))
    return modules, user_names, imports, list(BASE_CLASSES)


class NotebookRun:
    """Run the code cells of an assembled notebook, restarting the kernel after a timeout or a crash."""

    def __init__(self, notebook: NotebookNode, limits: Limits, sandboxed: bool) -> None:
        self.notebook = notebook
        self.limits = limits
        self.sandboxed = sandboxed
        skip = set() if limits.run_experiments else {"experiment"}
        self.plan = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and c.source.strip()
                     and cell_kind(c) not in skip]
        self.first_answer = next((i for i in self.plan if cell_kind(notebook.cells[i]) == "answer"), None)
        self.modules, self.user_names, self.imports, self.classes = _watch_lists(notebook)
        self.outcome = Outcome()

    def _probe(self, session: KernelSession, baseline: bool) -> tuple[dict, list[str]] | None:
        code = probe_code(self.modules, self.user_names, self.imports if baseline else [], self.classes)
        run = session.execute(code, PROBE_TIMEOUT_S, silent=True, user_expressions={"r": "_grading_probe_"})
        data = run.user_expressions.get("r", {})
        if run.status != "ok" or data.get("status") != "ok":
            return None
        return parse_probe(data.get("data", {}).get("text/plain", ""))

    def run(self) -> Outcome:
        """Run every planned cell (once each), within the notebook's total time limit."""
        deadline = time.monotonic() + self.limits.total_timeout
        bad: set[int] = set()
        restarts = 0
        records = self.outcome.records
        while True:
            restart = self._one_kernel(deadline, bad)
            if not restart:
                break
            restarts += 1
            if restarts > self.limits.max_restarts:
                for index in self.plan:
                    records.setdefault(index, Record("not run", reason="not run: the kernel was restarted "
                                                     f"{self.limits.max_restarts} times already"))
                break
        for index in self.plan:
            records.setdefault(index, Record("not run", reason="not run: the notebook's total time limit "
                                             f"({self.limits.total_timeout:g} s) was used up"))
        return self.outcome

    def _one_kernel(self, deadline: float, bad: set[int]) -> bool:
        """Run the plan in one fresh kernel; True when it must go on in another one."""
        records, outcome = self.outcome.records, self.outcome
        scratch = Scratch()
        session = None
        try:
            try:
                session = KernelSession(scratch, kernel_environment(self.limits, scratch), self.limits.resources(),
                                        self.sandboxed)
            except RuntimeError as error:
                for index in self.plan:
                    records.setdefault(index, Record("not run", reason=f"not run: {first_line(str(error))}"))
                outcome.events.append(str(error))
                return False
            baseline = None
            tampered = outcome.tampering
            for index in self.plan:
                if index in bad:
                    continue
                cell = self.notebook.cells[index]
                if index == self.first_answer:
                    result = self._probe(session, baseline=True)
                    if result is None:
                        outcome.events.append("the integrity probe did not run before the first answer")
                        tampered = tampered or "the grader's integrity check could not run"
                    else:
                        baseline = result[0]
                remaining = deadline - time.monotonic()
                if remaining < 1:
                    return False
                limit = min(self.limits.cell_timeout, remaining)
                run = session.execute(cell.source, limit)
                if index not in records:
                    record = Record.from_run(run)
                    if run.status == "timeout":
                        record.reason = (f"timed out (the cell time limit of {limit:g} s)"
                                         if limit >= self.limits.cell_timeout else
                                         f"timed out (the notebook's total time limit of "
                                         f"{self.limits.total_timeout:g} s ran out)")
                    elif run.status == "dead":
                        record.reason = "kernel died (out of memory or CPU time, or the code ended Python)"
                    record.tampered = tampered
                    records[index] = record
                if run.status in ("timeout", "dead"):
                    bad.add(index)
                    outcome.events.append(f"cell {index}: {records[index].reason}; went on in a fresh kernel")
                    return deadline - time.monotonic() > 1
                if baseline is not None and self.first_answer is not None and index >= self.first_answer:
                    result = self._probe(session, baseline=False)
                    found = (["the grader's integrity check failed to run (it was interfered with)"]
                             if result is None else differences(baseline, result[0], result[1]))
                    if found and not tampered:
                        tampered = f"tampering detected after cell {index}: {'; '.join(found)}"
                        outcome.tampering = outcome.tampering or tampered
                        if cell_kind(cell) == "test" and not records[index].tampered:
                            records[index].tampered = tampered
            return False
        finally:
            if session is not None:
                session.close()
            scratch.close()


# ------------------------------------------------------------------------------------------------------------
# Scoring
# ------------------------------------------------------------------------------------------------------------


def reason_for(record: Record | None) -> tuple[bool, str]:
    """(passed, why not) for one test cell's record."""
    if record is None:
        return False, "not run"
    if record.tampered:
        return False, record.tampered
    if record.status == "ok":
        return True, ""
    if record.status == "error":
        value = one_line(record.evalue)
        if record.ename == "NotImplementedError":
            return False, "not answered (NotImplementedError)" + (f": {value}" if value else "")
        return False, f"{record.ename}: {value}" if value else record.ename
    return False, record.reason or record.status


@dataclass
class NotebookGrade:
    """Everything about one student's notebook: rows, the executed notebook, status."""

    rows: list[Row]
    status: str
    executed: NotebookNode | None = None
    dependency_run: NotebookNode | None = None
    notes: list[str] = field(default_factory=list)


def executed_notebook(notebook: NotebookNode, outcome: Outcome) -> NotebookNode:
    """The assembled notebook with each cell's outputs (and, for cells that did not run, why)."""
    executed = copy.deepcopy(notebook)
    for index, cell in enumerate(executed.cells):
        record = outcome.records.get(index)
        if cell.cell_type != "code" or record is None:
            continue
        cell.outputs = list(record.outputs)
        cell.execution_count = record.execution_count
        if record.status in ("timeout", "dead", "not run"):
            cell.outputs.append(nbformat.v4.new_output("stream", name="stderr", text=f"[grader: {record.reason}]\n"))
        if record.tampered and is_grade(cell):
            cell.outputs.append(nbformat.v4.new_output("stream", name="stderr", text=f"[grader: {record.tampered}]\n"))
    return executed


def grade_notebook(source: Source, student: str, notebook: NotebookNode | None, problem: str, note: str,
                   limits: Limits, sandboxed: bool) -> NotebookGrade:
    """All rows for one student's notebook; never raises."""
    notes = [note] if note else []
    stamp = now_stamp()
    if notebook is None:
        rows = [Row(student, source.name, exercise_name(t), 0.0, p, problem, "; ".join(notes), stamp)
                for t, p in source.tests]
        return NotebookGrade(rows, "unreadable")
    try:
        return _grade_notebook(source, student, notebook, notes, limits, sandboxed)
    except Exception as error:  # a grader bug must cost this notebook its score, never the other students'
        reason = f"grader error: {type(error).__name__}: {first_line(str(error))}"
        rows = [Row(student, source.name, exercise_name(t), 0.0, p, reason, "; ".join(notes), stamp)
                for t, p in source.tests]
        return NotebookGrade(rows, "grader error")


def _grade_notebook(source: Source, student: str, notebook: NotebookNode, notes: list[str], limits: Limits,
                    sandboxed: bool) -> NotebookGrade:
    graded, answers, assembly_notes = assemble(source, notebook)
    notes = notes + assembly_notes
    index_of = {grade_id(c): i for i, c in enumerate(graded.cells) if grade_id(c)}
    outcome = NotebookRun(graded, limits, sandboxed).run()
    course_sources = [c.source for c in graded.cells if c.cell_type == "code"]
    results: dict[str, tuple[bool, str, str]] = {}  # test id -> (passed, reason, extra note)
    for test_id, _ in source.tests:
        passed, reason = reason_for(outcome.records.get(index_of[test_id]))
        answer_id = source.answer_of.get(test_id)
        answer_cell = source.cell(answer_id) if answer_id else None
        forbidden = Forbidden((answer_cell.metadata.get("grading", {}) or {}).get("forbidden", [])) \
            if answer_cell is not None else Forbidden([])
        uses = reference_uses(answers[answer_id].text, course_sources, forbidden) if answer_id else []
        answer_record = outcome.records.get(index_of[answer_id]) if answer_id else None
        if not passed and answer_record is not None and answer_record.status in ("timeout", "dead"):
            reason = f"answer cell {answer_id}: {answer_record.reason}"
        if uses:
            passed, reason = False, f"answer not accepted: {'; '.join(uses)}"
        results[test_id] = (passed, reason, "")
    # A later exercise that failed while an earlier one failed too: try it with the instructor's earlier answers.
    failed = [t for t, _ in source.tests if not results[t][0]]
    retry = [t for t in failed
             if any(e in failed for e in _earlier(source, t))
             and source.answer_of.get(t) and not answers[source.answer_of[t]].unanswered
             and not results[t][1].startswith(("answer not accepted", "tampering"))
             and not outcome.tampering]
    dependency_run = None
    for test_id in retry:  # one run per such exercise: every failed earlier answer replaced, its own kept
        earlier = [t for t in failed if index_of[t] < index_of[test_id] and source.answer_of.get(t)]
        replace = {source.answer_of[t]: source.cell(source.answer_of[t]).source for t in earlier}
        if not replace:
            continue
        second, _, _ = assemble(source, notebook, replace)
        second_outcome = NotebookRun(second, limits, sandboxed).run()
        dependency_run = dependency_run or executed_notebook(second, second_outcome)
        passed, _ = reason_for(second_outcome.records.get(index_of[test_id]))
        if passed and not second_outcome.tampering:
            results[test_id] = (True, "", f"{exercise_name(test_id)}: passed with the reference "
                                f"{', '.join(exercise_name(t) for t in earlier)} in place of yours (yours did not pass)")
    extra = list(notes)
    stderr_cells = [r for i, r in sorted(outcome.records.items()) if _stderr(r)]
    if stderr_cells:
        extra.append(f"wrote to stderr in {len(stderr_cells)} cell(s), first: {first_line(_stderr(stderr_cells[0]), 120)!r}")
    extra += [results[t][2] for t, _ in source.tests if results[t][2]]
    if outcome.tampering:
        extra.append(outcome.tampering)
    stamp = now_stamp()
    rows = [Row(student, source.name, exercise_name(t), p if results[t][0] else 0.0, p, results[t][1],
                "; ".join(extra), stamp) for t, p in source.tests]
    reasons = [r.reason for r in rows]
    if outcome.tampering or any(r.startswith("answer not accepted") for r in reasons):
        status = "tampering detected"
    elif any(r.status == "timeout" for r in outcome.records.values()):
        status = "timed out"
    elif any(r.status == "dead" for r in outcome.records.values()):
        status = "kernel died"
    elif any(r.startswith("not run") for r in reasons):
        status = "not run"
    else:
        status = "graded"
    return NotebookGrade(rows, status, executed_notebook(graded, outcome), dependency_run, outcome.events)


def _stderr(record: Record) -> str:
    return "".join(o.get("text", "") for o in record.outputs if o.get("output_type") == "stream"
                   and o.get("name") == "stderr")


def _earlier(source: Source, test_id: str) -> list[str]:
    tests = [t for t, _ in source.tests]
    return tests[: tests.index(test_id)]


# ------------------------------------------------------------------------------------------------------------
# Students, the class, and the files the grader writes
# ------------------------------------------------------------------------------------------------------------


@dataclass
class StudentGrade:
    """All notebooks of one student."""

    student: str
    rows: list[Row]
    notebooks: dict[str, NotebookGrade]
    seconds: float = 0.0


def grade_student(sources: list[Source], student: str, files: list[Path], limits: Limits,
                  sandboxed: bool) -> StudentGrade:
    """Rows for every exercise of every source notebook, plus one row per file that matched none."""
    matched, unmatched = match_files(sources, files)
    rows: list[Row] = []
    notebooks: dict[str, NotebookGrade] = {}
    for source in sources:
        if source.name in matched:
            path, notebook, note = matched[source.name]
            problem = note if notebook is None else ""
            result = grade_notebook(source, student, notebook, problem, "" if notebook is None else note, limits,
                                    sandboxed)
        else:
            why = "not submitted"
            if unmatched:
                why += f" (unusable file(s): {', '.join(p.name for p, _ in unmatched)})"
            stamp = now_stamp()
            result = NotebookGrade([Row(student, source.name, exercise_name(t), 0.0, p, why, "", stamp)
                                    for t, p in source.tests], "not submitted")
        notebooks[source.name] = result
        rows += result.rows
    for path, why in unmatched:
        rows.append(Row(student, path.name, "-", 0.0, 0.0, why, "", now_stamp()))
    return StudentGrade(student, rows, notebooks)


def print_table(student: str, rows: list[Row]) -> None:
    """A readable per-student table on stdout."""
    print(f"\n== {student} ==")
    width = max([len(f"{r.notebook} / {r.exercise}") for r in rows] + [10])
    for row in rows:
        label = f"{row.notebook} / {row.exercise}"
        print(f"  {label:<{width}}  {_number(row.points):>4} / {_number(row.max_points):<4} {row.reason}")
    total, most = sum(r.points for r in rows), sum(r.max_points for r in rows)
    print(f"  {'total':<{width}}  {_number(total):>4} / {_number(most):<4}")
    for note in sorted({r.notes for r in rows if r.notes}):
        print(f"  note: {note}")


def _grade_safely(sources: list[Source], student: str, files: list[Path], limits: Limits,
                  sandboxed: bool) -> StudentGrade:
    """grade_student plus its wall time; a grader bug becomes rows with the reason, never an exception."""
    started = time.perf_counter()
    try:
        result = grade_student(sources, student, files, limits, sandboxed)
    except Exception as error:  # belt and braces: grade_student is not supposed to raise
        rows = [Row(student, s.name, exercise_name(t), 0.0, p, f"grader error: {error}", "", now_stamp())
                for s in sources for t, p in s.tests]
        result = StudentGrade(student, rows, {})
    result.seconds = time.perf_counter() - started
    return result


def safe_name(name: str) -> str:
    """A student's name as a folder name."""
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]+", "_", name).strip("._") or "student"
    return cleaned[:100]


class Outputs:
    """The files an instructor gets: gradebook CSV, summary CSV, executed notebooks and feedback pages."""

    def __init__(self, csv_path: Path | None, summary_path: Path | None, out_dir: Path | None) -> None:
        self.out_dir = out_dir
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            os.chmod(out_dir, 0o700)
            csv_path = csv_path or out_dir / "gradebook.csv"
            summary_path = summary_path or out_dir / "summary.csv"
        self.handles = []
        self.writer = self.summary = None
        if csv_path is not None:
            self.writer = self._open(csv_path, CSV_COLUMNS)
        if summary_path is not None:
            self.summary = self._open(summary_path, SUMMARY_COLUMNS)

    def _open(self, path: Path, columns: list[str]) -> csv.DictWriter:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "w", newline="", encoding="utf-8")
        self.handles.append(handle)
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        handle.flush()
        return writer

    def add(self, result: StudentGrade, sources: list[Source]) -> None:
        """Write one student's rows, summary lines, executed notebooks and feedback."""
        from grading.feedback import feedback_html

        if self.writer is not None:
            self.writer.writerows(row.as_dict() for row in result.rows)
        if self.summary is not None:
            for source in sources:
                grade = result.notebooks.get(source.name)
                rows = [r for r in result.rows if r.notebook == source.name]
                if not rows:
                    continue
                notes = sorted({r.notes for r in rows if r.notes})
                self.summary.writerow({
                    "student": result.student, "notebook": source.name,
                    "score": _number(sum(r.points for r in rows)), "max_score": _number(sum(r.max_points for r in rows)),
                    "timestamp": rows[0].timestamp, "status": grade.status if grade else "grader error",
                    "notes": "; ".join(notes)})
        for handle in self.handles:
            handle.flush()
        if self.out_dir is None:
            return
        folder = self.out_dir / safe_name(result.student)
        folder.mkdir(parents=True, exist_ok=True)
        for source in sources:
            grade = result.notebooks.get(source.name)
            if grade is None:
                continue
            if grade.executed is not None:
                nbformat.write(grade.executed, folder / source.name)
            if grade.dependency_run is not None:
                nbformat.write(grade.dependency_run, folder / (source.path.stem + ".with-reference-answers.ipynb"))
            page = feedback_html(result.student, source, grade)
            (folder / (source.path.stem + ".feedback.html")).write_text(page, encoding="utf-8")

    def close(self) -> None:
        """Close the CSV files."""
        for handle in self.handles:
            handle.close()


def grade(paths: list[Path], source: Path, csv_path: Path | None, limits: Limits, quiet: bool = False,
          jobs: int = 1, out_dir: Path | None = None, summary_path: Path | None = None) -> list[Row]:
    """Grade every submission under `paths`, `jobs` students at a time; write the outputs student by student."""
    sources = load_sources(source)
    sandboxed = use_sandbox(limits)
    if not sandboxed:
        print(sandbox_warning(limits), file=sys.stderr, flush=True)
    students, ignored = collect_submissions(paths)
    if ignored and not quiet:
        print(f"ignored (not in a student folder): {', '.join(str(p) for p in ignored)}", flush=True)
    all_rows: list[Row] = []
    outputs = Outputs(csv_path, summary_path, out_dir)
    try:
        # Threads are enough: each notebook runs in its own kernel process, the threads only wait for them.
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = [pool.submit(_grade_safely, sources, student, files, limits, sandboxed)
                       for student, files in students.items()]
            for future in as_completed(futures):
                result = future.result()
                all_rows += result.rows
                outputs.add(result, sources)  # the student's kernels are gone by now (closed in NotebookRun)
                if not quiet:
                    print_table(result.student, result.rows)
                    print(f"  ({result.seconds:.0f} s)", flush=True)
    finally:
        outputs.close()
    order = {student: position for position, student in enumerate(students)}
    return sorted(all_rows, key=lambda row: order.get(row.student, len(order)))


__all__ = ["Limits", "Row", "Source", "assemble", "collect_submissions", "find_answers", "grade", "grade_notebook",
           "load_sources", "match_files", "ROOT"]

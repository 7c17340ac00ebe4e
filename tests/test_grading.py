"""Exercises, their generator and the grader: source format, generated files, and grading of good and bad submissions.

The grading tests start real kernels (in the `smoke` profile, forced by the root conftest.py), one per notebook
graded, so they take a few seconds each.
"""
from __future__ import annotations

import copy
import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from grading.assignment import (
    CODE_STUB,
    EXPERIMENT_TAG,
    RAISES_TAG,
    check_source,
    clear_solution_regions,
    generate,
    grade_id,
    is_grade,
    is_locked,
    is_solution,
    remove_hidden_tests,
    student_cell,
    student_notebook,
)
from grading.grader import Limits, NotebookRun, assemble, collect_submissions, find_answers, grade, load_sources

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = ROOT / "exercises"
FIRST = ROOT / "solutions" / "01_unet.ipynb"  # the notebook the failure cases are built from
ids = [path.name for path in SOLUTIONS]


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def write(notebook: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def cell_by_id(notebook: nbformat.NotebookNode, cell_id: str) -> nbformat.NotebookNode:
    return next(cell for cell in notebook.cells if grade_id(cell) == cell_id)


def points_by_exercise(rows) -> dict[str, float]:
    return {row.exercise: row.points for row in rows}


# ----------------------------------------------------------------------------------------------------------
# The source notebooks and the generated exercises (no kernels)
# ----------------------------------------------------------------------------------------------------------


def test_one_solution_notebook_per_topic():
    assert [path.name[:2] for path in SOLUTIONS] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_source_follows_nbgrader_schema_3(path):
    notebook = read(path)
    assert check_source(notebook, path.name) == []
    tests = [cell for cell in notebook.cells if is_grade(cell)]
    answers = [cell for cell in notebook.cells if is_solution(cell)]
    assert len(tests) >= 3, "at least three graded exercises per notebook"
    assert len(answers) == len(tests)
    for cell in tests:
        meta = cell.metadata.nbgrader
        assert meta["locked"] is True and meta["solution"] is False and meta["points"] > 0
        assert "### BEGIN HIDDEN TESTS" in cell.source and "### END HIDDEN TESTS" in cell.source
        assert "checks.passed(" in cell.source, "every check ends by saying it passed"
    for cell in answers:
        assert cell.metadata.nbgrader["locked"] is False and "### BEGIN SOLUTION" in cell.source
        assert cell.metadata["grading"]["forbidden"], "every answer names the reference code it must not use"
    for cell in tests:  # so that a release made by nbgrader itself lets "Run All" go on
        assert RAISES_TAG in cell.metadata.get("tags", [])
    # Every exercise: answer cell, then its test cell right after.
    positions = {grade_id(cell): index for index, cell in enumerate(notebook.cells)}
    for cell in answers:
        assert positions[grade_id(cell) + "_tests"] == positions[grade_id(cell)] + 1


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_source_has_course_layout_and_an_experiment_with_questions(path):
    notebook = read(path)
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert re.search(rf"colab\.research\.google\.com/github/unet-course/unet-course/blob/[^/]+/solutions/{path.name}",
                     first.source)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert "sys.path.insert" in code[0].source and "setup(seed=" in code[1].source
    experiments = [i for i, cell in enumerate(notebook.cells) if EXPERIMENT_TAG in cell.metadata.get("tags", [])]
    assert experiments, "each notebook ends with an experiment"
    assert "skip" in notebook.cells[experiments[-1]].source
    after = [cell for cell in notebook.cells[experiments[-1] + 1:] if cell.cell_type == "markdown"]
    assert after and "Open questions" in after[0].source


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_solutions_are_committed_executed_in_the_cpu_profile(path):
    notebook = read(path)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.execution_count is not None for cell in code)
    assert "profile: cpu" in "".join(output.get("text", "") for output in code[1].outputs)
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert path.stat().st_size < 1_000_000


def test_exercises_are_what_the_generator_writes():
    changed = generate(ROOT / "solutions", EXERCISES, write=False)
    assert changed and not any(changed.values()), "run `python -m grading generate` and commit exercises/"
    assert sorted(p.name for p in EXERCISES.glob("*.ipynb")) == [p.name for p in SOLUTIONS]


def test_check_command_fails_on_a_stale_exercise(tmp_path):
    generate(ROOT / "solutions", tmp_path)
    command = [sys.executable, "-m", "grading", "check", "--output", str(tmp_path)]
    assert subprocess.run(command, cwd=ROOT, capture_output=True).returncode == 0
    stale = read(tmp_path / "01_unet.ipynb")
    stale.cells[0].source += "\nedited by hand"
    write(stale, tmp_path / "01_unet.ipynb")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1 and "out of date" in result.stdout


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_exercises_hold_no_answers_hidden_tests_or_outputs(path):
    exercise = read(EXERCISES / path.name)
    text = json.dumps(exercise)
    for secret in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert secret not in text
    assert re.search(rf"/blob/[^/]+/exercises/{path.name}", exercise.cells[0].source)
    assert "/solutions/" not in exercise.cells[0].source
    for cell in exercise.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
        if is_grade(cell) or EXPERIMENT_TAG in cell.metadata.get("tags", []):
            assert RAISES_TAG in cell.metadata.get("tags", []), "cells that need the student's code may raise"
        # nbgrader's release: checks and instructions read-only and undeletable, answers undeletable
        if is_locked(cell):
            assert cell.metadata.get("editable") is False and cell.metadata.get("deletable") is False
        elif is_solution(cell):
            assert cell.metadata.get("deletable") is False and cell.metadata.get("editable", True) is True
    assert "widgets" not in exercise.metadata


def test_clear_solutions_like_nbgrader():
    source = ("def f(x):\n    '''Doc.'''\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n\n"
              "y = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION")
    cleared, replaced, top_level = clear_solution_regions(source)
    assert replaced and top_level
    assert cleared == ("def f(x):\n    '''Doc.'''\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\n"
                       "y = 1\n# YOUR CODE HERE\nraise NotImplementedError()")
    assert clear_solution_regions("a = 1")[1] is False
    with pytest.raises(RuntimeError, match="nested"):
        clear_solution_regions("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION")
    with pytest.raises(RuntimeError, match="no end solution"):
        clear_solution_regions("### BEGIN SOLUTION\nx = 1")


def test_solution_cell_without_delimiters_is_replaced_whole_and_regions_need_the_right_cells():
    whole = nbformat.v4.new_code_cell("answer = 42")
    whole.metadata["nbgrader"] = {"solution": True, "grade": False, "locked": False, "grade_id": "a",
                                  "schema_version": 3}
    assert student_cell(whole).source == CODE_STUB
    assert RAISES_TAG in student_cell(whole).metadata["tags"]
    stray = nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 1\n### END SOLUTION")
    with pytest.raises(RuntimeError, match="not a solution cell"):
        student_cell(stray)
    hidden = nbformat.v4.new_code_cell("assert True\n### BEGIN HIDDEN TESTS\nassert 1\n### END HIDDEN TESTS")
    with pytest.raises(RuntimeError, match="not a grade cell"):
        student_cell(hidden)
    hidden.metadata["nbgrader"] = {"solution": False, "grade": True, "locked": True, "grade_id": "t", "points": 1,
                                   "schema_version": 3}
    assert student_cell(hidden).source == "assert True"
    assert remove_hidden_tests("a\n# BEGIN HIDDEN TESTS\nb\n# END HIDDEN TESTS\nc") == ("a\nc", True)
    assert is_locked(hidden) and not is_locked(whole)


def test_student_version_keeps_cell_ids_and_nbgrader_metadata():
    source = read(FIRST)
    student = student_notebook(source, FIRST.name)
    assert [cell.id for cell in student.cells] == [cell.id for cell in source.cells]
    assert [grade_id(cell) for cell in student.cells] == [grade_id(cell) for cell in source.cells]



# ----------------------------------------------------------------------------------------------------------
# Pieces of the grader that need no kernel
# ----------------------------------------------------------------------------------------------------------


def exercise_with_answers(*answered: str, source: Path = FIRST) -> nbformat.NotebookNode:
    """A fresh exercise with the instructor's answers pasted into the named answer cells."""
    exercise, solution = read(EXERCISES / source.name), read(source)
    for cell_id in answered:
        cell_by_id(exercise, cell_id).source = cell_by_id(solution, cell_id).source
    return exercise


def answer_text(cell_id: str, source: Path = FIRST) -> str:
    return cell_by_id(read(source), cell_id).source


def test_answers_are_found_by_grade_id_then_cell_id_then_position():
    source = load_sources(FIRST)[0]
    solution = read(FIRST)
    stripped = copy_without(solution, metadata=True)
    answers = find_answers(source, stripped)
    assert {a.how for a in answers.values()} == {"cell id"} and not any(a.unanswered for a in answers.values())
    anonymous = copy_without(solution, metadata=True, ids=True)
    answers = find_answers(source, anonymous)
    assert {a.how for a in answers.values()} == {"position"}
    assert answers["tiny_unet"].text == answer_text("tiny_unet")
    assert find_answers(source, read(EXERCISES / FIRST.name))["tiny_unet"].unanswered


def copy_without(notebook, metadata=False, ids=False):
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if metadata:
            cell.metadata.pop("nbgrader", None)
        if ids:
            cell.pop("id", None)
    if ids:
        notebook.nbformat_minor = 4
    return notebook


def test_a_class_folder_with_stray_files_grades_every_student_folder(tmp_path):
    (tmp_path / "alice").mkdir()
    write(read(FIRST), tmp_path / "alice" / FIRST.name)
    (tmp_path / "bob").mkdir()
    (tmp_path / "roster.csv").write_text("alice\nbob\n")
    (tmp_path / ".DS_Store").write_text("")
    students, ignored = collect_submissions([tmp_path])
    assert sorted(students) == ["alice", "bob"] and students["bob"] == []
    assert ignored == [tmp_path / "roster.csv"]
    one, _ = collect_submissions([tmp_path / "alice"])  # a single student's folder
    assert list(one) == ["alice"]


@pytest.mark.parametrize("answer, expected", [
    ("from utils.models.unet import Up\n\nclass DecoderBlock(Up):\n    pass", "utils.models.unet.Up"),
    ("import utils.models.unet as u\nDecoderBlock = u.Up", "utils.models.unet.Up"),
    ("from utils.models import unet\n\ndef make():\n    return unet.UNet(3, 3)", "utils.models.unet.UNet"),
    ("from utils.models.unet import *", "star import"),
    ("m = __import__('utils.models.unet')", "__import__"),
    ("import importlib\nUp = importlib.import_module('utils.models.unet').Up", "importlib"),
    ("exec(open('x').read())", "exec"),
    ("get_ipython().set_custom_exc((Exception,), print)", "get_ipython"),
    ("import builtins\nbuiltins.isinstance = lambda *a: True", "builtins"),
])
def test_answers_that_use_the_reference_implementation_are_found(answer, expected):
    from grading.tamper import Forbidden, reference_uses

    forbidden = Forbidden(["utils.models.unet.Up", "utils.models.unet.UNet"])
    found = reference_uses(answer, [c.source for c in read(FIRST).cells if c.cell_type == "code"], forbidden)
    assert any(expected in reason for reason in found), found


def test_honest_answers_and_course_imports_the_task_gives_are_not_flagged():
    from grading.tamper import Forbidden, reference_uses

    for path in SOLUTIONS:
        notebook = read(path)
        sources = [c.source for c in notebook.cells if c.cell_type == "code"]
        for cell in notebook.cells:
            if is_solution(cell):
                found = reference_uses(cell.source, sources, Forbidden(cell.metadata["grading"]["forbidden"]))
                assert found == [], (path.name, grade_id(cell), found)
    # A name the hidden tests import (course_iou) used by a later answer is the reference all the same.
    sources = [c.source for c in read(SOLUTIONS[1]).cells if c.cell_type == "code"]
    found = reference_uses("def dice_score(p, t, threshold=0.5):\n    return course_iou(p, t)", sources,
                           Forbidden(["utils.metrics"]))
    assert found and "utils.metrics" in found[0]


def test_probe_differences_name_what_changed():
    from grading.tamper import differences

    baseline = {"builtins.len": 1, "grading.checks.expect_close": 2, "grading.checks.expect_close.__code__": 3}
    assert differences(baseline, dict(baseline), []) == []
    changed = dict(baseline, **{"grading.checks.expect_close.__code__": 9, "class:torch.Tensor.__gt__": 5})
    found = differences(baseline, changed, ["a custom exception handler is set (set_custom_exc)"])
    assert found[0].startswith("a custom exception handler")
    assert "grading.checks.expect_close modified (code)" in found and "torch.Tensor.__gt__ added" in found


def test_sandbox_is_detected():
    from grading.sandbox import bwrap_problem

    problem = bwrap_problem()
    assert isinstance(problem, str)  # '' where bubblewrap works; else the reason, which the grader prints loudly
    assert "NO SANDBOX" in __import__("grading.grader", fromlist=["x"]).sandbox_warning(Limits(sandbox="off"))


def test_command_line_writes_gradebook_and_summary(tmp_path):
    # mallory: not a notebook, plus a binary file; dave: nothing. No kernel is needed for either.
    classroom = tmp_path / "class"
    (classroom / "mallory").mkdir(parents=True)
    (classroom / "mallory" / FIRST.name).write_text("this is not json")
    (classroom / "mallory" / "notes.bin").write_bytes(b"\x00\xff binary")
    (classroom / "dave").mkdir()
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "grading", "grade", str(classroom), "--source", str(FIRST),
                             "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    with open(out / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    with open(out / "summary.csv", newline="", encoding="utf-8") as handle:
        summary = {row["student"]: row for row in csv.DictReader(handle)}
    assert {row["reason"] for row in rows if row["student"] == "dave"} == {"not submitted"}
    assert all(row["reason"].startswith("not a notebook") for row in rows if row["student"] == "mallory")
    assert len(rows) == 2 * 3 + 1  # one row per exercise, plus one for the file that matched no notebook
    assert (summary["mallory"]["status"], summary["dave"]["status"]) == ("unreadable", "not submitted")
    assert summary["dave"]["score"] == "0" and summary["dave"]["max_score"] == "8" and summary["dave"]["timestamp"]
    assert (out / "mallory" / "01_unet.feedback.html").is_file()


# ----------------------------------------------------------------------------------------------------------
# Grading: every solution scores full marks, every fresh exercise zero (one kernel per notebook)
# ----------------------------------------------------------------------------------------------------------

QUICK = Limits(cell_timeout=120, total_timeout=300, profile="smoke")


def test_solutions_score_full_marks_and_the_outputs_are_written(tmp_path):
    write_all = tmp_path / "instructor"
    for path in SOLUTIONS:
        write(read(path), write_all / path.name)
    out = tmp_path / "out"
    rows = grade([write_all], ROOT / "solutions", None, QUICK, quiet=True, jobs=1, out_dir=out)
    failures = [(row.notebook, row.exercise, row.reason) for row in rows if row.points != row.max_points]
    assert not failures
    assert not any(row.notes for row in rows), "a solution needs no notes: no stderr, nothing restored"
    with open(out / "summary.csv", newline="", encoding="utf-8") as handle:
        summary = list(csv.DictReader(handle))
    assert [(r["notebook"], r["score"], r["max_score"], r["status"]) for r in summary] == [
        (p.name, f"{sum(v for _, v in load_sources(p)[0].tests):g}", f"{sum(v for _, v in load_sources(p)[0].tests):g}",
         "graded") for p in SOLUTIONS]
    assert all(r["student"] == "instructor" and r["timestamp"] for r in summary)
    for path in SOLUTIONS:
        executed = read(out / "instructor" / path.name)
        assert any(o.get("text", "").startswith("OK:") for c in executed.cells for o in c.get("outputs", []))
        page = (out / "instructor" / (path.stem + ".feedback.html")).read_text()
        assert "passed (visible checks and hidden tests)" in page and "BEGIN HIDDEN TESTS" not in page


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_fresh_exercises_score_zero_and_raise_only_where_tagged(path):
    source, exercise = load_sources(path)[0], read(EXERCISES / path.name)
    limits = Limits(cell_timeout=120, total_timeout=300, profile="smoke", run_experiments=True)
    graded, answers, _ = assemble(source, exercise)
    assert all(answer.unanswered for answer in answers.values())
    outcome = NotebookRun(graded, limits, sandboxed=__import__("grading.grader", fromlist=["x"]).use_sandbox(limits)).run()
    raised = {i for i, record in outcome.records.items() if record.status == "error"}
    tagged = {i for i, cell in enumerate(exercise.cells) if RAISES_TAG in cell.metadata.get("tags", [])}
    assert raised == tagged
    assert {outcome.records[i].ename for i in raised} == {"NotImplementedError"}
    assert not outcome.tampering


# ----------------------------------------------------------------------------------------------------------
# A class of adversarial and unlucky students (notebook 01), graded in one run, two at a time
# ----------------------------------------------------------------------------------------------------------

LOOP = "def pixel_shuffle(x, factor):\n    while True:\n        pass"
DEAF_LOOP = ("import time\n\ndef pixel_shuffle(x, factor):\n    while True:\n        try:\n            time.sleep(0.1)\n"
             "        except KeyboardInterrupt:\n            pass")


def build_class(folder: Path) -> dict[str, dict]:
    """Write the fake class; return {student: expected points per exercise (and checks on the reason)}."""
    solution, fresh = read(FIRST), read(EXERCISES / FIRST.name)
    expected: dict[str, dict] = {}

    def student(name, notebook, points, reason=None, note=None, file_name=FIRST.name):
        write(notebook, folder / name / file_name)
        expected[name] = {"points": points, "reason": reason or {}, "note": note}

    def with_answer(cell_id, source, base=None):
        notebook = copy.deepcopy(base or fresh)
        cell_by_id(notebook, cell_id).source = source
        return notebook

    full = {"decoder_block": 3, "pixel_shuffle": 2, "tiny_unet": 3}
    none = {"decoder_block": 0, "pixel_shuffle": 0, "tiny_unet": 0}
    (folder / "roster.csv").parent.mkdir(parents=True, exist_ok=True)
    (folder / "roster.csv").write_text("student\nhonest\n")  # a stray file beside the student folders

    student("honest", solution, full)
    student("blank", fresh, none, {"tiny_unet": "not answered"})
    student("renamed", exercise_with_answers("pixel_shuffle"), dict(none, pixel_shuffle=2), note="file renamed",
            file_name="01_unet (1).ipynb")
    # Time limits: a blank notebook whose first answer sleeps forever; an honest student whose code hangs.
    student("sleeper", with_answer("decoder_block", "import time\ntime.sleep(10**6)"), none,
            {"decoder_block": "answer cell decoder_block: timed out"})
    student("hangs", with_answer("pixel_shuffle", LOOP, exercise_with_answers("decoder_block", "tiny_unet")),
            dict(full, pixel_shuffle=0), {"pixel_shuffle": "timed out"})
    student("deaf_loop", with_answer("pixel_shuffle", DEAF_LOOP, exercise_with_answers("decoder_block", "tiny_unet")),
            dict(full, pixel_shuffle=0), {"pixel_shuffle": "timed out"})
    student("exits", with_answer("pixel_shuffle", "import os\nos._exit(1)", exercise_with_answers("decoder_block", "tiny_unet")),
            dict(full, pixel_shuffle=0), {"pixel_shuffle": "kernel died"})
    # Cheating from inside the kernel, with no answers.
    student("custom_exc", with_answer("decoder_block",
            "import IPython\nIPython.get_ipython().set_custom_exc((BaseException,), lambda *args, **kwargs: None)"), none,
            {"decoder_block": "tampering", "tiny_unet": "custom exception handler"})
    student("noop_checks", with_answer("decoder_block",
            "import grading.checks as c\nfor name in dir(c):\n    if name.startswith('expect'):\n"
            "        setattr(c, name, lambda *a, **k: None)\nclass DecoderBlock:\n    def __init__(self, *a, **k):\n"
            "        pass\n    def __call__(self, *a):\n        return None"), none, {"tiny_unet": "tampering"})
    student("fake_checks", with_answer("decoder_block",
            "class _Anything:\n    def __getattr__(self, name):\n        return lambda *a, **k: None\nchecks = _Anything()"),
            none, {"pixel_shuffle": "tampering"})
    student("patched_builtin", with_answer("decoder_block",
            "import torch\ntorch.Tensor.__gt__ = lambda self, other: torch.zeros_like(self, dtype=torch.bool)"),
            none, {"tiny_unet": "tampering"})
    student("reads_solutions", with_answer("decoder_block",
            "import json, pathlib\nfound = [p for p in [pathlib.Path(ROOT) / 'solutions' / '01_unet.ipynb',\n"
            f"    pathlib.Path({str(FIRST)!r})] if p.exists()]\nprint('SOLUTIONS VISIBLE:', [str(p) for p in found])\n"
            "for p in found:\n    for cell in json.load(open(p))['cells']:\n"
            "        if cell.get('metadata', {}).get('nbgrader', {}).get('solution'):\n"
            "            code = ''.join(cell['source'])\n            exec(code, globals())"), none)
    student("uses_reference", with_answer("tiny_unet",
            "from utils.models.unet import UNet\n\nclass TinyUNet(UNet):\n    def __init__(self, in_channels, out_channels,"
            " base_channels=16, depth=3, skip=True):\n        super().__init__(in_channels, out_channels, base_channels, depth,"
            " skip)", exercise_with_answers("decoder_block", "pixel_shuffle")),
            dict(full, tiny_unet=0), {"tiny_unet": "answer not accepted"})
    # Lost grades: metadata dropped by an editor; no ids either; a later exercise right while an earlier is wrong.
    student("no_metadata", copy_without(solution, metadata=True), full, note="found by cell id")
    student("no_ids", copy_without(solution, metadata=True, ids=True), full, note="found by position")
    wrong = answer_text("decoder_block").replace("ConvBlock(2 * out_channels if skip else out_channels", "ConvBlock(2 * out_channels")
    student("dependent", with_answer("decoder_block", wrong, read(FIRST)), dict(full, decoder_block=0),
            {"decoder_block": "expected 5,216 parameters"}, note="passed with the reference decoder_block")
    student("stderr", with_answer("pixel_shuffle", answer_text("pixel_shuffle") + "\n\nimport sys\nprint('debugging', file=sys.stderr)",
                                  read(FIRST)), full, note="wrote to stderr")
    return expected


def saboteur_notebook(targets: list[Path], marker: str) -> nbformat.NotebookNode:
    """Tries to blank a classmate's notebook, write into the source folder, and leave a process behind that
    rewrites the gradebook after the grader is done."""
    code = (
        "import pathlib, subprocess, sys\n"
        f"for target in {[str(t) for t in targets]!r}:\n"
        "    try:\n        pathlib.Path(target).write_text('{}')\n        print('WROTE', target)\n"
        "    except Exception as error:\n        print('could not write', target, type(error).__name__)\n"
        f"script = 'import time, pathlib\\ntime.sleep(6)\\nfor t in {[str(t) for t in targets]!r}:\\n"
        "    try:\\n        pathlib.Path(t).write_text(\"forged\")\\n    except Exception:\\n        pass\\n'\n"
        f"subprocess.Popen([sys.executable, '-c', script, {marker!r}], start_new_session=True,"
        " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "import os\nos.kill(os.getppid(), 9)  # the process that started the kernel")
    notebook = read(EXERCISES / FIRST.name)
    cell_by_id(notebook, "decoder_block").source = code
    return notebook


def test_a_class_of_adversarial_students(tmp_path):
    import shutil

    source_dir = tmp_path / "private_source"  # the instructor's private copy of the hidden tests
    source_dir.mkdir()
    shutil.copy(FIRST, source_dir / FIRST.name)
    classroom = tmp_path / "submitted"
    expected = build_class(classroom)
    out = tmp_path / "grades"
    gradebook = out / "gradebook.csv"
    marker = f"grading-escape-{tmp_path.name}"
    targets = [classroom / "honest" / FIRST.name, source_dir / FIRST.name, gradebook]
    from grading.grader import use_sandbox

    limits = Limits(cell_timeout=20, total_timeout=240, profile="smoke")
    if use_sandbox(limits):  # without a sandbox, killing its parent would take down the test run itself
        write(saboteur_notebook(targets, marker), classroom / "saboteur" / FIRST.name)
        expected["saboteur"] = {"points": {"decoder_block": 0, "pixel_shuffle": 0, "tiny_unet": 0}, "reason": {},
                                "note": None}
    honest_before = (classroom / "honest" / FIRST.name).read_bytes()
    started = time.monotonic()
    rows = grade([classroom], source_dir / FIRST.name, None, limits, quiet=True, jobs=2, out_dir=out)
    seconds = time.monotonic() - started
    by_student: dict[str, dict] = {}
    for row in rows:
        by_student.setdefault(row.student, {})[row.exercise] = row
    assert sorted(by_student) == sorted(expected), "every student folder graded, the roster ignored"
    problems = []
    for name, wanted in expected.items():
        got = {exercise: row.points for exercise, row in by_student[name].items()}
        if got != wanted["points"]:
            problems.append((name, got, {e: r.reason for e, r in by_student[name].items()}))
        for exercise, text in wanted["reason"].items():
            if text not in by_student[name][exercise].reason:
                problems.append((name, exercise, by_student[name][exercise].reason))
        if wanted["note"] and not all(wanted["note"] in row.notes for row in by_student[name].values()):
            problems.append((name, "note", by_student[name]["tiny_unet"].notes))
    assert not problems, problems
    assert seconds < 600
    # The sandbox (where the machine has one) hides the solutions and other students and ends every process.
    if use_sandbox(limits):
        executed = read(out / "reads_solutions" / FIRST.name)
        printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
        assert "SOLUTIONS VISIBLE: []" in printed
    time.sleep(8)  # the saboteur's left-behind process would have struck by now
    assert (classroom / "honest" / FIRST.name).read_bytes() == honest_before
    assert (source_dir / FIRST.name).read_bytes() == FIRST.read_bytes()
    assert "forged" not in gradebook.read_text()
    alive = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert alive == [], "a student's process outlived the grading"
    # Outputs: a summary row per student and notebook, executed notebooks and feedback pages.
    with open(out / "summary.csv", newline="", encoding="utf-8") as handle:
        summary = {row["student"]: row for row in csv.DictReader(handle)}
    assert summary["honest"]["score"] == "8" and summary["honest"]["status"] == "graded"
    assert summary["sleeper"]["status"] == "timed out" and summary["exits"]["status"] == "kernel died"
    assert summary["noop_checks"]["status"] == "tampering detected"
    page = (out / "hangs" / "01_unet.feedback.html").read_text()
    assert "timed out" in page and "BEGIN HIDDEN TESTS" not in page and "Up(12, 6" in page


# ----------------------------------------------------------------------------------------------------------
# The common mistakes fail a visible check or a hidden test, with what was expected and what came
# ----------------------------------------------------------------------------------------------------------

MISTAKES = {
    "tiny_no_tanh": ("01_unet.ipynb", {"tiny_unet": [("return torch.tanh(self.head(x))", "return self.head(x)")]}),
    "tiny_sigmoid": ("01_unet.ipynb", {"tiny_unet": [("torch.tanh(self.head(x))", "torch.sigmoid(self.head(x))")]}),
    "tiny_tanh_twice": ("01_unet.ipynb", {"tiny_unet": [("torch.tanh(self.head(x))", "torch.tanh(torch.tanh(self.head(x)))")]}),
    "tap_no_sigmoid_dice_gt": ("02_vgg16_unet.ipynb", {
        "tap_unet": [("return torch.sigmoid(self.head(x))", "return self.head(x)")],
        "dice": [("(pred >= threshold)", "(pred > threshold)")]}),
    "tap_sigmoid_twice_iou_gt": ("02_vgg16_unet.ipynb", {
        "tap_unet": [("torch.sigmoid(self.head(x))", "torch.sigmoid(torch.sigmoid(self.head(x)))")],
        "iou": [("(pred >= threshold)", "(pred > threshold)")]}),
    "ds_no_check_f_gt": ("03_u2net.ipynb", {
        "deep_supervision": [("        if output.shape != target.shape:\n", "        if False:\n"),
                             ("F.binary_cross_entropy(output.float(), target.float())",
                              "-(target * output.log() + (1 - target) * (1 - output).log()).mean()")],
        "f_measure": [("(pred >= threshold)", "(pred > threshold)")]}),
    "sr_no_clamp": ("04_super_resolution.ipynb", {"sr_pair": [(".clamp(0.0, 1.0)", "")]}),
}


def test_common_mistakes_lose_their_points_with_a_message(tmp_path):
    expected = {}
    for name, (notebook_name, changes) in MISTAKES.items():
        notebook = read(ROOT / "solutions" / notebook_name)
        for cell_id, replacements in changes.items():
            cell = cell_by_id(notebook, cell_id)
            for old, new in replacements:
                assert old in cell.source, (name, cell_id, old)
                cell.source = cell.source.replace(old, new)
        write(notebook, tmp_path / name / notebook_name)
        expected[name] = set(changes)
    rows = grade([tmp_path], ROOT / "solutions", None, QUICK, quiet=True, jobs=2)
    problems = []
    for name, wrong in expected.items():
        mine = [row for row in rows if row.student == name and row.notebook == MISTAKES[name][0]]
        for row in mine:
            if row.exercise in wrong and (row.points != 0 or "expected" not in row.reason):
                problems.append((name, row.exercise, row.points, row.reason))
            if row.exercise not in wrong and row.points != row.max_points:
                problems.append((name, row.exercise, row.points, row.reason))
    assert not problems, problems


# ----------------------------------------------------------------------------------------------------------
# The helpers behind the visible checks
# ----------------------------------------------------------------------------------------------------------


def test_check_messages_say_what_was_expected_and_what_came():
    import torch

    from grading import checks

    with pytest.raises(AssertionError, match=r"output: expected shape \(1, 2\), got \(2, 1\)"):
        checks.expect_shape(torch.zeros(2, 1), (1, 2), "output")
    with pytest.raises(AssertionError, match=r"expected 10 parameters, got 6 \(difference -4\)\n  Hint: bias"):
        checks.expect_parameters(torch.nn.Linear(2, 2), 10, "layer", hint="bias")
    with pytest.raises(AssertionError, match=r"1 of 3 values differ; the worst is 2 where 1 was expected"):
        checks.expect_close(torch.tensor([0.0, 2.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), "values")
    with pytest.raises(AssertionError, match="expected 20, got 19"):
        checks.expect_close(19.0, 20.0, "PSNR", atol=1e-4)
    checks.expect_close(float("inf"), float("inf"), "PSNR of a copy")
    with pytest.raises(AssertionError, match="expected ValueError, but nothing was raised"):
        checks.expect_raises(ValueError, lambda: None, what="call")

    def stub() -> None:
        raise NotImplementedError()

    with pytest.raises(NotImplementedError):  # an unanswered exercise stays "not answered", even here
        checks.expect_raises(RuntimeError, stub, what="call")
    assert torch.equal(checks.fixed_rand(2, 3, seed=5), checks.fixed_rand(2, 3, seed=5))

    def shapes_named(*args):
        raise ValueError("output 1 has shape (2, 1, 4, 8), the target torch.Size([2, 1, 8, 8])")

    checks.expect_raises(ValueError, shapes_named, what="call", shapes=[(2, 1, 4, 8), (2, 1, 8, 8)])
    with pytest.raises(AssertionError, match=r"must name the shapes \(3, 3\)"):
        checks.expect_raises(ValueError, shapes_named, what="call", shapes=[(3, 3)])
    with pytest.raises(AssertionError, match=r"conv on x: raised RuntimeError: boom\n  Hint: check the channels"):
        with checks.explain("conv on x", hint="check the channels"):
            raise RuntimeError("boom")
    with pytest.raises(NotImplementedError), checks.explain("stub"):
        stub()


# ----------------------------------------------------------------------------------------------------------
# Real nbgrader, where it is installed (not a course requirement): generate_assignment and autograde
# ----------------------------------------------------------------------------------------------------------


def test_real_nbgrader_releases_and_autogrades_the_solutions(tmp_path):
    """The README's nbgrader steps, for real: release all five notebooks, autograde the solutions and the blanks."""
    pytest.importorskip("nbgrader")
    import os
    import shutil

    from nbgrader.api import Gradebook

    course = tmp_path / "course"  # the README's layout: utils/ and grading/ beside source/, release/, autograded/
    for folder in ("utils", "grading"):
        shutil.copytree(ROOT / folder, course / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for path in SOLUTIONS:
        write(read(path), course / "source" / "ps01" / path.name)
    (course / "nbgrader_config.py").write_text(
        "import sys\nsys.path.insert(0, '.')\nfrom grading.nbgrader_release import nbgrader_preprocessors\n\n"
        "c = get_config()\nc.CourseDirectory.course_id = 'unet'\nc.Execute.timeout = 600\n"
        "c.GenerateAssignment.preprocessors = nbgrader_preprocessors()\n")
    # nbgrader calls its `alembic` script by name: the interpreter's own bin/ first on PATH.
    environment = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))

    def nbgrader(*args: str) -> None:
        result = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--force"], cwd=course, capture_output=True,
                                text=True, timeout=900, env=environment)
        log = result.stdout + result.stderr
        # An exception in nbgrader_config.py is logged and nbgrader goes on WITHOUT the config, exit status 0.
        assert result.returncode == 0 and "Traceback" not in log, log[-3000:]

    nbgrader("generate_assignment", "ps01")
    for path in SOLUTIONS:
        release = read(course / "release" / "ps01" / path.name)
        badge = release.cells[0].source
        assert "/blob/" in badge and "/exercises/" in badge and "/solutions/" not in badge, badge
        answers = [cell for cell in release.cells if is_solution(cell)]
        assert answers and all("raise NotImplementedError()" in cell.source for cell in answers), path.name
        text = "\n".join(cell.source for cell in release.cells)
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text, path.name
        assert all(RAISES_TAG in c.metadata.get("tags", []) for c in release.cells if is_grade(c)), path.name
        # Cell for cell, nbgrader's release says what `python -m grading generate` writes to exercises/.
        ours = student_notebook(read(path), path.name)
        assert [(c.cell_type, c.source) for c in release.cells] == [(c.cell_type, c.source) for c in ours.cells]
        for student, notebook in (("alice", path), ("bob", course / "release" / "ps01" / path.name)):
            write(read(notebook), course / "submitted" / student / "ps01" / path.name)  # bob hands in blanks

    nbgrader("autograde", "ps01")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="unet") as gradebook:
        scores = {(student, notebook.name): (notebook.score, notebook.max_score)
                  for student in ("alice", "bob") for notebook in gradebook.find_submission("ps01", student).notebooks}
    maximum = {path.stem: sum(c.metadata.nbgrader.points for c in read(path).cells if is_grade(c)) for path in SOLUTIONS}
    assert scores == {**{("alice", name): (points, points) for name, points in maximum.items()},
                      **{("bob", name): (0, points) for name, points in maximum.items()}}
    for path in SOLUTIONS:
        graded = read(course / "autograded" / "alice" / "ps01" / path.name)
        assert [o for c in graded.cells for o in c.get("outputs", []) if o.output_type == "error"] == [], path.name

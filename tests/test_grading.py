"""Exercises, their generator and the grader: source format, generated files, and grading of good and bad submissions.

The grading tests start real kernels (in the `smoke` profile, forced by the root conftest.py), one per notebook
graded, so they take a few seconds each.
"""
from __future__ import annotations

import csv
import json
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
from grading.grader import Limits, assemble, execute, grade, load_sources, score

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
    # Every exercise: answer cell, then its test cell right after.
    positions = {grade_id(cell): index for index, cell in enumerate(notebook.cells)}
    for cell in answers:
        assert positions[grade_id(cell) + "_tests"] == positions[grade_id(cell)] + 1


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_source_has_course_layout_and_an_experiment_with_questions(path):
    notebook = read(path)
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert f"colab.research.google.com/github/unet-course/unet-course/blob/main/solutions/{path.name}" in first.source
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
    assert f"blob/main/exercises/{path.name}" in exercise.cells[0].source
    for cell in exercise.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
        if is_grade(cell) or EXPERIMENT_TAG in cell.metadata.get("tags", []):
            assert RAISES_TAG in cell.metadata.get("tags", []), "cells that need the student's code may raise"
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
# Grading: every solution scores full marks, every fresh exercise zero (one kernel per notebook)
# ----------------------------------------------------------------------------------------------------------

QUICK = Limits(cell_timeout=120, total_timeout=300, profile="smoke")


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_solutions_score_full_marks(path):
    source = load_sources(path)[0]
    graded, notes = assemble(source, read(path), QUICK)
    rows = score(source, graded, execute(graded, path.parent, QUICK), "instructor", notes)
    failures = [(row.exercise, row.reason) for row in rows if row.points != row.max_points]
    assert not failures
    assert not any(row.notes for row in rows), "a solution needs no notes: no stderr, nothing restored"


@pytest.mark.parametrize("path", SOLUTIONS, ids=ids)
def test_fresh_exercises_score_zero_and_raise_only_where_tagged(path):
    source, exercise = load_sources(path)[0], read(EXERCISES / path.name)
    limits = Limits(cell_timeout=120, total_timeout=300, profile="smoke", run_experiments=True)
    graded, notes = assemble(source, exercise, limits)
    result = execute(graded, path.parent, limits)
    rows = score(source, graded, result, "fresh", notes)
    assert all(row.points == 0 and row.reason.startswith("not answered (NotImplementedError)") for row in rows)
    # The cells that raise are exactly the tagged ones, and each raises the student's NotImplementedError.
    raised = {int(i) for i, record in result["cells"].items() if record["status"] == "error"}
    tagged = {i for i, cell in enumerate(exercise.cells) if RAISES_TAG in cell.metadata.get("tags", [])}
    assert raised == tagged
    assert {result["cells"][str(i)]["ename"] for i in raised} == {"NotImplementedError"}


# ----------------------------------------------------------------------------------------------------------
# Grading: partial answers, tampering and failures (built from notebook 01)
# ----------------------------------------------------------------------------------------------------------


def exercise_with_answers(*answered: str) -> nbformat.NotebookNode:
    """The fresh exercise 01 with the instructor's answers pasted into the named answer cells."""
    exercise, solution = read(EXERCISES / FIRST.name), read(FIRST)
    for cell_id in answered:
        cell_by_id(exercise, cell_id).source = cell_by_id(solution, cell_id).source
    return exercise


def grade_one(notebook: nbformat.NotebookNode, folder: Path, name: str = FIRST.name, limits: Limits = QUICK,
              student: str = "student"):
    path = write(notebook, folder / student / name)
    return grade([path], FIRST, None, limits, quiet=True)


def test_one_exercise_solved_scores_exactly_its_points_even_when_renamed(tmp_path):
    rows = grade_one(exercise_with_answers("pixel_shuffle"), tmp_path, name="01_unet (1).ipynb")
    assert points_by_exercise(rows) == {"decoder_block": 0, "pixel_shuffle": 2, "tiny_unet": 0}
    assert all("file renamed" in row.notes for row in rows)


def test_deleted_and_edited_checks_are_restored(tmp_path):
    # Exercise 1 answered but its check deleted; exercise 2 unanswered and its check replaced by `pass`;
    # exercise 3's answer cell deleted. Only exercise 1 may earn points, and only through the restored check.
    notebook = exercise_with_answers("decoder_block")
    cell_by_id(notebook, "pixel_shuffle_tests").source = "pass"
    notebook.cells = [c for c in notebook.cells if grade_id(c) not in ("decoder_block_tests", "tiny_unet")]
    rows = grade_one(notebook, tmp_path)
    assert points_by_exercise(rows) == {"decoder_block": 3, "pixel_shuffle": 0, "tiny_unet": 0}
    notes = rows[0].notes
    assert "deleted, restored from the source: decoder_block_tests" in notes
    assert "edited, restored from the source: pixel_shuffle_tests" in notes
    assert "answer cell(s) deleted: tiny_unet" in notes


def test_a_submission_that_kills_its_kernel_gets_rows_with_the_reason(tmp_path):
    notebook = exercise_with_answers("decoder_block")
    cell_by_id(notebook, "pixel_shuffle").source = "import os\nos._exit(1)"
    rows = grade_one(notebook, tmp_path)
    assert points_by_exercise(rows) == {"decoder_block": 3, "pixel_shuffle": 0, "tiny_unet": 0}
    assert "kernel died" in rows[1].reason and "kernel died" in rows[2].reason


def test_an_endless_loop_times_out_and_the_rest_is_still_graded(tmp_path):
    notebook = exercise_with_answers("decoder_block", "tiny_unet")
    cell_by_id(notebook, "pixel_shuffle").source = "def pixel_shuffle(x, factor):\n    while True:\n        pass"
    # 20 s per cell: far more than any cell of notebook 01 needs in `smoke`, even on a busy machine.
    limits = Limits(cell_timeout=20, total_timeout=300, profile="smoke")
    rows = grade_one(notebook, tmp_path, limits=limits)
    assert points_by_exercise(rows) == {"decoder_block": 3, "pixel_shuffle": 0, "tiny_unet": 3}
    assert rows[1].reason == "timed out (the cell time limit of 20 s)"


def test_the_total_time_limit_stops_a_notebook(tmp_path):
    notebook = exercise_with_answers("decoder_block", "tiny_unet")
    cell_by_id(notebook, "pixel_shuffle").source = "def pixel_shuffle(x, factor):\n    while True:\n        pass"
    limits = Limits(cell_timeout=300, total_timeout=45, profile="smoke")
    rows = grade_one(notebook, tmp_path, limits=limits)
    assert points_by_exercise(rows) == {"decoder_block": 3, "pixel_shuffle": 0, "tiny_unet": 0}
    assert rows[1].reason == "timed out (the notebook's total time limit of 45 s ran out)"
    assert "total time limit (45 s) was used up" in rows[2].reason


def test_a_loop_that_ignores_interrupts_cannot_hang_the_grader(tmp_path):
    notebook = exercise_with_answers("decoder_block", "tiny_unet")
    cell_by_id(notebook, "pixel_shuffle").source = (
        "import time\n\ndef pixel_shuffle(x, factor):\n    while True:\n        try:\n            time.sleep(0.1)\n"
        "        except KeyboardInterrupt:\n            pass")
    limits = Limits(cell_timeout=20, total_timeout=300, profile="smoke")
    started = time.monotonic()
    rows = grade_one(notebook, tmp_path, limits=limits)
    assert time.monotonic() - started < 200, "the cell limit and the recovery probe must end it, not the total limit"
    assert points_by_exercise(rows) == {"decoder_block": 3, "pixel_shuffle": 0, "tiny_unet": 0}
    assert rows[1].reason.startswith("timed out") and "did not recover" in rows[2].reason


def test_output_on_stderr_is_reported_but_costs_no_points(tmp_path):
    notebook = exercise_with_answers("pixel_shuffle")
    cell_by_id(notebook, "pixel_shuffle").source += (
        "\n\nimport sys\n_shuffle = pixel_shuffle\n\n\ndef pixel_shuffle(x, factor):\n"
        "    print('debugging', file=sys.stderr)\n    return _shuffle(x, factor)")
    rows = grade_one(notebook, tmp_path)
    assert points_by_exercise(rows)["pixel_shuffle"] == 2
    assert "wrote to stderr" in rows[0].notes and "debugging" in rows[0].notes


def test_not_a_notebook_and_unknown_files_get_rows_without_running(tmp_path):
    student = tmp_path / "mallory"
    student.mkdir()
    (student / "01_unet.ipynb").write_text("this is not json")
    (student / "notes.txt").write_bytes(b"\x00\xff binary")
    rows = grade([student], FIRST, None, QUICK, quiet=True)
    graded = [row for row in rows if row.notebook == FIRST.name]
    assert len(graded) == 3 and all(row.points == 0 and row.reason.startswith("not a notebook") for row in graded)
    other = [row for row in rows if row.notebook == "notes.txt"]
    assert len(other) == 1 and other[0].reason.startswith("not a notebook")


def test_command_line_grades_a_class_folder_into_a_csv(tmp_path):
    # alice: the solution; bob: the fresh exercise; carol: an empty notebook file under the right name;
    # dave: submitted nothing. Graded two at a time; every student gets a row per exercise in the CSV.
    classroom = tmp_path / "submitted"
    write(read(FIRST), classroom / "alice" / FIRST.name)
    write(read(EXERCISES / FIRST.name), classroom / "bob" / FIRST.name)
    write(nbformat.v4.new_notebook(), classroom / "carol" / FIRST.name)
    (classroom / "dave").mkdir()
    gradebook = tmp_path / "gradebook.csv"
    result = subprocess.run(
        [sys.executable, "-m", "grading", "grade", str(classroom), "--source", str(FIRST), "--csv", str(gradebook),
         "--jobs", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    with open(gradebook, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    totals: dict[str, float] = {}
    for row in rows:
        totals[row["student"]] = totals.get(row["student"], 0.0) + float(row["points"])
    assert totals == {"alice": 8.0, "bob": 0.0, "carol": 0.0, "dave": 0.0}
    assert {row["reason"] for row in rows if row["student"] == "dave"} == {"not submitted"}
    assert all(row["reason"].startswith("not answered") for row in rows if row["student"] == "bob")
    assert "== alice ==" in result.stdout and "8 / 8" in result.stdout
    assert len(rows) == 4 * 3


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

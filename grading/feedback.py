"""The feedback page a student gets for one notebook: score per exercise, why points were lost, their answers.

The page shows the student's own answers and the visible checks as the student version has them (hidden
tests removed), each check with the one-line message it ended with. Tracebacks are left out: they could
quote hidden-test lines. The instructor's executed notebook, kept beside it, has everything.
"""
from __future__ import annotations

import html
from typing import TYPE_CHECKING

from grading.assignment import grade_id, is_grade, is_solution, student_cell

if TYPE_CHECKING:
    from grading.grader import NotebookGrade, Source

STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
.ok{color:#060}.lost{color:#a00}pre{background:#f6f6f6;padding:.6rem;overflow-x:auto;white-space:pre-wrap}
.msg{background:#fff4f4;border-left:3px solid #a00}.okmsg{background:#f2fff2;border-left:3px solid #060}"""


def _escape(text: object) -> str:
    return html.escape(str(text))


def _stream_text(cell) -> str:  # noqa: ANN001 (a notebook cell)
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream"
                   and o.get("name") == "stdout")[-4000:]


def feedback_html(student: str, source: Source, grade: NotebookGrade) -> str:
    """One self-contained HTML page (no scripts, no external files)."""
    rows = grade.rows
    total, most = sum(r.points for r in rows), sum(r.max_points for r in rows)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_escape(source.name)}: {_escape(student)}"
             f"</title><style>{STYLE}</style></head><body>",
             f"<h1>{_escape(source.name)}</h1><p>Student: <b>{_escape(student)}</b> &middot; score "
             f"<b>{total:g} / {most:g}</b> &middot; {_escape(grade.status)} &middot; {_escape(rows[0].timestamp if rows else '')}</p>",
             "<table><tr><th>exercise</th><th>points</th><th>why points were lost</th></tr>"]
    for row in rows:
        style = "ok" if row.points == row.max_points else "lost"
        parts.append(f"<tr class='{style}'><td>{_escape(row.exercise)}</td><td>{row.points:g} / {row.max_points:g}</td>"
                     f"<td>{_escape(row.reason)}</td></tr>")
    parts.append("</table>")
    notes = sorted({r.notes for r in rows if r.notes})
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_escape(n)}</li>" for n in notes) + "</ul>")
    reasons = {r.exercise: r for r in rows}
    if grade.executed is not None:
        parts.append("<h2>Your answers and the checks</h2>")
        for cell in grade.executed.cells:
            if cell.cell_type != "code" or not (is_solution(cell) or is_grade(cell)):
                continue
            if is_solution(cell):
                parts.append(f"<h3>{_escape(grade_id(cell))}</h3><pre>{_escape(cell.source)}</pre>")
                continue
            visible = student_cell(cell).source  # hidden tests removed
            row = reasons.get(grade_id(cell).removesuffix("_tests"))
            parts.append(f"<details><summary>check {_escape(grade_id(cell))}</summary><pre>{_escape(visible)}</pre>"
                         "</details>")
            printed = _stream_text(cell)
            if printed.strip():
                parts.append(f"<pre>{_escape(printed)}</pre>")
            if row is not None and row.reason:
                parts.append(f"<pre class='msg'>{_escape(row.reason)}</pre>")
            elif row is not None:
                parts.append("<pre class='okmsg'>passed (visible checks and hidden tests)</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)

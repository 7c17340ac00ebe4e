"""The one step nbgrader's own release lacks for this course: the Colab badge pointed at `exercises/`.

In `nbgrader_config.py` (beside nbgrader's `source/` folder, with the course's `grading/` importable):

    import sys
    sys.path.insert(0, ".")
    from grading.nbgrader_release import nbgrader_preprocessors
    c.GenerateAssignment.preprocessors = nbgrader_preprocessors()
"""
from __future__ import annotations

from nbconvert.preprocessors import Preprocessor

from grading.assignment import student_badge


class StudentBadge(Preprocessor):
    """Point the first cell's Colab badge at the student version, as `python -m grading generate` does."""

    def preprocess(self, nb, resources):  # noqa: ANN001, ANN201 (nbconvert's signature)
        """Rewrite the badge of the first (markdown) cell."""
        if nb.cells and nb.cells[0].cell_type == "markdown":
            nb.cells[0].source = student_badge(nb.cells[0].source)
        return nb, resources


def nbgrader_preprocessors() -> list:
    """nbgrader's default release steps with the badge step in front (needs nbgrader installed)."""
    from nbgrader.converters.generate_assignment import GenerateAssignment

    return [StudentBadge, *GenerateAssignment.class_traits()["preprocessors"].default_value]

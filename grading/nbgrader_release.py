"""The one step nbgrader's own release lacks for this course: the Colab badge pointed at `exercises/`.

In `nbgrader_config.py` (beside nbgrader's `source/` folder, with the course's `grading/` importable):

    import sys
    sys.path.insert(0, ".")
    from grading.nbgrader_release import nbgrader_preprocessors
    c.GenerateAssignment.preprocessors = nbgrader_preprocessors()

nbgrader registers each class of that list with nbconvert's `Exporter.register_preprocessor(cls)`, whose
`enabled` argument defaults to False, and nbconvert's `Preprocessor.__call__` skips a preprocessor whose `enabled`
trait is False (nbconvert's default). nbgrader's own steps turn it on in their base class; this one must too, or
it is silently skipped (checked with nbgrader 0.9.6 and nbconvert 7.17).
"""
from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from grading.assignment import student_badge


class StudentBadge(Preprocessor):
    """Point the first cell's Colab badge at the student version, as `python -m grading generate` does."""

    enabled = Bool(True, help="On by default, like nbgrader's own preprocessors").tag(config=True)

    def preprocess(self, nb, resources):  # noqa: ANN001, ANN201 (nbconvert's signature)
        """Rewrite the badge of the first (markdown) cell."""
        if nb.cells and nb.cells[0].cell_type == "markdown":
            nb.cells[0].source = student_badge(nb.cells[0].source)
        return nb, resources


def nbgrader_preprocessors() -> list:
    """nbgrader's default release steps with the badge step in front (needs nbgrader installed)."""
    from nbgrader.converters.generate_assignment import GenerateAssignment

    # `.default()`, not `.default_value`: traitlets 5.16 keeps a List's default in `default_args` and leaves
    # `default_value` Undefined. (An exception here makes nbgrader log it and go on WITHOUT nbgrader_config.py.)
    return [StudentBadge, *GenerateAssignment.class_traits()["preprocessors"].default()]

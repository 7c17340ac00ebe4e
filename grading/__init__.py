"""Exercise tooling: visible checks for students, the exercise generator and the grader for instructors.

    python -m grading generate            # solutions/ -> exercises/
    python -m grading check               # fail if exercises/ is not what generate would write
    python -m grading grade SUBMISSIONS... --source solutions --csv gradebook.csv

`grading.checks` is the only part students meet: the helpers their check cells call.
"""

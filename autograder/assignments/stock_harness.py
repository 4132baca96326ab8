"""The ``_grading_harness`` module for STOCK nbgrader (``nbgrader autograde``, formgrader).

Our grader (``python -m autograder grade``) puts its own ``_grading_harness.py`` beside each
notebook it runs in a sandbox and decides every part outside the student's kernel. nbgrader's
own commands know nothing of that; for them ``release`` writes this module, specialised to one
assignment, as ``source/<name>/_grading_harness.py``, which ``nbgrader autograde`` copies beside
each submission. It is removed from ``release/`` (students never get it).

Here the verdict is computed INSIDE the student's kernel, with the reference implementations
imported there, exactly as unsafe as stock nbgrader always is: use it for trusted notebooks or
for comparison runs only. It needs the course project (``autograder/``, ``solutions/``)
importable by the kernel (the Makefile's PYTHONPATH, or the project installed in the
environment). ``run`` returns the points the part's hidden checks earn; as the last expression
of the test cell it is the cell's output, which nbgrader takes as partial credit. Unlike our
grader, nbgrader gives nothing to a test cell whose visible tests fail (they run first, in the
same cell, and stop it).
"""

from __future__ import annotations

ASSIGNMENT = None  # replaced by the assignment's name in the generated copy


def run(part_id, probe):
    """Draw the part's cases, run the probe on each and return the points earned."""
    import numpy as np

    try:
        from autograder.assignments import ASSIGNMENTS
        from autograder.testing.inprocess import grade_part
    except ImportError as exc:
        raise ImportError("grading with stock nbgrader needs the course project (autograder/ "
                          "and solutions/) importable in the kernel; put it on PYTHONPATH, or "
                          "grade with `python -m autograder grade`") from exc
    result = grade_part(ASSIGNMENTS[ASSIGNMENT], part_id, probe, np.random.default_rng())
    if not result.passed:
        print(f"hidden tests of part {part_id!r}: {result.score:g} of {result.points:g} points: "
              f"{result.message}")
    return result.score


def source_for(assignment: str) -> str:
    """This module's text with ``ASSIGNMENT`` set to ``assignment``."""
    import inspect
    import re
    import sys

    text = inspect.getsource(sys.modules[__name__])
    text, n = re.subn(r"^ASSIGNMENT = None\b.*$", f"ASSIGNMENT = {assignment!r}", text,
                      flags=re.M)
    if n != 1:
        raise RuntimeError("stock_harness: the ASSIGNMENT line is missing")
    return text

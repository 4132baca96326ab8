"""A two-part toy assignment that follows the ``autograder.spec`` contract, and the nbgrader
course built from it (source with hidden tests, release, solution, gradebook), so the grader is
tested without depending on the real assignments.

Parts: ``scale(x, a)`` returns ``a * x`` (2 points); ``col_sum(x)`` returns the column sums of
a 2-D array (3 points). :data:`OTHER` is the same assignment under another name (``toy-b``), for
two courses or runs of different assignments (``build_course(..., name="toy-b")``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import nbformat

from autograder.assignments.spec import Assignment, Part, hidden_block
from autograder.build import cells


def _scale_cases(rng):
    return [{"x": rng.normal(size=(int(rng.integers(2, 6)), 3)), "a": float(rng.normal())}
            for _ in range(3)]


def _sum_cases(rng):
    return [{"x": rng.normal(size=(int(rng.integers(2, 7)), int(rng.integers(1, 5))))}
            for _ in range(3)]


TOY = Assignment("toy", (
    Part("toy-scale", 2, "Scaling", _scale_cases,
         lambda c: {"y": c["a"] * c["x"]},
         "record(y=scale(case['x'], case['a']))"),
    Part("toy-sum", 3, "Column sums", _sum_cases,
         lambda c: {"s": c["x"].sum(axis=0)},
         "record(s=col_sum(case['x']))"),
))
ASSIGNMENTS = {"toy": TOY}
OTHER = {"toy-b": Assignment("toy-b", TOY.parts)}

SOLUTIONS = {
    "scale-impl": "def scale(x, a):\n    ### BEGIN SOLUTION\n    return a * x\n"
                  "    ### END SOLUTION\n",
    "sum-impl": "def col_sum(x):\n    ### BEGIN SOLUTION\n    return np.asarray(x).sum(axis=0)\n"
                "    ### END SOLUTION\n",
}
VISIBLE = {
    "toy-scale": "assert np.allclose(scale(np.ones(2), 3.0), 3.0), 'scale(ones, 3) should be 3'\n",
    "toy-sum": "assert np.allclose(col_sum(np.ones((2, 3))), 2.0), 'column sums of ones((2,3))'\n",
}


def _meta(**kw):
    base = {"grade": False, "solution": False, "locked": False, "schema_version": 3,
            "task": False}
    base.update(kw)
    return {"nbgrader": base}


def source_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    cells = [nbformat.v4.new_markdown_cell("# Toy assignment\nImplement two functions.",
                                           metadata=_meta(locked=True, grade_id="intro")),
             nbformat.v4.new_code_cell("import numpy as np",
                                       metadata=_meta(locked=True, grade_id="imports"))]
    for impl, part in (("scale-impl", TOY.parts[0]), ("sum-impl", TOY.parts[1])):
        cells.append(nbformat.v4.new_code_cell(SOLUTIONS[impl],
                                               metadata=_meta(solution=True, grade_id=impl)))
        src = (VISIBLE[part.id] + "### BEGIN HIDDEN TESTS\n" + hidden_block(part)
               + "### END HIDDEN TESTS\n")
        cells.append(nbformat.v4.new_code_cell(src, metadata=_meta(
            grade=True, locked=True, grade_id=part.id, points=part.points)))
    nb.cells = cells
    return nb


def build_course(course: str, name: str = "toy") -> str:
    """Write an nbgrader course for the toy assignment (named ``name``) into ``course``
    (release, solution notebooks and gradebook made by nbgrader itself); returns ``course``."""
    os.makedirs(os.path.join(course, "source", name), exist_ok=True)
    with open(os.path.join(course, "nbgrader_config.py"), "w") as f:
        f.write("c = get_config()\nc.CourseDirectory.course_id = 'toycourse'\n"
                f"c.CourseDirectory.root = {os.path.abspath(course)!r}\n")
    nbformat.write(source_notebook(), os.path.join(course, "source", name, f"{name}.ipynb"))
    with open(os.path.join(course, "source", name, "helper_data.txt"), "w") as f:
        f.write("helper file shipped to students\n")
    nbgrader = os.path.join(os.path.dirname(sys.executable), "nbgrader")
    subprocess.run([nbgrader, "generate_assignment", name, "--force", "--log-level=ERROR"],
                   cwd=course, check=True, capture_output=True)
    return course


def solution_notebook() -> nbformat.NotebookNode:
    """The notebook a perfect student hands in (sources of the source notebook, no hidden
    tests)."""
    nb = source_notebook()
    for cell in nb.cells:
        cell.source = cells.split_hidden(cell.source)[0]
    return nb


def release_notebook(course: str, name: str = "toy") -> nbformat.NotebookNode:
    return nbformat.read(os.path.join(course, "release", name, f"{name}.ipynb"), as_version=4)


def with_answers(nb: nbformat.NotebookNode, **sources: str) -> nbformat.NotebookNode:
    """A copy of ``nb`` with the given solution cells (keyword: grade_id with '-' as '_')."""
    nb = nbformat.from_dict(nb)
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        key = gid.replace("-", "_")
        if key in sources:
            cell.source = sources[key]
    return nb


def write_submission(root: str, student: str, nb, assignment: str = "toy",
                     name: str | None = None) -> str:
    folder = os.path.join(root, student, assignment)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name or f"{assignment}.ipynb")
    if isinstance(nb, bytes | str):
        with open(path, "wb") as f:
            f.write(nb.encode() if isinstance(nb, str) else nb)
    else:
        nbformat.write(nb, path)
    return path



"""Tests for autograder.reconstruct: the run notebook comes from the source notebook."""

import copy

import nbformat

from autograder.grading.reconstruct import rebuild
from tests.support import toy


def test_only_solution_cells_are_taken_from_the_student():
    """Edited test cells, metadata and kernelspec are replaced by the source's."""
    student = toy.with_answers(toy.solution_notebook(), scale_impl="def scale(x, a):\n  pass\n")
    for cell in student.cells:
        if cell.metadata["nbgrader"]["grade"]:
            cell.source = "pass"
            cell.metadata["nbgrader"]["points"] = 100
    student.metadata["kernelspec"] = {"name": "evil"}
    out = rebuild(toy.source_notebook(), student)
    src = toy.source_notebook()
    assert out.notebook.metadata["kernelspec"]["name"] == "python3"
    for mine, ref in zip(out.notebook.cells, src.cells, strict=True):
        if mine.metadata["nbgrader"]["grade_id"] == "scale-impl":
            assert mine.source == "def scale(x, a):\n  pass\n"
        else:
            assert mine.source == ref.source and mine.metadata == ref.metadata


def test_deleted_solution_cells_get_the_release_stub():
    """A missing solution cell is filled with the release notebook's stub and reported."""
    student = toy.solution_notebook()
    student.cells = [c for c in student.cells
                     if c.metadata["nbgrader"]["grade_id"] != "sum-impl"]
    out = rebuild(toy.source_notebook(), student)
    cell = [c for c in out.notebook.cells if c.metadata["nbgrader"]["grade_id"] == "sum-impl"][0]
    assert "raise NotImplementedError()" in cell.source and "sum(axis=0)" not in cell.source
    assert out.missing == ["sum-impl"] and out.taken == ["scale-impl"]


def test_duplicate_ids_only_the_first_counts():
    """Of several cells claiming one id, the first is used and the duplicate is reported."""
    student = toy.solution_notebook()
    student.cells.append(nbformat.v4.new_code_cell(
        "def scale(x, a):\n    return 42\n",
        metadata={"nbgrader": {"grade_id": "scale-impl", "solution": True}}))
    out = rebuild(toy.source_notebook(), student)
    cell = [c for c in out.notebook.cells if c.metadata["nbgrader"]["grade_id"] == "scale-impl"]
    assert len(cell) == 1 and "a * x" in cell[0].source and out.duplicates == ["scale-impl"]


def test_garbage_student_cells_are_ignored():
    """Cells of the wrong shape do not break the rebuild."""
    out = rebuild(toy.source_notebook(), {"cells": [1, "x", {"metadata": []},
                                                   {"metadata": {"nbgrader": 3}}]})
    assert out.taken == [] and set(out.missing) == {"scale-impl", "sum-impl"}


def _ids(nb):
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


def test_cells_the_student_added_are_kept_where_they_were():
    """Added code, Markdown and raw cells follow the cell they followed in the student's
    notebook (or come first); their nbgrader metadata is dropped and locked cells keep the
    source's code."""
    student = toy.solution_notebook()
    at = _ids(student).index("sum-impl")
    student.cells.insert(at, nbformat.v4.new_code_cell(
        "def helper(x):\n    return x\n",
        metadata={"nbgrader": {"grade_id": "made-up", "grade": True, "points": 50}}))
    student.cells.insert(0, nbformat.v4.new_markdown_cell("notes <script>x()</script>"))
    student.cells.append(nbformat.v4.new_raw_cell("raw", metadata={"format": "text/html"}))
    out = rebuild(toy.source_notebook(), student)
    cells = out.notebook.cells
    assert out.added == 3 and len(cells) == len(toy.source_notebook().cells) + 3
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("```")
    helper = [i for i, c in enumerate(cells) if "def helper" in c.source][0]
    assert _ids(out.notebook)[helper - 1] == "toy-scale" and cells[helper].metadata == {}
    assert _ids(out.notebook)[helper + 1] == "sum-impl"
    assert cells[-1].cell_type == "raw" and cells[-1].metadata == {}
    source = {c.metadata["nbgrader"]["grade_id"]: c.source for c in toy.source_notebook().cells}
    for cell in cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in ("toy-scale", "toy-sum", "imports", "intro"):
            assert cell.source == source[gid]
    nbformat.validate(out.notebook)


def test_unlocked_cells_of_the_source_take_the_student_version():
    """A cell of the source that is neither locked nor an answer (matched by its cell id)
    takes what the student wrote; edited Markdown is shown as code."""
    src = toy.source_notebook()
    src.cells.insert(2, nbformat.v4.new_code_cell("x = 1  # try things here"))
    src.cells.insert(3, nbformat.v4.new_markdown_cell("Some prose"))
    scratch, prose = src.cells[2].id, src.cells[3].id
    student = nbformat.from_dict(copy.deepcopy(src))
    student.cells[2].source = "import math\nx = math.pi"
    student.cells[3].source = "Prose <b>edited</b>"
    out = rebuild(src, student)
    by_id = {c.id: c for c in out.notebook.cells}
    assert by_id[scratch].source == "import math\nx = math.pi"
    assert by_id[prose].source.startswith("```") and out.added == 0


def test_unpaired_surrogates_are_replaced():
    """A lone surrogate in an answer is replaced so the notebook can be run and written."""
    student = toy.with_answers(toy.solution_notebook(),
                               scale_impl="def scale(x, a):\n    return a * x  # \ud800\n")
    out = rebuild(toy.source_notebook(), student)
    assert out.cleaned and "\ufffd" in nbformat.writes(out.notebook)
    nbformat.writes(out.notebook).encode("utf-8")

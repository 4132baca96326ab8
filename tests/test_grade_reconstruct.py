"""Tests for autograder.reconstruct: the run notebook comes from the source notebook."""

import nbformat

from autograder.reconstruct import rebuild, split_hidden, stub_of
from tests.fixtures import toy


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


def test_split_hidden_and_stub():
    """Hidden blocks are separated from visible tests; solution regions become stubs."""
    visible, hidden = split_hidden("a = 1\n### BEGIN HIDDEN TESTS\nb = 2\n### END HIDDEN TESTS\n")
    assert visible == "a = 1\n" and hidden == "b = 2\n"
    assert stub_of(toy.SOLUTIONS["scale-impl"]) == (
        "def scale(x, a):\n    raise NotImplementedError()\n")


def test_garbage_student_cells_are_ignored():
    """Cells of the wrong shape do not break the rebuild."""
    out = rebuild(toy.source_notebook(), {"cells": [1, "x", {"metadata": []},
                                                   {"metadata": {"nbgrader": 3}}]})
    assert out.taken == [] and set(out.missing) == {"scale-impl", "sum-impl"}

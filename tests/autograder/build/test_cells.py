"""nbgrader's cell markers and metadata, parsed in one place (autograder.build.cells)."""

from autograder.build.cells import (
    grade_id,
    is_locked,
    split_hidden,
    strip_hidden_tests,
    strip_solution_markers,
    stub_of,
    with_hidden_tests,
)
from tests.support import toy


def test_split_hidden_and_stub():
    """Hidden blocks are separated from visible tests; solution regions become stubs."""
    visible, hidden = split_hidden("a = 1\n### BEGIN HIDDEN TESTS\nb = 2\n### END HIDDEN TESTS\n")
    assert visible == "a = 1\n" and hidden == "b = 2\n"
    assert stub_of(toy.SOLUTIONS["scale-impl"]) == (
        "def scale(x, a):\n    raise NotImplementedError()\n")


def test_hidden_tests_round_trip():
    """A test cell built from visible and hidden code splits back into them."""
    cell = with_hidden_tests("assert f(1) == 2\n", "check(f)\n")
    visible, hidden = split_hidden(cell)
    assert visible.strip() == "assert f(1) == 2" and hidden.strip() == "check(f)"
    assert strip_hidden_tests(cell) == "assert f(1) == 2"


def test_solution_markers_are_removed_and_code_kept():
    src = "def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
    assert strip_solution_markers(src) == "def f():\n    return 1"


def test_metadata_readers_accept_any_json():
    """Cells from a student may hold anything: the readers never raise."""
    for cell in ({}, {"metadata": []}, {"metadata": {"nbgrader": "x"}}, [], None,
                 {"metadata": {"nbgrader": {"grade_id": 5, "locked": True}}}):
        assert grade_id(cell) is None
    assert is_locked({"metadata": {"nbgrader": {"grade": True}}})
    assert not is_locked({"metadata": {"nbgrader": {"locked": True, "solution": True}}})

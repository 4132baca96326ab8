"""Tests of autograder.assignments.inprocess, the in-process stand-in for the grader that the
assignment and sample tests rely on."""

from __future__ import annotations

import nbformat
import numpy as np

from autograder.assignments.spec import Assignment, Part, hidden_block
from autograder.testing.inprocess import grade_part, run_inprocess, with_source_tests


def _spec(probe="record(y=case['x'] * 2)"):
    part = Part(id="double", points=2, title="double",
                make_cases=lambda rng: [{"x": rng.normal(size=3), "k": 3}],
                reference=lambda case: {"y": case["x"] * 2}, probe=probe)
    return Assignment(name="toy", parts=(part,))


def _notebook(spec, visible="", solution="def double(x):\n    return 2 * x"):
    test = (visible + "\n### BEGIN HIDDEN TESTS\n" + hidden_block(spec.parts[0])
            + "### END HIDDEN TESTS")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(solution),
                nbformat.v4.new_code_cell(test, metadata={"nbgrader": {
                    "grade": True, "locked": True, "grade_id": "double", "points": 2}})]
    return nb


def test_cases_arrive_through_npz_as_arrays():
    """Scalars in a case reach the probe as 0-d arrays, as after an .npz round trip."""
    seen = {}

    def probe(case, record):
        seen.update(case)
        record(y=case["x"] * 2)

    assert grade_part(_spec(), "double", probe, np.random.default_rng(0)).passed
    assert isinstance(seen["k"], np.ndarray) and seen["k"].shape == ()


def test_probe_exception_fails_the_part():
    """An exception in the student's code fails the part with its message."""
    def probe(case, record):
        raise ValueError("boom")

    res = grade_part(_spec(), "double", probe, np.random.default_rng(0))
    assert not res.passed and "boom" in res.message


def test_failing_visible_tests_cost_nothing_and_are_reported(tmp_path):
    """As in the grader, points come from the hidden checks: a part whose visible tests fail
    keeps what its hidden checks earn, and the visible error is kept."""
    spec = _spec("record(y=double(case['x']))")
    run = run_inprocess(_notebook(spec, visible="assert False, 'visible'"), tmp_path, spec)
    res = run.parts["double"]
    assert res.passed and run.score(spec) == 2
    assert res.visible_error == "AssertionError: visible"


def test_wrong_answer_fails_hidden_tests(tmp_path):
    """A wrong function fails the hidden check even when the visible tests pass."""
    spec = _spec("record(y=double(case['x']))")
    run = run_inprocess(_notebook(spec, solution="def double(x):\n    return x + x + 1"),
                        tmp_path, spec)
    assert not run.parts["double"].passed and run.score(spec) == 0
    assert run.failed_checks() == {("double", "hidden cases")}
    run = run_inprocess(_notebook(spec), tmp_path, spec)
    assert run.score(spec) == 2


def test_with_source_tests_restores_edited_test_cells(tmp_path):
    """Locked cells of a submission are replaced by the source's, hidden tests included."""
    spec = _spec("record(y=double(case['x']))")
    source = _notebook(spec)
    submission = _notebook(spec)
    submission.cells[1].source = "pass  # the student deleted the tests"
    restored = with_source_tests(submission, source)
    assert restored.cells[1].source == source.cells[1].source
    assert run_inprocess(restored, tmp_path, spec).score(spec) == 2

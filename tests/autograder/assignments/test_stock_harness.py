"""Tests of autograder.assignments.stock_harness, the harness nbgrader's own autograde uses."""

from __future__ import annotations

import types

from autograder.assignments import stock_harness


def _module(assignment: str) -> types.ModuleType:
    module = types.ModuleType("_grading_harness")
    exec(stock_harness.source_for(assignment), module.__dict__)
    return module


def test_generated_copy_names_its_assignment():
    """The generated module is bound to one assignment (part ids repeat across assignments)."""
    assert _module("batchnorm").ASSIGNMENT == "batchnorm"
    assert "ASSIGNMENT = 'conv-batchnorm'" in stock_harness.source_for("conv-batchnorm")


def test_run_returns_the_points_the_checks_earn(capsys):
    """run() returns the points earned (nbgrader takes a test cell's numeric output as partial
    credit): all of them for right answers, those of the checks passed for a partly wrong
    answer, and it says what was lost."""
    from solutions import batchnorm as ref
    harness = _module("batchnorm")

    def backward(case):
        _, cache = ref.batch_norm_forward(case["x"], case["weight"], case["bias"], 1e-5)
        return ref.batch_norm_backward(case["dy"], cache)

    def right(case, record):
        dx, dweight, dbias = backward(case)
        record(dx=dx, dweight=dweight, dbias=dbias)

    def dx_wrong(case, record):
        dx, dweight, dbias = backward(case)
        record(dx=0 * dx, dweight=dweight, dbias=dbias)

    assert harness.run("backward-closed", right) == 2
    assert capsys.readouterr().out == ""
    assert harness.run("backward-closed", dx_wrong) == 1
    out = capsys.readouterr().out
    assert "'backward-closed': 1 of 2 points" in out and "dx: wrong on every hidden case" in out

"""Tests of autograder.assignments.stock_harness, the harness nbgrader's own autograde uses."""

from __future__ import annotations

import types

import numpy as np
import pytest

from autograder.assignments import stock_harness


def _module(assignment: str) -> types.ModuleType:
    module = types.ModuleType("_grading_harness")
    exec(stock_harness.source_for(assignment), module.__dict__)
    return module


def test_generated_copy_names_its_assignment():
    """The generated module is bound to one assignment (part ids repeat across assignments)."""
    assert _module("batchnorm").ASSIGNMENT == "batchnorm"
    assert "ASSIGNMENT = 'conv-batchnorm'" in stock_harness.source_for("conv-batchnorm")


def test_correct_probe_passes_and_wrong_probe_raises():
    """run() returns for right answers and raises AssertionError, naming the part, for wrong
    ones, so nbgrader counts the test cell as failed."""
    from solutions.batchnorm import channel_axes
    harness = _module("conv-batchnorm")

    def right(case, record):
        for nd in case["ndims"]:
            record(**{f"axes{int(nd)}": np.array(channel_axes(int(nd)), dtype=float)})

    def wrong(case, record):
        for nd in case["ndims"]:
            record(**{f"axes{int(nd)}": np.array((0,), dtype=float)})

    harness.run("channel-axes", right)
    with pytest.raises(AssertionError, match="channel-axes"):
        harness.run("channel-axes", wrong)

"""Fingerprints follow the code a grade depends on, and only that code."""

from __future__ import annotations

from autograder.grading.fingerprint import (
    PROJECT,
    assignment_fingerprint,
    grader_fingerprint,
    module_closure,
)


def _names(module: str) -> set[str]:
    return {p.relative_to(PROJECT).as_posix() for p in module_closure(module)}


def test_an_assignment_depends_on_its_spec_its_helpers_and_the_solutions_it_calls():
    got = _names("autograder.assignments.batchnorm")
    assert {"autograder/assignments/batchnorm.py", "autograder/assignments/_common.py",
            "autograder/assignments/spec.py", "solutions/batchnorm.py"} <= got


def test_an_assignment_does_not_depend_on_the_others():
    """The registry imports every assignment; no assignment depends on the registry, so a
    fixed test of one assignment leaves the others' fingerprints alone."""
    got = _names("autograder.assignments.dropout")
    assert "autograder/assignments/batchnorm.py" not in got
    assert "autograder/assignments/__init__.py" not in got
    assert "solutions/batchnorm.py" not in got


def test_shared_code_is_followed_through_imports():
    """conv-batchnorm reuses the batchnorm spec's probes: it depends on that module too."""
    assert "autograder/assignments/batchnorm.py" in _names(
        "autograder.assignments.conv_batchnorm")


def test_fingerprints_are_stable_and_distinct():
    a = assignment_fingerprint("autograder.assignments.dropout")
    assert a == assignment_fingerprint("autograder.assignments.dropout")
    assert a != assignment_fingerprint("autograder.assignments.batchnorm")
    assert len(grader_fingerprint()) == 64

"""nbgrader's cell markers and cell metadata: the one parser every part of the grader uses.

A source notebook's cells carry nbgrader metadata (``metadata.nbgrader``: ``grade``,
``solution``, ``locked``, ``grade_id``, ``points``). Solution cells hold their answer between
``### BEGIN SOLUTION`` and ``### END SOLUTION``; test cells hold their hidden tests between
``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS`` (each marker on a line of its own).
Cells may come from a student (any JSON): every reader here accepts any value and never raises.
"""

from __future__ import annotations

import re
from typing import Any

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
SCHEMA_VERSION = 3

HIDDEN_RE = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[ \t]*\n(.*?)^[ \t]*### END HIDDEN TESTS"
                       r"[ \t]*(\n|$)", re.S | re.M)
SOLUTION_RE = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?^[ \t]*### END SOLUTION[ \t]*$",
                         re.S | re.M)
_SOLUTION_MARKER_RE = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n", re.M)
GRADE_ID_RE = re.compile(r"^[A-Za-z0-9_\-]+$")


def nbgrader_meta(cell: Any) -> dict:
    """The cell's ``metadata.nbgrader`` dict ({} for anything else)."""
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return nbg if isinstance(nbg, dict) else {}


def new_meta(**fields: Any) -> dict:
    """nbgrader metadata for a new cell: every flag false unless given."""
    meta = {"grade": False, "locked": False, "solution": False,
            "schema_version": SCHEMA_VERSION}
    meta.update(fields)
    return meta


def is_solution(cell: Any) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_grade(cell: Any) -> bool:
    return bool(nbgrader_meta(cell).get("grade"))


def is_locked(cell: Any) -> bool:
    """Locked or a test cell, and not a solution cell: the student's version never counts."""
    meta = nbgrader_meta(cell)
    return bool(meta.get("locked") or meta.get("grade")) and not meta.get("solution")


def grade_id(cell: Any) -> str | None:
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def split_hidden(source: str) -> tuple[str, str]:
    """(visible code, hidden code) of a test cell's source."""
    hidden = "\n".join(m.group(1) for m in HIDDEN_RE.finditer(source))
    return HIDDEN_RE.sub("", source), hidden


def strip_hidden_tests(source: str) -> str:
    """The source without its hidden-test blocks (and without trailing blank lines)."""
    return split_hidden(source)[0].rstrip("\n")


def with_hidden_tests(visible: str, hidden: str) -> str:
    """A test cell's source: its visible tests, then ``hidden`` between the markers."""
    return (visible.rstrip("\n") + "\n\n" + BEGIN_HIDDEN + "\n" + hidden.rstrip("\n") + "\n"
            + END_HIDDEN)


def stub_of(source: str) -> str:
    """A solution cell's source with its solution regions replaced the way nbgrader does."""
    return SOLUTION_RE.sub(lambda m: m.group(1) + "raise NotImplementedError()", source)


def strip_solution_markers(source: str) -> str:
    """Remove the ``### BEGIN/END SOLUTION`` marker lines, keeping the code between them."""
    return _SOLUTION_MARKER_RE.sub("", source + "\n").rstrip("\n")

"""The contract between the assignment assembler (release) and the grader (grade).

Every graded part of an assignment is a locked nbgrader test cell (``grade: true``,
``grade_id`` = :attr:`Part.id`, ``points`` = :attr:`Part.points`). Its source has the visible
tests the student sees and, in the nbgrader source notebook only, a hidden block::

    ### BEGIN HIDDEN TESTS
    <hidden_block(part)>
    ### END HIDDEN TESTS

Verdicts are never computed inside the student's kernel. At grading time:

1. the grader draws the part's inputs with :attr:`Part.make_cases` (a fresh generator per
   grading run) and hands them to the kernel as plain numeric data (``.npz`` without pickle);
2. the hidden block runs :attr:`Part.probe` once per case inside the kernel: the probe calls
   the student's functions on ``case`` and calls ``record(name=array, ...)`` with plain numeric
   outputs, which travel back the same way;
3. the grader process computes ``Part.reference(case)`` with ``solutions/`` and decides with
   ``Part.check(case, expected, got)``; a part earns its points when every case passes.

A student who tampers with the kernel can at most change what is recorded; recording the right
numbers for inputs drawn at grading time means having solved the part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Case = dict[str, Any]          # str -> ndarray | float | int | bool | str
Outputs = dict[str, np.ndarray]


def allclose_check(rtol: float = 1e-6, atol: float = 1e-8) -> Callable[..., tuple[bool, str]]:
    """A check that every expected output is recorded, has the expected shape, is finite where
    the expected value is, and agrees within ``rtol``/``atol``; the message names the first
    output that does not."""

    def check(case: Case, expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray]):
        for name, exp in expected.items():
            if name not in got:
                return False, f"no value recorded for {name!r}"
            exp = np.asarray(exp, dtype=np.float64)
            val = np.asarray(got[name], dtype=np.float64)
            if val.shape != exp.shape:
                return False, f"{name} has shape {val.shape}, expected {exp.shape}"
            if not np.allclose(val, exp, rtol=rtol, atol=atol, equal_nan=False):
                err = float(np.max(np.abs(val - exp))) if val.size else 0.0
                return False, f"{name} differs from the expected value (max abs error {err:.3g})"
        return True, "ok"

    return check


@dataclass(frozen=True)
class Part:
    """One graded part of an assignment.

    ``probe`` is Python source run in the student's kernel, once per case, with the names
    ``case`` (dict of inputs: NumPy arrays and Python scalars) and ``record`` (a function taking
    keyword arguments of plain numeric values) in scope, plus the notebook's globals. It calls
    the student's function(s) and records their outputs; it must not compare anything.
    ``reference`` runs in the grader process and returns the expected outputs for a case.
    """

    id: str
    points: float
    title: str
    make_cases: Callable[[np.random.Generator], list[Case]]
    reference: Callable[[Case], Outputs]
    probe: str
    check: Callable[[Case, Mapping[str, np.ndarray], Mapping[str, np.ndarray]],
                    tuple[bool, str]] = field(default_factory=allclose_check)


@dataclass(frozen=True)
class Assignment:
    """An assignment: its folder/notebook name (``exercises/<name>/<name>.md``), its graded
    parts in notebook order, the label of the book chapter it practises (``chapter``, e.g.
    ``ch-dropout``) and a one-paragraph ``summary`` in MyST Markdown for the book's assignment
    page."""

    name: str
    parts: tuple[Part, ...]
    chapter: str = ""
    summary: str = ""

    @property
    def max_score(self) -> float:
        return float(sum(p.points for p in self.parts))

    def part(self, part_id: str) -> Part:
        for p in self.parts:
            if p.id == part_id:
                return p
        raise KeyError(f"assignment {self.name!r} has no part {part_id!r}")


def hidden_block(part: Part) -> str:
    """The hidden-test source for ``part``, placed between ``### BEGIN HIDDEN TESTS`` and
    ``### END HIDDEN TESTS`` of its test cell by the assembler.

    It defines the probe as a function of ``(case, record)`` in the notebook's globals (so it
    sees the student's functions) and hands it to ``_grading_harness.run``, a module the grader
    puts beside the notebook at grading time only. ``run`` calls the probe once per case, catches
    each case's exception, and writes what was recorded where the grader reads it.
    """
    body = part.probe.strip("\n") or "pass"
    indented = "\n".join("    " + line if line.strip() else "" for line in body.splitlines())
    return (
        "import _grading_harness\n"
        "def _probe(case, record):\n"
        f"{indented}\n"
        f"_grading_harness.run({part.id!r}, _probe)\n"
    )

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
3. the grader process computes ``Part.reference(case)`` with ``solutions/`` and scores the part
   check by check (:attr:`Part.checks`): a :class:`Check` covers some recorded outputs on some
   cases and earns its points when :attr:`Part.compare` (or the check's own comparison) accepts
   every output it covers on every case it covers. A part without checks has one check worth
   all its points.

**Each part is graded on its own.** Where a part's functions build on an earlier part's (a
backward pass on the forward pass's cache, running statistics on the forward pass, a module on
the functional), the probe feeds them the reference's result, drawn into the case as numbers by
``make_cases`` (e.g. the fields of the forward pass's cache), never the student's earlier
answer; so one mistake costs the part it is in.

**Messages teach without giving values away.** A failed check names the output in plain words
(:attr:`Part.label`) and the kind of case (:attr:`Part.describe`: shapes, dtype, which argument
was None, training or evaluation), never the case's values.

A student who tampers with the kernel can at most change what is recorded; recording the right
numbers for inputs drawn at grading time means having solved the part.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Case = dict[str, Any]          # str -> ndarray | float | int | bool | str
Outputs = dict[str, np.ndarray]
Label = Callable[[str], str]   # a recorded output's name -> plain words
# (case, expected outputs the check covers, everything recorded for the case, label)
#   -> None when they agree, else what is wrong, in plain words
Compare = Callable[[Case, Mapping[str, np.ndarray], Mapping[str, np.ndarray], Label],
                   "str | None"]


def number(value: float) -> str:
    """A number as students read it (``0.0137``, ``1.5e-07``), never a NumPy repr."""
    return f"{float(value):.3g}"


def shape_text(shape) -> str:
    """A shape as ``(5, 3, 4, 4)`` with plain integers."""
    dims = [str(int(s)) for s in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def same_name(name: str) -> str:
    """The default :attr:`Part.label`: a recorded output is called by its name."""
    return name


def allclose(rtol: float = 1e-6, atol: float = 1e-8) -> Compare:
    """A comparison that every expected output is recorded, has the expected shape, is finite
    where the expected value is, and agrees within ``rtol``/``atol``; it names the first output
    that does not."""

    def compare(case: Case, expected: Mapping[str, np.ndarray], got: Mapping[str, np.ndarray],
                label: Label) -> str | None:
        for name, exp in expected.items():
            if name not in got:
                return f"no value was recorded for {label(name)}"
            exp = np.asarray(exp, dtype=np.float64)
            val = np.asarray(got[name], dtype=np.float64)
            if val.shape != exp.shape:
                return (f"{label(name)} has shape {shape_text(val.shape)}, expected "
                        f"{shape_text(exp.shape)}")
            if not np.allclose(val, exp, rtol=rtol, atol=atol, equal_nan=False):
                if np.isfinite(exp).all() and not np.isfinite(val).all():
                    return f"{label(name)} contains NaN or infinity"
                err = float(np.max(np.abs(val - exp))) if val.size else 0.0
                return (f"{label(name)} differs from the expected value (largest difference "
                        f"{number(err)})")
        return None

    return compare


@dataclass(frozen=True)
class Check:
    """A share of a part's points: ``points`` for the recorded ``outputs`` (shell-style
    patterns such as ``"y*"``; default every output) being right on the cases ``when`` selects
    (default every case). ``name`` says in plain words what is checked ("running variance",
    "dx"); it names the check in feedback and in :attr:`autograder.testing.samples.Mistake.breaks`.
    ``compare`` replaces the part's comparison for this check."""

    name: str
    points: float
    outputs: tuple[str, ...] = ("*",)
    when: Callable[[Case], bool] | None = None
    compare: Compare | None = None

    def covers_output(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.outputs)

    def covers_case(self, case: Case) -> bool:
        return self.when is None or bool(self.when(case))


def describe_case(case: Case) -> str:
    """The default :attr:`Part.describe`: the shapes of a case's arrays and its flags and
    counts (booleans, integers, strings), never the values of its arrays or numbers; seeds are
    left out."""
    words = []
    for name, value in case.items():
        if "seed" in name:
            continue
        array = np.asarray(value)
        if array.ndim:
            words.append(f"{name} of shape {shape_text(array.shape)}")
        elif array.dtype.kind == "b":
            words.append(f"{name}={bool(array)}")
        elif array.dtype.kind in "iu":
            words.append(f"{name}={int(array)}")
        elif array.dtype.kind in "US":
            words.append(f"{name}={array.item()!s}")
        else:
            words.append(f"a number {name}")
    return "inputs " + ", ".join(words)


@dataclass(frozen=True)
class Part:
    """One graded part of an assignment.

    ``probe`` is Python source run in the student's kernel, once per case, with the names
    ``case`` (dict of inputs: NumPy arrays and Python scalars) and ``record`` (a function taking
    keyword arguments of plain numeric values) in scope, plus the notebook's globals. It calls
    the student's function(s) and records their outputs; it must not compare anything.
    ``reference`` runs in the grader process and returns the expected outputs for a case.
    ``checks`` split ``points`` (they must add up to it); ``compare`` decides whether a recorded
    output is right; ``describe`` says what kind of case a case is and ``label`` what a recorded
    output is, both for messages.
    """

    id: str
    points: float
    title: str
    make_cases: Callable[[np.random.Generator], list[Case]]
    reference: Callable[[Case], Outputs]
    probe: str
    compare: Compare = field(default_factory=allclose)
    checks: tuple[Check, ...] = ()
    describe: Callable[[Case], str] = describe_case
    label: Label = same_name

    def __post_init__(self):
        if self.checks:
            total = sum(c.points for c in self.checks)
            if abs(total - self.points) > 1e-9 or any(c.points <= 0 for c in self.checks):
                raise ValueError(f"part {self.id!r}: its checks have {total:g} points, the part "
                                 f"{self.points:g} (each check needs some)")
            names = [c.name for c in self.checks]
            if len(set(names)) != len(names):
                raise ValueError(f"part {self.id!r}: two checks share a name")

    @property
    def scoring(self) -> tuple[Check, ...]:
        """The checks the part is scored by (one for all its points when none are declared)."""
        return self.checks or (Check("hidden cases", self.points),)

    def check(self, name: str) -> Check:
        for c in self.scoring:
            if c.name == name:
                return c
        raise KeyError(f"part {self.id!r} has no check {name!r}")


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

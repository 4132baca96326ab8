"""Decide each part in the grader process, from recorded numbers and ``solutions/`` references.

Nothing computed inside the student's kernel is believed except the recorded arrays, and those
only after :func:`autograder.grading.records.decode_records` has turned them into float64
copies. A part earns its points when every case has a record that the part's ``check`` accepts
and the visible tests of its cell ran without error (as in nbgrader, a failing test cell earns
nothing; the visible tests can only take points away, never give them)."""

from __future__ import annotations

from ..assignments.spec import Part
from ..text import MAX_TEXT, cap
from .jobs import PartResult
from .records import RecordError, decode_records


def judge(part: Part, cases: list, expected: list, payloads: list, why_missing: str = "",
          visible_error: str = "") -> PartResult:
    """The verdict for ``part`` from the payloads its hidden test published (last one wins)."""

    why_missing, visible_error = cap(why_missing), cap(visible_error)

    def fail(msg: str) -> PartResult:
        if visible_error:
            msg += f" (visible test: {visible_error})"
        return PartResult(part.id, part.title, float(part.points), 0.0, cap(msg, 3 * MAX_TEXT))

    mine = [p for p in payloads if isinstance(p, dict) and p.get("part") == part.id]
    if not mine:
        return fail("no results were recorded" + (f": {why_missing}" if why_missing else ""))
    try:
        n_cases, got, errors = decode_records(mine[-1])
    except RecordError as exc:
        return fail(f"the recorded results were rejected: {exc}")
    except Exception as exc:  # never expected (decode_records says RecordError), never fatal
        return fail(f"the recorded results were rejected ({type(exc).__name__}: {cap(exc)})")
    if n_cases != len(cases):
        return fail(f"{n_cases} cases were run, expected {len(cases)}")
    if "load" in errors:
        return fail(f"the test inputs could not be read: {errors['load']}")
    for i, (case, exp) in enumerate(zip(cases, expected, strict=True)):
        if str(i) in errors:
            return fail(f"case {i + 1} of {len(cases)} raised {errors[str(i)]}")
        try:
            ok, msg = part.check(case, exp, got.get(i, {}))
        except Exception as exc:  # a malformed record must not stop the grader
            ok, msg = False, f"could not be compared ({type(exc).__name__}: {exc})"
        if not ok:
            return fail(f"case {i + 1} of {len(cases)}: {msg}")
    if visible_error:  # as in nbgrader, a test cell that fails earns nothing
        return PartResult(part.id, part.title, float(part.points), 0.0,
                          f"the hidden cases passed but the visible test failed: {visible_error}")
    return PartResult(part.id, part.title, float(part.points), float(part.points),
                      f"passed all {len(cases)} hidden cases")

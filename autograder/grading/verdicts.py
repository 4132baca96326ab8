"""Decide each part in the grader process, from recorded numbers and ``solutions/`` references.

Nothing computed inside the student's kernel is believed except the recorded arrays, and those
only after :func:`autograder.grading.records.decode_records` has turned them into float64
copies. A part is scored check by check (:func:`score_checks`): each
:class:`~autograder.assignments.spec.Check` earns its points when every output it covers is
right on every case it covers, so a slip costs the checks it breaks, not the whole part; a
case that raised costs the checks whose outputs it left unrecorded.

Points come from the hidden checks only. The visible tests are the student's own (they can run
them, and the self-check does); their outcome is reported in the part's message but neither
gives nor takes points, so a mistake in one part does not cost another part whose visible tests
call the wrong function.

Messages are for students: a failed check says in plain words which output was wrong and on
what kind of case (the part's ``label`` and ``describe``), never the case's values; a stub that
still raises ``NotImplementedError`` is "not implemented yet".
"""

from __future__ import annotations

from collections.abc import Mapping

from ..assignments.spec import Check, Part
from ..text import MAX_TEXT, cap
from .jobs import CheckResult, PartResult
from .records import RecordError, decode_records

NOT_IMPLEMENTED = "not implemented yet"


def error_kind(text: str) -> str:
    """The exception class of an error as the harness reports it (``"Type: message"``)."""
    return text.split(":", 1)[0].strip()


def error_text(text: str) -> str:
    """An error for a student: a blank stub's ``NotImplementedError`` is "not implemented yet",
    anything else says what was raised."""
    if error_kind(text) == "NotImplementedError":
        return NOT_IMPLEMENTED
    return f"raised {text.strip()}"


def _case_problem(part: Part, check: Check, case, expected: Mapping, got: Mapping,
                  error: str | None) -> str | None:
    """What is wrong with the outputs ``check`` covers on one case, or None. An error the
    case raised counts against the checks whose outputs it left unrecorded."""
    covered = {k: v for k, v in expected.items() if check.covers_output(k)}
    if not covered:
        return None
    if error is not None and any(k not in got for k in covered):
        return error_text(error)
    compare = check.compare or part.compare
    try:
        return compare(case, covered, got, part.label)
    except Exception as exc:  # a malformed record must not stop the grader
        return f"the recorded values could not be compared ({type(exc).__name__})"


def score_checks(part: Part, cases: list, expected: list, got: Mapping[int, Mapping],
                 errors: Mapping[str, str]) -> list[CheckResult]:
    """Each check of ``part`` scored on the recorded outputs ``got`` (case index -> name ->
    array) and the per-case ``errors`` (str(case index) -> "Type: message")."""
    results = []
    for check in part.scoring:
        chosen = [i for i, case in enumerate(cases) if check.covers_case(case)]
        wrong = []
        for i in chosen:
            problem = _case_problem(part, check, cases[i], expected[i], got.get(i, {}),
                                    errors.get(str(i)))
            if problem is not None:
                wrong.append((i, problem))
        if not wrong:
            results.append(CheckResult(check.name, float(check.points), float(check.points)))
            continue
        if all(p == NOT_IMPLEMENTED for _, p in wrong):
            message = NOT_IMPLEMENTED
        else:
            i, problem = next((w for w in wrong if w[1] != NOT_IMPLEMENTED), wrong[0])
            extent = ("wrong on every hidden case" if len(wrong) == len(chosen) else
                      f"wrong on {len(wrong)} of {len(chosen)} hidden cases")
            message = f"{extent}; e.g. on {part.describe(cases[i])}: {problem}"
        results.append(CheckResult(check.name, float(check.points), 0.0, cap(message)))
    return results


def part_message(part: Part, checks: list[CheckResult], n_cases: int) -> str:
    """What the part's row says: that every check passed; for a part of one check what it
    found; for a part of several, which checks passed (each check's row says what it found)."""
    failed = [c for c in checks if not c.passed]
    if not failed:
        return f"right on all {n_cases} hidden cases"
    if len(part.scoring) == 1:
        return failed[0].message
    if all(c.message == NOT_IMPLEMENTED for c in failed) and len(failed) == len(checks):
        return NOT_IMPLEMENTED
    right = [c.name for c in checks if c.passed]
    return (f"{len(right)} of {len(checks)} checks right"
            + (f" ({', '.join(right)})" if right else "") + "; wrong: "
            + "; ".join(f"{c.name}: {c.message}" for c in failed))


def visible_text(error: str) -> str:
    """A visible test's error for the part's message: an assertion's own words, else what was
    raised."""
    if error_kind(error) == "AssertionError":
        return error.split(":", 1)[1].strip() if ":" in error else "an assertion failed"
    return error_text(error)


def judge(part: Part, cases: list, expected: list, payloads: list, why_missing: str = "",
          visible_error: str = "") -> PartResult:
    """The verdict for ``part`` from the payloads its hidden test published (last one wins)."""

    why_missing, visible_error = cap(why_missing), cap(visible_error)

    def result(checks: list[CheckResult], message: str) -> PartResult:
        score = float(sum(c.score for c in checks))
        if visible_error and message != NOT_IMPLEMENTED:
            message += f" (the visible tests fail: {visible_text(visible_error)})"
        return PartResult(part.id, part.title, float(part.points), score,
                          cap(message, 3 * MAX_TEXT), checks)

    def fail(message: str) -> PartResult:
        return result([CheckResult(c.name, float(c.points), 0.0, message)
                       for c in part.scoring], message)

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
    checks = score_checks(part, cases, expected, got, errors)
    return result(checks, part_message(part, checks, len(cases)))

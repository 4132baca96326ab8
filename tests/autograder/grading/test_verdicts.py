"""Tests for autograder.grading.verdicts: parts are decided in the grader from recorded
numbers, check by check, with messages for students."""

import base64
import io

import numpy as np

from autograder.assignments.spec import Check, Part
from autograder.grading.verdicts import judge
from tests.support import toy

PART = toy.TOY.parts[0]


def _payload(arrays: dict, cases: int, errors=None) -> dict:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return {"part": PART.id, "cases": cases, "errors": errors or {},
            "npz": base64.b64encode(buf.getvalue()).decode()}


def _cases():
    cases = PART.make_cases(np.random.default_rng(0))
    return cases, [PART.reference(c) for c in cases]


def test_correct_records_earn_the_points():
    """Records equal to the reference on every case pass."""
    cases, expected = _cases()
    payload = _payload({f"{i}/y": e["y"] for i, e in enumerate(expected)}, len(cases))
    r = judge(PART, cases, expected, [payload])
    assert r.score == PART.points and r.message == "right on all 3 hidden cases"
    assert [(c.name, c.score) for c in r.checks] == [("hidden cases", PART.points)]


def test_one_wrong_case_fails_a_part_without_checks_naming_the_kind_of_case():
    """A single wrong case costs a part without checks; the message says how many cases were
    wrong and describes one by its shapes, never its values."""
    cases, expected = _cases()
    arrays = {f"{i}/y": e["y"] for i, e in enumerate(expected)}
    arrays["1/y"] = arrays["1/y"] + 1
    r = judge(PART, cases, expected, [_payload(arrays, len(cases))])
    assert r.score == 0
    shape = "(" + ", ".join(str(s) for s in cases[1]["x"].shape) + ")"
    assert r.message.startswith(f"wrong on 1 of 3 hidden cases; e.g. on inputs x of shape "
                                f"{shape}, a number a: ")
    assert "y differs from the expected value (largest difference 1)" in r.message
    assert "np." not in r.message and "array(" not in r.message


def _checked_part():
    """A part of two checks: y on every case (1 point), z on cases with flag set (2 points)."""
    return Part("pair", 3, "Pair", lambda rng: [{"x": np.ones(2), "flag": f} for f in (0, 1)],
                lambda c: {"y": c["x"], "z": 2 * c["x"]}, "pass",
                checks=(Check("y", 1, outputs=("y",)),
                        Check("z", 2, outputs=("z",), when=lambda c: c["flag"] == 1)),
                describe=lambda c: f"a case with flag {c['flag']}",
                label=lambda name: f"the {name} output")


def test_each_check_earns_its_points_on_the_cases_and_outputs_it_covers():
    """A part earns the points of the checks it passes; a check ignores outputs and cases it
    does not cover, and its message uses the part's words for outputs and cases."""
    part = _checked_part()
    cases = part.make_cases(None)
    expected = [part.reference(c) for c in cases]
    arrays = {"0/y": np.ones(2), "0/z": np.zeros(2),   # z of case 0 is not checked
              "1/y": np.ones(2) * 5, "1/z": 2 * np.ones(2)}
    r = judge(part, cases, expected, [_payload(arrays, 2) | {"part": "pair"}])
    assert r.score == 2 and [c.score for c in r.checks] == [0, 2]
    assert r.checks[0].message == ("wrong on 1 of 2 hidden cases; e.g. on a case with flag 1: "
                                   "the y output differs from the expected value (largest "
                                   "difference 4)")
    assert r.message == "1 of 2 checks right (z); wrong: y: " + r.checks[0].message


def test_an_error_costs_only_the_checks_whose_outputs_it_left_unrecorded():
    """A case that raised after recording y keeps the y check; a blank stub's
    NotImplementedError reads "not implemented yet"."""
    part = _checked_part()
    cases = part.make_cases(None)
    expected = [part.reference(c) for c in cases]
    arrays = {"0/y": np.ones(2), "1/y": np.ones(2)}
    errors = {"1": "NotImplementedError: "}
    r = judge(part, cases, expected, [_payload(arrays, 2, errors) | {"part": "pair"}])
    assert r.score == 1 and r.checks[1].message == "not implemented yet"
    errors = {"1": "KeyError: 'z'"}
    r = judge(part, cases, expected, [_payload(arrays, 2, errors) | {"part": "pair"}])
    assert r.checks[1].message.endswith("raised KeyError: 'z'")


def test_the_last_payload_of_the_part_wins_and_others_are_ignored():
    """An earlier correct-looking payload cannot outvote the harness's own, last one."""
    cases, expected = _cases()
    good = _payload({f"{i}/y": e["y"] for i, e in enumerate(expected)}, len(cases))
    bad = _payload({f"{i}/y": 0 * e["y"] for i, e in enumerate(expected)}, len(cases))
    assert judge(PART, cases, expected, [good, bad]).score == 0
    other = dict(good, part="other")
    assert judge(PART, cases, expected, [other]).score == 0


def test_missing_records_and_case_errors_explain_themselves():
    """No payload, a wrong case count and a raised exception each give a reason."""
    cases, expected = _cases()
    assert "no results" in judge(PART, cases, expected, [], "the kernel died").message
    assert "cases were run" in judge(PART, cases, expected, [_payload({}, 1)]).message
    r = judge(PART, cases, expected, [_payload({}, len(cases), {"0": "NameError: x"})])
    assert "NameError" in r.message and r.score == 0


def test_a_failing_visible_test_is_reported_but_costs_nothing():
    """Points come from the hidden checks only; a failing visible test is named in the
    message, a blank stub's as "not implemented yet"."""
    cases, expected = _cases()
    payload = _payload({f"{i}/y": e["y"] for i, e in enumerate(expected)}, len(cases))
    r = judge(PART, cases, expected, [payload], visible_error="AssertionError: shape")
    assert r.score == PART.points
    assert r.message == "right on all 3 hidden cases (the visible tests fail: shape)"
    errors = {str(i): "NotImplementedError: " for i in range(len(cases))}
    r = judge(PART, cases, expected, [_payload({}, len(cases), errors)],
              visible_error="NotImplementedError: ")
    assert r.score == 0 and r.message == "not implemented yet"


def test_a_record_that_raises_while_read_fails_its_part_only():
    """An archive whose reading raises (here lzma.LZMAError inside zipfile) fails the part
    with the reason; the grader goes on (no exception), and a correct part elsewhere counts."""
    from tests.support.hostile import broken_lzma_archive
    cases, expected = _cases()
    forged = {"part": PART.id, "cases": len(cases), "errors": {}, "npz": broken_lzma_archive()}
    r = judge(PART, cases, expected, [forged])
    assert r.score == 0 and "rejected" in r.message and "compression method" in r.message
    good = _payload({f"{i}/y": e["y"] for i, e in enumerate(expected)}, len(cases))
    assert judge(PART, cases, expected, [forged, good]).score == PART.points

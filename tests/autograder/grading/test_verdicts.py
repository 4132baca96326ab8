"""Tests for autograder.verdicts: parts are decided in the grader from recorded numbers."""

import base64
import io

import numpy as np

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
    assert r.score == PART.points and "passed" in r.message


def test_one_wrong_case_fails_the_part():
    """A single wrong case costs the part, naming the case."""
    cases, expected = _cases()
    arrays = {f"{i}/y": e["y"] for i, e in enumerate(expected)}
    arrays["1/y"] = arrays["1/y"] + 1
    r = judge(PART, cases, expected, [_payload(arrays, len(cases))])
    assert r.score == 0 and "case 2" in r.message


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


def test_a_failing_visible_test_costs_the_part():
    """Correct hidden records do not earn the points when the visible test failed."""
    cases, expected = _cases()
    payload = _payload({f"{i}/y": e["y"] for i, e in enumerate(expected)}, len(cases))
    r = judge(PART, cases, expected, [payload], visible_error="AssertionError: shape")
    assert r.score == 0 and "visible test failed" in r.message


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

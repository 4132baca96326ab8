"""Tests for autograder._grading_harness, the kernel-side module (run here in-process)."""

import base64
import io

import numpy as np
import pytest

from autograder.grading.records import decode_records, encode_cases
from autograder.sandbox import harness


@pytest.fixture
def published(tmp_path, monkeypatch):
    (tmp_path / "p.npz").write_bytes(encode_cases([{"x": np.arange(3.0), "a": 2.0},
                                                   {"x": np.ones(2), "a": -1.0}]))
    monkeypatch.setenv("AUTOGRADER_CASES", str(tmp_path))
    sent = []
    import IPython.display
    monkeypatch.setattr(IPython.display, "publish_display_data", lambda data: sent.append(data))
    return sent


def test_run_records_each_case(published):
    """The probe runs once per case and its records travel as a numeric npz payload."""
    harness.run("p", lambda case, record: record(y=case["a"] * case["x"]))
    n, got, errors = decode_records(published[0][harness.MIME])
    assert n == 2 and errors == {}
    np.testing.assert_array_equal(got[0]["y"], [0.0, 2.0, 4.0])
    np.testing.assert_array_equal(got[1]["y"], [-1.0, -1.0])


def test_exceptions_are_caught_per_case(published):
    """A case that raises is reported and the other cases still run."""
    def probe(case, record):
        if case["a"] < 0:
            raise ValueError("negative")
        record(y=case["x"])
    harness.run("p", probe)
    n, got, errors = decode_records(published[0][harness.MIME])
    assert errors == {"1": "ValueError: negative"} and 0 in got and 1 not in got


def test_non_numeric_records_are_refused(published):
    """Objects, strings and lying objects cannot be recorded; nothing is pickled."""
    class Liar:
        def __eq__(self, other):
            return True
    harness.run("p", lambda case, record: record(y=Liar()))
    payload = published[0][harness.MIME]
    assert "not a plain numeric" in payload["errors"]["0"]
    raw = base64.b64decode(payload["npz"])
    assert np.load(io.BytesIO(raw), allow_pickle=False).files == []


def test_missing_inputs_are_reported(published):
    """An unknown part id yields a payload saying the inputs could not be read."""
    harness.run("nope", lambda case, record: None)
    assert "load" in published[0][harness.MIME]["errors"]

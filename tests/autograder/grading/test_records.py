"""Tests for autograder.records: plain-numeric npz in, hostile npz out."""

import base64
import io
import zipfile

import numpy as np
import pytest

from autograder.grading.records import (
    RecordError,
    decode_records,
    encode_cases,
)


def _payload(members: dict, cases: int = 1) -> dict:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return {"part": "p", "cases": cases, "errors": {},
            "npz": base64.b64encode(buf.getvalue()).decode()}


def _npy(array, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_encode_cases_round_trips_arrays_and_scalars():
    """Case inputs come back with the same values, scalars marked as scalars."""
    raw = encode_cases([{"x": np.arange(6.0).reshape(2, 3), "p": 0.25, "train": True}])
    with np.load(io.BytesIO(raw), allow_pickle=False) as data:
        assert set(data.files) == {"0/a/x", "0/s/p", "0/s/train"}
        np.testing.assert_array_equal(data["0/a/x"], np.arange(6.0).reshape(2, 3))
        assert data["0/s/p"].item() == 0.25


def test_encode_cases_rejects_object_inputs():
    """An input that would need pickle is refused."""
    with pytest.raises(ValueError, match="unsupported dtype"):
        encode_cases([{"x": np.array([object()])}])


def test_decode_returns_float64_copies():
    """Integer and bool records are returned as float64 arrays."""
    n, got, errors = decode_records(_payload({"0/y.npy": _npy(np.array([1, 2], np.int32)),
                                              "0/b.npy": _npy(np.array(True))}))
    assert n == 1 and errors == {}
    assert got[0]["y"].dtype == np.float64 and got[0]["y"].tolist() == [1.0, 2.0]
    assert got[0]["b"].shape == ()


def test_decode_refuses_pickled_objects():
    """An object array (which np.load would unpickle) is rejected before any unpickling."""
    with pytest.raises(RecordError, match="not plain numeric"):
        decode_records(_payload({"0/y.npy": _npy(np.array([{}], dtype=object),
                                                  allow_pickle=True)}))


def test_decode_refuses_huge_headers_before_reading():
    """A header announcing 8 TB is refused without allocating it."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                               "shape": (10**12,)})
    with pytest.raises(RecordError, match="exceeds"):
        decode_records(_payload({"0/y.npy": buf.getvalue()}))


def test_decode_refuses_truncated_data_and_junk():
    """Truncated arrays, junk members and bad base64 are errors, not crashes."""
    with pytest.raises(RecordError):
        decode_records(_payload({"0/y.npy": _npy(np.arange(10.0))[:-8]}))
    with pytest.raises(RecordError):
        decode_records(_payload({"0/y.npy": b"junk"}))
    with pytest.raises(RecordError):
        decode_records({"cases": 1, "npz": "***"})
    with pytest.raises(RecordError):
        decode_records({"cases": "1", "npz": ""})

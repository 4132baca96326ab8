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


def _header(shape, descr="<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


@pytest.mark.parametrize("shape", [(-1,), (7, -1), (-3, -5), (2, 3.0), (True,), (1,) * 40])
def test_every_dimension_is_validated_before_use(shape):
    """Negative dimensions (even an even number of them, whose product is positive), floats,
    bools and too many dimensions are refused before any data is read."""
    with pytest.raises(RecordError, match="shape|dimension"):
        decode_records(_payload({"0/y.npy": _header(shape) + bytes(8 * 15)}))


def test_the_budget_bounds_the_float64_copy_not_the_bytes_read():
    """A million int8 values (1 MB read, 8 MB kept as float64) exceed a 4 MB budget."""
    member = _npy(np.zeros((1000, 1000), np.int8))
    with pytest.raises(RecordError, match="exceed the record budget"):
        decode_records(_payload({"0/y.npy": member}), max_bytes=4 * 2**20)
    assert decode_records(_payload({"0/y.npy": member}), max_bytes=8 * 2**20)[1][0]["y"].shape \
        == (1000, 1000)


def test_a_negative_shape_over_a_deflated_gigabyte_costs_nothing():
    """The hostile sample's archive (a header of shape (7, -1) before 1 GiB of deflated
    zeros) is refused at its header: Python allocates next to nothing for it."""
    import tracemalloc

    from tests.support.hostile import negative_shape_bomb
    payload = {"part": "p", "cases": 1, "errors": {}, "npz": negative_shape_bomb()}
    tracemalloc.start()
    try:
        with pytest.raises(RecordError, match="non-negative"):
            decode_records(payload)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20


def _members_flagged(flags: int = 0, method: int = zipfile.ZIP_DEFLATED, corrupt=False) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("0/y.npy", _npy(np.arange(100.0)))
    raw = bytearray(buf.getvalue())
    info = zipfile.ZipFile(io.BytesIO(bytes(raw))).infolist()[0]
    start = info.header_offset + 30 + len(info.filename)
    if corrupt:
        raw[start:start + 8] = b"\xff" * 8
    for at in (info.header_offset + 6, raw.rfind(b"PK\x01\x02") + 8):  # flags in both headers
        raw[at:at + 4] = (flags.to_bytes(2, "little") + method.to_bytes(2, "little"))
    return base64.b64encode(bytes(raw)).decode()


@pytest.mark.parametrize("archive, why", [
    (lambda: _members_flagged(flags=1), "encrypted"),
    (lambda: _members_flagged(method=99), "compression method 99"),
    (lambda: _members_flagged(method=zipfile.ZIP_BZIP2), "compression method 12"),
    (lambda: _members_flagged(corrupt=True), "could not be read \\(error"),
    (lambda: __import__("tests.support.hostile", fromlist=["x"]).broken_lzma_archive(),
     "compression method 14"),
])
def test_any_failure_while_reading_is_a_record_error(archive, why):
    """Encrypted members (RuntimeError in zipfile), unknown or unaccepted methods, a corrupt
    deflate stream (zlib.error) and broken LZMA data are each a RecordError with a reason."""
    with pytest.raises(RecordError, match=why):
        decode_records({"part": "p", "cases": 1, "errors": {}, "npz": archive()})


def test_archives_listing_too_many_members_are_refused_before_listing():
    """An archive of 5,000 empty members, or one claiming ZIP64 records, is refused from its
    end record, before zipfile builds an entry per member."""
    with pytest.raises(RecordError, match="members"):
        decode_records(_payload({f"0/m{i}": b"" for i in range(5000)}))
    raw = base64.b64decode(_payload({"0/y.npy": _npy(np.zeros(2))})["npz"])
    end = raw.rfind(b"PK\x05\x06")
    forged = raw[:end] + b"PK\x06\x07" + bytes(16) + raw[end:]
    with pytest.raises(RecordError, match="ZIP64"):
        decode_records({"cases": 1, "npz": base64.b64encode(forged).decode()})


def test_errors_must_be_an_object_of_a_bounded_number_of_strings():
    """A list, non-string messages or more than MAX_ERRORS messages are refused."""
    good = _payload({"0/y.npy": _npy(np.zeros(2))})
    for errors in ([], {"0": [1]}, {str(i): "x" for i in range(1001)}):
        with pytest.raises(RecordError, match="errors"):
            decode_records(dict(good, errors=errors))
    assert decode_records(dict(good, errors={"0": "E" * 900}))[2] == {"0": "E" * 500}

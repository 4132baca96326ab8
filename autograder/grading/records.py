"""Grader-side encoding of case inputs and safe decoding of recorded outputs.

Both directions use plain ``.npz`` archives and never pickle. Records come from the student's
kernel and are hostile by assumption: :func:`decode_records` validates every number it reads
before using it and bounds what it keeps, not only what it reads:

* the payload: a case count, an object of at most :data:`~autograder.sandbox.harness.MAX_ERRORS`
  error strings, base64 text of at most the record budget;
* the archive: its central directory (found as :mod:`zipfile` finds it) may list at most
  :data:`MAX_MEMBERS` members and no ZIP64 records, so listing it costs little; a member must be
  stored or deflated (never encrypted, never another method) and its name ``<case>/<field>``;
* each ``.npy`` header, parsed here: bool/int/float dtypes only, at most :data:`MAX_DIMS`
  dimensions, each a non-negative integer, and the float64 copy kept (not only the bytes read)
  within the payload's budget (:data:`~autograder.sandbox.harness.MAX_RECORD_BYTES`), checked
  before any data is read; the data read must then be exactly as long as the header says.

It returns float64 copies (so no subclass, no lying object, no ``__array_function__`` ever
reaches the comparison). Whatever goes wrong while decoding (a malformed archive, a corrupt
deflate stream, anything a library raises) is the data's fault: :class:`RecordError`, with a
reason, never another exception.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import struct
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..sandbox.harness import MAX_ERROR_TEXT, MAX_ERRORS, MAX_RECORD_BYTES
from ..text import cap

MAX_MEMBERS = 4096       # members of one archive
MAX_DIRECTORY_ENTRY = 256  # bytes of the central directory per member allowed
MAX_DIMS = 32            # dimensions of one array (NumPy allows 64)
MAX_CASES = 100_000      # a case count beyond this is not one the grader ever asks for
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIG, _ZIP64_LOCATOR_SIG = b"PK\x05\x06", b"PK\x06\x07"
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)


class RecordError(ValueError):
    """Recorded outputs that cannot be accepted (malformed, too large, not numeric)."""


def encode_cases(cases: list[Mapping[str, Any]]) -> bytes:
    """The ``.npz`` bytes the harness reads: ``"<i>/a/<name>"`` arrays, ``"<i>/s/<name>"``
    Python scalars (bool, int, float, str)."""
    arrays: dict[str, np.ndarray] = {}
    for i, case in enumerate(cases):
        for name, value in case.items():
            if "/" in name:
                raise ValueError(f"case input name {name!r} must not contain '/'")
            if isinstance(value, bool | int | float | str | np.generic):
                arrays[f"{i}/s/{name}"] = np.asarray(value)
            else:
                array = np.asarray(value)
                if array.dtype.kind not in "biufU":
                    raise ValueError(f"case input {name!r} has unsupported dtype {array.dtype}")
                arrays[f"{i}/a/{name}"] = array
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _check_directory(raw: bytes) -> None:
    """Refuse an archive whose central directory (the end record :mod:`zipfile` would use) is
    ZIP64 or may list more than :data:`MAX_MEMBERS` members, before :mod:`zipfile` lists it."""
    end = len(raw) - _EOCD.size
    if not (end >= 0 and raw[end:end + 4] == _EOCD_SIG and raw[-2:] == b"\0\0"):
        end = raw.rfind(_EOCD_SIG, max(0, len(raw) - _EOCD.size - 65535))
    if end < 0 or end + _EOCD.size > len(raw):
        raise RecordError("the record data is not a zip archive")
    _, _, _, _, entries, size, _, _ = _EOCD.unpack_from(raw, end)
    if end >= 20 and raw[end - 20:end - 16] == _ZIP64_LOCATOR_SIG:
        raise RecordError("the record archive has ZIP64 records, which are not accepted")
    if entries > MAX_MEMBERS or size > MAX_MEMBERS * MAX_DIRECTORY_ENTRY:
        raise RecordError(f"the record archive lists {entries} members in {size} bytes "
                          f"(at most {MAX_MEMBERS} members are accepted)")


def _shape(shape: Any, itemsize: int, budget: int, name: str) -> tuple[int, ...]:
    """``shape`` when it is a tuple of at most :data:`MAX_DIMS` non-negative integers whose
    array, kept as float64 (and read as ``itemsize`` bytes per item), fits ``budget``."""
    if not isinstance(shape, tuple) or len(shape) > MAX_DIMS:
        raise RecordError(f"{name}: shape {cap(shape, 100)} is not a tuple of at most "
                          f"{MAX_DIMS} dimensions")
    for dim in shape:
        if type(dim) is not int or dim < 0:
            raise RecordError(f"{name}: shape {cap(shape, 100)} has a dimension that is not a "
                              "non-negative integer")
        if dim > budget // 8:
            raise RecordError(f"{name}: a dimension of {dim} exceeds the record budget of "
                              f"{budget} bytes")
    count = math.prod(shape)
    if count * max(itemsize, 8) > budget:
        raise RecordError(f"{name}: {count} values exceed the record budget of {budget} bytes")
    return shape


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> np.ndarray:
    name = cap(info.filename, 100)
    if info.flag_bits & 0x1:
        raise RecordError(f"{name}: the member is encrypted")
    if info.compress_type not in _METHODS:
        raise RecordError(f"{name}: compression method {info.compress_type} is not accepted "
                          "(only stored or deflated)")
    with zf.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise RecordError(f"{name}: unsupported .npy version {version}")
        if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None \
                or dtype.subdtype is not None:
            raise RecordError(f"{name}: dtype {dtype} is not plain numeric")
        shape = _shape(shape, dtype.itemsize, budget, name)
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        raw = fp.read(nbytes + 1)
    if len(raw) != nbytes:
        raise RecordError(f"{name}: {len(raw)} bytes of data where the header announces "
                          f"{nbytes}")
    array = np.frombuffer(raw, dtype=dtype, count=count)
    array = array.reshape(shape, order="F" if fortran else "C")
    return np.array(array, dtype=np.float64)


def _errors(errors: Any) -> dict[str, str]:
    """The payload's error messages: an object of at most :data:`MAX_ERRORS` strings."""
    if not isinstance(errors, Mapping) or len(errors) > MAX_ERRORS or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in errors.items()):
        raise RecordError(f"the record payload's errors are not an object of at most "
                          f"{MAX_ERRORS} strings")
    return {k[:20]: v[:MAX_ERROR_TEXT] for k, v in errors.items()}


def decode_records(payload: Mapping[str, Any], max_bytes: int = MAX_RECORD_BYTES):
    """Parse one harness payload into ``(n_cases, {case: {name: float64 array}}, errors)``;
    :class:`RecordError` for anything that cannot be accepted."""
    if not isinstance(payload, Mapping):
        raise RecordError("record payload is not a JSON object")
    n_cases = payload.get("cases")
    if type(n_cases) is not int or not 0 <= n_cases <= MAX_CASES:
        raise RecordError("record payload has no valid case count")
    errors = _errors(payload.get("errors", {}))
    blob = payload.get("npz")
    if not isinstance(blob, str) or len(blob) > max_bytes * 4 // 3 + 16:
        raise RecordError("record payload has no npz data of acceptable size")
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RecordError(f"record data is not base64: {cap(exc, 200)}") from None
    per_case: dict[int, dict[str, np.ndarray]] = {}
    budget = max_bytes
    try:
        _check_directory(raw)
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            members = zf.infolist()
            if len(members) > MAX_MEMBERS:
                raise RecordError(f"the record archive has {len(members)} members (at most "
                                  f"{MAX_MEMBERS})")
            for info in members:
                index, _, field = info.filename.removesuffix(".npy").partition("/")
                if not (index.isdigit() and len(index) <= 6 and field and len(field) <= 100):
                    continue
                array = _read_member(zf, info, budget)
                budget -= array.size * 8
                per_case.setdefault(int(index), {})[field] = array
    except RecordError:
        raise
    except Exception as exc:  # zlib.error, RuntimeError, struct.error, ...: the data's fault
        raise RecordError(f"the record archive could not be read ({type(exc).__name__}: "
                          f"{cap(exc, 200)})") from None
    return n_cases, per_case, errors

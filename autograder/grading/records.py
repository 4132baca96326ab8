"""Grader-side encoding of case inputs and safe decoding of recorded outputs.

Both directions use plain ``.npz`` archives and never pickle. Records come from the student's
kernel and are hostile by assumption: :func:`decode_records` parses each ``.npy`` header itself,
accepts only bool/int/float dtypes, refuses members larger than a byte budget before reading
them, and returns float64 copies (so no subclass, no lying object, no ``__array_function__``
ever reaches the comparison).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

MAX_RECORD_BYTES = 64 * 2**20


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


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> np.ndarray:
    with zf.open(info) as fp:
        version = np.lib.format.read_magic(fp)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fp)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fp)
        else:
            raise RecordError(f"unsupported .npy version {version}")
        if dtype.hasobject or dtype.kind not in "biuf" or dtype.fields is not None:
            raise RecordError(f"{info.filename}: dtype {dtype} is not plain numeric")
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if nbytes > budget:
            raise RecordError(f"{info.filename}: {nbytes} bytes exceeds the record budget")
        raw = fp.read(nbytes + 1)
    if len(raw) != nbytes:
        raise RecordError(f"{info.filename}: truncated or oversized data")
    array = np.frombuffer(raw, dtype=dtype, count=count)
    array = array.reshape(shape, order="F" if fortran else "C")
    return np.array(array, dtype=np.float64)


def decode_records(payload: Mapping[str, Any], max_bytes: int = MAX_RECORD_BYTES):
    """Parse one harness payload into ``(n_cases, {case: {name: float64 array}}, errors)``."""
    if not isinstance(payload, Mapping):
        raise RecordError("record payload is not a JSON object")
    n_cases = payload.get("cases")
    if not isinstance(n_cases, int) or isinstance(n_cases, bool) or n_cases < 0:
        raise RecordError("record payload has no valid case count")
    errors = payload.get("errors", {})
    if not isinstance(errors, Mapping):
        errors = {}
    errors = {str(k)[:20]: str(v)[:500] for k, v in list(errors.items())[:1000]}
    blob = payload.get("npz")
    if not isinstance(blob, str) or len(blob) > max_bytes * 4 // 3 + 16:
        raise RecordError("record payload has no npz data of acceptable size")
    try:
        raw = base64.b64decode(blob, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise RecordError(f"record data is not base64: {exc}") from None
    per_case: dict[int, dict[str, np.ndarray]] = {}
    budget = max_bytes
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            for info in zf.infolist()[:10000]:
                name = info.filename.removesuffix(".npy")
                index, _, field = name.partition("/")
                if not index.isdigit() or not field:
                    continue
                array = _read_member(zf, info, budget)
                budget -= array.size * 8
                per_case.setdefault(int(index), {})[field] = array
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        if isinstance(exc, RecordError):
            raise
        raise RecordError(f"record archive is malformed: {exc}") from None
    return n_cases, per_case, errors


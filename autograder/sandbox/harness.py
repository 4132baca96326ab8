"""Kernel-side half of the grading protocol (see ``autograder.spec``).

This file is copied beside the notebook at grading time only and imported by the hidden block
of every test cell (``spec.hidden_block``). It runs INSIDE the student's kernel, so nothing here
is trusted: it only moves plain numbers in and out, and the grader validates everything it
reads back.

* Inputs: ``$AUTOGRADER_CASES/<part_id>.npz`` (default ``/io/cases``), written by the grader
  with keys ``"<i>/a/<name>"`` (array) or ``"<i>/s/<name>"`` (scalar, returned as a Python
  scalar via ``.item()``); loaded with ``allow_pickle=False``.
* :func:`run` calls ``probe(case, record)`` once per case, catching each case's exception
  (``KeyboardInterrupt`` is let through so a time-limit interrupt stops the cell).
* ``record(name=value, ...)`` converts each value with ``np.asarray`` (tensors are detached
  and moved to the CPU first) and refuses anything that is not a bool/int/float array.
* Outputs: one display message with MIME type :data:`MIME` whose JSON holds the part id, the
  number of cases, per-case error messages and an uncompressed ``.npz`` (keys
  ``"<i>/<name>"``, never pickled) encoded in base64. The grader takes it from the output of
  the hidden-test execution of that part only.

What the grader accepts of a payload is bounded (:data:`MAX_RECORD_BYTES` of float64 data,
:data:`MAX_ERRORS` error messages of :data:`MAX_ERROR_TEXT` characters); the records of every
assignment are far smaller.
"""

from __future__ import annotations

import base64
import io
import os

import numpy as np

MIME = "application/vnd.autograder.records+json"
MAX_RECORD_BYTES = 16 * 2**20  # float64 data of one payload, as the grader keeps it
MAX_ERRORS = 1000              # error messages of one payload (one per case, plus "load")
MAX_ERROR_TEXT = 500           # characters of one error message
_NUMERIC_KINDS = "biuf"


def _load_cases(part_id: str) -> list[dict]:
    folder = os.environ.get("AUTOGRADER_CASES", "/io/cases")
    path = os.path.join(folder, f"{part_id}.npz")
    cases: dict[int, dict] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            index, kind, name = key.split("/", 2)
            value = data[key]
            cases.setdefault(int(index), {})[name] = value.item() if kind == "s" else value
    return [cases[i] for i in sorted(cases)]


def _as_plain_array(value):
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu()
        if hasattr(value, "numpy"):
            value = value.numpy()
    array = np.array(value, copy=True)
    if type(array) is not np.ndarray:
        array = array.view(np.ndarray)
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"recorded value of type {type(value).__name__} is not a plain numeric "
                        f"array (dtype {array.dtype})")
    return array


def run(part_id: str, probe) -> None:
    """Run ``probe(case, record)`` on every case of ``part_id`` and publish the records."""
    from IPython.display import publish_display_data

    arrays: dict[str, np.ndarray] = {}
    errors: dict[str, str] = {}
    try:
        cases = _load_cases(part_id)
    except Exception as exc:  # the grader sees "no records" and says why
        cases = []
        errors["load"] = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_TEXT]
    for i, case in enumerate(cases):
        recorded: dict[str, np.ndarray] = {}

        def record(_into=recorded, **values):
            for name, value in values.items():
                _into[str(name)] = _as_plain_array(value)

        try:
            probe(case, record)
        except (Exception, SystemExit) as exc:
            errors[str(i)] = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_TEXT]
        for name, array in recorded.items():
            arrays[f"{i}/{name}"] = array
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    payload = {
        "part": part_id,
        "cases": len(cases),
        "errors": errors,
        "npz": base64.b64encode(buffer.getvalue()).decode("ascii"),
    }
    publish_display_data({MIME: payload, "text/plain": f"<records for {part_id}>"})

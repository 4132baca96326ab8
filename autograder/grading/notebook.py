"""Reading a handed-in notebook defensively, and writing the graded copy within bounds.

:func:`read_student_notebook` accepts a regular file (no link followed) of at most
:data:`MAX_NOTEBOOK_BYTES`, UTF-8 (a byte-order mark is accepted), JSON of at most
:data:`MAX_NOTEBOOK_VALUES` values (so what parsing builds stays near the file's size, see
:mod:`autograder.untrusted_json`) whose integers beyond Python's digit limit are read as None,
an object with a list of at most :data:`MAX_CELLS` cells (nbformat 3 is converted). Anything
else is a reason, never an exception. Together these bound the grader's own work on the
notebook (rebuilding it, writing its graded copy), which the worker also counts against the
notebook's time limit.

:func:`graded_text` writes the autograded notebook as JSON of bounded size: without its outputs
when they do not serialize or do not fit, not at all when even that is too large (the handed-in
notebook is kept in ``submitted/`` all the same)."""

from __future__ import annotations

import contextlib
from typing import Any

import nbformat

from .. import files
from ..sandbox.limits import human_size
from ..text import cap
from ..untrusted_json import TooManyValues, loads

MAX_NOTEBOOK_BYTES = 32 * 2**20
MAX_NOTEBOOK_VALUES = 1_000_000  # JSON values (a course notebook with outputs: thousands)
MAX_CELLS = 10_000               # cells (a course notebook: dozens)


def _int(text: str):
    """JSON integers beyond Python's 4300-digit limit are read as None (no notebook field the
    grader uses is an integer that large)."""
    return int(text) if len(text) <= 4000 else None


def unreadable(exc: files.UnsafeFile) -> str:
    """The reason given for a handed-in notebook file that cannot be read."""
    return f"the notebook file cannot be read: {exc}"


def read_student_notebook(path: str) -> tuple[Any, str]:
    """(notebook dict or None, reason when None)."""
    try:
        raw = files.read_regular(path, MAX_NOTEBOOK_BYTES)
    except files.UnsafeFile as exc:
        return None, unreadable(exc)
    if not raw.strip():
        return None, "the notebook file is empty"
    try:
        data = loads(raw, MAX_NOTEBOOK_VALUES, encoding="utf-8-sig", parse_int=_int)
    except UnicodeDecodeError as exc:
        return None, f"the notebook is not readable UTF-8 text ({cap(exc, 200)})"
    except TooManyValues as exc:
        return None, f"the notebook is too large for the grader to read: {exc}"
    except (ValueError, RecursionError) as exc:
        return None, f"the notebook is not valid JSON ({cap(exc, 200)})"
    if not isinstance(data, dict):
        return None, "the notebook is not a JSON object"
    if "cells" not in data and "worksheets" in data:
        with contextlib.suppress(Exception):
            data = nbformat.convert(nbformat.from_dict(data), 4)
    if not isinstance(data.get("cells"), list):
        return None, "the notebook has no list of cells"
    if len(data["cells"]) > MAX_CELLS:
        return None, (f"the notebook has {len(data['cells']):,} cells, more than the "
                      f"{MAX_CELLS:,} the grader reads")
    return data, ""


def graded_text(nb, limit: int) -> tuple[str | None, str]:
    """(``nb`` as JSON text of at most ``limit`` characters or None, a note when something was
    left out): with its outputs when they serialize and fit, else without them."""
    text = None
    with contextlib.suppress(Exception):
        text = nbformat.writes(nb)
    if text is not None and len(text) <= limit:
        return text, ""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    with contextlib.suppress(Exception):
        text = nbformat.writes(nb)
        if len(text) <= limit:
            return text, "the autograded notebook is kept without its outputs (too large)"
    return None, (f"the autograded notebook is not kept: it is larger than "
                  f"{human_size(limit)} (the notebook handed in is kept)")

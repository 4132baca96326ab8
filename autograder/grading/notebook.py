"""Reading a handed-in notebook defensively: a regular file (no link followed) of at most
:data:`MAX_NOTEBOOK_BYTES`, UTF-8 (a byte-order mark is accepted), JSON whose integers beyond
Python's digit limit are read as None, an object with a list of cells (nbformat 3 is
converted). Anything else is a reason, never an exception."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import nbformat

from .. import files
from ..text import cap

MAX_NOTEBOOK_BYTES = 32 * 2**20


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
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, f"the notebook is not readable UTF-8 text ({cap(exc, 200)})"
    try:
        data = json.loads(text, parse_int=_int)
    except (ValueError, RecursionError) as exc:
        return None, f"the notebook is not valid JSON ({cap(exc, 200)})"
    if not isinstance(data, dict):
        return None, "the notebook is not a JSON object"
    if "cells" not in data and "worksheets" in data:
        with contextlib.suppress(Exception):
            data = nbformat.convert(nbformat.from_dict(data), 4)
    if not isinstance(data.get("cells"), list):
        return None, "the notebook has no list of cells"
    return data, ""


def notebook_text(nb) -> str:
    """``nb`` as JSON text; should its outputs not serialize, it is written without them."""
    try:
        return nbformat.writes(nb)
    except Exception:
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = []
        return nbformat.writes(nb)

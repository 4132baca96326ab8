"""The cells every release notebook gets for working where students are, and ``check.py``.

* :func:`setup_cell`: the notebook's first cell. It checks that the helper files the notebook
  needs sit beside it and, when one is missing, says which and where to get them (the
  assignment's zip on the course book's Assignments page).
* :func:`selfcheck_cells`: the notebook's last cells, a note on the self-check and a cell that
  runs it (``check_this_notebook()``, which does nothing while the notebook is graded).
* :func:`check_file`: ``check.py``, the source of :mod:`autograder.selfcheck` with
  :data:`~autograder.selfcheck.RELEASE` filled in from the release notebook (:func:`describe`):
  each cell's id, kind and, for locked cells, the checksum of its text; the graded parts; the
  helper files; the grader's default limits. It holds no hidden test and no solution: only
  checksums of cells students already have.

All three come from the registry and the assembled notebook, so a new assignment gets them
without writing anything.
"""

from __future__ import annotations

import ast
import inspect
import pprint
import re

from .. import selfcheck
from ..assignments.spec import Assignment
from ..grading.notebook import MAX_NOTEBOOK_BYTES
from ..sandbox.limits import Limits
from . import cells as markers

CHECK_FILE = "check.py"


def setup_cell(name: str, files: list[str]) -> str:
    """Source of the first cell: the helper files must be beside the notebook."""
    listed = ", ".join(files)
    return f'''\
# This notebook needs these files in its folder: {listed}.
import os

_missing = [f for f in {files!r} if not os.path.isfile(f)]
if _missing:
    raise FileNotFoundError(
        f"not found beside this notebook (in {{os.getcwd()}}): {{', '.join(_missing)}}. "
        "Download {name}.zip from the Assignments page of the course book, unpack it and open "
        "{name}.ipynb from the unpacked folder. In Colab, upload every file of the zip to the "
        "Files panel (on the left), next to the notebook.")
print("The helper files are here: {listed}.")'''


def selfcheck_cells(name: str) -> tuple[str, str]:
    """(Markdown, code) of the notebook's last two cells: how to run the self-check."""
    text = f"""\
## Before you hand in: the self-check

Save the notebook, then run the cell below (or, in a terminal in this folder,
`python check.py {name}.ipynb`). It runs the notebook from the top in a fresh kernel, as the
grader will, and lists every problem the grader would meet: visible tests that fail, errors that
only show when the cells run in order, answer, test or given cells that are missing, duplicated,
moved or edited, and a notebook saved under another name than `{name}.ipynb`. Hand in
`{name}.ipynb`. The grader also runs hidden tests on inputs you have not seen, so passing the
self-check is necessary, not sufficient."""
    code = "from check import check_this_notebook\n\ncheck_this_notebook()"
    return text, code


def _defined(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]


def _first_line(source: str) -> str:
    line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    line = re.sub(r"^#\s*", "", line)
    return line if len(line) <= 60 else line[:57] + "..."


def _label(cell, role: str, part_title: str | None) -> str:
    """What a cell is, in words a student recognises."""
    if cell.cell_type != "code":
        return "a text cell"
    if part_title:
        return f"the test cell of '{part_title}'"
    names = _defined(cell.source)
    shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
    if role == "answer":
        return f"your answer cell for {shown}" if names else "your answer cell"
    if role == "locked":
        return f"the given cell defining {shown}" if names else \
            f"the given cell '{_first_line(cell.source)}'"
    return f"the cell '{_first_line(cell.source)}'"


def describe(assignment: Assignment, notebook, files: list[str]) -> dict:
    """The release notebook as :data:`autograder.selfcheck.RELEASE` describes it (hidden tests
    stripped from test cells before the checksums are taken)."""
    parts = {p.id: p for p in assignment.parts}
    described = []
    for cell in notebook.cells:
        gid = markers.grade_id(cell)
        role = ("answer" if markers.is_solution(cell) else
                "locked" if markers.is_locked(cell) else "free")
        part = parts.get(gid) if markers.is_grade(cell) else None
        entry = {"key": gid or cell.get("id"), "graded_id": gid is not None,
                 "type": cell.cell_type, "role": role,
                 "label": _label(cell, role, part.title if part else None)}
        if role == "locked":
            entry["digest"] = selfcheck.digest(markers.strip_hidden_tests(cell.source))
        if part is not None:
            entry["part"] = {"id": part.id, "title": part.title, "points": float(part.points)}
        described.append(entry)
    return {"assignment": assignment.name, "notebook": f"{assignment.name}.ipynb",
            "files": list(files), "cells": described,
            "limits": {"cell_timeout": Limits().cell_timeout,
                       "notebook_bytes": MAX_NOTEBOOK_BYTES}}


def check_file(release: dict) -> str:
    """``check.py``: :mod:`autograder.selfcheck`'s source with ``RELEASE`` set to ``release``."""
    text = inspect.getsource(selfcheck)
    literal = pprint.pformat(release, width=96, sort_dicts=False)
    header = (f'# check.py: the self-check of the assignment {release["assignment"]}, made by '
              f'the course\'s release\n# from its release notebook. Run: python check.py '
              f'{release["notebook"]}\n')
    text, n = re.subn(r"^RELEASE = None\b.*$", lambda _: "RELEASE = " + literal, text, flags=re.M)
    if n != 1:
        raise RuntimeError("selfcheck: the RELEASE line is missing")
    return header + text

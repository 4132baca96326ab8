"""Build the notebook that is actually run from the SOURCE notebook and a submission.

Only the sources of the student's solution cells are taken, matched by nbgrader ``grade_id``;
every other cell (test cells with their hidden tests, locked cells, text), all metadata and the
kernelspec come from the instructor's source notebook. So deleted or edited test cells, changed
metadata or kernelspec, extra cells and duplicate ids change nothing: a solution cell the
student deleted is replaced by the stub from the release notebook, and of several student cells
claiming one id only the first counts.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

import nbformat

HIDDEN_RE = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[ \t]*\n(.*?)^[ \t]*### END HIDDEN TESTS"
                       r"[ \t]*(\n|$)", re.S | re.M)
SOLUTION_RE = re.compile(r"^([ \t]*)### BEGIN SOLUTION.*?^[ \t]*### END SOLUTION[ \t]*$",
                         re.S | re.M)


def nbgrader_meta(cell) -> dict:
    meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
    nbg = meta.get("nbgrader", {}) if isinstance(meta, dict) else {}
    return nbg if isinstance(nbg, dict) else {}


def is_solution(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_grade(cell) -> bool:
    return bool(nbgrader_meta(cell).get("grade"))


def grade_id(cell) -> str | None:
    gid = nbgrader_meta(cell).get("grade_id")
    return gid if isinstance(gid, str) else None


def split_hidden(source: str) -> tuple[str, str]:
    """(visible code, hidden code) of a test cell's source."""
    hidden = "\n".join(m.group(1) for m in HIDDEN_RE.finditer(source))
    return HIDDEN_RE.sub("", source), hidden


def stub_of(source: str) -> str:
    """A solution cell's source with its solution regions replaced the way nbgrader does."""
    return SOLUTION_RE.sub(lambda m: m.group(1) + "raise NotImplementedError()", source)


@dataclass
class Rebuilt:
    notebook: nbformat.NotebookNode
    taken: list[str] = field(default_factory=list)      # solution ids taken from the student
    missing: list[str] = field(default_factory=list)    # solution ids the student lacks
    duplicates: list[str] = field(default_factory=list)


def _student_cells(student_nb) -> dict[str, list]:
    found: dict[str, list] = {}
    cells = student_nb.get("cells", []) if isinstance(student_nb, dict) else []
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict):
            continue
        gid = grade_id(cell)
        if gid is not None:
            found.setdefault(gid, []).append(cell)
    return found


def _source_text(cell) -> str | None:
    src = cell.get("source")
    if isinstance(src, list) and all(isinstance(s, str) for s in src):
        return "".join(src)
    return src if isinstance(src, str) else None


def rebuild(source_nb, student_nb, release_nb=None) -> Rebuilt:
    """The notebook to run: ``source_nb`` with the student's solution-cell sources."""
    nb = copy.deepcopy(source_nb)
    student = _student_cells(student_nb)
    release = _student_cells(release_nb) if release_nb is not None else {}
    out = Rebuilt(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if not is_solution(cell):
            continue
        gid = grade_id(cell)
        candidates = [c for c in student.get(gid, []) if _source_text(c) is not None]
        if len(student.get(gid, [])) > 1:
            out.duplicates.append(gid)
        if candidates:
            cell.source = _source_text(candidates[0])
            out.taken.append(gid)
        else:
            out.missing.append(gid)
            stub = [c for c in release.get(gid, []) if _source_text(c) is not None]
            cell.source = _source_text(stub[0]) if stub else stub_of(cell.source)
    return out

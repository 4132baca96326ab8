"""Build the notebook that is actually run from the SOURCE notebook and a submission.

Cells are matched by nbgrader ``grade_id`` (else by nbformat cell ``id``) to the instructor's
source notebook (:func:`autograder.selfcheck.match_cells`, the matching the students' self-check
shares), whose cells come first, in its order:

* test cells with their hidden tests and every other locked cell, all metadata and the
  kernelspec always come from the source, so deleted or edited test cells, changed metadata or
  kernelspec change nothing;
* a solution cell takes the student's source; one the student deleted is replaced by the stub
  of the release notebook; of several student cells claiming one id only the first counts;
* an unlocked cell of the source (e.g. an imports cell or a scratch cell) takes the student's
  version, as nbgrader does;
* cells the student added (code, Markdown, raw) are kept, right after the cell they followed
  in the student's notebook (before the first cell when they came first); they never enter a
  locked cell, so test code is never changed. Nothing a student handed in is lost.

Markdown the student wrote is shown as a code block and raw cells lose their format, so
nothing they contain is rendered in the instructor's browser; unpaired surrogates in sources
are replaced (:func:`autograder.text.clean`) so every notebook can be executed and
written.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import nbformat

from ..build.cells import grade_id, is_locked, is_solution, stub_of
from ..selfcheck import DUPLICATE, MATCHED, match_cells, source_text, usable_cells
from ..text import clean, fenced


@dataclass
class Rebuilt:
    notebook: nbformat.NotebookNode
    taken: list[str] = field(default_factory=list)      # solution ids taken from the student
    missing: list[str] = field(default_factory=list)    # solution ids the student lacks
    duplicates: list[str] = field(default_factory=list)
    added: int = 0                                      # cells the student added, kept
    cleaned: bool = False                               # unpaired surrogates were replaced


def _added_cell(cell: dict, text: str):
    kind = cell["cell_type"]
    if kind == "code":
        return nbformat.v4.new_code_cell(text)
    if kind == "markdown":
        return nbformat.v4.new_markdown_cell(fenced(text))
    return nbformat.v4.new_raw_cell(text)


def _match(nb, student: list[dict], out: Rebuilt) -> tuple[dict, list, dict]:
    """({source cell index: student cell}, added cells before any match,
    {source cell index: added cells after it}), by :func:`autograder.selfcheck.match_cells`,
    the matching the students' self-check uses too."""
    matched: dict[int, dict] = {}
    leading: list = []
    after: dict[int, list] = {}
    current = None
    for cell, (kind, index) in zip(student, match_cells(nb.cells, student), strict=True):
        if kind == DUPLICATE:
            if grade_id(cell) is not None:
                out.duplicates.append(grade_id(cell))
            continue
        if kind == MATCHED:
            matched[index] = cell
            current = index
            continue
        text = clean(source_text(cell))
        out.cleaned |= text != source_text(cell)
        (leading if current is None else after.setdefault(current, [])).append(
            _added_cell(cell, text))
        out.added += 1
    return matched, leading, after


def rebuild(source_nb, student_nb, release_nb=None) -> Rebuilt:
    """The notebook to run: ``source_nb`` with the student's answers and added cells."""
    nb = copy.deepcopy(source_nb)
    release = {grade_id(c): c for c in reversed(usable_cells(release_nb or {}))
               if grade_id(c) is not None}
    out = Rebuilt(nb)
    matched, leading, after = _match(nb, usable_cells(student_nb), out)
    cells = list(leading)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        mine = matched.get(index)
        gid = grade_id(cell)
        if is_solution(cell):
            if mine is not None:
                cell.source = clean(source_text(mine))
                out.cleaned |= cell.source != source_text(mine)
                out.taken.append(gid)
            else:
                out.missing.append(gid)
                stub = release.get(gid)
                cell.source = source_text(stub) if stub else stub_of(cell.source)
        elif mine is not None and not is_locked(cell):
            text = clean(source_text(mine))
            out.cleaned |= text != source_text(mine)
            if cell.cell_type == "markdown" and text != cell.source:
                text = fenced(text)
            cell.source = text
        cells.append(cell)
        cells.extend(after.get(index, []))
    nb.cells = cells
    return out

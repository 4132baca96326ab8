"""Pairs of unusually similar answer cells, for the instructor to review: flagged, never
penalised (nothing here touches a score).

An answer is a solution cell's source as the student's notebook was graded (the autograded
notebook kept in the state folder). It becomes normalised tokens (:func:`tokens`): comments and
blank lines dropped, numbers and strings replaced by placeholders, and every name that is not a
keyword, builtin or attribute replaced by the order of its first appearance, so renaming
variables changes nothing. Its fingerprint is the set of token :data:`GRAM`-grams, less the
grams of the release stub (the signature, docstring and ``raise NotImplementedError()`` every
student starts from). Two answers' similarity is the Jaccard index of their fingerprints.

A pair is flagged when it is at least :data:`THRESHOLD` similar and at least :data:`MARGIN`
above the median of all pairs of that cell (with fewer than three answers the median is taken
as 0), so an answer the task forces on everyone flags nobody; answers with fewer than
:data:`MIN_GRAMS` grams left after the stub is removed are too short to tell anything and are
left out.
"""

from __future__ import annotations

import builtins
import io
import itertools
import keyword
import os
import re
import statistics
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass

import nbformat

from ..build.cells import grade_id, is_solution, stub_of
from ..grading.course import CourseAssignment
from ..grading.jobs import Result
from ..grading.notebook import read_student_notebook
from ..text import is_safe_name

GRAM = 5
THRESHOLD = 0.8
MARGIN = 0.3
MIN_GRAMS = 20
MAX_ANSWER_CHARS = 50_000
_KEEP = set(keyword.kwlist) | set(dir(builtins)) | {"self"}
_FALLBACK = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d*)?|\S")
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}


@dataclass(frozen=True)
class Pair:
    """Two students whose answers to one cell are alike: ``score`` (0..1) against the cell's
    ``baseline`` (the median of its pairs)."""

    assignment: str
    cell: str
    first: str
    second: str
    score: float
    baseline: float


def _raw_tokens(source: str) -> list[tuple[int, str]]:
    try:
        return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(source).readline)
                if t.type not in _SKIP]
    except (tokenize.TokenError, SyntaxError, ValueError):
        out = []
        for m in _FALLBACK.finditer(source):
            text = m.group()
            kind = (tokenize.NAME if text[0].isalpha() or text[0] == "_" else
                    tokenize.NUMBER if text[0].isdigit() else tokenize.OP)
            out.append((kind, text))
        return out


def tokens(source: str) -> list[str]:
    """``source`` as normalised tokens (see the module docstring)."""
    names: dict[str, str] = {}
    out, previous = [], ""
    for kind, text in _raw_tokens(source[:MAX_ANSWER_CHARS]):
        if kind == tokenize.NAME and text not in _KEEP and previous != ".":
            text = names.setdefault(text, f"v{len(names)}")
        elif kind == tokenize.NUMBER:
            text = "NUM"
        elif kind == tokenize.STRING or kind == getattr(tokenize, "FSTRING_START", -1):
            text = "STR"
        elif kind in (tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            text = {tokenize.NEWLINE: ";", tokenize.INDENT: "{", tokenize.DEDENT: "}"}[kind]
        out.append(text)
        previous = text
    return out


def fingerprint(source: str, stub: str = "") -> frozenset[tuple[str, ...]]:
    """The answer's token grams less the stub's."""
    def grams(src: str) -> set[tuple[str, ...]]:
        t = tokens(src)
        return {tuple(t[i:i + GRAM]) for i in range(max(0, len(t) - GRAM + 1))}
    return frozenset(grams(source) - grams(stub))


def jaccard(a: frozenset, b: frozenset) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 0.0


def similar_pairs(assignment: str, answers: dict[str, dict[str, str]],
                  stubs: dict[str, str]) -> list[Pair]:
    """The flagged pairs of one assignment; ``answers`` maps each answer cell to each
    student's source, ``stubs`` each cell to its release stub. Most similar first."""
    flagged = []
    for cell, by_student in sorted(answers.items()):
        prints = {s: fingerprint(src, stubs.get(cell, "")) for s, src in by_student.items()}
        prints = {s: f for s, f in prints.items() if len(f) >= MIN_GRAMS}
        scored = [(jaccard(prints[a], prints[b]), a, b)
                  for a, b in itertools.combinations(sorted(prints), 2)]
        if not scored:
            continue
        baseline = statistics.median(s for s, _, _ in scored) if len(prints) >= 3 else 0.0
        flagged += [Pair(assignment, cell, a, b, round(s, 3), round(baseline, 3))
                    for s, a, b in scored if s >= THRESHOLD and s - baseline >= MARGIN]
    return sorted(flagged, key=lambda p: (-p.score, p.assignment, p.cell, p.first, p.second))


def answer_cells(nb, solution_ids: set[str]) -> dict[str, str]:
    """The sources of ``nb``'s cells whose ``grade_id`` is one of ``solution_ids`` (the first
    cell of each id)."""
    out: dict[str, str] = {}
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        gid = grade_id(cell)
        if gid in solution_ids and gid not in out:
            src = cell.get("source", "")
            out[gid] = "".join(src) if isinstance(src, list) else str(src)
    return out


def stubs_of(source_nb, release_nb) -> dict[str, str]:
    """Each solution cell's stub: the release notebook's cell, else the source's solution
    regions replaced the way nbgrader does."""
    ids = {grade_id(c) for c in source_nb.get("cells", []) if is_solution(c) and grade_id(c)}
    stubs = {gid: stub_of(src) for gid, src in answer_cells(source_nb, ids).items()}
    if release_nb is not None:
        stubs.update(answer_cells(release_nb, ids))
    return stubs


def load_answers(paths: dict[str, str], solution_ids: set[str]) -> dict[str, dict[str, str]]:
    """Each answer cell's source per student, from the notebooks at ``paths`` (student ->
    path), read defensively; a notebook that cannot be read is left out."""
    answers: dict[str, dict[str, str]] = {}
    for student, path in sorted(paths.items()):
        nb, _ = read_student_notebook(path)
        if nb is None:
            continue
        for cell, src in answer_cells(nb, solution_ids).items():
            answers.setdefault(cell, {})[student] = src
    return answers


def class_pairs(course: dict[str, CourseAssignment], results: Iterable[Result],
                state_root: str) -> list[Pair]:
    """The flagged pairs of every assignment of ``course``, from the autograded notebooks the
    state folder keeps beside the results."""
    results = list(results)
    pairs: list[Pair] = []
    for name, ca in sorted(course.items()):
        paths = {r.student: os.path.join(state_root, name, r.autograded) for r in results
                 if r.assignment == name and r.autograded and is_safe_name(r.student)}
        if len(paths) < 2:
            continue
        source = nbformat.read(ca.source, as_version=4)
        release = (nbformat.read(ca.release, as_version=4)
                   if ca.release and os.path.exists(ca.release) else None)
        stubs = stubs_of(source, release)
        pairs += similar_pairs(name, load_answers(paths, set(stubs)), stubs)
    return sorted(pairs, key=lambda p: (-p.score, p.assignment, p.cell, p.first, p.second))

"""Run an assignment notebook in this process and grade its parts: a fast, UNSANDBOXED stand-in
for the grader, used by the tests of the assignment specs and of the sample submissions.

Code cells run in order in one namespace (like a kernel), each cell's exception caught (like
nbgrader's ``allow_errors``). A fake ``_grading_harness`` module is importable while the cells
run; its ``run(part_id, probe)`` does what the real harness and grader do together: draw the
part's cases, hand them over through ``.npz`` (no pickle, so scalars arrive as 0-d arrays),
call the probe once per case, send the records back the same way, and score the part check by
check with :func:`autograder.grading.verdicts.score_checks`, the grader's own scoring. As in the
grader, points come from the hidden checks only; a failing visible test is kept in
``PartResult.visible_error``. ``NBGRADER_EXECUTION`` is set while the cells run, as nbgrader's
autograde sets it, so the notebook's self-check cell knows it is being graded.

Never use this on untrusted notebooks: the student code runs in the calling process.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np

from ..assignments import ASSIGNMENTS
from ..assignments.spec import Assignment, Case
from ..build import cells
from ..grading.jobs import CheckResult
from ..grading.verdicts import part_message, score_checks
from .samples import Mutation, mutate_first


@dataclass
class PartResult:
    """What the hidden checks earned (``score`` of ``points``), each check's outcome, and the
    error of the visible tests when they failed (it costs nothing, as in the grader)."""

    points: float
    score: float
    message: str
    checks: list[CheckResult] = field(default_factory=list)
    visible_error: str = ""

    @property
    def passed(self) -> bool:
        return self.score >= self.points

    def failed_checks(self) -> set[str]:
        return {c.name for c in self.checks if not c.passed}


@dataclass
class InProcessRun:
    """Outcome of one in-process run: per part, and the errors of every cell by index."""

    parts: dict[str, PartResult] = field(default_factory=dict)
    cell_errors: dict[int, BaseException] = field(default_factory=dict)
    namespace: dict = field(default_factory=dict)

    def score(self, assignment: Assignment) -> float:
        return float(sum(self.parts[p.id].score for p in assignment.parts if p.id in self.parts))

    def failed(self) -> set[str]:
        """The parts that did not earn all their points."""
        return {pid for pid, r in self.parts.items() if not r.passed}

    def failed_checks(self) -> set[tuple[str, str]]:
        """(part id, check name) of every check that earned nothing."""
        return {(pid, name) for pid, r in self.parts.items() for name in r.failed_checks()}


def _roundtrip(values: dict) -> dict:
    """Through ``.npz`` and back without pickle, as cases and records travel."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in values.items()})
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def grade_part(assignment: Assignment, part_id: str, probe, rng: np.random.Generator):
    """Draw the part's cases, run ``probe(case, record)`` on each and score the records as the
    grader does."""
    part = assignment.part(part_id)
    cases: list[Case] = part.make_cases(rng)
    got: dict[int, dict] = {}
    errors: dict[str, str] = {}
    for i, case in enumerate(cases):
        sent = _roundtrip(case)
        records: dict = {}

        def record(_records=records, **kw):
            _records.update(kw)

        try:
            probe(sent, record)
        except Exception as exc:  # noqa: BLE001 - a student's error fails the case
            errors[str(i)] = f"{type(exc).__name__}: {exc}"
        try:
            got[i] = {k: np.asarray(v, dtype=np.float64) for k, v in _roundtrip(records).items()}
        except (TypeError, ValueError) as exc:  # not plain numbers, as the harness refuses
            errors.setdefault(str(i), f"{type(exc).__name__}: {exc}")
    expected = [part.reference(case) for case in cases]
    checks = score_checks(part, cases, expected, got, errors)
    return PartResult(float(part.points), float(sum(c.score for c in checks)),
                      part_message(part, checks, len(cases)), checks)


@contextlib.contextmanager
def _in_folder(folder: Path):
    old_cwd, old_path = os.getcwd(), list(sys.path)
    before = set(sys.modules)
    os.chdir(folder)
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        os.chdir(old_cwd)
        sys.path[:] = old_path
        for name in set(sys.modules) - before:  # helper modules differ between assignments
            mod = sys.modules.get(name)
            if str(getattr(mod, "__file__", "") or "").startswith(str(folder)):
                del sys.modules[name]


def run_inprocess(nb: nbformat.NotebookNode, folder: Path, assignment: Assignment,
                  seed: int = 0) -> InProcessRun:
    """Execute ``nb``'s code cells with ``folder`` as working directory and grade its parts."""
    result = InProcessRun()
    rng = np.random.default_rng(seed)
    harness = types.ModuleType("_grading_harness")

    def run(part_id, probe):
        result.parts[part_id] = grade_part(assignment, part_id, probe, rng)

    harness.run = run
    ns: dict = {"__name__": "__main__"}
    saved = sys.modules.get("_grading_harness")
    saved_env = os.environ.get("NBGRADER_EXECUTION")
    sys.modules["_grading_harness"] = harness
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        with _in_folder(Path(folder)), contextlib.redirect_stdout(io.StringIO()):
            for i, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                visible, hidden = cells.split_hidden(cell.source)
                try:
                    exec(compile(visible, f"<cell {i}>", "exec"), ns)  # noqa: S102
                except Exception as exc:  # noqa: BLE001 - like allow_errors
                    result.cell_errors[i] = exc
                if hidden:  # the grader runs the hidden block as a step of its own
                    gid = cells.grade_id(cell)
                    try:
                        exec(compile(hidden, f"<cell {i} hidden>", "exec"), ns)  # noqa: S102
                    except Exception as exc:  # noqa: BLE001
                        result.cell_errors.setdefault(i, exc)
                    if gid in result.parts and i in result.cell_errors:
                        err = result.cell_errors[i]
                        result.parts[gid].visible_error = f"{type(err).__name__}: {err}"
    finally:
        if saved is None:
            sys.modules.pop("_grading_harness", None)
        else:
            sys.modules["_grading_harness"] = saved
        if saved_env is None:
            os.environ.pop("NBGRADER_EXECUTION", None)
        else:
            os.environ["NBGRADER_EXECUTION"] = saved_env
    for part in assignment.parts:
        result.parts.setdefault(part.id, PartResult(
            float(part.points), 0.0, "its test cell did not reach the hidden tests"))
    result.namespace = ns
    return result


def with_source_tests(submission: nbformat.NotebookNode,
                      source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``submission`` whose locked cells (tests, given code) are replaced by the
    source notebook's cells with the same ``grade_id``, hidden tests included, as nbgrader's
    autograde does before running a submission."""
    by_id = {cells.grade_id(c): c for c in source.cells if cells.nbgrader_meta(c).get("locked")}
    nb = nbformat.from_dict(nbformat.v4.new_notebook())
    nb.metadata = submission.metadata
    for cell in submission.cells:
        gid = cells.grade_id(cell)
        nb.cells.append(nbformat.from_dict(dict(by_id[gid] if gid in by_id else cell)))
    return nb


def run_assembled(assembled, folder: Path, mutations=(), seed: int = 0) -> InProcessRun:
    """Write ``assembled``'s helper files into ``folder``, apply ``mutations`` to its source
    notebook and run it in-process. ``mutations`` is a tuple of
    :class:`autograder.testing.samples.Mutation`, or a list of such tuples (variants for different
    versions of the reference; the first that applies is used)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for filename, text in assembled.files.items():
        (folder / filename).write_text(text)
    variants = [tuple(mutations)] if mutations and isinstance(mutations[0], Mutation) \
        else [tuple(v) for v in mutations]
    nb = mutate_first(assembled.notebook, variants) if variants else assembled.notebook
    return run_inprocess(nb, folder, ASSIGNMENTS[assembled.name], seed=seed)


def hidden_failures(assembled, folder: Path, mutations=(), seed: int = 0) -> set[str]:
    """The parts whose hidden tests fail on ``assembled`` with ``mutations`` applied."""
    run = run_assembled(assembled, folder, mutations, seed)
    return run.failed()

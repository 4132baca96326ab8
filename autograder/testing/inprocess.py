"""Run an assignment notebook in this process and grade its parts: a fast, UNSANDBOXED stand-in
for the grader, used by the tests of the assignment specs and of the sample submissions.

Code cells run in order in one namespace (like a kernel), each cell's exception caught (like
nbgrader's ``allow_errors``). A fake ``_grading_harness`` module is importable while the cells
run; its ``run(part_id, probe)`` does what the real harness and grader do together: draw the
part's cases, hand them over through ``.npz`` (no pickle, so scalars arrive as 0-d arrays),
call the probe once per case, send the records back the same way, and decide with
``Part.reference`` and ``Part.check``. A part whose visible tests fail earns nothing, as in
nbgrader (the hidden block follows them in the same cell); the hidden block is run anyway and
its verdict kept in ``PartResult.hidden_passed``, so tests can require that a broken part's
hidden tests fail on their own.

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
from .samples import Mutation, mutate_first


@dataclass
class PartResult:
    """``passed``: the part earns its points (visible tests passed, then every hidden case);
    ``hidden_passed``: every hidden case passed, whatever the visible tests did."""

    passed: bool
    message: str
    hidden_passed: bool = False


@dataclass
class InProcessRun:
    """Outcome of one in-process run: per part, and the errors of every cell by index."""

    parts: dict[str, PartResult] = field(default_factory=dict)
    cell_errors: dict[int, BaseException] = field(default_factory=dict)
    namespace: dict = field(default_factory=dict)

    def score(self, assignment: Assignment) -> float:
        return float(sum(p.points for p in assignment.parts
                         if self.parts.get(p.id, PartResult(False, "")).passed))

    def failed(self) -> set[str]:
        return {pid for pid, r in self.parts.items() if not r.passed}


def _roundtrip(values: dict) -> dict:
    """Through ``.npz`` and back without pickle, as cases and records travel."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in values.items()})
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def grade_part(assignment: Assignment, part_id: str, probe, rng: np.random.Generator):
    """Draw the part's cases, run ``probe(case, record)`` on each and check the records."""
    part = assignment.part(part_id)
    cases: list[Case] = part.make_cases(rng)
    for i, case in enumerate(cases):
        sent = _roundtrip(case)
        records: dict = {}

        def record(_records=records, **kw):
            _records.update(kw)

        try:
            probe(sent, record)
            got = _roundtrip(records)
        except Exception as exc:  # noqa: BLE001 - a student's error fails the case
            return PartResult(False, f"case {i}: {type(exc).__name__}: {exc}")
        ok, msg = part.check(case, part.reference(case), got)
        if not ok:
            return PartResult(False, f"case {i}: {msg}")
    return PartResult(True, "ok")


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
    sys.modules["_grading_harness"] = harness
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
                if hidden:  # run the hidden block anyway, to learn what it alone decides
                    gid = cells.grade_id(cell)
                    try:
                        exec(compile(hidden, f"<cell {i} hidden>", "exec"), ns)  # noqa: S102
                    except Exception as exc:  # noqa: BLE001
                        result.cell_errors.setdefault(i, exc)
                    if gid in result.parts:
                        res = result.parts[gid]
                        res.hidden_passed = res.passed
                        if i in result.cell_errors:
                            err = result.cell_errors[i]
                            res.passed = False
                            res.message = f"visible tests: {type(err).__name__}: {err}"
    finally:
        if saved is None:
            sys.modules.pop("_grading_harness", None)
        else:
            sys.modules["_grading_harness"] = saved
    for part in assignment.parts:
        result.parts.setdefault(part.id, PartResult(False, "its test cell did not reach the "
                                                           "hidden tests"))
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
    return {pid for pid, r in run.parts.items() if not r.hidden_passed}

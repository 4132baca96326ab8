"""Grade one submission (in a worker process of the local pool started by ``grade``, or in a
Dask worker on another machine, see :mod:`autograder.grading.dask_worker`).

Steps: read the student's notebook defensively (:func:`read_student_notebook`); rebuild the
notebook to run from the source notebook (:mod:`autograder.grading.reconstruct`); draw each
part's cases with a fresh generator and compute the references here, in the grader; run the
notebook in a sandboxed kernel and judge every part (:mod:`autograder.grading.execution`);
remove the temporary folder (:func:`autograder.files.remove_tree`, whatever the kernel left in
it). :func:`grade` does that and returns the result with the autograded notebook's text;
:func:`keep` writes both atomically into the state folder (the coordinator's job: the local
pool's worker calls it itself, :func:`grade_job`, the Dask pool on the coordinator, each time
before the result is reported).

A notebook whose run hit a time limit or whose kernel was killed from outside is graded a
second time when other kernels ran beside it (``Job.fault_retry``): a busy machine, or a
hostile neighbour, can cause those faults, and the better attempt counts. Whatever the
submission does, a result is returned and, where the disk allows, written; :func:`grade`,
:func:`keep` and :func:`grade_job` never raise. Each result carries the
:class:`~autograder.grading.timings.Timings` of its grading.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile

import nbformat
import numpy as np

from .. import files
from ..assignments import load_registry
from ..sandbox import harness
from ..sandbox.isolation import Isolation
from ..text import MAX_TEXT, cap
from . import execution, reconstruct, state
from .jobs import Job, PartResult, Result
from .notebook import notebook_text, read_student_notebook
from .records import encode_cases
from .timings import Stopwatch

HARNESS_NAME = "_grading_harness.py"  # the name the hidden tests import the harness by

_SLOT = 0
_PRIVATE_MOUNTS = False


def init_worker(slot_counter, isolation: Isolation) -> None:
    """Pool initializer: take a slot number, die with the parent, own a private mount
    namespace (root only) so per-kernel tmpfs mounts vanish with this process."""
    global _SLOT, _PRIVATE_MOUNTS
    with slot_counter.get_lock():
        _SLOT = slot_counter.value
        slot_counter.value += 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:
        os._exit(1)
    if os.geteuid() == 0 and isolation.sandboxed and not isolation.separate_user:
        clone_newns, ms_rec, ms_private = 0x00020000, 16384, 1 << 18
        if libc.unshare(clone_newns) == 0:
            _PRIVATE_MOUNTS = libc.mount(None, b"/", None, ms_rec | ms_private, None) == 0


def zero_result(job: Job, reason: str, parts: list[PartResult] | None = None) -> Result:
    """A result of no points for ``job`` with ``reason`` (and the job's notes)."""
    return Result(student=job.student, assignment=job.assignment, key=job.key,
                  timestamp=job.timestamp, max_score=job.max_score, score=0.0,
                  reason=cap("; ".join([reason, *job.notes])), parts=list(parts or []))


def _mount_tmpfs(path: str, size: int) -> bool:
    if not _PRIVATE_MOUNTS:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},nr_inodes=1024,mode=0700",
                        "tmpfs", path], capture_output=True)
    return r.returncode == 0


def _cleanup(base: str) -> str:
    """Remove the submission's temporary folder; "" or what was left behind (never raises)."""
    with contextlib.suppress(Exception):
        subprocess.run(["umount", "-l", os.path.join(base, "run")], capture_output=True)
    try:
        return files.remove_tree(base)
    except Exception as exc:  # remove_tree never raises; this is a last guard
        return f"{base}: {type(exc).__name__}: {exc}"


def _attempt(job: Job, slot: int) -> Result:
    watch = Stopwatch()
    try:
        result = _grade(job, slot)
    except Exception as exc:  # the grader's own failure still yields a row
        result = zero_result(job, f"internal grader error: {type(exc).__name__}: {exc}")
        result.retry = True
    # the total so far holds the CPU time of the kernel's processes; add this thread's
    result.timings.total = result.timings.total + watch.lap()
    return result


def _better(first: Result, second: Result) -> Result:
    """The attempt that counts when a notebook was graded twice, with a reason saying so."""
    best, other = (second, first) if second.score > first.score else (first, second)
    best.add_reason("graded twice, as a time limit or a killed kernel may come from a busy "
                    f"machine; the better attempt counts (the other scored {other.score:g})")
    best.retry = bool(first.retry and second.retry)
    best.cleanup = "; ".join(c for c in (first.cleanup, second.cleanup) if c)
    return best


def grade(job: Job, slot: int | None = None) -> Result:
    """Grade one submission described by ``job`` (a second time when the first attempt hit a
    fault a busy machine may cause and ``job.fault_retry`` is set), with kernel slot ``slot``
    (default: this worker process's); the autograded notebook is in ``notebook_text``. Saves
    nothing; never raises."""
    slot = _SLOT if slot is None else slot
    result = _attempt(job, slot)
    if result.suspect and job.fault_retry:
        first = result.timings
        result = _better(result, _attempt(job, slot))
        result.timings = first + result.timings
    result.suspect = False
    return result


def keep(job: Job, result: Result) -> Result:
    """Write ``result`` and its autograded notebook into the state folder (``job.state_file``)
    and return it without the notebook's text; should that fail (e.g. a full disk), the result
    says so and is marked to be graded again. Never raises."""
    notebook, result.notebook_text = result.notebook_text, None
    try:
        state.save(job, result, notebook)
    except Exception as exc:  # e.g. a full disk: the row still comes back, marked for a rerun
        result.autograded = None
        result.retry = True
        result.add_reason(cap(f"internal grader error: the result could not be saved ({exc})"))
    return result


def grade_job(job: Job) -> Result:
    """:func:`grade` and :func:`keep` (the local pool's work). Never raises."""
    return keep(job, grade(job))


def _grade(job: Job, slot: int) -> Result:
    if job.problem:
        return zero_result(job, job.problem)
    assignment = load_registry(job.registry)[job.assignment]
    parts_zero = [PartResult(p.id, p.title, float(p.points), 0.0, "not graded")
                  for p in assignment.parts]
    student_nb, why = read_student_notebook(job.notebook)
    if student_nb is None:
        return zero_result(job, why, parts_zero)
    source_nb = nbformat.read(job.source, as_version=4)
    release_nb = None
    if job.release and os.path.exists(job.release):
        release_nb = nbformat.read(job.release, as_version=4)
    rebuilt = reconstruct.rebuild(source_nb, student_nb, release_nb)
    if not rebuilt.taken:
        return zero_result(job, "the notebook contains none of this assignment's answer cells "
                                "(is it the notebook of another assignment?)", parts_zero)
    notes = list(job.notes)
    if rebuilt.duplicates:
        notes.append(f"duplicate cell ids ignored: {', '.join(sorted(set(rebuilt.duplicates)))}")
    if rebuilt.missing:
        notes.append(f"answer cells missing, stubs used: {', '.join(rebuilt.missing)}")
    if rebuilt.cleaned:
        notes.append("invalid characters (unpaired surrogates) in cells were replaced by U+FFFD")

    parts = {p.id: p for p in assignment.parts}
    cleanup = ""
    base = tempfile.mkdtemp(prefix="", dir=job.tmp_root)
    try:
        os.chmod(base, 0o755)
        cases_dir = os.path.join(base, "cases")
        run_dir = os.path.join(base, "run")
        os.makedirs(cases_dir)
        os.makedirs(run_dir)
        if not job.isolation.separate_user:
            _mount_tmpfs(run_dir, 8 * 2**20)
        watch = Stopwatch()
        rng = np.random.default_rng()
        cases, expected = {}, {}
        for part in assignment.parts:
            cases[part.id] = list(part.make_cases(rng))
            expected[part.id] = [part.reference(c) for c in cases[part.id]]
            path = os.path.join(cases_dir, f"{part.id}.npz")
            with open(path, "wb") as f:
                f.write(encode_cases(cases[part.id]))
            os.chmod(path, 0o644)
        references = watch.lap()
        # copies, so that not even the host paths of the course or project show inside
        files_dir = os.path.join(base, "files")
        os.makedirs(files_dir)
        helpers = {}
        for name, src in [*job.helpers.items(), (HARNESS_NAME, harness.__file__)]:
            helpers[name] = os.path.join(files_dir, name)
            shutil.copyfile(src, helpers[name])
            os.chmod(helpers[name], 0o644)
        outcome = execution.run(rebuilt.notebook, parts, cases, expected, job.limits,
                                job.isolation, slot=slot, run_dir=run_dir,
                                cases_dir=cases_dir, helpers=helpers)
        outcome.timings.references = references
    finally:
        cleanup = _cleanup(base)
    ordered = [outcome.parts.get(p.id) or PartResult(p.id, p.title, float(p.points), 0.0,
                                                     "no test cell for this part")
               for p in assignment.parts]
    if outcome.grader_failed:
        result = zero_result(job, f"internal grader error: {outcome.grader_failed}", ordered)
        result.max_score, result.retry, result.cleanup = assignment.max_score, True, cleanup
        result.timings = outcome.timings
        return result
    return Result(student=job.student, assignment=job.assignment, key=job.key,
                  timestamp=job.timestamp, max_score=assignment.max_score,
                  score=float(sum(r.score for r in ordered)),
                  reason=cap("; ".join(outcome.reasons + notes), 4 * MAX_TEXT),
                  parts=ordered, suspect=outcome.suspect, cleanup=cleanup,
                  timings=outcome.timings, notebook_text=notebook_text(rebuilt.notebook))

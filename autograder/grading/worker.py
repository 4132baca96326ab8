"""Grade one submission (runs in a worker process of the pool started by ``grade``).

Steps: read the student's notebook defensively (:func:`read_student_notebook`, bounded in
bytes, JSON values and cells); rebuild the notebook to run from the source notebook
(:mod:`autograder.grading.reconstruct`); draw each part's cases with a fresh generator and
compute the references here, in the grader; run the notebook in a sandboxed kernel and judge
every part (:mod:`autograder.grading.execution`); unmount the kernel's scratch space and remove
the temporary folder (:func:`autograder.files.remove_tree`, whatever the kernel left in it);
write the autograded notebook (:func:`graded_text`, bounded in size) and the result JSON
atomically into the state folder. The notebook's time limit counts from the moment the worker
takes the job, so reading and rebuilding the notebook are counted in its budget too. With
``grade --part`` the earlier verdicts of the parts not regraded are kept
(:meth:`~autograder.grading.jobs.Result.keep_parts`). After the stop of
:mod:`autograder.grading.interrupt` nothing is started and nothing cut short is kept.

Where the grader is root, each worker has a private mount namespace and mounts the kernel's
socket folder and scratch space (home, ``/tmp``, ``/dev/shm``) as tmpfs bounded in bytes and
files (:mod:`autograder.sandbox.mounts`).

:func:`grade` grades and returns the result with the autograded notebook's text; :func:`keep`
writes both atomically into the state folder (the coordinator's job: the local pool's worker
calls it itself, :func:`grade_job`, the Dask pool on the coordinator, each time before the
result is reported). Each result carries the :class:`~autograder.grading.timings.Timings` of
its grading.

A notebook is graded a second time only when its run shows evidence of a cause outside it
(``Result.outside``: a time limit reached while the machine's other processes held the CPUs,
or a process killed by the machine's out-of-memory killer while within the notebook's limit;
see :mod:`autograder.sandbox.pressure`) and ``Job.fault_retry`` allows it. The second attempt
then counts, unless it was disturbed from outside too (then the better of the two); the reason
says which attempt counted and why. Whatever the submission does, a result is returned and,
where the disk allows, written; :func:`grade_job` never raises.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import shutil
import signal
import tempfile
import time

import nbformat
import numpy as np

from .. import files
from ..assignments import load_registry
from ..sandbox import harness, mounts
from ..sandbox.isolation import UID_BASE, Isolation
from ..sandbox.limits import Limits
from ..text import MAX_TEXT, cap
from . import execution, interrupt, reconstruct, state
from .jobs import Job, PartResult, Result
from .notebook import MAX_NOTEBOOK_BYTES, graded_text, read_student_notebook
from .records import encode_cases
from .timings import Stopwatch

HARNESS_NAME = "_grading_harness.py"  # the name the hidden tests import the harness by

_SLOT = 0
RUN_DIR_BYTES = 8 * 2**20


def init_worker(slot_counter, isolation: Isolation, stop=None, pids=None) -> None:
    """Pool initializer: take a slot number (and note this process's pid under it in
    ``pids``), die with the parent, stop on SIGINT, SIGTERM or the pool's shared ``stop``
    (:func:`autograder.grading.interrupt.install_worker`), own a private mount namespace
    (root only, :func:`autograder.sandbox.mounts.private_namespace`) so per-kernel tmpfs
    mounts vanish with this process."""
    global _SLOT
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)  # the grader died before PR_SET_PDEATHSIG was in force
    with slot_counter.get_lock():
        _SLOT = slot_counter.value
        slot_counter.value += 1
    if pids is not None and _SLOT < len(pids):
        pids[_SLOT] = os.getpid()
    interrupt.install_worker(stop)
    if isolation.sandboxed:
        mounts.private_namespace()


def zero_result(job: Job, reason: str, parts: list[PartResult] | None = None) -> Result:
    """A result of no points for ``job`` with ``reason`` (and the job's notes)."""
    return Result(student=job.student, assignment=job.assignment, key=job.key,
                  timestamp=job.timestamp, max_score=job.max_score, score=0.0,
                  reason=cap("; ".join([reason, *job.notes])), parts=list(parts or []))


def interrupted_result(job: Job) -> Result:
    """The result of a job whose grading the stop of :mod:`autograder.grading.interrupt`
    prevented or cut short: no points, never kept, graded again by the rerun."""
    result = zero_result(job, interrupt.NOT_GRADED)
    result.retry = result.interrupted = True
    return result


def scratch(base: str, limits: Limits, isolation: Isolation,
            slot: int) -> tuple[str, dict[str, str]]:
    """Make the folders under ``base`` of the kernel in ``slot``: (its socket folder, its
    scratch mounts); the socket folder is a small tmpfs of its own where the kernel shares the
    grader's uid."""
    run_dir = os.path.join(base, "run")
    os.makedirs(run_dir)
    if not isolation.separate_user:
        mounts.mount_tmpfs(run_dir, RUN_DIR_BYTES, mounts.RUN_DIR_INODES)
    uid = UID_BASE + slot if isolation.separate_user else None
    return run_dir, mounts.scratch_mounts(os.path.join(base, "scratch"), limits, uid)


def _cleanup(base: str) -> str:
    """Unmount the kernel's tmpfs and remove the submission's temporary folder; "" or what was
    left behind (never raises)."""
    with contextlib.suppress(Exception):
        for name in ("run", *(os.path.join("scratch", n) for n in mounts.SCRATCH)):
            mounts.unmount(os.path.join(base, name))
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


def _settle(first: Result, second: Result) -> Result:
    """The attempt that counts when a notebook was graded twice because the first attempt was
    disturbed from outside: the second, unless it was disturbed too (then the better); the
    reason says which and why."""
    if second.outside:
        best, other = (second, first) if second.score > first.score else (first, second)
        which = "second" if best is second else "first"
        why = (f"graded twice, and both attempts were disturbed from outside (first: "
               f"{first.outside}; second: {second.outside}); the better, the {which} "
               f"attempt, counts (the other scored {other.score:g})")
    else:
        best = second
        why = (f"graded twice: the first attempt was disturbed from outside ({first.outside}); "
               f"the second attempt counts (the first scored {first.score:g})")
    best.add_reason(cap(why, 2 * MAX_TEXT))
    best.retry = bool(first.retry and second.retry)
    best.cleanup = "; ".join(c for c in (first.cleanup, second.cleanup) if c)
    return best


def grade(job: Job, slot: int | None = None) -> Result:
    """Grade one submission described by ``job`` (a second time when the first attempt shows
    evidence of a cause outside the notebook and ``job.fault_retry`` allows it), with kernel
    slot ``slot`` (default: this worker process's); the autograded notebook is in
    ``notebook_text``. After the stop (:data:`interrupt.STOP`) it starts nothing, and a result
    whose grading saw the stop is interrupted (the rule of :mod:`autograder.grading.interrupt`:
    never kept). Saves nothing; never raises."""
    if interrupt.STOP.is_set():
        return interrupted_result(job)
    slot = _SLOT if slot is None else slot
    result = _attempt(job, slot)
    if result.outside and job.fault_retry and not interrupt.STOP.is_set():
        first = result.timings
        result = _settle(result, _attempt(job, slot))
        result.timings = first + result.timings
    if result.interrupted or interrupt.STOP.is_set():
        return interrupted_result(job)
    result.outside = ""
    if job.regrade_parts and job.kept_parts:
        result.keep_parts(job.kept_parts, job.regrade_parts)
    return result


def keep(job: Job, result: Result) -> Result:
    """Write ``result`` and its autograded notebook into the state folder (``job.state_file``)
    and return it without the notebook's text; should that fail (e.g. a full disk), the result
    says so and is marked to be graded again. An interrupted result is never kept. Never
    raises."""
    notebook, result.notebook_text = result.notebook_text, None
    if result.interrupted:
        return result
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
    started = time.monotonic()
    deadline = started + job.limits.notebook_timeout
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
    del student_nb
    if time.monotonic() >= deadline:
        return zero_result(job, f"the notebook exceeded its time limit of "
                                f"{job.limits.notebook_timeout:g} s before it could run "
                                f"(reading and rebuilding it took "
                                f"{time.monotonic() - started:.0f} s)", parts_zero)
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
        os.makedirs(cases_dir)
        run_dir, scratch_mounts = scratch(base, job.limits, job.isolation, slot)
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
                                cases_dir=cases_dir, helpers=helpers, cancel=interrupt.STOP,
                                deadline=deadline, scratch=scratch_mounts)
        outcome.timings.references = references
    finally:
        cleanup = _cleanup(base)
    if outcome.interrupted:
        return interrupted_result(job)
    cleanup = "; ".join(c for c in (outcome.left, cleanup) if c)
    ordered = [outcome.parts.get(p.id) or PartResult(p.id, p.title, float(p.points), 0.0,
                                                     "no test cell for this part")
               for p in assignment.parts]
    if outcome.grader_failed:
        result = zero_result(job, f"internal grader error: {outcome.grader_failed}", ordered)
        result.max_score, result.retry, result.cleanup = assignment.max_score, True, cleanup
        result.timings = outcome.timings
        return result
    text, note = graded_text(rebuilt.notebook, MAX_NOTEBOOK_BYTES + job.limits.output_bytes)
    return Result(student=job.student, assignment=job.assignment, key=job.key,
                  timestamp=job.timestamp, max_score=assignment.max_score,
                  score=float(sum(r.score for r in ordered)),
                  reason=cap("; ".join(outcome.reasons + notes + ([note] if note else [])),
                             4 * MAX_TEXT),
                  parts=ordered, outside=outcome.outside, cleanup=cleanup,
                  timings=outcome.timings, notebook_text=text)

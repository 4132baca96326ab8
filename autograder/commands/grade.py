"""``python -m autograder grade SUBMISSIONS --out grades.csv``: grade a class, safely.

SUBMISSIONS holds ``<student>/<assignment>/<notebook>.ipynb`` as handed in. For every
(student, assignment) folder found, exactly one row lands in grades.csv, whatever happened.

The steps, each owned by its own module:

1. :func:`autograder.sandbox.isolation.detect` decides which isolation is in force; it is
   printed and logged. Without a sandbox the command refuses to run student code unless
   ``--allow-unsandboxed`` is given.
2. :mod:`autograder.grading.course` finds each assignment in the course folder (running the
   release when the course folder lacks one); :mod:`autograder.grading.discover` turns the
   submissions into jobs (unknown assignments, missing or misnamed notebooks become rows with
   score 0 and a reason, without running anything).
3. :mod:`autograder.grading.state` keeps each finished result in ``<course>/.autograder_state``
   keyed by what it depends on, so a rerun after ``kill -9`` reuses finished results and grades
   only the rest; the others are graded by :func:`autograder.grading.worker.grade_job` in the
   pool of :mod:`autograder.grading.pool` (default: one worker per core).
4. This process alone writes the gradebook (:class:`autograder.results.gradebook.GradebookSync`,
   one transaction per submission) and copies notebooks into ``submitted/`` and ``autograded/``.
5. grades.csv, ``feedback/<student>.html`` and ``<stem>_histogram.png`` are written atomically
   beside ``--out`` (:mod:`autograder.results`); a class summary is printed.

With ``--scheduler ADDRESS`` (``tcp://host:8786``, or a scheduler file written by ``dask scheduler
--scheduler-file``) the notebooks are graded on the workers of that Dask cluster
(:mod:`autograder.grading.dask_pool`, :mod:`autograder.grading.dask_worker`) instead of the
local pool; this process stays the coordinator and alone reads the submissions and writes the
gradebook, state folder and reports. It waits up to ``--wait-workers`` seconds for a first
worker, prints a table of the workers (address, host, cores, isolation, course) and logs it,
and grades nothing when a worker's course differs from its own or a worker has no sandbox
(unless ``--allow-unsandboxed``). Its own isolation does not matter then: it runs no student
code. Each notebook's time (:mod:`autograder.grading.timings`) is logged, and the class totals
are printed after grading.

Exit status: 0 when every submission was handled (graded or given a reason), 1 when grades.csv
could not be written, 2 for bad arguments or a broken course folder or gradebook, 3 when
isolation is missing (here, or on a Dask worker) and ``--allow-unsandboxed`` was not given,
4 when the Dask scheduler cannot be reached or no worker joined it in time, 5 when a Dask
worker's course (notebooks, helper files, assignment or grader code) differs from this one's.
Statuses 3, 4 and 5 come before anything is graded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass

from .. import files
from ..assignments import DEFAULT_REGISTRY, load_registry
from ..build.release import build_course, write_downloads
from ..grading import state
from ..grading.course import CourseAssignment, course_assignment
from ..grading.discover import discover
from ..grading.execution import CGROUP_PREFIX
from ..grading.jobs import Job, Result
from ..grading.pool import run_pool
from ..grading.scratch import scratch_root
from ..grading.timings import Timings
from ..results import feedback, report, timing
from ..results.dblock import shown
from ..results.gradebook import GradebookSync, course_settings
from ..sandbox import cgroup
from ..sandbox.isolation import Isolation, detect
from ..sandbox.limits import Limits
from ..text import cap, display_name

EXIT_NO_CLUSTER = 4        # the Dask scheduler cannot be reached, or no worker joined it
EXIT_WORKER_MISMATCH = 5   # a Dask worker's course differs from the coordinator's
EXIT_UNSANDBOXED = 3


@dataclass(frozen=True)
class GradeOptions:
    """What the ``grade`` command was asked to do (see ``python -m autograder grade -h``)."""

    submissions: str
    out: str = "grades.csv"
    workers: int = 1
    course: str = "_build/course"
    db: str | None = None
    limits: Limits = Limits()
    allow_unsandboxed: bool = False
    fresh: bool = False
    registry: str = DEFAULT_REGISTRY
    scheduler: str | None = None      # a Dask scheduler's address or scheduler file
    wait_workers: float = 120.0       # seconds to wait for the first Dask worker


def _logger(path: str) -> logging.Logger:
    log = logging.getLogger(f"autograder.grade.{path}")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    return log


def _course(options: GradeOptions, registry: dict) -> dict[str, CourseAssignment] | None:
    """Each assignment of the registry in the course folder (released there first when the
    folder lacks it and the registry is the course's own), or None after saying what is
    missing."""
    course_dir = os.path.abspath(options.course)
    course: dict[str, CourseAssignment] = {}
    for name, spec in registry.items():
        ca = course_assignment(course_dir, name, spec.max_score)
        if ca is None and options.registry == DEFAULT_REGISTRY:
            print(f"course folder {course_dir} lacks {name}: running release", flush=True)
            write_downloads(build_course(course_dir))
            ca = course_assignment(course_dir, name, spec.max_score)
        if ca is None:
            print(f"grade: {course_dir}/source/{name}/ has no notebook; run "
                  f"'python -m autograder release --out {options.course}' first",
                  file=sys.stderr)
            return None
        course[name] = ca
    return course


@dataclass
class Run:
    """One grading run: where it writes, its log, isolation, course and jobs."""

    options: GradeOptions
    out: str
    log: logging.Logger
    isolation: Isolation
    course_dir: str
    course: dict[str, CourseAssignment]
    jobs: list[Job]

    @property
    def out_dir(self) -> str:
        return os.path.dirname(self.out)

    @property
    def stem(self) -> str:
        return os.path.splitext(self.out)[0]

    @property
    def state_root(self) -> str:
        return os.path.join(self.course_dir, state.STATE_DIR)


def prepare(options: GradeOptions) -> Run | int:
    """Check the options, detect the isolation, find the course and the jobs; an exit status
    when the run cannot start."""
    if not os.path.isdir(options.submissions):
        print(f"grade: submissions folder {options.submissions!r} does not exist",
              file=sys.stderr)
        return 2
    out = os.path.abspath(options.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    log = _logger(os.path.splitext(out)[0] + ".log")

    isolation = detect()
    if options.scheduler:
        described = (f"grading on the Dask cluster at {options.scheduler}: student code runs on "
                     "its workers (their isolation is listed below), none here")
    else:
        described = isolation.describe(options.limits)
    print(described, flush=True)
    log.info("grading %s\n%s", os.path.abspath(options.submissions), described)
    if not isolation.sandboxed and not options.allow_unsandboxed and not options.scheduler:
        msg = ("grade: refusing to run untrusted student code without a sandbox. Install "
               "bubblewrap (apt-get install -y bubblewrap) and allow user namespaces, or pass "
               "--allow-unsandboxed to run it anyway with rlimits only.")
        print(msg, file=sys.stderr)
        log.info(msg)
        return EXIT_UNSANDBOXED

    registry = load_registry(options.registry)
    course = _course(options, registry)
    if course is None:
        return 2
    course_dir = os.path.abspath(options.course)
    state_root = os.path.join(course_dir, state.STATE_DIR)
    jobs: list[Job] = []
    for job in discover(options.submissions, registry, course):
        ca = course.get(job.assignment)
        job = job.with_(state_file=state.state_file(state_root, job.student, job.assignment),
                        registry=options.registry, limits=options.limits, isolation=isolation)
        if ca is not None:
            job = job.with_(source=ca.source, release=ca.release, helpers=ca.helpers)
        jobs.append(job.with_(key=state.job_key(job)))
    print(f"{len(jobs)} submissions found in {options.submissions}", flush=True)
    return Run(options, out, log, isolation, course_dir, course, jobs)


def select(run: Run) -> tuple[dict[tuple[str, str], Result], list[Job]]:
    """(results kept from earlier runs that can be reused, jobs to grade now)."""
    results: dict[tuple[str, str], Result] = {}
    todo, changed = [], []
    for job in run.jobs:
        kept, prev = (state.Kept.NONE, None) if run.options.fresh else state.previous_result(job)
        if kept is state.Kept.REUSE:
            results[job.ident] = prev
        else:
            todo.append(job)
            if kept is state.Kept.CHANGED:
                changed.append(job)
    if results or changed:
        text = (f"{len(results)} submissions already graded by an earlier run: reused; "
                f"{len(changed)} graded again because what they depend on changed (the "
                "submission, the course's notebooks, the assignment's tests or references, the "
                "limits or the grader)")
        print(text, flush=True)
        run.log.info("%s (state folder %s)", text, run.state_root)
    return results, todo


def _refuse(run: Run, status: int, msg: str) -> int:
    print(f"grade: {msg}", file=sys.stderr)
    run.log.info("grade: %s", msg)
    return status


def _open_cluster(run: Run, todo: list[Job]):
    """The Dask pool of ``--scheduler``, its workers surveyed and shown; or the exit status
    when it cannot be used (nothing is graded then)."""
    # imported here, not at the top: a run without --scheduler neither imports nor starts Dask
    from ..grading.dask_pool import ClusterError, DaskPool, worker_table
    try:
        pool = DaskPool.connect(run.options.scheduler)
    except ClusterError as exc:
        return _refuse(run, EXIT_NO_CLUSTER, str(exc))
    try:
        workers = pool.survey(todo, run.options.wait_workers)
    except ClusterError as exc:
        pool.close()
        return _refuse(run, EXIT_NO_CLUSTER, str(exc))
    table = worker_table(workers)
    failures = pool.allowed_failures()
    if failures is not None:
        table += (f"\n  a submission whose grading kills {failures + 1} workers gets a row "
                  "saying so (the scheduler's allowed-failures)")
    print(table, flush=True)
    run.log.info("%s", table)
    status = 0
    if any(w.problems for w in workers):
        status = _refuse(run, EXIT_WORKER_MISMATCH, "Dask workers whose course differs from "
                         "this one (listed above) would grade with other notebooks or code; "
                         "release the same course on them and restart them")
    elif not run.options.allow_unsandboxed and not all(w.sandboxed for w in workers):
        status = _refuse(run, EXIT_UNSANDBOXED, "refusing to run untrusted student code on Dask "
                         "workers without a sandbox (listed above); install bubblewrap there, "
                         "or pass --allow-unsandboxed")
    if status:
        pool.close()
        return status
    return pool


def _local_results(run: Run, todo: list[Job]):
    """Results of ``todo`` graded in the local pool, as they finish."""
    cgroup.remove_stale_cgroups(run.isolation.cgroup, CGROUP_PREFIX)
    workers = min(run.options.workers, len(todo))
    tmp_root, leftovers = scratch_root()
    for left in leftovers:
        run.log.info("WARNING: %s", left)
    todo = [job.with_(tmp_root=tmp_root, fault_retry=workers > 1) for job in todo]
    try:
        yield from run_pool(todo, workers, run.isolation)
    finally:
        left = files.remove_tree(tmp_root)
        if left:
            print(f"WARNING: {left}", file=sys.stderr)
            run.log.info("WARNING: %s", left)


def _dask_results(run: Run, todo: list[Job], pool):
    """Results of ``todo`` graded on the Dask cluster, as they finish."""
    try:
        yield from pool.run(todo, run.options.allow_unsandboxed)
    finally:
        pool.close()


def grade_pending(run: Run, todo: list[Job], sync: GradebookSync,
                  results: dict[tuple[str, str], Result]) -> int:
    """Grade ``todo`` in the local pool, or on the Dask cluster of ``--scheduler``, storing each
    result in the gradebook as it arrives, and print where the time went; 0, or the exit
    status when the cluster cannot be used (before anything is graded)."""
    if not todo:
        return 0
    if run.options.scheduler:
        pool = _open_cluster(run, todo)
        if isinstance(pool, int):
            return pool
        graded = _dask_results(run, todo, pool)
    else:
        graded = _local_results(run, todo)
    by_ident = {job.ident: job for job in run.jobs}
    spent: list[Timings] = []
    with contextlib.closing(graded):
        for r in graded:
            results[r.ident] = r
            sync.store(r, by_ident[r.ident])
            run.log.info("graded %s/%s: %g/%g %s [%s]", display_name(r.student),
                         display_name(r.assignment), r.score, r.max_score, r.reason,
                         timing.line(r.timings))
            if r.cleanup:
                run.log.info("WARNING: temporary files left behind: %s", r.cleanup)
            spent.append(r.timings)
    text = timing.summary(spent)
    print(text, flush=True)
    run.log.info("%s", text)
    return 0


def write_outputs(run: Run, final: list[Result], sync: GradebookSync) -> int:
    """grades.csv, the feedback pages, the histogram and the summary; the exit status."""
    log, out = run.log, run.out
    try:
        report.write_csv(out, final, sync.students, sync.duedates)
    except OSError as exc:
        print(f"grade: cannot write {out}: {exc}", file=sys.stderr)
        log.info("cannot write %s: %s", out, exc)
        return 1
    for problem in feedback.write_feedback(os.path.join(run.out_dir, "feedback"), final)[1]:
        log.info("WARNING: %s", problem)
    try:
        report.histogram(run.stem + "_histogram.png", final)
    except Exception as exc:  # a picture must not cost the run
        log.info("WARNING: no histogram: %s", exc)
    text = report.summary(final)
    print(text)
    failed = [r for r in final if r.retry]
    if failed:
        warn = (f"WARNING: {len(failed)} submissions could not be graded because of a problem of "
                f"the grader itself (e.g. {failed[0].reason[:200]!r}); they have a 0 row "
                "now and are graded again when this command is run again")
        print(warn, file=sys.stderr)
        log.info(warn)
    log.info("%s\nwrote %s", text, out)
    return 0


def run(options: GradeOptions) -> int:
    """The ``grade`` command (see the module docstring); its exit status."""
    warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's add_submission
    prepared = prepare(options)
    if isinstance(prepared, int):
        return prepared
    run_ = prepared
    results, todo = select(run_)
    course_id, db_url = course_settings(run_.course_dir)
    try:
        sync = GradebookSync(options.db or db_url, course_id, run_.course_dir, run_.course,
                             run_.state_root, run_.log)
    except Exception as exc:  # a bad URL, a server that cannot be reached, a missing driver
        return _refuse(run_, 2, f"cannot open the gradebook {shown(options.db or db_url)}: "
                                f"{type(exc).__name__}: {cap(exc, 500)}")
    by_ident = {job.ident: job for job in run_.jobs}
    for r in results.values():
        sync.store(r, by_ident[r.ident])
    t0 = time.monotonic()
    try:
        status = grade_pending(run_, todo, sync, results)
    finally:
        sync.close()
    if status:
        return status
    elapsed = time.monotonic() - t0
    status = write_outputs(run_, [results[job.ident] for job in run_.jobs], sync)
    if status == 0:
        print(f"graded {len(todo)} notebooks in {elapsed:.1f} s; wrote {run_.out}, "
              f"{os.path.join(run_.out_dir, 'feedback')}/, {run_.stem}_histogram.png",
              flush=True)
    return status

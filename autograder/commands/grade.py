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
5. The gradebook is then the truth: the roster's students (``--roster``) are added, the
   installed term's due dates, extensions and late penalties are set
   (:mod:`autograder.results.term`), and grades.csv is read back from it, so scores changed by
   hand in formgrader and late penalties are in it and every student has a row per assignment,
   missing work included. grades.csv, ``feedback/<student>.html``, ``<stem>_histogram.png`` and
   ``report.html`` (the class report) are written atomically beside ``--out``, readable by the
   instructor's group (:mod:`autograder.results`); a class summary names the students with
   missing or ungradable work.

``--student S``, ``--assignment A`` and ``--part A:PART`` regrade just those submissions and
leave every other one as it was (:mod:`autograder.grading.selection`); the summary says what
was regraded.

Interrupting (:mod:`autograder.grading.interrupt`): the first Ctrl-C (SIGINT) or SIGTERM stops
dispatching, ends the running kernels, keeps every finished result, writes grades.csv for what
is done (rows not graded say "not graded: the run was interrupted", the summary says the
grades are partial) and exits with "interrupted: run the same command again to continue"; a
second one exits at once. Nothing cut short by the interruption is kept as a final result, so
running the same command again grades exactly what is missing.

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
could not be written (or the gradebook or the installed term could not be read), 2 for bad
arguments (a roster that cannot be used, a selection naming no submission, an unknown
assignment or part) or a broken course folder or gradebook, 3 when isolation is missing (here,
or on a Dask worker) and ``--allow-unsandboxed`` was not given, 4 when the Dask scheduler
cannot be reached or no worker joined it in time, 5 when a Dask worker's course (notebooks,
helper files, assignment or grader code) differs from this one's, 130 after SIGINT (Ctrl-C)
and 143 after SIGTERM. Statuses 3, 4 and 5 come before anything is graded.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from dataclasses import dataclass, field

from .. import files
from ..assignments import DEFAULT_REGISTRY, load_registry
from ..build.release import build_course, write_downloads
from ..grading import interrupt, state
from ..grading.course import CourseAssignment, course_assignment
from ..grading.discover import discover
from ..grading.execution import CGROUP_PREFIX
from ..grading.jobs import Job, Result
from ..grading.pool import run_pool
from ..grading.scratch import scratch_root
from ..grading.selection import Selection
from ..grading.timings import Timings
from ..results import class_report, feedback, report, term, timing
from ..results.dblock import GradebookLock
from ..results.dblock import shown as shown_url
from ..results.gradebook import (
    GradebookSync,
    add_students,
    apply_term,
    course_settings,
    open_gradebook,
    read_grades,
)
from ..results.lms.roster import RosterError, read_roster
from ..results.similarity import class_pairs
from ..sandbox import cgroup
from ..sandbox.isolation import Isolation, detect
from ..sandbox.limits import Limits
from ..text import cap, display_name, shown

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
    selection: Selection = Selection()
    roster: str | None = None
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
    regraded: list[str] = field(default_factory=list)

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
    problem = options.selection.check(jobs, registry, options.fresh)
    try:
        if options.roster:
            read_roster(options.roster)
        term.installed(course_dir)
    except (RosterError, term.TermError) as exc:
        problem = problem or str(exc)
    if problem:
        print(f"grade: {problem}", file=sys.stderr)
        return 2
    return Run(options, out, log, isolation, course_dir, course, jobs)


def select(run: Run) -> tuple[dict[tuple[str, str], Result], list[Job]]:
    """(results kept from earlier runs that are reused or left as they were, jobs to grade
    now). Without a selection a kept result is reused while what it depends on is unchanged;
    with ``--student``/``--assignment``/``--part`` the chosen submissions are graded again (with
    ``--part``, keeping the other parts' earlier verdicts) and every other one keeps its result,
    unless it has none to keep (:mod:`autograder.grading.selection`)."""
    sel = run.options.selection
    results: dict[tuple[str, str], Result] = {}
    todo, changed, chosen, left, stale = [], [], [], 0, 0
    for job in run.jobs:
        if sel.active:
            prev = state.read_kept(job.state_file)
            if sel.chooses(job):
                parts = sel.parts_of(job.assignment)
                if parts and prev is not None and prev.parts:
                    job = job.with_(regrade_parts=parts, kept_parts=tuple(prev.parts))
                todo.append(job)
                chosen.append(sel.describe(job))
            elif prev is not None and not prev.retry:
                results[job.ident] = prev
                left += 1
                stale += prev.key != job.key
            else:
                todo.append(job)
            continue
        kept, prev = (state.Kept.NONE, None) if run.options.fresh else state.previous_result(job)
        if kept is state.Kept.REUSE:
            results[job.ident] = prev
        else:
            todo.append(job)
            if kept is state.Kept.CHANGED:
                changed.append(job)
    if sel.active:
        run.regraded = chosen
        text = (f"regrading {len(chosen)} submissions chosen with --student/--assignment/--part "
                f"({', '.join(chosen[:20])}{' ...' if len(chosen) > 20 else ''}); {left} others "
                f"left as they were"
                + (f" ({stale} of them graded with other code or inputs: run without a selection "
                   "to bring them up to date)" if stale else "")
                + (f"; {len(todo) - len(chosen)} others graded as they had no result"
                   if len(todo) > len(chosen) else ""))
        print(text, flush=True)
        run.log.info("%s (state folder %s)", text, run.state_root)
    elif results or changed:
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


def _local_results(run: Run, todo: list[Job], stop: interrupt.Interrupter | None):
    """Results of ``todo`` graded in the local pool, as they finish."""
    stale = cgroup.remove_stale_cgroups(run.isolation.cgroup, CGROUP_PREFIX, patience=10)
    if stale:
        run.log.info("WARNING: %s", shown(stale))
    workers = min(run.options.workers, len(todo))
    tmp_root, leftovers = scratch_root()
    for left in leftovers:
        run.log.info("WARNING: %s", shown(left))
    todo = [job.with_(tmp_root=tmp_root, fault_retry=True) for job in todo]
    try:
        yield from run_pool(todo, workers, run.isolation, stop=stop)
    finally:
        left = "; ".join(x for x in (files.remove_tree(tmp_root), cgroup.remove_stale_cgroups(
            run.isolation.cgroup, CGROUP_PREFIX, patience=60)) if x)
        if left:
            print(f"WARNING: {shown(left)}", file=sys.stderr)
            run.log.info("WARNING: %s", shown(left))


def _grades(run: Run, sync: GradebookSync, installed: term.Term | None) -> list:
    """The gradebook's rows after the roster's students are added and the term's deadlines and
    late penalties are set in it."""
    roster = read_roster(run.options.roster) if run.options.roster else None
    lock = GradebookLock(sync.db_url)         # other runs may write the same gradebook
    try:
        with lock.held(), open_gradebook(sync.db_url, sync.course_id) as gb:
            if roster is not None:
                add_students(gb, (s.gradebook_fields() for s in roster.students))
            apply_term(gb, installed)
            return read_grades(gb, run.course, roster.by_id if roster is not None else ())
    finally:
        lock.close()


def _dask_results(run: Run, todo: list[Job], pool, stop: interrupt.Interrupter | None):
    """Results of ``todo`` graded on the Dask cluster, as they finish."""
    try:
        yield from pool.run(todo, run.options.allow_unsandboxed, stop)
    finally:
        pool.close()


def grade_pending(run: Run, todo: list[Job], sync: GradebookSync,
                  results: dict[tuple[str, str], Result],
                  stop: interrupt.Interrupter | None = None) -> int:
    """Grade ``todo`` in the local pool, or on the Dask cluster of ``--scheduler``, storing each
    result in the gradebook as it arrives (an interrupted one is only kept for grades.csv: see
    :mod:`autograder.grading.interrupt`), and print where the time went; 0, or the exit status
    when the cluster cannot be used (before anything is graded)."""
    if not todo:
        return 0
    if run.options.scheduler:
        pool = _open_cluster(run, todo)
        if isinstance(pool, int):
            return pool
        graded = _dask_results(run, todo, pool, stop)
    else:
        graded = _local_results(run, todo, stop)
    by_ident = {job.ident: job for job in run.jobs}
    spent: list[Timings] = []
    with contextlib.closing(graded):
        for r in graded:
            results[r.ident] = r
            if r.interrupted:
                run.log.info("not graded (the run was interrupted): %s/%s",
                             display_name(r.student), display_name(r.assignment))
                continue
            sync.store(r, by_ident[r.ident])
            run.log.info("graded %s/%s: %g/%g %s [%s]", display_name(r.student),
                         display_name(r.assignment), r.score, r.max_score,
                         shown(r.reason, 10_000), timing.line(r.timings))
            if r.cleanup:
                run.log.info("WARNING: temporary files left behind: %s", shown(r.cleanup))
            spent.append(r.timings)
    text = timing.summary(spent)
    print(text, flush=True)
    run.log.info("%s", text)
    return 0


def write_outputs(run: Run, final: list[Result], sync: GradebookSync) -> int:
    """Read the grades back from the gradebook; write grades.csv, the feedback pages, the
    histogram, the class report and the summary; the exit status."""
    log, out = run.log, run.out
    try:
        installed = term.installed(run.course_dir)
        grades = _grades(run, sync, installed)
    except Exception as exc:  # the gradebook (a database) or the term copy: say which
        print(f"grade: grades.csv not written: cannot read the grades back: {exc}",
              file=sys.stderr)
        log.info("cannot read the grades back: %s", exc)
        return 1
    table = report.rows(grades, final, installed)
    try:
        report.write_csv(out, table)
    except OSError as exc:
        print(f"grade: cannot write {out}: {exc}", file=sys.stderr)
        log.info("cannot write %s: %s", out, exc)
        return 1
    by_ident = {g.ident: g for g in grades}
    entries = [(r.student, feedback.Entry(r.assignment, r, by_ident.get(r.ident)))
               for r in final]
    for problem in feedback.write_feedback(os.path.join(run.out_dir, "feedback"), entries,
                                           installed)[1]:
        log.info("WARNING: %s", problem)
    try:
        report.histogram(run.stem + "_histogram.png", table)
    except Exception as exc:  # a picture must not cost the run
        log.info("WARNING: no histogram: %s", exc)
    try:
        class_report.write_report(os.path.join(run.out_dir, "report.html"), table, final,
                                  class_pairs(run.course, final, run.state_root))
    except Exception as exc:  # nor must the class report
        log.info("WARNING: no class report: %s", exc)
    not_graded = [(j.student, j.assignment, j.problem) for j in run.jobs if j.problem]
    text = report.summary(table, not_graded, run.regraded)
    print(text)
    failed = [r for r in final if r.retry and not r.interrupted]
    if failed:
        warn = (f"WARNING: {len(failed)} submissions could not be graded because of a problem of "
                f"the grader itself (e.g. '{shown(failed[0].reason, 200)}'); they have a 0 row "
                "now and are graded again when this command is run again")
        print(warn, file=sys.stderr)
        log.info(warn)
    log.info("%s\nwrote %s", text, out)
    return 0


def run(options: GradeOptions) -> int:
    """The ``grade`` command (see the module docstring); its exit status."""
    with interrupt.Interrupter() as stop:
        status = _run(options, stop)
    if stop.requested and status in (0, 1):  # 1: grades.csv could not be written, still 1
        print(f"interrupted: {interrupt.RERUN}", file=sys.stderr, flush=True)
        return stop.exit_status if status == 0 else status
    return status


def _run(options: GradeOptions, stop: interrupt.Interrupter) -> int:
    warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's add_submission
    prepared = prepare(options)
    if isinstance(prepared, int):
        return prepared
    run_ = prepared
    results, todo = select(run_)
    course_id, db_url = course_settings(run_.course_dir)
    try:
        sync = GradebookSync(options.db or db_url, course_id, run_.course_dir, run_.course,
                             run_.state_root, run_.log, term.installed(run_.course_dir))
    except Exception as exc:  # a bad URL, a server that cannot be reached, a missing driver
        return _refuse(run_, 2, f"cannot open the gradebook {shown_url(options.db or db_url)}: "
                                f"{type(exc).__name__}: {cap(exc, 500)}")
    by_ident = {job.ident: job for job in run_.jobs}
    for r in results.values():
        sync.store(r, by_ident[r.ident])
    t0 = time.monotonic()
    try:
        status = grade_pending(run_, todo, sync, results, stop)
    finally:
        sync.close()
    if status:
        return status
    elapsed = time.monotonic() - t0
    status = write_outputs(run_, [results[job.ident] for job in run_.jobs], sync)
    if status == 0 and not stop.requested:
        print(f"graded {len(todo)} notebooks in {elapsed:.1f} s; wrote {run_.out}, "
              f"{os.path.join(run_.out_dir, 'feedback')}/, {run_.stem}_histogram.png, "
              f"{os.path.join(run_.out_dir, 'report.html')}",
              flush=True)
    if stop.requested:
        run_.log.info("interrupted by %s after %.1f s of grading", stop.name, elapsed)
    return status

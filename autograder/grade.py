"""``python -m autograder grade SUBMISSIONS --out grades.csv``: grade a class, safely.

SUBMISSIONS holds ``<student>/<assignment>/<notebook>.ipynb`` as handed in. For every
(student, assignment) folder found, exactly one row lands in grades.csv, whatever happened.

Pipeline (see the module docstrings for each step):

1. :func:`autograder.sandbox.detect` decides which isolation is in force; it is printed and
   logged. Without a sandbox the command refuses to run student code unless
   ``--allow-unsandboxed`` is given.
2. Discovery: unknown assignments, missing or misnamed notebooks become rows with score 0 and a
   reason, without running anything.
3. Each submission is graded by :func:`autograder.worker.grade_job` in a pool of worker
   processes (default: one per core) with a progress bar; each result is written atomically
   to the state folder ``<course>/.autograder_state`` keyed by a hash of the submission and
   the source notebook, so a rerun after ``kill -9`` reuses finished results and grades only
   the rest.
4. The main process alone writes the gradebook (one transaction per submission; rewriting is
   idempotent) and copies notebooks into ``submitted/`` and ``autograded/``.
5. grades.csv, ``feedback/<student>.html`` and ``<stem>_histogram.png`` are written atomically
   beside ``--out``; a class summary is printed. Exit status 0 when every submission was
   handled (graded or given a reason), 2 for bad arguments or a broken course folder, 3 when
   isolation is missing and ``--allow-unsandboxed`` was not given.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import glob
import hashlib
import importlib
import json
import logging
import multiprocessing
import os
import re
import sys
import tempfile
import time
import warnings

from . import safefs, sandbox
from .sandbox import GIB, MIB, Limits
from .untrusted import cap, display_name, is_safe_name
from .worker import MAX_NOTEBOOK_BYTES

DEFAULT_REGISTRY = "autograder.assignments:ASSIGNMENTS"
STATE_DIR = ".autograder_state"
MAX_TIMESTAMP_BYTES = 200
TMP_PREFIX = "agr"
IPC_ROOM = 40  # characters the kernels' socket paths add to the temporary folder


def load_registry(spec: str) -> dict:
    """``module:attribute`` -> {assignment name: spec.Assignment}."""
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "ASSIGNMENTS")


def _size(text: str) -> int:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*", text.lower())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 2G, 512M)")
    return int(float(m.group(1)) * {"": 1, "k": 2**10, "m": MIB, "g": GIB, "t": 2**40}[m.group(2)])


def parse_args(argv: list[str]) -> argparse.Namespace:
    d = Limits()
    p = argparse.ArgumentParser(prog="python -m autograder grade",
                                description="Grade a class of notebook submissions in a sandbox.")
    p.add_argument("submissions", help="folder holding <student>/<assignment>/<notebook>.ipynb")
    p.add_argument("--out", default="grades.csv", help="grades CSV to write (default grades.csv)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="parallel kernels (default: number of cores)")
    p.add_argument("--course", default="_build/course",
                   help="nbgrader course folder built by 'release' (default _build/course)")
    p.add_argument("--db", default=None, help="gradebook URL (default: the course's SQLite)")
    p.add_argument("--cell-timeout", type=float, default=d.cell_timeout, help="seconds per cell")
    p.add_argument("--notebook-timeout", type=float, default=d.notebook_timeout,
                   help="seconds per notebook")
    p.add_argument("--memory", type=_size, default=d.memory,
                   help="memory per notebook (default 2G)")
    p.add_argument("--processes", type=int, default=d.processes,
                   help="processes/threads per notebook")
    p.add_argument("--file-size", type=_size, default=d.file_size, help="largest file written")
    p.add_argument("--output-limit", type=_size, default=d.output_bytes,
                   help="notebook output kept")
    p.add_argument("--scratch", type=_size, default=d.tmpfs_bytes,
                   help="size of the kernel's writable home and /tmp (each)")
    p.add_argument("--receive-limit", type=_size, default=d.receive_bytes,
                   help="all the kernel may send to the grader (default 1G)")
    p.add_argument("--cpus", type=float, default=d.cpus,
                   help="CPU quota per notebook where cgroups allow (default 1, 0: none)")
    p.add_argument("--allow-unsandboxed", action="store_true",
                   help="run student code even where no sandbox can be set up")
    p.add_argument("--fresh", action="store_true", help="ignore results of earlier runs")
    p.add_argument("--registry", default=DEFAULT_REGISTRY, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.workers < 1:
        p.error("--workers must be at least 1")
    return args


@dataclasses.dataclass
class CourseAssignment:
    name: str
    source: str
    release: str | None
    helpers: dict[str, str]
    max_score: float


def course_assignment(course: str, name: str, max_score: float) -> CourseAssignment | None:
    src_dir = os.path.join(course, "source", name)
    if not os.path.isdir(src_dir):
        return None
    nbs = sorted(f for f in os.listdir(src_dir) if f.endswith(".ipynb"))
    if not nbs:
        return None
    nb = f"{name}.ipynb" if f"{name}.ipynb" in nbs else nbs[0]
    rel_dir = os.path.join(course, "release", name)
    release = os.path.join(rel_dir, nb) if os.path.exists(os.path.join(rel_dir, nb)) else None
    helpers = {}
    if os.path.isdir(rel_dir):
        for f in sorted(os.listdir(rel_dir)):
            path = os.path.join(rel_dir, f)
            if os.path.isfile(path) and not f.endswith(".ipynb") and not f.startswith("."):
                helpers[f] = os.path.abspath(path)
    return CourseAssignment(name, os.path.abspath(os.path.join(src_dir, nb)),
                            release and os.path.abspath(release), helpers, max_score)


def _timestamp(folder: str, notebook: str | None) -> tuple[str | None, str]:
    """(submission time, note): ``timestamp.txt`` as nbgrader writes it (a regular file, not
    followed if a link, at most :data:`MAX_TIMESTAMP_BYTES`), else the notebook's mtime. A
    timestamp file that cannot be used is ignored with a note; nothing here raises."""
    note = ""
    ts_file = os.path.join(folder, "timestamp.txt")
    if os.path.lexists(ts_file):
        try:
            text = safefs.read_regular(ts_file, MAX_TIMESTAMP_BYTES).decode("utf-8").strip()
            from nbgrader.utils import parse_utc
            return parse_utc(text).strftime("%Y-%m-%d %H:%M:%S.%f"), ""
        except Exception as exc:  # dateutil raises ValueError, OverflowError, TypeError, ...
            note = f"timestamp.txt ignored ({cap(exc, 100)})"
    st = os.lstat(notebook) if notebook and os.path.lexists(notebook) else None
    with contextlib.suppress(OverflowError, OSError, ValueError):
        if st is not None:
            t = dt.datetime.fromtimestamp(st.st_mtime, dt.UTC)
            return t.strftime("%Y-%m-%d %H:%M:%S.%f"), note
    return None, note


def _listdir(path: str) -> list[str] | None:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return None


def discover(root: str, registry: dict, course: dict[str, CourseAssignment]) -> list[dict]:
    """One job per (student, assignment) folder: a notebook to grade or a problem to report."""
    jobs = []
    for student in sorted(os.listdir(root)):
        sdir = os.path.join(root, student)
        if not os.path.isdir(sdir) or student.startswith("."):
            continue
        assignments = _listdir(sdir)
        if assignments is None:
            jobs.append({"student": student, "assignment": "?", "notebook": None,
                         "problem": "the student folder cannot be read", "max_score": 0.0,
                         "timestamp": None, "notes": []})
            continue
        for assignment in assignments:
            adir = os.path.join(sdir, assignment)
            if not os.path.isdir(adir) or assignment.startswith("."):
                continue
            job = {"student": student, "assignment": assignment, "notebook": None,
                   "problem": "", "max_score": 0.0}
            names = _listdir(adir)
            if not is_safe_name(student):
                job["problem"] = ("the student folder name is not a valid student id (letters, "
                                  "digits and ._@+- only, at most 128 characters)")
            elif assignment not in registry:
                job["problem"] = (f"unknown assignment {display_name(assignment)!r} (known: "
                                  f"{', '.join(sorted(registry))})")
            elif names is None:
                job["problem"] = "the assignment folder cannot be read"
            else:
                ca = course[assignment]
                job["max_score"] = ca.max_score
                expected = os.path.basename(ca.source)
                nbs = [f for f in names if f.endswith(".ipynb")
                       and os.path.isfile(os.path.join(adir, f))]
                if os.path.islink(sdir) or os.path.islink(adir) or os.path.islink(
                        os.path.join(adir, expected)):
                    job["problem"] = "the submission is a symbolic link, not a file"
                elif expected in nbs:
                    job["notebook"] = os.path.join(adir, expected)
                elif not nbs:
                    job["problem"] = f"no notebook found (expected {expected})"
                else:
                    others = [n for n in nbs if n[:-6] in registry]
                    if others:
                        job["problem"] = (f"notebook of another assignment handed in "
                                          f"({', '.join(others)}; expected {expected})")
                    else:
                        job["problem"] = (f"misnamed notebook ({', '.join(nbs)}; expected "
                                          f"{expected})")
            job["timestamp"], note = _timestamp(adir, job["notebook"])
            job["notes"] = [note] if note else []
            jobs.append(job)
    return jobs


def state_file(state_root: str, student: str, assignment: str) -> str:
    """Where a submission's result is kept: ``<assignment>/<student>.json``, or a name made
    from a hash for folder names that are not safe file names (too long, odd characters)."""
    if is_safe_name(student) and is_safe_name(assignment):
        return os.path.join(state_root, assignment, f"{student}.json")
    digest = hashlib.sha256(repr((student, assignment)).encode()).hexdigest()[:32]
    return os.path.join(state_root, "_invalid", f"{digest}.json")


def job_key(job: dict, course: dict[str, CourseAssignment]) -> str:
    """A hash of everything the result depends on; the notebook is read only when it is a
    regular file of acceptable size (else its size and time stand for it)."""
    h = hashlib.sha256()
    h.update(json.dumps([job["student"], job["assignment"], job["problem"],
                         job["timestamp"], job.get("notes", [])]).encode())
    if job["notebook"]:
        try:
            h.update(hashlib.sha256(safefs.read_regular(job["notebook"],
                                                        MAX_NOTEBOOK_BYTES)).digest())
        except OSError as exc:
            with contextlib.suppress(OSError):
                st = os.lstat(job["notebook"])
                h.update(f"{st.st_size} {st.st_mtime_ns} {exc}".encode())
    source = getattr(course.get(job["assignment"]), "source", None)
    if source:
        with contextlib.suppress(OSError), open(source, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def _scratch_root(log: logging.Logger) -> str:
    """A temporary folder for this run's kernels (under TMPDIR, or /tmp where TMPDIR is too
    long for the kernels' socket paths); those of runs whose process is gone (killed) are
    removed first."""
    parent = tempfile.gettempdir()
    if len(os.path.join(parent, "x").encode()) + IPC_ROOM > 107:
        parent = "/tmp"
    for d in glob.glob(os.path.join(parent, TMP_PREFIX + "*")):
        owner = os.path.basename(d)[len(TMP_PREFIX):].split("-", 1)[0]
        with contextlib.suppress(OSError):
            if owner.isdigit() and not os.path.exists(f"/proc/{owner}") \
                    and os.lstat(d).st_uid == os.geteuid():
                left = safefs.remove_tree(d)
                if left:
                    log.info("WARNING: %s", left)
    return tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=parent)


def _logger(path: str) -> logging.Logger:
    log = logging.getLogger(f"autograder.grade.{path}")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    return log


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's add_submission
    if not os.path.isdir(args.submissions):
        print(f"grade: submissions folder {args.submissions!r} does not exist", file=sys.stderr)
        return 2
    limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.notebook_timeout,
                    memory=args.memory, processes=args.processes, file_size=args.file_size,
                    output_bytes=args.output_limit, tmpfs_bytes=args.scratch,
                    receive_bytes=args.receive_limit, cpus=args.cpus)
    out = os.path.abspath(args.out)
    out_dir = os.path.dirname(out)
    os.makedirs(out_dir, exist_ok=True)
    stem = os.path.splitext(out)[0]
    log = _logger(stem + ".log")

    isolation = sandbox.detect()
    described = isolation.describe(limits)
    print(described, flush=True)
    log.info("grading %s\n%s", os.path.abspath(args.submissions), described)
    if not isolation.sandboxed and not args.allow_unsandboxed:
        msg = ("grade: refusing to run untrusted student code without a sandbox. Install "
               "bubblewrap (apt-get install -y bubblewrap) and allow user namespaces, or pass "
               "--allow-unsandboxed to run it anyway with rlimits only.")
        print(msg, file=sys.stderr)
        log.info(msg)
        return 3

    registry = load_registry(args.registry)
    course_dir = os.path.abspath(args.course)
    course: dict[str, CourseAssignment] = {}
    for name, spec_a in registry.items():
        ca = course_assignment(course_dir, name, spec_a.max_score)
        if ca is None and args.registry == DEFAULT_REGISTRY:
            from .release import main as release_main
            print(f"course folder {course_dir} lacks {name}: running release", flush=True)
            release_main(["--out", course_dir])
            ca = course_assignment(course_dir, name, spec_a.max_score)
        if ca is None:
            print(f"grade: {course_dir}/source/{name}/ has no notebook; run "
                  f"'python -m autograder release --out {args.course}' first", file=sys.stderr)
            return 2
        course[name] = ca

    jobs = discover(args.submissions, registry, course)
    state_root = os.path.join(course_dir, STATE_DIR)
    iso_dict = dataclasses.asdict(isolation)
    for job in jobs:
        job["key"] = job_key(job, course)
        job["state_file"] = state_file(state_root, job["student"], job["assignment"])
        if job["assignment"] in course:
            ca = course[job["assignment"]]
            job.update(source=ca.source, release=ca.release, helpers=ca.helpers)
        job.update(registry=args.registry, limits=dataclasses.asdict(limits),
                   isolation=iso_dict)
    print(f"{len(jobs)} submissions found in {args.submissions}", flush=True)

    results: dict[tuple[str, str], dict] = {}
    todo = []
    for job in jobs:
        prev = None
        if not args.fresh:
            with contextlib.suppress(OSError, ValueError):
                with open(job["state_file"]) as f:
                    prev = json.load(f)
        if isinstance(prev, dict) and prev.get("key") == job["key"] and not prev.get("retry"):
            results[(job["student"], job["assignment"])] = prev
        else:
            todo.append(job)
    if results:
        print(f"{len(results)} submissions already graded by an earlier run: reused", flush=True)
        log.info("%d results reused from %s", len(results), state_root)

    course_id, db_url = _course_db(course_dir, args.db)
    sync = _GradebookSync(db_url, course_id, course_dir, course, state_root, log)
    for r in results.values():
        sync.store(r, _job_for(jobs, r))
    t0 = time.monotonic()
    if todo:
        sandbox.remove_stale_cgroups(isolation.cgroup, "ag-")
        workers = min(args.workers, len(todo))
        tmp_root = _scratch_root(log)
        for job in todo:
            job.update(tmp_root=tmp_root, fault_retry=workers > 1)
        try:
            for r in _run_pool(todo, workers, isolation):
                results[(r["student"], r["assignment"])] = r
                sync.store(r, _job_for(jobs, r))
                log.info("graded %s/%s: %g/%g %s", display_name(r["student"]),
                         display_name(r["assignment"]), r["score"], r["max_score"],
                         r.get("reason", ""))
                if r.get("cleanup"):
                    log.info("WARNING: temporary files left behind: %s", r["cleanup"])
        finally:
            left = safefs.remove_tree(tmp_root)
            if left:
                print(f"WARNING: {left}", file=sys.stderr)
                log.info("WARNING: %s", left)
    sync.close()
    elapsed = time.monotonic() - t0

    final = [results[(j["student"], j["assignment"])] for j in jobs]
    from . import report
    try:
        report.write_csv(out, final, sync.students, sync.duedates)
    except OSError as exc:
        print(f"grade: cannot write {out}: {exc}", file=sys.stderr)
        log.info("cannot write %s: %s", out, exc)
        return 1
    for problem in report.write_feedback(os.path.join(out_dir, "feedback"), final)[1]:
        log.info("WARNING: %s", problem)
    try:
        report.histogram(stem + "_histogram.png", final)
    except Exception as exc:  # a picture must not cost the run
        log.info("WARNING: no histogram: %s", exc)
    text = report.summary(final)
    print(text)
    failed = [r for r in final if r.get("retry")]
    if failed:
        warn = (f"WARNING: {len(failed)} submissions could not be graded because of a problem of "
                f"the grader itself (e.g. {failed[0]['reason'][:200]!r}); they have a 0 row "
                "now and are graded again when this command is run again")
        print(warn, file=sys.stderr)
        log.info(warn)
    print(f"graded {len(todo)} notebooks in {elapsed:.1f} s; wrote {out}, "
          f"{os.path.join(out_dir, 'feedback')}/, {stem}_histogram.png", flush=True)
    log.info("%s\nwrote %s", text, out)
    return 0


def _job_for(jobs: list[dict], result: dict) -> dict:
    for j in jobs:
        if j["student"] == result["student"] and j["assignment"] == result["assignment"]:
            return j
    raise KeyError(result["student"])


def _course_db(course_dir: str, db: str | None) -> tuple[str, str]:
    from .gradebook import course_settings
    course_id, db_url = course_settings(course_dir)
    return course_id, db or db_url


def _run_pool(todo: list[dict], workers: int, isolation, attempts: int = 3, work=None):
    """Yield results as workers finish them, with a progress bar on stderr.

    A worker process that dies (it never should: student code runs in the sandbox, not in the
    worker) breaks the pool; the unfinished jobs then go to a fresh pool, and after
    ``attempts`` pools they get a row saying the grader failed (graded again on a rerun)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    from tqdm import tqdm

    from .worker import grade_job, init_worker, zero_result

    work = work or grade_job
    ctx = multiprocessing.get_context("fork")
    pending = list(todo)
    with tqdm(total=len(todo), desc="grading", unit="nb", file=sys.stderr,
              dynamic_ncols=True) as bar:
        for _ in range(attempts):
            if not pending:
                return
            counter = ctx.Value("i", 0)
            broken = False
            with ProcessPoolExecutor(min(workers, len(pending)), mp_context=ctx,
                                     initializer=init_worker,
                                     initargs=(counter, isolation)) as pool:
                futures = {pool.submit(work, job): job for job in pending}
                for fut in as_completed(futures):
                    try:
                        r = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    except Exception as exc:  # grade_job never raises; this is a last guard
                        r = zero_result(futures[fut], cap(f"internal grader error: "
                                                          f"{type(exc).__name__}: {exc}"))
                        r["retry"] = True
                    pending.remove(futures[fut])
                    bar.update(1)
                    yield r
            if not broken:
                return
        for job in pending:
            r = zero_result(job, "internal grader error: the worker process grading this "
                                 "submission died")
            r["retry"] = True
            bar.update(1)
            yield r


class _GradebookSync:
    """Main-process writer of the gradebook and of submitted/ and autograded/ notebooks."""

    def __init__(self, db_url, course_id, course_dir, course, state_root, log):
        from nbgrader.api import Gradebook

        from .gradebook import ensure_assignment
        self.gb = Gradebook(db_url, course_id=course_id)
        self.course_dir, self.course, self.state_root, self.log = (
            course_dir, course, state_root, log)
        self.students: dict[str, dict] = {}
        self.duedates: dict[str, str | None] = {}
        for name, ca in course.items():
            ensure_assignment(self.gb, name, ca.source)
            a = self.gb.find_assignment(name)
            self.duedates[name] = str(a.duedate) if a.duedate else None

    def store(self, result: dict, job: dict) -> None:
        """:meth:`write`, and should that fail, a note in the result's reason and a mark to
        grade it again on a rerun (the run goes on)."""
        try:
            self.write(result, job)
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.gb.db.rollback()
            why = cap(f"internal grader error: the result could not be stored in the course "
                      f"({type(exc).__name__}: {exc})")
            self.log.info("WARNING: %s/%s: %s", display_name(result["student"]),
                          display_name(result["assignment"]), why)
            result["reason"] = "; ".join(r for r in (result.get("reason", ""), why) if r)
            result["retry"] = True

    def write(self, result: dict, job: dict) -> None:
        from .gradebook import place_file, write_result
        a, s = result["assignment"], result["student"]
        if a not in self.course or not is_safe_name(s):
            return
        scores = {p["id"]: p["score"] for p in result.get("parts", [])}
        write_result(self.gb, result, scores)
        st = self.gb.find_student(s)
        self.students[s] = {"last_name": st.last_name, "first_name": st.first_name,
                            "email": st.email}
        nb_name = os.path.basename(self.course[a].source)
        if job.get("notebook"):
            dest = os.path.join(self.course_dir, "submitted", s, a, nb_name)
            if os.path.abspath(job["notebook"]) != os.path.abspath(dest):
                try:
                    place_file(job["notebook"], dest, MAX_NOTEBOOK_BYTES)
                except safefs.UnsafeFile as exc:
                    self.log.info("not copied into submitted/: %s/%s: %s", s, a, exc)
            if result.get("timestamp"):
                from .worker import atomic_write
                atomic_write(os.path.join(os.path.dirname(dest), "timestamp.txt"),
                             result["timestamp"])
        if result.get("autograded"):
            src = os.path.join(self.state_root, a, result["autograded"])
            if os.path.exists(src):
                place_file(src, os.path.join(self.course_dir, "autograded", s, a, nb_name))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.gb.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))



"""The grading machine's side of grading on Dask: a Dask worker that grades submissions with
the same code as the local pool (:func:`autograder.grading.worker.grade`), once it has proved
that it runs the coordinator's course.

Start one on each grading machine (bubblewrap installed, the same release of the course and of
this project as the coordinator's)::

    dask worker tcp://SCHEDULER:8786 --nworkers 2 --nthreads 1 \\
        --preload autograder.grading.dask_worker --course /srv/course

``--course`` (an option of this preload) names the worker's course folder, built there by
``python -m autograder release --out /srv/course``; without the preload, or without the
option, the worker uses ``$AUTOGRADER_COURSE``, else ``_build/course`` in its working folder.
The preload installs :class:`GraderPlugin`, which detects the machine's isolation once
(:func:`autograder.sandbox.isolation.detect`), makes the worker's temporary folder and removes
what killed graders left on the machine (kernel control groups, temporary folders).

A task (:func:`grade_task`) is plain data: the job (:meth:`autograder.grading.jobs.Job.to_dict`)
without the coordinator's paths, the submission's bytes, and the digests of the course code the
coordinator expects (:func:`autograder.grading.state.course_digests`: source and release
notebooks, helper files, the assignment's code, the grader's code). The worker grades only when
its own course has the same digests and it is sandboxed (or the coordinator allows it not to
be); otherwise the job's result is a zero marked to be graded again, whose reason names the
worker and the difference. It returns the result as plain data with the autograded notebook's
text; the coordinator alone writes the state folder, the gradebook and the reports.
:func:`describe` answers the coordinator's survey of the workers before any grading.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import click
from distributed import WorkerPlugin, get_worker

from .. import files
from ..build.release import DEFAULT_OUT
from ..sandbox import cgroup
from ..sandbox.isolation import Isolation, detect
from ..text import cap
from . import state, worker
from .course import CourseAssignment, course_assignment
from .execution import CGROUP_PREFIX
from .jobs import Job, Result
from .scratch import scratch_root

PLUGIN = "autograder"
COURSE_ENV = "AUTOGRADER_COURSE"
SLOT_BASE = 1000     # kernel slots of Dask workers (a local pool uses 0, 1, ...)
MAX_SLOTS = 4096
DIGEST_SHOWN = 12


class GraderPlugin(WorkerPlugin):
    """What a grading worker knows about itself: its course folder, isolation and temporary
    folder (see the module docstring)."""

    name = PLUGIN

    def __init__(self, course: str | None = None):
        self.course = os.path.abspath(course or os.environ.get(COURSE_ENV) or DEFAULT_OUT)
        self.isolation: Isolation | None = None
        self.scratch = ""
        self.address = ""
        self.nthreads = 1

    def setup(self, worker=None) -> None:
        self.isolation = detect()
        cgroup.remove_stale_cgroups(self.isolation.cgroup, CGROUP_PREFIX)
        self.scratch = scratch_root()[0]
        if worker is not None:
            self.address = worker.address
            self.nthreads = worker.state.nthreads

    def teardown(self, worker=None) -> None:
        if self.scratch:
            files.remove_tree(self.scratch)


@click.command()
@click.option("--course", default=None, help="this machine's course folder (default: "
              f"${COURSE_ENV}, else {DEFAULT_OUT})")
async def dask_setup(worker, course: str | None) -> None:
    """The ``--preload`` hook of ``dask worker``: install :class:`GraderPlugin`."""
    await worker.plugin_add(GraderPlugin(course), name=PLUGIN)


_FALLBACK_LOCK = threading.Lock()


def _plugin(dask_worker=None) -> GraderPlugin:
    """The worker's plugin; on a worker started without the preload, one set up now from
    ``$AUTOGRADER_COURSE``."""
    w = dask_worker or get_worker()
    with _FALLBACK_LOCK:
        plugin = w.plugins.get(PLUGIN)
        if plugin is None:
            plugin = GraderPlugin()
            plugin.setup(w)
            w.plugins[PLUGIN] = plugin
    return plugin


@contextlib.contextmanager
def kernel_slot() -> Iterator[int]:
    """A kernel slot (its separate uid) no other kernel on this machine holds now: a lock
    file per slot, held while the notebook runs."""
    folder = os.path.join(tempfile.gettempdir(), f"autograder-slots-{os.geteuid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    for n in range(SLOT_BASE, SLOT_BASE + MAX_SLOTS):
        fd = os.open(os.path.join(folder, str(n)),
                     os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield n
        finally:
            os.close(fd)
        return
    raise RuntimeError(f"all {MAX_SLOTS} kernel slots of this machine are taken")


def _short(digest: str) -> str:
    return digest[:DIGEST_SHOWN] if digest else "none"


def differences(expected: dict, got: dict, ca: CourseAssignment, course: str) -> list[str]:
    """What differs between the course code the coordinator expects and this machine's (both
    :func:`autograder.grading.state.course_digests`), in words."""
    out = []
    for kind, path in (("source", ca.source), ("release", ca.release)):
        if expected.get(kind) != got.get(kind):
            where = os.path.relpath(path, course) if path else f"{kind}/{ca.name}/"
            out.append(f"the {kind} notebook {where} differs (sha256 {_short(got.get(kind, ''))}"
                       f" here, {_short(expected.get(kind, ''))} expected)")
    want, have = expected.get("helpers", {}), got.get("helpers", {})
    for name in sorted(set(want) | set(have)):
        if name not in have:
            out.append(f"the helper file release/{ca.name}/{name} is missing")
        elif name not in want:
            out.append(f"the helper file release/{ca.name}/{name} is not in the coordinator's "
                       "course")
        elif want[name] != have[name]:
            out.append(f"the helper file release/{ca.name}/{name} differs")
    if expected.get("assignment") != got.get("assignment"):
        out.append(f"the code of assignment {ca.name} (its spec and the solutions/ code it "
                   f"calls) differs (fingerprint {_short(got.get('assignment', ''))} here, "
                   f"{_short(expected.get('assignment', ''))} expected)")
    if expected.get("grader") != got.get("grader"):
        out.append(f"the grader's code differs (fingerprint {_short(got.get('grader', ''))} "
                   f"here, {_short(expected.get('grader', ''))} expected): another release "
                   "of the autograder")
    return out


def check_course(plugin: GraderPlugin, job: Job,
                 expected: dict) -> tuple[CourseAssignment | None, list[str]]:
    """(this machine's copy of the job's assignment, what differs from the coordinator's)."""
    ca = course_assignment(plugin.course, job.assignment, job.max_score)
    if ca is None:
        return None, [f"its course folder {plugin.course} has no assignment {job.assignment} "
                      f"(run 'python -m autograder release --out {plugin.course}' there, or "
                      "start the worker with --course)"]
    local = job.with_(source=ca.source, release=ca.release, helpers=ca.helpers)
    try:
        got = state.course_digests(local)
    except Exception as exc:  # e.g. the registry cannot be imported on this machine
        return ca, [cap(f"the assignment's code cannot be loaded here ({type(exc).__name__}: "
                        f"{exc})", 400)]
    return ca, differences(expected, got, ca, plugin.course)


def _who(plugin: GraderPlugin) -> str:
    return f"worker {plugin.address} (host {socket.gethostname()})"


def describe(probes: list[dict[str, Any]], dask_worker=None) -> dict[str, Any]:
    """This worker for the coordinator's table: address, host, threads, course folder,
    isolation, and for each probe (an assignment's job and the digests expected) what
    differs. Run on every worker with ``Client.run``."""
    plugin = _plugin(dask_worker)
    problems = {}
    for probe in probes:
        job = Job.from_dict(probe["job"])
        problems[job.assignment] = check_course(plugin, job, probe["expected"])[1]
    return {"address": plugin.address, "host": socket.gethostname(), "pid": os.getpid(),
            "nthreads": plugin.nthreads, "course": plugin.course,
            "isolation": dataclasses.asdict(plugin.isolation),
            "problems": problems}


def _refused(job: Job, why: str) -> dict[str, Any]:
    result = worker.zero_result(job, f"internal grader error: {why}")
    result.retry = True
    return {"result": result.to_dict(), "notebook": None}


def grade_task(task: dict[str, Any]) -> dict[str, Any]:
    """Grade one task (see the module docstring) on this Dask worker (:func:`grade_with`)."""
    return grade_with(_plugin(), task)


def grade_with(plugin: GraderPlugin, task: dict[str, Any]) -> dict[str, Any]:
    """Grade one task as the worker ``plugin`` describes: ``{"result": Result as a dict,
    "notebook": autograded notebook text or None}``. A worker that is not sandboxed (unless
    the task allows it) or whose course differs from the coordinator's grades nothing."""
    job = Job.from_dict(task["job"])
    if not plugin.isolation.sandboxed and not task.get("allow_unsandboxed"):
        return _refused(job, f"{_who(plugin)} has no sandbox ({plugin.isolation.brief()}); "
                             "it grades only with --allow-unsandboxed")
    ca, problems = check_course(plugin, job, task["expected"])
    if problems:
        return _refused(job, f"{_who(plugin)} does not run the coordinator's course: "
                             + "; ".join(problems))
    with kernel_slot() as slot, tempfile.TemporaryDirectory(dir=plugin.scratch) as folder:
        path = os.path.join(folder, ca.notebook_name)
        files.atomic_write(path, task["notebook"])
        local = job.with_(notebook=path, source=ca.source, release=ca.release,
                          helpers=ca.helpers, isolation=plugin.isolation,
                          tmp_root=plugin.scratch, state_file="")
        result: Result = worker.grade(local, slot)
    return {"result": result.to_dict(), "notebook": result.notebook_text}

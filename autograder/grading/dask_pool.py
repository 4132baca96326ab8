"""The Dask pool: grade jobs on the workers of a Dask cluster, results as they finish (the
shape of :mod:`autograder.grading.pool`; ``grade --scheduler ADDRESS`` uses it).

Dask moves jobs and results, nothing else: this process (the coordinator) reads each
submission and sends a task of plain data (:func:`task`: the job without the coordinator's
paths, the submission's bytes, the digests of the course code it expects); a worker
(:mod:`autograder.grading.dask_worker`) grades it in its sandbox and returns the result as
plain data with the autograded notebook's text; the coordinator writes both into the state
folder (:func:`autograder.grading.worker.keep`) before it reports the result, so a result is
never lost once it arrived, and a rerun after ``kill -9`` of the coordinator reuses it.

* :meth:`DaskPool.connect` reaches the scheduler (an address such as ``tcp://host:8786``, or a
  scheduler file as written by ``dask scheduler --scheduler-file``) or raises
  :class:`ClusterError`; :meth:`DaskPool.survey` waits for the first worker and asks every
  worker for its address, threads, isolation and whether its course matches
  (:func:`autograder.grading.dask_worker.describe`); :func:`worker_table` prints them.
* :meth:`DaskPool.run` keeps one task in flight per worker thread (the scheduler sends each to
  an idle worker; a new task goes out as soon as a result comes back, and workers that join
  later get tasks too), so neither the coordinator nor the scheduler holds a whole MOOC's
  notebooks, and a worker that dies held only the notebooks it was grading (Dask counts a
  death against every task assigned to that worker). It yields a result for every job. A
  worker that dies (even ``kill -9``) has its tasks run again elsewhere by the scheduler; a
  task that was running on ``allowed-failures + 1`` workers that died (the scheduler's
  ``distributed.scheduler.allowed-failures``, 3 by default) fails with Dask's ``KilledWorker``
  and gets a zero result saying so, marked to be graded again on a rerun; the rest of the
  class goes on.
* Jobs that need no grading machine (a ``problem`` found by discovery, a notebook file the
  coordinator cannot read) get their result here, without a task.
* Ctrl-C or SIGTERM (the stop of :mod:`autograder.grading.interrupt`) dispatches nothing more
  and cancels every task in flight; a cancelled task's result is never kept.
"""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from distributed import Client, as_completed
from distributed.scheduler import KilledWorker
from tqdm import tqdm

from .. import files
from ..sandbox.isolation import Isolation
from ..text import cap
from . import dask_worker, interrupt, state
from .jobs import Job, Result
from .notebook import MAX_NOTEBOOK_BYTES, unreadable
from .worker import grade, interrupted_result, keep, zero_result

POLL = 0.1  # seconds between looks for a finished task (and for the stop)

CONNECT_TIMEOUT = 15.0   # seconds to reach the scheduler
IN_FLIGHT_PER_THREAD = 1  # notebooks per worker thread (see the module docstring)


class ClusterError(Exception):
    """The cluster cannot be used: the scheduler cannot be reached, or no worker joined."""


@dataclass
class WorkerInfo:
    """One Dask worker as it described itself."""

    address: str
    host: str = ""
    pid: int = 0
    cores: int = 0
    course: str = ""
    isolation: Isolation | None = None
    problems: list[str] = field(default_factory=list)   # how its course differs

    @property
    def sandboxed(self) -> bool:
        return self.isolation is not None and self.isolation.sandboxed


def worker_table(workers: list[WorkerInfo]) -> str:
    """A table of the workers: address, host, cores, isolation, course, whether it matches."""
    rows = [("address", "host", "cores", "isolation", "course")]
    for w in workers:
        rows.append((w.address, w.host, str(w.cores),
                     w.isolation.brief() if w.isolation else "unknown", w.course))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"Dask workers: {len(workers)}, {sum(w.cores for w in workers)} cores"]
    lines += ["  " + "  ".join(c.ljust(n) for c, n in zip(r, widths, strict=True))
                     .rstrip() for r in rows]
    for w in workers:
        lines += [f"  {w.address}: {p}" for p in w.problems]
    return "\n".join(lines)


def _safe_key(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@+-]", "_", text)[:60]


def task(job: Job, notebook: bytes, expected: dict, allow_unsandboxed: bool) -> dict:
    """The plain data a worker needs to grade ``job`` (see the module docstring)."""
    remote = job.with_(notebook=None, state_file="", source=None, release=None, helpers={},
                       isolation=None, tmp_root=None, fault_retry=True)
    return {"job": remote.to_dict(), "notebook": notebook, "expected": expected,
            "allow_unsandboxed": allow_unsandboxed}


class DaskPool:
    """A connection to a Dask cluster that grades jobs (see the module docstring)."""

    def __init__(self, client: Client, address: str):
        self.client, self.address = client, address
        self.workers: list[WorkerInfo] = []
        self._expected: dict[str, dict] = {}

    @classmethod
    def connect(cls, scheduler: str, timeout: float = CONNECT_TIMEOUT) -> DaskPool:
        """Connect to ``scheduler`` (an address, or the path of a scheduler file)."""
        is_file = os.path.isfile(scheduler)
        if not is_file and "://" not in scheduler and not re.fullmatch(r"[\w.-]+:\d+",
                                                                        scheduler):
            raise ClusterError(f"{scheduler!r} is neither a scheduler address (such as "
                               "tcp://host:8786) nor a scheduler file")
        try:
            client = (Client(scheduler_file=scheduler, timeout=timeout) if is_file
                      else Client(scheduler, timeout=timeout))
        except Exception as exc:  # OSError, TimeoutError, ValueError for a broken file ...
            raise ClusterError(f"cannot reach the Dask scheduler at {scheduler} within "
                               f"{timeout:g} s ({type(exc).__name__}: {cap(exc, 300)}); is "
                               "'dask scheduler' running there?") from None
        return cls(client, client.scheduler.address)

    def expected(self, job: Job) -> dict:
        """The digests of the course code ``job`` depends on (one computation per
        assignment)."""
        if job.assignment not in self._expected:
            self._expected[job.assignment] = state.course_digests(job)
        return self._expected[job.assignment]

    def allowed_failures(self) -> int | None:
        """The scheduler's ``allowed-failures`` (None when it cannot be asked)."""
        try:
            return int(self.client.run_on_scheduler(
                lambda dask_scheduler: dask_scheduler.allowed_failures))
        except Exception:
            return None

    def survey(self, jobs: list[Job], wait: float) -> list[WorkerInfo]:
        """Wait up to ``wait`` seconds for a worker, then describe every worker, checking its
        course against one job of each assignment in ``jobs``."""
        try:
            self.client.wait_for_workers(1, timeout=wait)
        except Exception:
            raise ClusterError(f"no Dask worker joined the scheduler at {self.address} within "
                               f"{wait:g} s; start workers with 'dask worker {self.address} "
                               "--preload autograder.grading.dask_worker --course DIR'") from None
        probes = {}
        for job in jobs:
            if job.assignment not in probes and not job.problem:
                probes[job.assignment] = {"job": task(job, b"", {}, False)["job"],
                                          "expected": self.expected(job)}
        answers = self.client.run(dask_worker.describe, list(probes.values()), on_error="return")
        threads = self.client.nthreads()
        self.workers = []
        for address, info in sorted(answers.items()):
            if isinstance(info, BaseException):
                self.workers.append(WorkerInfo(address, cores=threads.get(address, 0), problems=[
                    cap(f"it cannot run the grader ({type(info).__name__}: {info}); is this "
                        "project installed there?", 400)]))
                continue
            self.workers.append(WorkerInfo(
                address=address, host=info["host"], pid=info["pid"],
                cores=threads.get(address, info["nthreads"]), course=info["course"],
                isolation=Isolation(**info["isolation"]),
                problems=[f"{a}: {p}" for a, ps in info["problems"].items() for p in ps]))
        return self.workers

    def _window(self) -> int:
        threads = sum(self.client.nthreads().values()) or 1
        return IN_FLIGHT_PER_THREAD * threads

    def _submit(self, job: Job, allow_unsandboxed: bool):
        """A future for ``job``, or a result when it needs no grading machine."""
        if job.problem:
            return grade(job)
        try:
            notebook = files.read_regular(job.notebook, MAX_NOTEBOOK_BYTES)
        except files.UnsafeFile as exc:
            return grade(job.with_(problem=unreadable(exc)))
        key = (f"autograde-{_safe_key(job.assignment)}-{_safe_key(job.student)}-"
               f"{uuid.uuid4().hex[:8]}")
        return self.client.submit(dask_worker.grade_task,
                                  task(job, notebook, self.expected(job), allow_unsandboxed),
                                  key=key, pure=False)

    def _collect(self, future, job: Job) -> Result:
        """The result of a finished task for ``job`` (a zero marked to be graded again when
        the task failed)."""
        try:
            data = future.result()
            result = Result.from_dict(data["result"])
            if result.ident != job.ident:
                raise ValueError(f"the worker answered for {result.ident}")
            result.notebook_text = data.get("notebook")
            return result
        except KilledWorker as exc:
            why = (f"internal grader error: the Dask workers grading this submission died "
                   f"{exc.allowed_failures + 1} times (the scheduler's allowed-failures is "
                   f"{exc.allowed_failures}); the last was "
                   f"{getattr(exc.last_worker, 'address', exc.last_worker)}")
        except Exception as exc:  # a lost or cancelled task, a bug on the worker
            why = cap(f"internal grader error on the Dask cluster: {type(exc).__name__}: {exc}")
        result = zero_result(job, why)
        result.retry = True
        return result

    def run(self, todo: list[Job], allow_unsandboxed: bool,
            stop: interrupt.Interrupter | None = None) -> Iterator[Result]:
        """Yield a result for every job of ``todo``, each kept in the state folder first, with a
        progress bar on stderr. After ``stop`` (the first Ctrl-C or SIGTERM, see
        :mod:`autograder.grading.interrupt`) nothing more is dispatched, the tasks in flight are
        cancelled and every job without a result yields an interrupted result (never kept); a
        task a Dask worker is running finishes there, its result thrown away."""
        pending = iter(todo)
        futures: dict = {}
        done = as_completed()
        ready: list[tuple[Job, Result]] = []

        def stopped() -> bool:
            return stop is not None and stop.requested

        def refill() -> None:
            window = self._window()
            while len(futures) < window and not ready and not stopped():
                job = next(pending, None)
                if job is None:
                    return
                got = self._submit(job, allow_unsandboxed)
                if isinstance(got, Result):
                    ready.append((job, got))
                else:
                    futures[got] = job
                    done.add(got)

        try:
            with tqdm(total=len(todo), desc="grading", unit="nb", file=sys.stderr,
                      dynamic_ncols=True) as bar:
                refill()
                while ready or futures:
                    if ready:
                        job, result = ready.pop()
                    else:
                        while not done.has_ready() and not stopped():
                            time.sleep(POLL)
                        if stopped():
                            break
                        future = next(done)
                        job = futures.pop(future)
                        result = self._collect(future, job)
                        future.release()
                    refill()                # the freed worker thread gets its next notebook
                    bar.update(1)
                    yield keep(job, result)
                if stopped():
                    for job in [*futures.values(), *pending]:
                        bar.update(1)
                        yield interrupted_result(job)
        finally:
            if futures:
                self.client.cancel(list(futures), force=True)

    def close(self) -> None:
        self.client.close()

"""The local pool: grade jobs in worker processes on this machine, results as they finish.

Workers are forked processes (:func:`autograder.grading.worker.init_worker` makes each die with
the grader and turns SIGINT and SIGTERM into the stop of :mod:`autograder.grading.interrupt`).
Jobs are handed out one at a time as workers become free, so that after the stop nothing more
is dispatched; the pool then follows the rule of :mod:`autograder.grading.interrupt` (an
interrupted result for every job not dispatched or not answered within its grace period, whose
worker is killed).

A worker process that dies (it never should: student code runs in the sandbox, not in the
worker) breaks the pool; the unfinished jobs then go to a fresh pool, and after ``attempts``
pools they get a result saying the grader failed, marked to be graded again on a rerun.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from tqdm import tqdm

from ..sandbox.isolation import Isolation
from ..text import cap
from .interrupt import STOP_GRACE, Interrupter, SharedFlag
from .jobs import Job, Result
from .worker import grade_job, init_worker, interrupted_result, zero_result

POLL = 0.2      # seconds between looks at the stop while waiting for results


def _outcome(fut: Future, job: Job) -> Result | None:
    """The result of a finished future, or None when its worker died (the pool is broken)."""
    try:
        return fut.result()
    except BrokenProcessPool:
        return None
    except Exception as exc:  # grade_job never raises; this is a last guard
        r = zero_result(job, cap(f"internal grader error: {type(exc).__name__}: {exc}"))
        r.retry = True
        return r


def _kill(pids) -> None:
    for pid in pids:
        if pid > 0:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _one_pool(pending: list[Job], workers: int, isolation: Isolation, work: Callable,
              stop: Interrupter, gone: list[Job]) -> Iterator[tuple[Job, Result | None]]:
    """Grade ``pending`` in one pool: (job, result) as they finish, (job, None) for the jobs a
    dead worker took with it; jobs given up after the stop are appended to ``gone``."""
    ctx = multiprocessing.get_context("fork")
    n = min(workers, len(pending))
    counter, pids, flag = ctx.Value("i", 0), ctx.RawArray("i", n), SharedFlag(ctx)
    stop.on_stop(flag.set)
    pool = ProcessPoolExecutor(n, mp_context=ctx, initializer=init_worker,
                               initargs=(counter, isolation, flag, pids))
    waiting, running = deque(pending), {}
    stopped_at = None
    try:
        while waiting or running:
            while waiting and len(running) < n and not stop.requested:
                job = waiting.popleft()
                try:
                    running[pool.submit(work, job)] = job
                except BrokenProcessPool:
                    waiting.appendleft(job)
                    break
            if stop.requested:
                stopped_at = stopped_at or time.monotonic()
                gone.extend(waiting)
                waiting.clear()
            if not running:
                if waiting:      # the pool broke before anything ran
                    yield from ((job, None) for job in waiting)
                return
            done, _ = wait(running, timeout=POLL, return_when=FIRST_COMPLETED)
            for fut in done:
                job = running.pop(fut)
                yield job, _outcome(fut, job)
            if stopped_at is not None and time.monotonic() - stopped_at > STOP_GRACE:
                gone.extend(running.values())
                running.clear()
                _kill(pids)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_pool(todo: list[Job], workers: int, isolation: Isolation, attempts: int = 3,
             work: Callable[[Job], Result] | None = None,
             stop: Interrupter | None = None) -> Iterator[Result]:
    """Yield a result for every job of ``todo``, with a progress bar on stderr; after
    ``stop`` the rest come back interrupted (:mod:`autograder.grading.interrupt`)."""
    work = work or grade_job
    stop = stop or Interrupter()
    pending = list(todo)
    gone: list[Job] = []
    with tqdm(total=len(todo), desc="grading", unit="nb", file=sys.stderr,
              dynamic_ncols=True) as bar:
        for _ in range(attempts):
            if not pending or stop.requested:
                break
            broken = []
            for job, r in _one_pool(pending, workers, isolation, work, stop, gone):
                if r is None:
                    broken.append(job)
                    continue
                bar.update(1)
                yield r
            pending = broken
        for job in gone + (pending if stop.requested else []):
            bar.update(1)
            yield interrupted_result(job)
        if stop.requested:
            return
        for job in pending:
            r = zero_result(job, "internal grader error: the worker process grading this "
                                 "submission died")
            r.retry = True
            bar.update(1)
            yield r

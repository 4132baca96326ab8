"""The worker pool of ``grade``: a worker that dies does not stop or hang the run; after the
stop nothing more is dispatched and every job still gets a result."""

import os
import threading
import time

from autograder.grading import interrupt, pool, worker
from autograder.grading.jobs import Job, Result
from autograder.grading.pool import run_pool
from autograder.sandbox.isolation import Isolation


def _work(job):
    crash, flag = job.helpers["crash"], job.helpers["flag"]
    if crash and not os.path.exists(flag):
        open(flag, "w").close()
        os._exit(1)  # the first attempt at this job kills its worker
    if crash == "always":
        os._exit(1)
    return Result(job.student, "a", "k", None, 1.0, 1.0, "")


def _jobs(tmp_path, crash):
    return [Job(f"s{i}", "a", key="k", max_score=1.0,
                helpers={"crash": crash if i == 2 else "", "flag": str(tmp_path / f"flag{i}")})
            for i in range(5)]


ISO = Isolation(bwrap=None, separate_user=False, cgroup=None)


def test_jobs_of_a_dead_worker_are_retried(tmp_path):
    """After a worker dies, unfinished jobs run in a fresh pool and every job yields once."""
    results = list(run_pool(_jobs(tmp_path, "once"), 2, ISO, work=_work))
    assert sorted(r.student for r in results) == [f"s{i}" for i in range(5)]
    assert all(r.score == 1.0 for r in results)


def test_a_job_that_always_kills_its_worker_gets_a_row(tmp_path):
    """A job that breaks every pool ends with a zero row marked to be graded again."""
    results = list(run_pool(_jobs(tmp_path, "always"), 2, ISO, attempts=2, work=_work))
    assert sorted(r.student for r in results) == [f"s{i}" for i in range(5)]
    bad = [r for r in results if r.student == "s2"][0]
    assert bad.score == 0.0 and bad.retry and "died" in bad.reason


def _stoppable(job):
    """s0 finishes at once; the others run until the worker's stop, as a kernel would."""
    open(job.helpers["flag"], "w").close()
    if job.student == "s0":
        return Result(job.student, "a", "k", None, 1.0, 1.0, "")
    deadline = time.monotonic() + (600 if job.helpers["crash"] == "deaf" else 60)
    while time.monotonic() < deadline:
        if interrupt.STOP.is_set() and job.helpers["crash"] != "deaf":
            return worker.interrupted_result(job)
        time.sleep(0.05)
    return Result(job.student, "a", "k", None, 1.0, 1.0, "ran on")


def test_nothing_is_dispatched_after_the_stop(tmp_path):
    """A stop before the pool starts gives every job an interrupted result without running
    any; a stop after the first result ends the running jobs and dispatches no other."""
    stop = interrupt.Interrupter()
    stop.request()
    results = list(run_pool(_jobs(tmp_path, ""), 2, ISO, work=_stoppable, stop=stop))
    assert sorted(r.student for r in results) == [f"s{i}" for i in range(5)]
    assert all(r.interrupted and r.retry and r.reason == interrupt.NOT_GRADED for r in results)
    assert list(tmp_path.iterdir()) == []

    stop = interrupt.Interrupter()
    results = []
    for r in run_pool(_jobs(tmp_path, ""), 2, ISO, work=_stoppable, stop=stop):
        results.append(r)
        stop.request()
    assert sorted(r.student for r in results) == [f"s{i}" for i in range(5)]
    assert [r.student for r in results if not r.interrupted] == ["s0"]
    assert len(list(tmp_path.iterdir())) <= 3     # s0 and at most the two running beside it


def test_a_worker_deaf_to_the_stop_is_killed_after_the_grace_period(tmp_path, monkeypatch):
    """A job whose worker ignores the stop comes back interrupted after the grace period, and
    that worker is killed."""
    monkeypatch.setattr(pool, "STOP_GRACE", 1.0)
    jobs = [j.with_(helpers={**j.helpers, "crash": "deaf"}) for j in _jobs(tmp_path, "")][1:3]
    stop = interrupt.Interrupter()
    threading.Timer(2.0, stop.request).start()
    results = list(run_pool(jobs, 2, ISO, work=_stoppable, stop=stop))
    assert sorted(r.student for r in results) == ["s1", "s2"]
    assert all(r.interrupted for r in results)

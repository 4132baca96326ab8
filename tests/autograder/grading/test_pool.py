"""The worker pool of ``grade``: a worker that dies does not stop or hang the run."""

import os

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

"""The local pool: grade jobs in worker processes on this machine, results as they finish.

Workers are forked processes (:func:`autograder.grading.worker.init_worker` makes each die with
the grader and ignore Ctrl-C, which the grader handles). A worker process that dies (it never
should: student code runs in the sandbox, not in the worker) breaks the pool; the unfinished
jobs then go to a fresh pool, and after ``attempts`` pools they get a result saying the grader
failed, marked to be graded again on a rerun.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from tqdm import tqdm

from ..sandbox.isolation import Isolation
from ..text import cap
from .jobs import Job, Result
from .worker import grade_job, init_worker, zero_result


def run_pool(todo: list[Job], workers: int, isolation: Isolation, attempts: int = 3,
             work: Callable[[Job], Result] | None = None) -> Iterator[Result]:
    """Yield a result for every job of ``todo``, with a progress bar on stderr."""
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
                        r.retry = True
                    pending.remove(futures[fut])
                    bar.update(1)
                    yield r
            if not broken:
                return
        for job in pending:
            r = zero_result(job, "internal grader error: the worker process grading this "
                                 "submission died")
            r.retry = True
            bar.update(1)
            yield r

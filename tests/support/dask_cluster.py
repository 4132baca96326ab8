"""A real Dask cluster for a test (:class:`autograder.testing.cluster.Cluster`: Dask's own
command lines on 127.0.0.1 only), stopped at the end whatever happens;
:func:`require_dask` skips a test, saying why, where Dask is not installed.
"""

from __future__ import annotations

import contextlib
import os

import pytest

from autograder.testing.cluster import DASK, Cluster
from tests.support.run import env


def require_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        pytest.skip("dask/distributed is not installed; make setup installs the pinned versions")
    if not os.path.exists(DASK):
        pytest.skip(f"Dask's command line {DASK} is missing")


@contextlib.contextmanager
def dask_cluster(folder, course, workers: int = 2, allowed_failures: int | None = None,
                 worker_env: dict | None = None, nthreads: int = 1):
    """A started cluster with ``workers`` workers (of ``nthreads`` threads) grading from
    ``course``; stopped at the end whatever happens (skips the test where Dask is missing)."""
    require_dask()
    cluster = Cluster(folder, env(), allowed_failures)
    try:
        cluster.start_scheduler()
        for i in range(workers):
            cluster.add_worker(course, f"w{i}", worker_env, nthreads)
        if workers:
            cluster.wait_for_workers(workers)
        yield cluster
    finally:
        cluster.stop()

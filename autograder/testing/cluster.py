"""A Dask cluster on this machine for the tests and ``make bench-scale``, started with Dask's own
command lines on 127.0.0.1 only: ``dask scheduler --host 127.0.0.1 --port 0 --scheduler-file F``
and, per worker, ``dask worker ADDRESS --host 127.0.0.1 --nworkers 1 --nthreads N
--preload autograder.grading.dask_worker --course C`` (each worker has a nanny, which starts a
new worker process when one dies). Each command runs in a session of its own;
:meth:`Cluster.stop` ends those sessions (SIGTERM, then SIGKILL) and removes the kernel control
groups that killed workers left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

from ..grading.execution import CGROUP_PREFIX
from ..sandbox import cgroup, procstat
from ..sandbox.isolation import detect

DASK = os.path.join(os.path.dirname(sys.executable), "dask")
PRELOAD = "autograder.grading.dask_worker"


class Cluster:
    """A scheduler and its workers in ``folder`` (see the module docstring)."""

    def __init__(self, folder, env: dict[str, str], allowed_failures: int | None = None):
        self.folder = str(folder)
        self.env = env
        os.makedirs(self.folder, exist_ok=True)
        self.scheduler_file = os.path.join(self.folder, "scheduler.json")
        self.procs: list[subprocess.Popen] = []
        self.allowed_failures = allowed_failures
        self.address = ""

    def _start(self, argv: list[str], name: str, extra_env: dict | None = None):
        log = open(os.path.join(self.folder, f"{name}.log"), "w")
        e = {**self.env, "PATH": os.path.dirname(sys.executable) + os.pathsep
             + self.env.get("PATH", os.environ.get("PATH", "")), **(extra_env or {})}
        if self.allowed_failures is not None:
            e["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] = str(self.allowed_failures)
        # one task per worker thread: a worker that dies takes only the notebook it was grading
        e["DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION"] = "1.0"
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=e,
                                cwd=self.folder, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def start_scheduler(self) -> str:
        self._start([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                     "--scheduler-file", self.scheduler_file], "scheduler")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError, ValueError, KeyError):
                with open(self.scheduler_file) as f:
                    self.address = json.load(f)["address"]
                return self.address
            time.sleep(0.2)
        raise RuntimeError(f"the scheduler did not start: {self.log('scheduler')}")

    def add_worker(self, course: str | None, name: str, extra_env: dict | None = None,
                   nthreads: int = 1):
        argv = [DASK, "worker", self.address, "--host", "127.0.0.1", "--nworkers", "1",
                "--nthreads", str(nthreads), "--no-dashboard", "--name", name,
                "--preload", PRELOAD]
        if course is not None:
            argv += ["--course", str(course)]
        return self._start(argv, name, extra_env)

    def remove_worker(self, proc: subprocess.Popen) -> None:
        """End a worker started by :meth:`add_worker` and wait until the scheduler lost it."""
        with self.client() as c:
            before = len(c.scheduler_info()["workers"])
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
            deadline = time.monotonic() + 60
            while len(c.scheduler_info()["workers"]) >= before and time.monotonic() < deadline:
                time.sleep(0.2)

    def worker_pids(self) -> dict[str, int]:
        """The process id of each worker now connected, by address."""
        with self.client() as c:
            return c.run(os.getpid)

    def cpu(self) -> float:
        """CPU seconds of the scheduler and the workers (and of what they started and reaped)."""
        return sum(procstat.cpu_seconds(pid) or 0.0
                   for p in self.procs for pid, _ in procstat.tree(p.pid))

    def log(self, name: str) -> str:
        with contextlib.suppress(OSError):
            with open(os.path.join(self.folder, f"{name}.log")) as f:
                return f.read()[-3000:]
        return ""

    def client(self):
        # imported here so that a test can skip, saying why, where Dask is not installed
        from distributed import Client
        return Client(self.address, timeout=60)

    def wait_for_workers(self, n: int, timeout: float = 180) -> None:
        with self.client() as c:
            c.wait_for_workers(n, timeout=timeout)

    def stop(self) -> None:
        for proc in reversed(self.procs):     # workers first, the scheduler last
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        cgroup.remove_stale_cgroups(detect().cgroup, CGROUP_PREFIX)

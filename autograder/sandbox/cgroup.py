"""One control group per kernel: memory, process and CPU limits for a notebook as a whole, its
event counters, and the removal of its processes and of groups left by killed graders."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from .limits import Limits
from .reaper import stale_paths


class Cgroup:
    """One cgroup (v1 memory+pids[+cpu] or v2) for one kernel; no-op when ``spec`` is None."""

    PERIOD_US = 100_000

    def __init__(self, spec: str | None, name: str, limits: Limits):
        self.dirs: list[str] = []
        if spec is None:
            return
        version, roots = spec.split(":", 1)
        quota = int(limits.cpus * self.PERIOD_US) if limits.cpus > 0 else 0
        try:
            if version == "v2":
                d = os.path.join(roots, name)
                os.makedirs(d, exist_ok=True)
                self.dirs = [d]
                self._write(d, "memory.max", limits.memory)
                self._write(d, "memory.swap.max", 0, missing_ok=True)
                self._write(d, "pids.max", limits.processes)
                if quota:
                    self._write(d, "cpu.max", f"{quota} {self.PERIOD_US}", missing_ok=True)
            else:
                mem_root, pids_root, *cpu_root = roots.split(",")
                for root in (mem_root, pids_root, *cpu_root[:1]):
                    os.makedirs(os.path.join(root, name), exist_ok=True)
                    self.dirs.append(os.path.join(root, name))
                dm, dp = self.dirs[0], self.dirs[1]
                self._write(dm, "memory.limit_in_bytes", limits.memory)
                self._write(dm, "memory.memsw.limit_in_bytes", limits.memory, missing_ok=True)
                self._write(dp, "pids.max", limits.processes)
                if quota and cpu_root:
                    self._write(self.dirs[2], "cpu.cfs_period_us", self.PERIOD_US)
                    self._write(self.dirs[2], "cpu.cfs_quota_us", quota)
        except OSError:
            self.remove()
            self.dirs = []

    @staticmethod
    def _write(d: str, name: str, value, missing_ok: bool = False) -> None:
        try:
            with open(os.path.join(d, name), "w") as f:
                f.write(str(value))
        except OSError:
            if not missing_ok:
                raise

    def join_command(self) -> list[str]:
        """A prefix that moves the started process into the group before it execs."""
        if not self.dirs:
            return []
        writes = " ".join(f'&& echo $$ > "{d}/cgroup.procs"' for d in self.dirs)
        return ["sh", "-c", f'true {writes} && exec "$0" "$@"']

    def counters(self) -> dict[str, int]:
        """Events so far: ``oom_kill`` (processes killed for memory) and ``pids_max`` (forks
        refused at the process limit); keys are missing where the kernel does not count."""
        found: dict[str, int] = {}
        for d in self.dirs:
            for name, key, as_key in (("memory.events", "oom_kill", "oom_kill"),
                                      ("memory.oom_control", "oom_kill", "oom_kill"),
                                      ("pids.events", "max", "pids_max")):
                with contextlib.suppress(OSError, ValueError):
                    with open(os.path.join(d, name)) as f:
                        for line in f:
                            k, _, v = line.strip().partition(" ")
                            if k == key:
                                found[as_key] = found.get(as_key, 0) + int(v)
        return found

    def usage(self) -> dict[str, float]:
        """What the group's processes used so far, where the kernel says: ``cpu_seconds`` (v2
        ``cpu.stat``, v1 ``cpuacct.usage``) and ``memory_peak`` in bytes (v2 ``memory.peak``,
        v1 ``memory.max_usage_in_bytes``)."""
        found: dict[str, float] = {}
        for d in self.dirs:
            for name, key, scale in (("cpu.stat", "usage_usec", 1e-6),
                                     ("cpuacct.usage", "", 1e-9),
                                     ("memory.peak", "", 1.0),
                                     ("memory.max_usage_in_bytes", "", 1.0)):
                as_key = "memory_peak" if name.startswith("memory") else "cpu_seconds"
                with contextlib.suppress(OSError, ValueError):
                    with open(os.path.join(d, name)) as f:
                        for line in f:
                            k, _, v = line.strip().rpartition(" ")
                            if k == key:
                                found[as_key] = int(v) * scale
        return found

    def kill_all(self) -> None:
        for _ in range(50):
            pids = set()
            for d in self.dirs:
                with contextlib.suppress(OSError):
                    pids |= {int(p) for p in open(os.path.join(d, "cgroup.procs")).read().split()}
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill_all()
        for d in self.dirs:
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def remove_stale_cgroups(spec: str | None, prefix: str) -> None:
    """Remove groups ``<prefix><pid>-<n>`` left by a grader worker ``pid`` that was killed
    (their processes are killed first); groups of live workers (other runs) are left alone."""
    if spec is None:
        return
    _, roots = spec.split(":", 1)
    for root in roots.split(","):
        for d in stale_paths(root, prefix):
            with contextlib.suppress(OSError):
                for pid in open(os.path.join(d, "cgroup.procs")).read().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)
                time.sleep(0.05)
                os.rmdir(d)

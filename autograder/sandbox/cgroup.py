"""One control group per kernel: memory, process and CPU limits for a notebook as a whole, its
event counters, and the removal of its processes and of groups left by killed graders.

Removal does not give up early: a kernel that dies holding a great deal (e.g. a tmpfs full of
empty folders, which the kernel frees as its last process exits) keeps its group busy for a
while, so :func:`remove_groups` kills and retries, with growing pauses, for up to
:data:`REMOVE_PATIENCE` seconds, and says what is left should even that not suffice."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from .limits import Limits
from .reaper import stale_paths

REMOVE_PATIENCE = 300.0   # seconds a group's removal keeps trying


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
        """Events so far: ``oom_kill`` (processes killed by an out-of-memory killer, the
        machine's included), ``memory_max`` (times the group reached its own memory limit;
        cgroup v2 only, v1's ``failcnt`` is not kept by every kernel), ``memory_peak`` (the most
        memory it held, bytes), ``pids_max`` (forks refused at the process limit) and
        ``throttled_ns`` (time its CPU quota held it back); keys are missing where the kernel
        does not count."""
        found: dict[str, int] = {}

        def add(key: str, value: int) -> None:
            found[key] = found.get(key, 0) + value

        for d in self.dirs:
            for name, key, as_key in (("memory.events", "oom_kill", "oom_kill"),
                                      ("memory.events", "max", "memory_max"),
                                      ("memory.events", "oom", "memory_max"),
                                      ("memory.oom_control", "oom_kill", "oom_kill"),
                                      ("pids.events", "max", "pids_max"),
                                      ("cpu.stat", "throttled_usec", "throttled_ns"),
                                      ("cpu.stat", "throttled_time", "throttled_ns")):
                with contextlib.suppress(OSError, ValueError):
                    with open(os.path.join(d, name)) as f:
                        for line in f:
                            k, _, v = line.strip().partition(" ")
                            if k == key:
                                add(as_key, int(v) * (1000 if k == "throttled_usec" else 1))
            for name in ("memory.peak", "memory.max_usage_in_bytes"):
                with contextlib.suppress(OSError, ValueError, IndexError):
                    with open(os.path.join(d, name)) as f:
                        add("memory_peak", int(f.read().split()[0]))
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

    def threads(self) -> list[int]:
        """The host thread ids of every process in the group (empty without a group)."""
        for d in self.dirs[:1]:
            for name in ("cgroup.threads", "tasks"):
                with contextlib.suppress(OSError, ValueError):
                    with open(os.path.join(d, name)) as f:
                        return [int(t) for t in f.read().split()]
        return []

    def remove(self, patience: float = REMOVE_PATIENCE) -> str:
        """Kill every process in the group and remove it: "" when done, else what is left."""
        left = remove_groups(self.dirs, patience)
        self.dirs = []
        return left


def _procs(d: str) -> set[int]:
    with contextlib.suppress(OSError, ValueError):
        with open(os.path.join(d, "cgroup.procs")) as f:
            return {int(p) for p in f.read().split()}
    return set()


def remove_groups(dirs: list[str], patience: float = REMOVE_PATIENCE) -> str:
    """Kill the processes of the groups ``dirs`` and remove the groups, trying again with
    growing pauses (a dying process can keep its group busy for seconds) for up to
    ``patience`` seconds; "" when all are gone, else which are left and why. Never raises."""
    deadline = time.monotonic() + patience
    pause = 0.01
    left = [d for d in dirs if os.path.isdir(d)]
    for d in left:  # cgroup v2 kills all at once where it can
        with contextlib.suppress(OSError):
            fd = os.open(os.path.join(d, "cgroup.kill"), os.O_WRONLY)
            try:
                os.write(fd, b"1")
            finally:
                os.close(fd)
    why = ""
    while left:
        for d in list(left):
            for pid in _procs(d):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            try:
                os.rmdir(d)
                left.remove(d)
            except FileNotFoundError:
                left.remove(d)
            except OSError as exc:
                why = exc.strerror or str(exc)
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(pause)
        pause = min(2 * pause, 1.0)
    if left:
        return (f"control groups not removed after {patience:g} s ({why}; processes left: "
                f"{sorted(set().union(*map(_procs, left)))[:10]}): {', '.join(left)}")
    return ""


def remove_stale_cgroups(spec: str | None, prefix: str,
                         patience: float = REMOVE_PATIENCE) -> str:
    """Remove groups ``<prefix><pid>-<n>`` left by a grader worker ``pid`` that was killed
    (their processes are killed first); groups of live workers (other runs) are left alone.
    "" when all are gone, else what is left (:func:`remove_groups`)."""
    if spec is None:
        return ""
    _, roots = spec.split(":", 1)
    return remove_groups([d for root in roots.split(",") for d in stale_paths(root, prefix)],
                         patience)

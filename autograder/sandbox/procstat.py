"""CPU time of a process tree, read from ``/proc`` (Linux): what a kernel and the processes
that launch it (``sh``, ``prlimit``, ``setpriv``, bubblewrap) have used, for the timings of
:mod:`autograder.grading.timings`. Nothing here raises for a process that is gone."""

from __future__ import annotations

import contextlib
import os

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (field 3 onwards)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2:].decode("ascii", "replace").split()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and of its children that have ended (and were
    waited for), or None when the process is gone."""
    f = _fields(pid)
    if f is None or len(f) < 15:
        return None
    return sum(int(x) for x in f[11:15]) / _TICK


def tree(pid: int) -> list[tuple[int, int]]:
    """``(pid, depth)`` of ``pid`` and every process descended from it (depth 0 is ``pid``),
    by one scan of ``/proc``."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for name in os.listdir("/proc"):
            if name.isdigit():
                f = _fields(int(name))
                if f is not None and len(f) > 1:
                    children.setdefault(int(f[1]), []).append(int(name))
    found, todo = [], [(pid, 0)]
    while todo:
        p, depth = todo.pop()
        found.append((p, depth))
        todo += [(c, depth + 1) for c in children.get(p, ())]
    return found


class TreeCPU:
    """The CPU seconds of a fixed set of processes (found once with :func:`tree`); a process
    that has ended keeps its last reading, so the sum never goes down."""

    def __init__(self, pids: list[int]):
        self.last = {p: cpu_seconds(p) or 0.0 for p in pids}

    def read(self) -> float:
        for p in self.last:
            now = cpu_seconds(p)
            if now is not None:
                self.last[p] = max(now, self.last[p])
        return sum(self.last.values())

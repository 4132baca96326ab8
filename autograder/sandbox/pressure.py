"""Evidence that a fault of a notebook came from outside it: a machine short of CPU or memory.

A notebook is graded a second time only on such evidence (:mod:`autograder.grading.worker`),
never for a fault it could have caused itself: a kernel that kills itself, loops forever,
sleeps past a limit or exhausts its own memory shows none. The evidence is read from counters
the kernel cannot write:

* **memory** (:func:`outside_oom`): a process of the kernel's control group was killed by an
  out-of-memory killer although the group never came near its own memory limit (its peak
  stayed below :data:`NEAR_LIMIT` of it, cgroup v1 ``memory.max_usage_in_bytes`` or v2
  ``memory.peak``, and cgroup v2 counted no event at the limit). The machine's OOM killer
  acted because the machine, not the notebook, ran short of memory.
* **time** (:func:`starved`): over the step that hit a time limit, the kernel's main thread
  (the one that runs the cells) was ready to run but waited for a CPU at least
  :data:`MIN_WAIT_SHARE` of the time (its run-queue delay, ``/proc/<tid>/schedstat``), while
  the notebook's own threads together ran less than :data:`MAX_OWN_SHARE` of the CPU it is
  entitled to and its CPU quota did not hold it back (the group's throttled time). Other
  processes of the machine had the CPUs. A notebook that computes gets its share; one that
  sleeps does not wait for a CPU; one that keeps its own processes busy is throttled by its
  quota or uses its share.

Without a control group (no root) the notebook's threads are those of the kernel's process
tree and there is no memory evidence; a CPU-bound process that ends just before the time limit
then hides its CPU time (see ``docs/grader-security.md``).
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from dataclasses import dataclass, field

from .cgroup import Cgroup
from .limits import human_size

MIN_WAIT_SHARE = 0.25     # of the step's time the main thread waited for a CPU
MAX_OWN_SHARE = 0.75      # of its CPU share the notebook's threads used
MAX_THROTTLED_SHARE = 0.05  # of the step's time the quota held the notebook back
MIN_STEP = 1.0            # seconds: shorter steps say nothing
NEAR_LIMIT = 0.9          # of its memory limit a notebook's peak may reach and be "within"


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def children() -> dict[int, list[int]]:
    """{pid: its child processes} for every process of the machine (host pids)."""
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            parent = _parent(int(name))
            if parent is not None:
                kids.setdefault(parent, []).append(int(name))
    return kids


def descendants(root: int) -> list[int]:
    """``root`` and every process below it, breadth first (host pids)."""
    kids, order, queue = children(), [], deque([root])
    while queue:
        pid = queue.popleft()
        order.append(pid)
        queue.extend(sorted(kids.get(pid, [])))
    return order


def kernel_pid(root: int, command: list[str]) -> int | None:
    """The host pid of the process below ``root`` (the command that started the kernel) that
    runs ``command``: the first, so not one of its forked children."""
    want = "\0".join(command).encode()
    for pid in descendants(root):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().rstrip(b"\0") == want:
                    return pid
    return None


def _schedstat(tid: int) -> tuple[int, int] | None:
    """(ns on a CPU, ns ready to run but waiting for one) of thread ``tid``."""
    try:
        with open(f"/proc/{tid}/schedstat") as f:
            run, wait = f.read().split()[:2]
        return int(run), int(wait)
    except (OSError, ValueError):
        return None


def _threads(pid: int) -> list[int]:
    with contextlib.suppress(OSError):
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    return []


@dataclass(frozen=True)
class CpuSample:
    """What the kernel's threads had had of the CPUs at ``at`` (monotonic seconds)."""

    at: float
    main: tuple[int, int]                    # the main thread's (run, wait) ns
    runs: dict[int, int] = field(default_factory=dict)  # every thread of the notebook: run ns
    throttled_ns: int = 0


def sample(at: float, main_pid: int | None, cgroup: Cgroup) -> CpuSample | None:
    """The kernel's CPU counters now (None when its main thread cannot be read)."""
    main = _schedstat(main_pid) if main_pid else None
    if main is None:
        return None
    tids = cgroup.threads() or [t for p in descendants(main_pid) for t in _threads(p)]
    runs = {}
    for tid in tids:
        st = _schedstat(tid)
        if st is not None:
            runs[tid] = st[0]
    return CpuSample(at, main, runs, cgroup.counters().get("throttled_ns", 0))


def starved(before: CpuSample | None, after: CpuSample | None, share: float) -> str:
    """Evidence ("" for none) that between the samples the notebook was kept from the CPU by
    other processes of the machine (see the module docstring); ``share``: the CPUs it is
    entitled to."""
    if before is None or after is None:
        return ""
    wall = after.at - before.at
    if wall < MIN_STEP:
        return ""
    wait = (after.main[1] - before.main[1]) / 1e9
    own = sum(run - before.runs.get(tid, 0) for tid, run in after.runs.items()) / 1e9
    throttled = (after.throttled_ns - before.throttled_ns) / 1e9
    if wait >= MIN_WAIT_SHARE * wall and own < MAX_OWN_SHARE * share * wall \
            and throttled < MAX_THROTTLED_SHARE * wall:
        return (f"the machine was overloaded: the kernel was ready to run but waited for a CPU "
                f"{wait / wall:.0%} of those {wall:.0f} s and had {own / wall:.2f} of its "
                f"{share:g} CPU")
    return ""


def outside_oom(counters: dict[str, int], memory: int) -> str:
    """Evidence ("" for none) that a process of the notebook was killed by the machine's
    out-of-memory killer while the notebook was within its own ``memory`` limit."""
    if counters.get("oom_kill", 0) and "memory_peak" in counters \
            and counters["memory_peak"] < NEAR_LIMIT * memory \
            and counters.get("memory_max", 0) == 0:
        return (f"killed by the machine's out-of-memory killer while within its own memory "
                f"limit of {human_size(memory)} (the machine ran short of memory)")
    return ""

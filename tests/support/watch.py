"""The grader's resident memory while it runs, watched from outside (``/proc``).

:class:`TreeWatch` samples, in a thread, the processes below a grade command (the coordinator,
its workers and the message relays), leaving out the sandboxes and everything in them (a
``bwrap`` process or a process in a kernel's control group, and all below it: the notebook's
own memory is bounded by its own limits). It records the peak of their summed resident memory,
the largest peak of any one of them (``VmHWM``, exact even between samples) and every pid it
saw (so a test can look for what those processes left behind).
"""

from __future__ import annotations

import threading

from autograder.sandbox.pressure import children


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _sandboxed(pid: int) -> bool:
    return (_read(f"/proc/{pid}/comm").strip() == "bwrap"
            or "/autograder/" in _read(f"/proc/{pid}/cgroup"))


def _status_kib(pid: int, key: str) -> int:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def grader_tree(root: int) -> list[int]:
    """``root`` and the processes below it, without sandboxes and what runs in them."""
    kids = children()
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid != root and _sandboxed(pid):
            continue
        found.append(pid)
        stack.extend(kids.get(pid, []))
    return found


class TreeWatch:
    """Watch the grader below ``pid`` every ``interval`` seconds until :meth:`stop`."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid, self.interval = pid, interval
        self.peak_sum = 0
        self.peak_one = 0
        self.seen: set[int] = set()
        self.peaks: dict[int, tuple[int, str]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            tree = grader_tree(self.pid)
            self.seen.update(tree)
            self.peak_sum = max(self.peak_sum, 1024 * sum(_status_kib(p, "VmRSS") for p in tree))
            for p in tree:
                hwm = 1024 * _status_kib(p, "VmHWM")
                if hwm > self.peaks.get(p, (0, ""))[0]:
                    what = _read(f"/proc/{p}/cmdline").replace("\0", " ")[:120]
                    self.peaks[p] = (hwm, what)
                self.peak_one = max(self.peak_one, hwm)
            self._stop.wait(self.interval)

    def stop(self) -> dict:
        """{"peak_sum": bytes, "peak_one": bytes, "pids": [...], "top": the five largest
        processes as [peak bytes, pid, command line]} once the watching ended."""
        self._stop.set()
        self._thread.join()
        top = sorted(((hwm, pid, what) for pid, (hwm, what) in self.peaks.items()),
                     reverse=True)[:5]
        return {"peak_sum": self.peak_sum, "peak_one": self.peak_one, "pids": sorted(self.seen),
                "top": [list(t) for t in top]}

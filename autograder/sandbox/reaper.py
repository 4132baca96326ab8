"""Leftovers of processes that are gone: folders and control groups named after the process
that made them (``<prefix><pid>-<anything>``), found again after that process was killed.

:func:`stale_paths` is the one sweep both users share: the grader's per-run temporary folders
and the kernels' control groups. A name whose pid is alive (another grading run, perhaps of
another user) is never returned.
"""

from __future__ import annotations

import glob
import os


def owner_pid(name: str, prefix: str) -> int | None:
    """The pid in ``<prefix><pid>-...`` (or ``<prefix><pid>``), or None for other names."""
    if not name.startswith(prefix):
        return None
    head = name[len(prefix):].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def pid_alive(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}")


def stale_paths(folder: str, prefix: str) -> list[str]:
    """Entries ``folder/<prefix><pid>-...`` whose process ``pid`` no longer exists."""
    found = []
    for path in sorted(glob.glob(os.path.join(glob.escape(folder), glob.escape(prefix) + "*"))):
        pid = owner_pid(os.path.basename(path), prefix)
        if pid is not None and not pid_alive(pid):
            found.append(path)
    return found

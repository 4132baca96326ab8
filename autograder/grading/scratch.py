"""The per-run temporary folder that holds every kernel's working files.

It is made under TMPDIR (or /tmp where TMPDIR is too long for the kernels' socket paths) as
``agr<pid>-<random>``; folders of earlier runs whose grader process is gone (killed) are removed
first (:func:`autograder.sandbox.reaper.stale_paths`), those of live runs are left alone.
"""

from __future__ import annotations

import contextlib
import os
import tempfile

from .. import files
from ..sandbox.kernel import MAX_IPC_PATH
from ..sandbox.reaper import stale_paths

TMP_PREFIX = "agr"
IPC_ROOM = 40      # characters the kernels' socket paths add to the temporary folder


def scratch_root() -> tuple[str, list[str]]:
    """(a new temporary folder for this run, warnings about leftovers that stayed)."""
    parent = tempfile.gettempdir()
    if len(os.path.join(parent, "x").encode()) + IPC_ROOM > MAX_IPC_PATH:
        parent = "/tmp"
    warnings = []
    for d in stale_paths(parent, TMP_PREFIX):
        with contextlib.suppress(OSError):
            if os.lstat(d).st_uid == os.geteuid():
                left = files.remove_tree(d)
                if left:
                    warnings.append(left)
    return tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=parent), warnings

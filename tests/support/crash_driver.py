"""``python -m tests.support.crash_driver POINT N GRADE-ARGS...``: run ``grade`` and kill it
with SIGKILL the N-th time it reaches POINT, as a power cut or ``kill -9`` would.

Points (the function patched in this process, inherited by the forked workers):

* ``result``: a result has come back from a worker (its state file is written), before the
  gradebook is written (``GradebookSync.store``);
* ``gradebook``: right after a submission's gradebook write;
* ``state``: in a worker, before the rename that puts a state file in place (the worker kills
  the grader, then dies with it);
* ``rename:NAME``: in the grader, before the rename of the file whose name ends with NAME
  (e.g. ``grades.csv``, ``.html``, ``_histogram.png``): the temporary file is written.

``hang:NAME`` (with N) does not kill: the grader sleeps for ten minutes the N-th time it is
about to rename a file whose name ends with NAME (a slow disk), e.g. to interrupt it there.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from autograder import cli
from autograder.results.gradebook import GradebookSync

MAIN = os.getpid()


def _die() -> None:
    os.kill(MAIN, signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


def main(point: str, nth: int, argv: list[str]) -> int:
    count = [0]

    def reached() -> None:
        count[0] += 1
        if count[0] == nth:
            _die()

    store = GradebookSync.store
    if point in ("result", "gradebook"):
        def patched(self, result, job):
            if point == "result":
                reached()
            store(self, result, job)
            if point == "gradebook":
                reached()
        GradebookSync.store = patched
    else:
        replace = os.replace
        suffix = point.partition(":")[2]

        def patched_replace(src, dst, *a, **kw):
            in_worker = os.getpid() != MAIN
            if (point == "state" and in_worker and str(dst).endswith(".json")) or (
                    point.startswith("rename:") and not in_worker and str(dst).endswith(suffix)):
                reached()
            if point.startswith("hang:") and not in_worker and str(dst).endswith(suffix):
                count[0] += 1
                if count[0] == nth:
                    time.sleep(600)
            return replace(src, dst, *a, **kw)
        os.replace = patched_replace
    return cli.main(["grade", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3:]))

"""Interrupting a grading run (Ctrl-C or SIGTERM): what the coordinator, every pool and every
worker do, decided here once.

**Coordinator** (the process of ``grade``): :class:`Interrupter`, a context manager around the
run. The first SIGINT or SIGTERM sets :attr:`Interrupter.requested`, says so on stderr and calls
every callback registered with :meth:`Interrupter.on_stop` (each pool registers how it tells
its workers); the run goes on to its end: no new job is dispatched, the running kernels are
ended, finished results are kept, grades.csv is written (marked partial) and the command exits
with :attr:`Interrupter.exit_status` (130 for SIGINT, 143 for SIGTERM). A second signal exits at
once with ``128 + signal`` and no traceback: the workers die with the coordinator
(``PR_SET_PDEATHSIG``) and every kernel with its supervisor
(:mod:`autograder.sandbox.supervisor`), so that is as safe as ``kill -9``, which the state
folder and the gradebook already survive.

**Worker** (a process that grades jobs): :data:`STOP`, set by a SIGINT or SIGTERM to the worker
itself (:func:`install_worker`; a Ctrl-C in a terminal reaches the workers too) or by the
coordinator through a shared flag (:class:`SharedFlag` for local, forked workers; a pool on
other hosts shares any object with ``is_set()``, or calls ``STOP.set()`` in the worker). It is
the ``cancel`` of every kernel the worker starts, which ends the kernel within a fraction of a
second (:attr:`autograder.sandbox.kernel.Fault.ENDED`).

**The rule for results**, which every pool (local processes, Dask) follows:

1. A worker that finds :data:`STOP` set starts nothing: the job's result is
   :func:`autograder.grading.worker.interrupted_result`.
2. A result whose grading saw the stop (:data:`STOP` set before the worker decided to keep the
   result, or a kernel the grader ended) is *interrupted*: ``Result.interrupted`` and
   ``retry`` are set, its reason is :data:`NOT_GRADED`; it is never saved in the state folder
   nor written to the gradebook, so the rerun grades it again. Its row in grades.csv has score 0
   and that reason, and the summary says the grades are partial.
3. A result the worker saved before the stop is final and kept, even when it reaches the
   coordinator after the stop.
4. After the stop a pool dispatches nothing more; it yields an interrupted result for every job
   it did not dispatch and for every job whose worker has not answered within
   :data:`STOP_GRACE` seconds (it then kills that worker).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable

NOT_GRADED = "not graded: the run was interrupted"
RERUN = "run the same command again to continue"
STOP_GRACE = 15.0           # seconds a pool waits for running jobs after the stop
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def exit_status(signum: int) -> int:
    """The exit status of a command ended by signal ``signum`` (130 for SIGINT, 143 for
    SIGTERM), as shells report it."""
    return 128 + signum


class SharedFlag:
    """A flag in memory shared with forked workers, read and set without a lock (a worker
    killed at any moment cannot leave it locked)."""

    def __init__(self, ctx):
        self._value = ctx.RawValue("b", 0)

    def set(self) -> None:
        self._value.value = 1

    def is_set(self) -> bool:
        return bool(self._value.value)


class StopFlag:
    """Whether this worker process must stop grading: set here (a signal to this process) or
    through the shared flag of its pool."""

    def __init__(self) -> None:
        self._local = threading.Event()
        self._shared = None

    def share(self, shared) -> None:
        """Also stop once ``shared`` (any object with ``is_set()``) is set."""
        self._shared = shared

    def set(self) -> None:
        self._local.set()

    def is_set(self) -> bool:
        return self._local.is_set() or (self._shared is not None and self._shared.is_set())


STOP = StopFlag()


def install_worker(shared=None) -> None:
    """In a worker process: SIGINT and SIGTERM set :data:`STOP` (the worker finishes its job as
    interrupted instead of dying), and ``shared`` sets it too."""
    STOP.share(shared)
    for signum in SIGNALS:
        signal.signal(signum, lambda *_: STOP.set())


class Interrupter:
    """The coordinator's handling of SIGINT and SIGTERM (see the module docstring); outside a
    ``with`` block, or outside the main thread, it only stops when :meth:`request` is called."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def is_set(self) -> bool:
        """The same as :attr:`requested` (so it serves wherever an event is asked)."""
        return self.requested

    @property
    def name(self) -> str:
        """The name of the signal that stopped the run ("" before the stop)."""
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_status(self) -> int:
        return exit_status(self.signum or signal.SIGINT)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` at the stop (at once when the stop has come already)."""
        self._callbacks.append(callback)
        if self.requested:
            callback()

    def request(self, signum: int = signal.SIGINT) -> None:
        """Stop the run as the first ``signum`` would."""
        if self.signum is not None:
            return
        self.signum = signum
        for callback in self._callbacks:
            with contextlib.suppress(Exception):
                callback()

    def _handle(self, signum: int, _frame) -> None:
        name = signal.Signals(signum).name
        if self.signum is None:
            sys.stderr.write(f"\n{name}: stopping: no new notebook is started, the running "
                             "ones are ended, finished results are kept (send it again to "
                             "exit at once)\n")
            sys.stderr.flush()
            self.request(signum)
            return
        sys.stderr.write(f"\n{name} again: exiting at once; interrupted: {RERUN}\n")
        sys.stderr.flush()
        os._exit(exit_status(signum))

    def __enter__(self) -> Interrupter:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

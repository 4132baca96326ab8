"""Tests for autograder.grading.interrupt: the first signal stops, the second exits at once;
a worker's stop comes from its own signal or from its pool's shared flag."""

import multiprocessing
import os
import signal
import subprocess
import sys

import pytest

from autograder.grading import interrupt
from tests.support.run import REPO, env

SCRIPT = """
import os, signal, sys, time
from autograder.grading.interrupt import Interrupter
calls = []
with Interrupter() as stop:
    stop.on_stop(lambda: calls.append("callback"))
    os.kill(os.getpid(), signal.{first})
    print("requested", stop.requested, stop.exit_status, calls, flush=True)
    if {twice}:
        os.kill(os.getpid(), signal.{first})
        time.sleep(5)
        print("still running", flush=True)
print("handlers restored", signal.getsignal(signal.SIGINT) is signal.default_int_handler)
"""


def _run(first: str, twice: bool) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT.format(first=first, twice=twice)],
                          cwd=REPO, env=env(), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("first, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_the_first_signal_requests_the_stop_and_calls_back(first, status):
    """A first SIGINT or SIGTERM does not end the process: it sets the stop, calls the
    registered callbacks, says so on stderr, and the exit status to use is 128 + signal; the
    previous handlers come back after the block."""
    done = _run(first, twice=False)
    assert done.returncode == 0, done.stderr
    assert f"requested True {status} ['callback']" in done.stdout
    assert "handlers restored True" in done.stdout
    assert f"{first}: stopping" in done.stderr


@pytest.mark.parametrize("first, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_second_signal_exits_at_once_without_a_traceback(first, status):
    """The second signal ends the process at once with 128 + signal, a message and no
    traceback."""
    done = _run(first, twice=True)
    assert done.returncode == status
    assert "still running" not in done.stdout
    assert "again: exiting at once" in done.stderr and "Traceback" not in done.stderr


def test_a_callback_registered_after_the_stop_is_called_at_once():
    """A pool that starts after the stop learns of it when it registers."""
    stop = interrupt.Interrupter()
    stop.request(signal.SIGTERM)
    calls = []
    stop.on_stop(lambda: calls.append(1))
    assert calls == [1] and stop.is_set() and stop.exit_status == 143 and stop.name == "SIGTERM"


def test_a_worker_stops_on_the_shared_flag_or_its_own_signal():
    """A forked worker sees the flag its coordinator sets; a SIGTERM to the worker itself
    sets its own stop (and does not end it)."""
    ctx = multiprocessing.get_context("fork")
    shared = interrupt.SharedFlag(ctx)
    flag = interrupt.StopFlag()
    flag.share(shared)
    assert not flag.is_set()
    shared.set()
    assert flag.is_set()

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        interrupt.STOP = interrupt.StopFlag()
        interrupt.install_worker(interrupt.SharedFlag(ctx))
        os.kill(os.getpid(), signal.SIGTERM)
        os.write(write, b"1" if interrupt.STOP.is_set() else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    assert os.waitpid(pid, 0)[1] == 0

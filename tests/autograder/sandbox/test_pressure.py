"""Tests for autograder.sandbox.pressure: evidence of a cause outside the notebook."""

import os
import subprocess
import sys
import time

from autograder.sandbox import pressure
from autograder.sandbox.cgroup import Cgroup
from autograder.sandbox.limits import Limits

S = 10**9  # ns per second


def _sample(at, run, wait, own=None, throttled=0):
    return pressure.CpuSample(at, (run * S, wait * S), {1: run * S, **(own or {})},
                              throttled * S)


def test_a_kernel_kept_from_the_cpu_by_others_has_evidence():
    """Ready to run but waiting for a CPU 70% of 10 s while using 0.3 of its CPU: evidence
    naming the wait and the share."""
    why = pressure.starved(_sample(0, 0, 0), _sample(10, 3, 7), 1.0)
    assert "overloaded" in why and "70%" in why and "0.30 of its 1 CPU" in why


def test_a_notebook_that_computes_sleeps_or_throttles_itself_has_none():
    """Busy on its CPU (it had its share), asleep (it did not wait for a CPU), held back by
    its own quota, busy children of its own, or a step too short to say: no evidence."""
    before = _sample(0, 0, 0, {2: 0})
    assert pressure.starved(before, _sample(10, 9, 1), 1.0) == ""               # computes
    assert pressure.starved(before, _sample(10, 0.1, 0.1), 1.0) == ""           # sleeps
    assert pressure.starved(before, _sample(10, 3, 7, throttled=4), 1.0) == ""  # its quota
    assert pressure.starved(before, _sample(10, 3, 7, {2: 6 * S}), 1.0) == ""   # its children
    assert pressure.starved(_sample(0, 0, 0), _sample(0.5, 0, 0.4), 1.0) == ""  # too short
    assert pressure.starved(None, _sample(10, 3, 7), 1.0) == ""


def test_an_oom_kill_is_outside_only_while_within_the_own_limit():
    """An out-of-memory kill counts as the machine's only when the group's peak stayed well
    below its own limit and no event at the limit was counted (and the counters say so)."""
    assert "machine's out-of-memory killer" in pressure.outside_oom(
        {"oom_kill": 1, "memory_peak": 2**29}, 2**30)
    assert pressure.outside_oom({"oom_kill": 1, "memory_peak": 2**30}, 2**30) == ""
    assert pressure.outside_oom({"oom_kill": 1, "memory_peak": 2**29, "memory_max": 3},
                                2**30) == ""
    assert pressure.outside_oom({"oom_kill": 1}, 2**30) == ""
    assert pressure.outside_oom({"memory_peak": 2**29}, 2**30) == ""


def test_the_kernel_process_is_found_not_its_forks():
    """Below a wrapper, the first process running the kernel's command is found, not a child
    it forked (which runs the same command line)."""
    code = "import os, time\nif os.fork() == 0:\n    time.sleep(30)\ntime.sleep(30)\n"
    command = [sys.executable, "-c", code, "marker-for-the-test"]
    wrapper = subprocess.Popen(["sh", "-c", 'exec "$@"; exit', "sh", "env", *command])
    try:
        time.sleep(1.0)
        found = pressure.kernel_pid(wrapper.pid, command)
        assert found == wrapper.pid  # env exec'd the command in the wrapper's process
        kids = [p for p in pressure.descendants(wrapper.pid) if p != wrapper.pid]
        assert len(kids) == 1 and found not in kids
    finally:
        wrapper.kill()
        wrapper.wait()


def test_a_sample_reads_this_process():
    """A sample of a live process has its main thread's counters and its threads' times."""
    got = pressure.sample(time.monotonic(), os.getpid(), Cgroup(None, "x", Limits()))
    assert got is not None and got.main[0] > 0 and os.getpid() in got.runs

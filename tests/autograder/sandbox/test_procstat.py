"""Tests for autograder.sandbox.procstat: the CPU time of a process tree from /proc."""

import subprocess
import sys

from autograder.sandbox import procstat

BUSY = "import subprocess, sys, time\n" \
       "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n" \
       "t = time.process_time()\n" \
       "while time.process_time() - t < 0.3: pass\n" \
       "print('ready', flush=True)\n" \
       "time.sleep(30)\n"


def test_tree_finds_descendants_with_their_depth_and_their_cpu():
    """A process and the child it started are found (depths 0 and 1); the parent's CPU time
    counts the work it did, and a finished TreeCPU reading never goes down."""
    proc = subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        found = dict(procstat.tree(proc.pid))
        assert found[proc.pid] == 0 and sorted(found.values()) == [0, 1]
        assert procstat.cpu_seconds(proc.pid) >= 0.25
        tree = procstat.TreeCPU(list(found))
        first = tree.read()
    finally:
        for pid in procstat.tree(proc.pid)[::-1]:
            subprocess.run(["kill", "-9", str(pid[0])], check=False)
        proc.wait()
    assert tree.read() >= first >= 0.25
    assert procstat.cpu_seconds(proc.pid) is None

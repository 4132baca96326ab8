"""Tests for autograder.sandbox.cgroup: a kernel's group, its counters and its removal."""

import os
import subprocess
import time

import pytest

from autograder.sandbox.cgroup import Cgroup, remove_groups
from autograder.sandbox.isolation import detect
from autograder.sandbox.limits import Limits


def test_removal_keeps_trying_then_says_what_is_left(tmp_path):
    """A group that cannot be removed is tried again until the patience is spent, and named
    in what is returned (never an exception); one that goes away in time is removed."""
    stuck = tmp_path / "ag-1-stuck"
    (stuck / "inside").mkdir(parents=True)
    start = time.monotonic()
    left = remove_groups([str(stuck)], patience=0.5)
    assert time.monotonic() - start >= 0.5 and str(stuck) in left and "not removed" in left
    (stuck / "inside").rmdir()
    assert remove_groups([str(stuck)], patience=0.5) == "" and not stuck.exists()


def test_a_group_is_emptied_and_removed_with_its_counters_read():
    """A process in a kernel's group is listed among its threads, killed at removal, and the
    group's directories are gone; the counters include the group's memory peak."""
    spec = detect().cgroup
    if spec is None:
        pytest.skip("no cgroups here (root only)")
    group = Cgroup(spec, f"ag-test-{os.getpid()}-cg", Limits())
    proc = subprocess.Popen([*group.join_command(), "sleep", "600"])
    try:
        for _ in range(100):
            if proc.pid in group.threads():
                break
            time.sleep(0.05)
        assert proc.pid in group.threads()
        assert group.counters().get("memory_peak", -1) >= 0
        dirs = list(group.dirs)
        assert group.remove() == "" and not any(os.path.exists(d) for d in dirs)
        assert proc.wait(timeout=10) == -9
    finally:
        proc.kill()
        proc.wait()

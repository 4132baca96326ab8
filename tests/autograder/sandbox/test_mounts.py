"""Tests for autograder.sandbox.mounts: scratch space bounded in bytes and in files."""

import json
import os
import subprocess
import sys

import pytest

from tests.support.run import REPO, env

CHILD = """
import json, os, sys
from autograder.sandbox import mounts
from autograder.sandbox.limits import Limits
base = sys.argv[1]
assert mounts.private_namespace()
got = mounts.scratch_mounts(base, Limits(tmpfs_bytes=2**20))
made = 0
try:
    while True:
        os.mkdir(os.path.join(got["/tmp"], f"d{made}"))
        made += 1
except OSError as exc:
    why = exc.strerror
mounted = [line.split()[4] for line in open("/proc/self/mountinfo") if base in line]
for host in got.values():
    mounts.unmount(host)
after = [line for line in open("/proc/self/mountinfo") if base in line]
print(json.dumps({"got": got, "made": made, "why": why, "mounted": mounted, "after": after}))
"""


def test_scratch_mounts_bound_files_and_stay_private(tmp_path):
    """As root, each scratch tmpfs takes at most SCRATCH_INODES files; the mounts exist only
    in the mount namespace of the process that made them and go away when unmounted."""
    if os.geteuid() != 0:
        pytest.skip("only root mounts the scratch space")
    from autograder.sandbox.mounts import SCRATCH_INODES
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout)
    assert set(r["got"]) == {"/home/student", "/tmp", "/dev/shm"} and len(r["mounted"]) == 3
    assert SCRATCH_INODES - 10 < r["made"] < SCRATCH_INODES and "space" in r["why"]
    assert r["after"] == []
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read()

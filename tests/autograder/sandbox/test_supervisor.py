"""Tests for autograder.sandbox.supervisor and the kernel's lifetime: nothing a kernel starts
outlives it, the grader ending it, or the death of the process that started it, with the
sandbox and without it."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from autograder.sandbox import kernel as kernel_run
from autograder.sandbox import supervisor
from autograder.sandbox.isolation import Isolation, detect
from autograder.sandbox.limits import Limits
from tests.support.crash import MODES, leftovers, survivor_cell, wait_for, wait_gone
from tests.support.run import REPO, env

LIMITS = Limits(cell_timeout=60, notebook_timeout=120, memory=2**30, processes=64)


def _spawner(token: str, sleep: float = 900) -> list[str]:
    """A command that starts a process in a session of its own and a double-forked one (both
    with ``token`` in their command lines), then sleeps ``sleep`` seconds."""
    return [sys.executable, "-c", survivor_cell(token, sleep), token]


def test_the_command_status_is_passed_on():
    """An exit code comes back as it is, and a death by a signal as that signal."""
    assert subprocess.run(supervisor.command([sys.executable, "-c", "raise SystemExit(7)"])
                          ).returncode == 7
    killed = subprocess.run(supervisor.command(
        [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]))
    assert killed.returncode == -signal.SIGKILL
    assert subprocess.run(supervisor.command(["/nonexistent/program"]),
                          capture_output=True).returncode == 127


def test_what_a_command_left_behind_ends_with_it(tmp_path):
    """Processes a command detached (own session, double fork) are killed when it exits."""
    token = f"{tmp_path}/left"
    done = subprocess.run(supervisor.command(_spawner(token, sleep=1)),
                          timeout=120)
    assert done.returncode == 0
    assert wait_gone([token], 5) == []


def test_sigterm_ends_every_descendant(tmp_path):
    """SIGTERM (how the grader closes a kernel) kills the command and every process it
    started, detached or not, and the supervisor says it was ended."""
    token = f"{tmp_path}/term"
    proc = subprocess.Popen(supervisor.command(_spawner(token)), start_new_session=True)
    # the supervisor, the command, its sleeper and the double-forked one name the token
    wait_for(lambda: len(leftovers([token])) >= 4, timeout=60, what="the spawned processes")
    proc.terminate()
    assert proc.wait(timeout=30) == supervisor.EXIT_ENDED
    assert wait_gone([token], 5) == []


def test_the_death_of_its_parent_by_sigkill_ends_every_descendant(tmp_path):
    """When the process that started the supervisor is killed with SIGKILL, the command and
    everything it started die too."""
    token = f"{tmp_path}/orphan"
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, time\n"
                               "from autograder.sandbox import supervisor\n"
                               f"subprocess.Popen(supervisor.command({_spawner(token)!r}))\n"
                               "time.sleep(900)\n"], cwd=REPO, env=env())
    wait_for(lambda: len(leftovers([token])) >= 5, timeout=60, what="the spawned processes")
    parent.kill()
    parent.wait()
    assert wait_gone([token], 10) == []


@pytest.fixture(params=MODES)
def isolation(request):
    if request.param == "sandboxed":
        return detect()
    return Isolation(bwrap=None, separate_user=False, cgroup=None)


@pytest.mark.slow
def test_cancel_ends_a_running_cell_and_all_it_started(isolation, tmp_path):
    """Setting the kernel's cancel event stops a running cell with the fault kind ENDED (not
    the notebook's doing), and what the cell started is gone once the kernel is closed."""
    token = f"{tmp_path}/cancel"
    os.chmod(tmp_path, 0o755)
    (tmp_path / "run").mkdir()
    (tmp_path / "cases").mkdir()
    cancel = threading.Event()
    with kernel_run.SandboxedKernel(isolation, LIMITS, slot=5, run_dir=str(tmp_path / "run"),
                                    cases_dir=str(tmp_path / "cases"), helper_files={},
                                    cgroup_name=f"ag-cancel-{os.getpid()}",
                                    cancel=cancel) as k:
        threading.Thread(target=lambda: (wait_for(lambda: len(leftovers([token])) >= 2,
                                                  timeout=60), cancel.set()),
                         daemon=True).start()
        step = k.execute(survivor_cell(token, 900))
        assert step.status == "dead" and k.fault_kind is kernel_run.Fault.ENDED
        assert step.error == kernel_run.ENDED_REASON
    assert wait_gone([token], 10) == []


@pytest.mark.slow
def test_a_grader_killed_with_sigkill_leaves_no_kernel_process(isolation, tmp_path):
    """A process running a kernel (as a grader worker does) is killed with SIGKILL while the
    notebook's detached processes run: the kernel and those processes die with it."""
    token = f"{tmp_path}/killed"
    cfg = {"code": survivor_cell(token, 900),
           "limits": {"cell_timeout": 600, "notebook_timeout": 600}, "tmp": str(tmp_path)}
    e = env() if isolation.sandboxed else {**env(), "AUTOGRADER_BWRAP": "none"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.kernel_probe",
                             json.dumps(cfg)], cwd=REPO, env=e, stdout=subprocess.DEVNULL)
    wait_for(lambda: len(leftovers([token])) >= 2 or proc.poll() is not None, timeout=120,
             what="the notebook's processes")
    assert proc.poll() is None
    time.sleep(0.2)
    proc.kill()
    proc.wait()
    assert wait_gone([token, f"{tmp_path}/kp-"], 15) == []

"""The parent of one kernel's command: nothing the kernel starts outlives it, or the grader.

Run by :class:`autograder.sandbox.kernel.SandboxedKernel` as ``python -I supervisor.py PARENT
-- COMMAND...`` (the standard library only), with or without bubblewrap. It

* becomes a child subreaper (``PR_SET_CHILD_SUBREAPER``): whatever the kernel starts and
  orphans (a daemon that forks twice, a process that calls ``setsid``) becomes its child, not
  init's, so every such process stays one of its descendants;
* asks for ``SIGTERM`` when the process that started it dies (``PR_SET_PDEATHSIG``; that
  process is a grader worker, which itself dies with the grader, also after ``kill -9``), and
  exits at once when that process is already gone (``PARENT`` is its pid);
* starts COMMAND and waits. When COMMAND ends, or on ``SIGTERM``, ``SIGINT`` or ``SIGHUP`` (the
  grader ending the kernel), or when its parent is gone, it kills every descendant with
  ``SIGKILL`` (found through ``/proc`` by parent pid, again and again until none is left: the
  orphans of killed processes come back to it) and reaps them;
* exits with COMMAND's status: its exit code, or the signal that ended it (passed on by ending
  itself with the same signal; core dumps are off), so the grader reads a kernel's death as it
  would without the supervisor. Ended before COMMAND ended: exit status :data:`EXIT_ENDED`.

Where the grader has cgroups (root), each kernel's group is also emptied when it is closed
(:class:`autograder.sandbox.cgroup.Cgroup`); bubblewrap's PID namespace and
``--die-with-parent`` hold inside the sandbox. The supervisor is the one layer that holds in
every mode, as root or not, sandboxed or not. Student code that runs as the grader's user (no
sandbox) could kill the supervisor itself with ``SIGKILL``; without a sandbox that user can do
anything the grader can, so this is no new hole (see ``docs/grader-security.md``).
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
EXIT_ENDED = 128 + signal.SIGTERM
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
DEFAULTS = tuple(sorted(signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}))
PARENT_CHECK = 1.0          # seconds between looks at the parent, beside PR_SET_PDEATHSIG
KILL_ROUNDS = 500           # rounds of 20 ms: 10 s for processes stuck in the kernel


def command(argv: list[str]) -> list[str]:
    """``argv`` run under a supervisor whose parent is this process."""
    return [sys.executable, "-I", os.path.abspath(__file__), str(os.getpid()), "--", *argv]


def _parent_of(pid: str) -> int | None:
    """The parent pid of process ``pid`` from ``/proc/<pid>/stat``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ")"
    fields = stat[stat.rfind(b")") + 2:].split()
    return int(fields[1]) if len(fields) > 1 else None


def descendants(root: int) -> set[int]:
    """Every live (or not yet reaped) process below ``root``."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            ppid = _parent_of(name)
            if ppid is not None:
                children.setdefault(ppid, []).append(int(name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _reap(main: int, status: list[int]) -> bool:
    """Reap every child that has ended (``main``'s wait status into ``status``); whether any
    child is left. None left means no descendant is left: a subreaper's descendants that are
    not its children have a living parent among them."""
    while True:
        try:
            pid, code = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True
        if pid == main:
            status.append(code)


def kill_descendants(main: int, status: list[int]) -> None:
    """SIGKILL every descendant until none is left (reaping them, ``main`` into ``status``)."""
    me = os.getpid()
    for _ in range(KILL_ROUNDS):
        if not _reap(main, status):
            return
        pids = descendants(me)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _reap(main, status)
        if not pids:
            return
        time.sleep(0.02)


def _exit_like(code: int) -> int:
    """Exit as COMMAND did (wait status ``code``): the same exit code or the same signal."""
    if os.WIFSIGNALED(code):
        sig = os.WTERMSIG(code)
        if sig != signal.SIGKILL:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {sig})
        os.kill(os.getpid(), sig)
        return 128 + sig            # a signal whose default is to be ignored
    return os.waitstatus_to_exitcode(code)


def main(argv: list[str]) -> int:
    parent, command = int(argv[1]), argv[3:]
    libc = ctypes.CDLL(None, use_errno=True)
    watched = STOP_SIGNALS | {signal.SIGCHLD}
    signal.pthread_sigmask(signal.SIG_BLOCK, watched)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        return EXIT_ENDED
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        # every signal at its default (Python ignores SIGPIPE and SIGXFSZ), none blocked
        main_pid = os.posix_spawnp(command[0], command, dict(os.environ), setsigmask=(),
                                   setsigdef=DEFAULTS)
    except OSError as exc:
        print(f"supervisor: cannot start {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    status: list[int] = []
    while not status:
        info = signal.sigtimedwait(watched, PARENT_CHECK)
        if (info is not None and info.si_signo in STOP_SIGNALS) or os.getppid() != parent:
            kill_descendants(main_pid, status)
            return EXIT_ENDED
        _reap(main_pid, status)
    kill_descendants(main_pid, status)
    return _exit_like(status[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv))

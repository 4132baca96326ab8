"""Isolation of the student's kernel: what is in force, and the command that starts it.

Layers, from the outside in (each one the grader can set up is used; :func:`detect` reports
which):

* **cgroup** (root, cgroup v1 or v2 with memory+pids, and cpu where available): one group per
  kernel with a memory limit for the whole notebook (all its processes together, files in its
  tmpfs included), a process limit and a CPU quota (``Limits.cpus``, so a notebook that keeps
  many processes busy cannot starve the kernels beside it); at the end every process in it is
  killed and the group removed.
* **rlimits** (always, via ``prlimit``): address space per process (= the memory limit without
  a cgroup, a loose guard with one), number
  of processes of the sandbox user, file size, open files, no core dumps.
* **separate user** (root): the kernel runs as an otherwise unused uid (one per worker slot), so
  it cannot signal or write anything of the grader's, and the process limit counts only it.
* **bubblewrap** (``bwrap``, user namespaces): new PID, network (no network at all), IPC, UTS
  and cgroup namespaces; a filesystem view made only of read-only system directories, the
  Python installation and its site-packages (with the project's editable-install hook masked),
  the case inputs (read-only), the kernel's socket folder, and size-limited tmpfs for the home
  folder, /tmp and /dev/shm; the root and /dev are read-only, so nothing else is writable.
  The project tree (``solutions/``, ``autograder/``), the course folder (source notebooks,
  gradebook, other students), grades.csv and feedback are simply not there.
  ``--die-with-parent`` and the PID namespace kill every process the notebook started when the
  kernel ends or the grader dies.

The kernel's Python starts with ``-I -S`` (no PYTHONPATH, no user site, no ``.pth`` processing)
and adds site-packages itself, skipping ``__editable__*`` hooks, so ``import solutions`` and
``import autograder`` fail inside the kernel even without bubblewrap.
"""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

from .limits import MIB, Limits, human_size
from .python import python_paths

UID_BASE = 3_200_000  # uids UID_BASE + slot run the kernels when the grader runs as root


@dataclass
class Isolation:
    """What isolation is in force for this run."""

    bwrap: str | None
    separate_user: bool
    cgroup: str | None          # "v2:<root>", "v1:<memory root>,<pids root>" or None
    notes: list[str] = field(default_factory=list)

    @property
    def sandboxed(self) -> bool:
        return self.bwrap is not None

    def brief(self) -> str:
        """One line: the layers in force (for a table of grading machines)."""
        layers = ["bubblewrap" if self.sandboxed else "NONE (rlimits only)"]
        if self.separate_user:
            layers.append("separate uids")
        if self.cgroup:
            layers.append(f"cgroup {self.cgroup.split(':', 1)[0]}")
        return ", ".join(layers)

    def describe(self, limits: Limits) -> str:
        if self.sandboxed:
            lines = ["isolation: bubblewrap sandbox (namespaces: user, pid, network, ipc, uts, "
                     "cgroup; no network; filesystem view without the project, course folder, "
                     "gradebook or other students' files)"]
        else:
            lines = ["isolation: NONE - student code runs as an ordinary process of this user "
                     "(rlimits and a cleaned environment only; it can read and write whatever "
                     "this user can)"]
        lines.append("  user: " + (f"separate unprivileged uids from {UID_BASE}"
                                   if self.separate_user else "the grader's own uid"))
        lines.append("  cgroup: " + (self.cgroup or "none (memory limit per process only)"))
        cpu = self.cgroup is not None and _has_cpu(self.cgroup) and limits.cpus > 0
        lines.append(
            f"  limits: cell {limits.cell_timeout:g}s, notebook {limits.notebook_timeout:g}s, "
            f"memory {limits.memory / MIB:.0f} MiB, processes {limits.processes}, file size "
            f"{limits.file_size / MIB:.0f} MiB, output {limits.output_bytes / MIB:.0f} MiB "
            f"(all messages {human_size(limits.receive_bytes)}), scratch disk "
            f"{limits.tmpfs_bytes / MIB:.0f} MiB, /dev/shm {limits.shm_bytes / MIB:.0f} MiB, "
            + (f"CPU {limits.cpus:g} per notebook" if cpu else "no CPU quota"))
        lines.extend("  note: " + n for n in self.notes)
        return "\n".join(lines)



def _probe(bwrap: str | None, uid: int | None) -> str | None:
    """None when this Python starts (in a trivial bwrap sandbox, as ``uid``), else why not."""
    python, _, _ = python_paths()
    check = f"import sys; sys.exit(0 if sys.base_prefix == {sys.base_prefix!r} else 5)"
    cmd = [python, "-I", "-S", "-c", check]
    if bwrap is not None:
        cmd = [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent"] + cmd
    if uid is not None:
        cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"] + cmd
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if r.returncode == 0 else (r.stderr.strip()[-300:] or f"exit code {r.returncode}")


def _cgroup_roots() -> str | None:
    """"v2:<root>" or "v1:<memory root>,<pids root>[,<cpu root>]" where this process may
    create groups (root only), else None."""
    if os.geteuid() != 0:
        return None
    base = "/sys/fs/cgroup"
    if os.path.exists(os.path.join(base, "cgroup.controllers")):
        controllers = open(os.path.join(base, "cgroup.controllers")).read().split()
        if {"memory", "pids"} <= set(controllers):
            root = os.path.join(base, "autograder")
            try:
                os.makedirs(root, exist_ok=True)
                for d in (base, root):
                    with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
                        f.write("+memory +pids")
                if "cpu" in controllers:
                    with contextlib.suppress(OSError):
                        for d in (base, root):
                            with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
                                f.write("+cpu")
                return f"v2:{root}"
            except OSError:
                return None
        return None
    mem, pids, cpu = (os.path.join(base, c) for c in ("memory", "pids", "cpu"))
    if os.path.isdir(mem) and os.path.isdir(pids):
        try:
            for d in (mem, pids):
                os.makedirs(os.path.join(d, "autograder"), exist_ok=True)
        except OSError:
            return None
        roots = [f"{mem}/autograder", f"{pids}/autograder"]
        with contextlib.suppress(OSError):
            if os.path.exists(os.path.join(cpu, "cpu.cfs_quota_us")):
                os.makedirs(os.path.join(cpu, "autograder"), exist_ok=True)
                roots.append(f"{cpu}/autograder")
        return "v1:" + ",".join(roots)
    return None


def _has_cpu(spec: str) -> bool:
    """Whether the cgroups of ``spec`` can hold a CPU quota."""
    version, roots = spec.split(":", 1)
    if version == "v1":
        return len(roots.split(",")) > 2
    try:
        with open(os.path.join(roots, "cgroup.subtree_control")) as f:
            return "cpu" in f.read().split()
    except OSError:
        return False


class Bwrap(enum.Enum):
    """Whether bubblewrap can be used: yes, switched off (``AUTOGRADER_BWRAP=none``), not
    installed, or installed but unable to create namespaces."""

    USABLE = "usable"
    DISABLED = "disabled"
    MISSING = "missing"
    BROKEN = "broken"


def find_bwrap() -> tuple[Bwrap, str | None, str]:
    """(state, path of a usable bwrap or None, a note saying why not). ``AUTOGRADER_BWRAP``
    names the bwrap to use, or ``none`` for none."""
    bwrap = os.environ.get("AUTOGRADER_BWRAP") or shutil.which("bwrap")
    if bwrap == "none":  # for tests and machines where bubblewrap must not be used
        return Bwrap.DISABLED, None, "bubblewrap disabled by AUTOGRADER_BWRAP=none"
    if bwrap is None:
        return (Bwrap.MISSING, None,
                "bubblewrap (bwrap) is not installed: apt-get install -y bubblewrap")
    why = _probe(bwrap, None)
    if why is not None:
        return Bwrap.BROKEN, None, f"bwrap cannot create namespaces here: {why}"
    return Bwrap.USABLE, bwrap, ""


def detect() -> Isolation:
    """Find out which isolation this machine allows (bwrap, separate uid, cgroups)."""
    _, bwrap, note = find_bwrap()
    notes = [note] if note else []
    root = os.geteuid() == 0
    separate = root and shutil.which("setpriv") is not None
    if separate:
        why = _probe(bwrap, UID_BASE)
        if why is not None:
            separate = False
            notes.append(f"a separate uid cannot run this Python ({why}); the kernel runs "
                         "under the grader's uid" + (" mapped into a user namespace"
                                                     if bwrap else ""))
    if shutil.which("prlimit") is None:
        notes.append("prlimit (util-linux) missing: no rlimits")
    cgroup = _cgroup_roots()
    if not separate and cgroup is None:
        notes.append("no cgroup and no separate uid: the process limit counts all of this "
                     "user's processes and the memory limit holds per process")
    return Isolation(bwrap=bwrap, separate_user=separate, cgroup=cgroup, notes=notes)


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
import glob
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field

GIB = 2**30
MIB = 2**20
SANDBOX_HOME = "/home/student"
CASES_DIR = "/io/cases"
ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone",
               "nsswitch.conf", "passwd", "group", "hosts", "host.conf", "mime.types",
               "ssl", "ca-certificates", "fonts", "alternatives", "os-release")
SHM_BYTES = 64 * MIB
UID_BASE = 3_200_000  # uids SANDBOX_UID_BASE + slot are used for kernels when running as root


@dataclass(frozen=True)
class Limits:
    """Resource limits for one notebook (defaults: a correct solution finishes far inside)."""

    cell_timeout: float = 120.0
    notebook_timeout: float = 600.0
    memory: int = 2 * GIB
    processes: int = 128
    file_size: int = 64 * MIB
    open_files: int = 512
    output_bytes: int = 8 * MIB
    tmpfs_bytes: int = 512 * MIB
    receive_bytes: int = GIB       # all the kernel may send to the grader, outputs included
    cpus: float = 1.0              # CPU quota per notebook where cgroups allow (0: none)

    @property
    def shm_bytes(self) -> int:
        """Size of the kernel's /dev/shm."""
        return min(SHM_BYTES, self.tmpfs_bytes)


def human_size(n: float) -> str:
    """``n`` bytes as e.g. "2 GiB", "512 MiB", "300 bytes"."""
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} bytes"


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


def _python_paths() -> tuple[str, str, list[str]]:
    """(interpreter, site-packages, read-only roots the interpreter needs)."""
    exe = os.path.realpath(sys.executable)
    python = os.path.join(os.path.realpath(sys.prefix), "bin", os.path.basename(sys.executable))
    if not os.path.exists(python):
        python = exe
    purelib = sysconfig.get_paths()["purelib"]
    roots = {os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix),
             os.path.realpath(sys.exec_prefix), os.path.realpath(sys.base_exec_prefix),
             os.path.dirname(os.path.dirname(exe))}
    roots.add(os.path.realpath(purelib))
    # sys.prefix of a venv holds bin/python as a link into the base installation
    return python, os.path.realpath(purelib), sorted(roots)


def _bootstrap(purelib: str) -> str:
    """Python source run with ``-I -S`` that adds site-packages (without editable hooks) and
    starts the IPython kernel."""
    return (
        "import os, site, sys\n"
        f"sp = {purelib!r}\n"
        "sys.path.append(sp)\n"
        "known = set(sys.path)\n"
        "for f in sorted(os.listdir(sp)):\n"
        "    if f.endswith('.pth') and not f.startswith('__editable__'):\n"
        "        site.addpackage(sp, f, known)\n"
        "sys.path.insert(0, '')\n"
        "from ipykernel import kernelapp\n"
        "kernelapp.launch_new_instance()\n"
    )


def _probe(bwrap: str | None, uid: int | None) -> str | None:
    """None when this Python starts (in a trivial bwrap sandbox, as ``uid``), else why not."""
    python, _, _ = _python_paths()
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


def detect() -> Isolation:
    """Find out which isolation this machine allows (bwrap, separate uid, cgroups)."""
    notes: list[str] = []
    bwrap = os.environ.get("AUTOGRADER_BWRAP") or shutil.which("bwrap")
    if bwrap == "none":  # for tests and machines where bubblewrap must not be used
        bwrap = None
        notes.append("bubblewrap disabled by AUTOGRADER_BWRAP=none")
    root = os.geteuid() == 0
    separate = root and shutil.which("setpriv") is not None
    if bwrap is None:
        if not notes:
            notes.append("bubblewrap (bwrap) is not installed: apt-get install -y bubblewrap")
    else:
        why = _probe(bwrap, None)
        if why is not None:
            notes.append(f"bwrap cannot create namespaces here: {why}")
            bwrap = None
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


class Cgroup:
    """One cgroup (v1 memory+pids[+cpu] or v2) for one kernel; no-op when ``spec`` is None."""

    PERIOD_US = 100_000

    def __init__(self, spec: str | None, name: str, limits: Limits):
        self.dirs: list[str] = []
        if spec is None:
            return
        version, roots = spec.split(":", 1)
        quota = int(limits.cpus * self.PERIOD_US) if limits.cpus > 0 else 0
        try:
            if version == "v2":
                d = os.path.join(roots, name)
                os.makedirs(d, exist_ok=True)
                self.dirs = [d]
                self._write(d, "memory.max", limits.memory)
                self._write(d, "memory.swap.max", 0, missing_ok=True)
                self._write(d, "pids.max", limits.processes)
                if quota:
                    self._write(d, "cpu.max", f"{quota} {self.PERIOD_US}", missing_ok=True)
            else:
                mem_root, pids_root, *cpu_root = roots.split(",")
                for root in (mem_root, pids_root, *cpu_root[:1]):
                    os.makedirs(os.path.join(root, name), exist_ok=True)
                    self.dirs.append(os.path.join(root, name))
                dm, dp = self.dirs[0], self.dirs[1]
                self._write(dm, "memory.limit_in_bytes", limits.memory)
                self._write(dm, "memory.memsw.limit_in_bytes", limits.memory, missing_ok=True)
                self._write(dp, "pids.max", limits.processes)
                if quota and cpu_root:
                    self._write(self.dirs[2], "cpu.cfs_period_us", self.PERIOD_US)
                    self._write(self.dirs[2], "cpu.cfs_quota_us", quota)
        except OSError:
            self.remove()
            self.dirs = []

    @staticmethod
    def _write(d: str, name: str, value, missing_ok: bool = False) -> None:
        try:
            with open(os.path.join(d, name), "w") as f:
                f.write(str(value))
        except OSError:
            if not missing_ok:
                raise

    def join_command(self) -> list[str]:
        """A prefix that moves the started process into the group before it execs."""
        if not self.dirs:
            return []
        writes = " ".join(f'&& echo $$ > "{d}/cgroup.procs"' for d in self.dirs)
        return ["sh", "-c", f'true {writes} && exec "$0" "$@"']

    def counters(self) -> dict[str, int]:
        """Events so far: ``oom_kill`` (processes killed for memory) and ``pids_max`` (forks
        refused at the process limit); keys are missing where the kernel does not count."""
        found: dict[str, int] = {}
        for d in self.dirs:
            for name, key, as_key in (("memory.events", "oom_kill", "oom_kill"),
                                      ("memory.oom_control", "oom_kill", "oom_kill"),
                                      ("pids.events", "max", "pids_max")):
                with contextlib.suppress(OSError, ValueError):
                    with open(os.path.join(d, name)) as f:
                        for line in f:
                            k, _, v = line.strip().partition(" ")
                            if k == key:
                                found[as_key] = found.get(as_key, 0) + int(v)
        return found

    def oom_killed(self) -> bool:
        return self.counters().get("oom_kill", 0) > 0

    def kill_all(self) -> None:
        for _ in range(50):
            pids = set()
            for d in self.dirs:
                with contextlib.suppress(OSError):
                    pids |= {int(p) for p in open(os.path.join(d, "cgroup.procs")).read().split()}
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)

    def remove(self) -> None:
        self.kill_all()
        for d in self.dirs:
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def remove_stale_cgroups(spec: str | None, prefix: str) -> None:
    """Remove groups ``<prefix><pid>-<n>`` left by a grader worker ``pid`` that was killed
    (their processes are killed first); groups of live workers (other runs) are left alone."""
    if spec is None:
        return
    _, roots = spec.split(":", 1)
    for root in roots.split(","):
        for d in glob.glob(os.path.join(root, prefix + "*")):
            owner = os.path.basename(d)[len(prefix):].split("-", 1)[0]
            if not owner.isdigit() or os.path.exists(f"/proc/{owner}"):
                continue
            with contextlib.suppress(OSError):
                for pid in open(os.path.join(d, "cgroup.procs")).read().split():
                    with contextlib.suppress(OSError):
                        os.kill(int(pid), signal.SIGKILL)
                time.sleep(0.05)
                os.rmdir(d)


def _user_tasks() -> int:
    """How many tasks (threads) this uid runs now: RLIMIT_NPROC counts them all."""
    uid, n = os.getuid(), 0
    for d in glob.glob("/proc/[0-9]*/task/[0-9]*"):
        with contextlib.suppress(OSError):
            if os.stat(d).st_uid == uid:
                n += 1
    return n


def kernel_argv(isolation: Isolation, limits: Limits, *, slot: int, run_dir: str,
                cases_dir: str, helper_files: dict[str, str], cgroup: Cgroup) -> list[str]:
    """The command that starts one sandboxed kernel.

    ``run_dir`` (host) holds the connection file and the kernel's sockets and is bound at the
    same path inside; ``cases_dir`` is bound read-only at :data:`CASES_DIR`; ``helper_files``
    maps file names to host paths bound read-only into the kernel's working folder.
    """
    python, purelib, roots = _python_paths()
    boot = _bootstrap(purelib)
    env = {
        "HOME": SANDBOX_HOME, "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
        "TMPDIR": "/tmp", "MPLCONFIGDIR": f"{SANDBOX_HOME}/.config/matplotlib",
        "IPYTHONDIR": f"{SANDBOX_HOME}/.ipython", "JUPYTER_RUNTIME_DIR": "/tmp/jupyter",
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1", "AUTOGRADER_CASES": CASES_DIR,
        "CUDA_VISIBLE_DEVICES": "",
    }
    argv: list[str] = []
    argv += cgroup.join_command()
    if shutil.which("prlimit"):
        # with a cgroup the memory limit holds for the notebook as a whole; address space is
        # then only a guard (libraries such as torch reserve much more than they use)
        address_space = limits.memory + (8 * GIB if cgroup.dirs else 0)
        argv += ["prlimit", f"--as={address_space}", f"--fsize={limits.file_size}",
                 f"--nofile={limits.open_files}", "--core=0"]
        if isolation.separate_user:
            argv.append(f"--nproc={limits.processes}")
        elif os.geteuid() != 0 and not cgroup.dirs:
            argv.append(f"--nproc={_user_tasks() + limits.processes}")
        argv.append("--")
    if isolation.separate_user:
        uid = UID_BASE + slot
        argv += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--"]
    if isolation.sandboxed:
        b = [isolation.bwrap, "--unshare-all", "--die-with-parent", "--new-session",
             "--clearenv", "--cap-drop", "ALL"]
        for d in ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin"):
            if os.path.islink(d):
                b += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                b += ["--ro-bind", d, d]
        # only the public parts of /etc (the kernel may map to the grader's uid, which would
        # make files such as /etc/shadow readable if all of /etc were there)
        for name in ETC_ENTRIES:
            path = os.path.join("/etc", name)
            if os.path.lexists(path):
                b += ["--ro-bind", path, path]
        # tmpfs first: a Python installation under /tmp or /home is bound over it afterwards
        b += ["--size", str(limits.tmpfs_bytes), "--tmpfs", "/tmp",
              "--size", str(limits.tmpfs_bytes), "--tmpfs", SANDBOX_HOME]
        for r in roots:
            if not r.startswith("/usr/"):
                b += ["--ro-bind", r, r]
        for hook in glob.glob(os.path.join(purelib, "__editable__*")):
            b += ["--ro-bind", "/dev/null", hook]
        # /dev read-only but for a small /dev/shm of its own; at the end the root itself is
        # made read-only, so home, /tmp, /dev/shm (and the socket folder) are all it can write
        b += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev",
              "--size", str(limits.shm_bytes), "--tmpfs", "/dev/shm",
              "--ro-bind", cases_dir, CASES_DIR,
              "--bind", run_dir, run_dir]
        for name, host in sorted(helper_files.items()):
            b += ["--ro-bind", host, f"{SANDBOX_HOME}/{name}"]
        b += ["--remount-ro", "/", "--chdir", SANDBOX_HOME]
        for k, v in env.items():
            b += ["--setenv", k, v]
        argv += b + [python, "-I", "-S", "-c", boot, "-f", "{connection_file}",
                          "--HistoryManager.hist_file=:memory:"]
    else:
        argv += ["env", "-i"] + [f"{k}={v}" for k, v in env.items()
                                 if k not in ("HOME", "TMPDIR", "AUTOGRADER_CASES")]
        argv += [f"HOME={run_dir}/home", f"TMPDIR={run_dir}/home",
                 f"AUTOGRADER_CASES={cases_dir}", f"MPLCONFIGDIR={run_dir}/home/.mpl",
                 f"IPYTHONDIR={run_dir}/home/.ipython", f"JUPYTER_RUNTIME_DIR={run_dir}/home"]
        argv += [python, "-I", "-S", "-c", boot, "-f", "{connection_file}",
                          "--HistoryManager.hist_file=:memory:"]
    return argv

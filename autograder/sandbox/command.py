"""The command line that starts one student's kernel inside the isolation
:func:`autograder.sandbox.isolation.detect` found (see that module for the layers)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil

from .cgroup import Cgroup
from .isolation import UID_BASE, Isolation
from .limits import GIB, Limits
from .python import bootstrap, python_paths

SANDBOX_HOME = "/home/student"
CASES_DIR = "/io/cases"
ETC_ENTRIES = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone",
               "nsswitch.conf", "passwd", "group", "hosts", "host.conf", "mime.types",
               "ssl", "ca-certificates", "fonts", "alternatives", "os-release")


def _user_tasks() -> int:
    """How many tasks (threads) this uid runs now: RLIMIT_NPROC counts them all."""
    uid, n = os.getuid(), 0
    for d in glob.glob("/proc/[0-9]*/task/[0-9]*"):
        with contextlib.suppress(OSError):
            if os.stat(d).st_uid == uid:
                n += 1
    return n


def python_command() -> list[str]:
    """The kernel's own command (the end of :func:`kernel_argv`), ``{connection_file}`` standing
    for the connection file: the process running it is the kernel."""
    python, purelib, _ = python_paths()
    return [python, "-I", "-S", "-c", bootstrap(purelib), "-f", "{connection_file}",
            "--HistoryManager.hist_file=:memory:"]


def kernel_argv(isolation: Isolation, limits: Limits, *, slot: int, run_dir: str,
                cases_dir: str, helper_files: dict[str, str], cgroup: Cgroup,
                scratch: dict[str, str] | None = None) -> list[str]:
    """The command that starts one sandboxed kernel.

    ``run_dir`` (host) holds the connection file and the kernel's sockets and is bound at the
    same path inside; ``cases_dir`` is bound read-only at :data:`CASES_DIR`; ``helper_files``
    maps file names to host paths bound read-only into the kernel's working folder;
    ``scratch`` maps the writable places (home, ``/tmp``, ``/dev/shm``) to host tmpfs mounts
    bounded in bytes and files (:func:`autograder.sandbox.mounts.scratch_mounts`); a place
    missing there gets bubblewrap's tmpfs, bounded in bytes only.
    """
    python, purelib, roots = python_paths()
    scratch = scratch or {}

    def writable(place: str, size: int) -> list[str]:
        if place in scratch:
            return ["--bind", scratch[place], place]
        return ["--size", str(size), "--tmpfs", place]

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
        b += writable("/tmp", limits.tmpfs_bytes) + writable(SANDBOX_HOME, limits.tmpfs_bytes)
        for r in roots:
            if not r.startswith("/usr/"):
                b += ["--ro-bind", r, r]
        for hook in glob.glob(os.path.join(purelib, "__editable__*")):
            b += ["--ro-bind", "/dev/null", hook]
        # /dev read-only but for a small /dev/shm of its own; at the end the root itself is
        # made read-only, so home, /tmp, /dev/shm (and the socket folder) are all it can write
        b += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev",
              *writable("/dev/shm", limits.shm_bytes),
              "--ro-bind", cases_dir, CASES_DIR,
              "--bind", run_dir, run_dir]
        for name, host in sorted(helper_files.items()):
            b += ["--ro-bind", host, f"{SANDBOX_HOME}/{name}"]
        b += ["--remount-ro", "/", "--chdir", SANDBOX_HOME]
        for k, v in env.items():
            b += ["--setenv", k, v]
        argv += b + python_command()
    else:
        argv += ["env", "-i"] + [f"{k}={v}" for k, v in env.items()
                                 if k not in ("HOME", "TMPDIR", "AUTOGRADER_CASES")]
        argv += [f"HOME={run_dir}/home", f"TMPDIR={run_dir}/home",
                 f"AUTOGRADER_CASES={cases_dir}", f"MPLCONFIGDIR={run_dir}/home/.mpl",
                 f"IPYTHONDIR={run_dir}/home/.ipython", f"JUPYTER_RUNTIME_DIR={run_dir}/home"]
        argv += python_command()
    return argv


"""Run code cells one by one in a sandboxed kernel with time, output and traffic limits.

The kernel is an ordinary IPython kernel started with the command from
:func:`autograder.sandbox.command.kernel_argv`; it binds ZeroMQ ``ipc`` sockets in a per-kernel
folder (the sandbox has no network, not even loopback). The grader reaches those sockets only
through a relay process (:mod:`autograder.sandbox.wire`, :mod:`autograder.sandbox.relay`),
which bounds every message and the bytes the kernel may send in all (``Limits.receive_bytes``).
Messages that are not well-formed Jupyter messages are ignored with a note; outputs are kept
with active content removed (:func:`autograder.sandbox.outputs.output_from_message`) up to the
notebook's output budget, beyond which they are dropped with a note; harness record payloads
are set aside for the grader, only their known fields and within bounds
(:func:`record_payload`), and what is kept of them counts against :data:`PAYLOAD_BUDGET`.

Time limits: a cell that runs past the per-cell limit is interrupted (an ``interrupt_request``
on the control channel); if the kernel does not come back within a grace period, or the
notebook limit is reached, the kernel and everything it started are killed and the remaining
cells are not run.

The kernel's command runs under :mod:`autograder.sandbox.supervisor`, which kills everything
the kernel started when the kernel ends, when :meth:`SandboxedKernel.close` ends it, and when
the process that started it dies (even by ``kill -9``), sandbox or not. A ``cancel`` event
(e.g. the grader's stop on Ctrl-C) ends the kernel within a fraction of a second, with the
fault kind :attr:`Fault.ENDED`: such a run says nothing about the notebook.

Start-up is timed (:class:`Startup`): the sandbox's part ends when the kernel's Python runs its
first line (it writes :data:`autograder.sandbox.python.START_MARK` to its log), the kernel's part
when it answers; :meth:`SandboxedKernel.cpu_seconds` reads the CPU time of its processes.

Whatever ends a notebook early (time limit, death of the kernel, too much output, writing into
the socket folder, the grader ending it) sets :attr:`SandboxedKernel.fault` to a reason and
:attr:`fault_kind` to a short kind; :meth:`SandboxedKernel.notes` lists what went wrong
without stopping it. Nothing the student's code does makes :meth:`SandboxedKernel.execute`
raise. When a time limit or a death has evidence of a cause outside the notebook
(:mod:`autograder.sandbox.pressure`: the machine's CPUs or memory taken by others),
:attr:`SandboxedKernel.outside` says so.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from jupyter_client.session import Session

from .. import files
from ..text import cap, clean
from . import pressure, procstat, relay, supervisor
from .cgroup import Cgroup
from .command import kernel_argv, python_command
from .harness import MAX_ERROR_TEXT, MAX_ERRORS, MAX_RECORD_BYTES, MIME
from .isolation import UID_BASE, Isolation
from .limits import Limits, human_size
from .outputs import output_from_message
from .python import START_MARK
from .wire import Arrival, KernelWire, Received

INTERRUPT_GRACE = 5.0
LOST_GRACE = 10.0              # seconds a kernel that closed its sockets has to end
DEATH_GRACE = 0.5               # seconds a kernel's death may take to show before a fault
CLOSE_GRACE = 10.0              # seconds the supervisor gets to kill what the kernel started
REPLY_GRACE = 2.0
START_TIMEOUT = 90.0
PAYLOAD_BUDGET = 4 * MAX_RECORD_BYTES  # what is kept of record payloads per notebook
MAX_MESSAGE_EXTRA = MAX_RECORD_BYTES * 4 // 3 + 8 * 2**20  # one record (base64) and change
MAX_PART_ID = 200              # characters of a payload's part id
PORTS = {"shell": 1, "iopub": 2, "stdin": 3, "control": 4, "hb": 5}
MAX_IPC_PATH = 107              # sun_path holds 107 bytes and a NUL
FOLDER_CHECK = 0.5              # seconds between looks at the socket folder
FOLDER_MAX_BYTES, FOLDER_MAX_ENTRIES = 2**20, 64
ENDED_REASON = "the grader ended the kernel (the run was interrupted)"
SIGNALS = {getattr(signal, n): n for n in ("SIGKILL", "SIGSEGV", "SIGABRT", "SIGBUS", "SIGXCPU",
                                           "SIGILL", "SIGFPE", "SIGTERM", "SIGXFSZ")}


@dataclass
class StepResult:
    """What happened when one piece of code ran."""

    status: str                      # ok | error | timeout | dead | not-run
    outputs: list = field(default_factory=list)
    error: str = ""                  # "ename: evalue" of the last error output (capped)
    payloads: list = field(default_factory=list)  # harness record payloads, in order


class Fault(enum.Enum):
    """Why a notebook ended early: a time limit, killed by the machine's out-of-memory killer
    while within its own limit, its memory limit, any other death (SIGKILL without evidence of
    an outside cause included), too much output, writing into the kernel's socket folder, or
    the grader ending it (``cancel``: not the notebook's doing)."""

    TIMEOUT = "timeout"
    KILLED = "killed"
    MEMORY = "memory"
    DIED = "died"
    OUTPUT = "output"
    FOLDER = "folder"
    ENDED = "ended"


class Cancel(Protocol):
    """What :class:`SandboxedKernel` asks whether the grader wants it ended (a
    ``threading.Event`` is one)."""

    def is_set(self) -> bool: ...


@dataclass
class Startup:
    """Seconds (wall, CPU) the start of a kernel took: ``sandbox`` from the launch of its
    command until its Python runs (CPU of the launching processes: sh, prlimit, setpriv,
    bubblewrap), ``kernel`` from there until it answers (CPU of its Python and of the grader
    thread waiting for it)."""

    sandbox_wall: float = 0.0
    sandbox_cpu: float = 0.0
    kernel_wall: float = 0.0
    kernel_cpu: float = 0.0


class KernelDied(RuntimeError):
    """The kernel could not be started (never the student's doing: no student code has run)."""


class KernelEnded(KernelDied):
    """The grader ended the kernel (``cancel``) before it had started."""


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def record_payload(msg_type: str, content: dict) -> tuple[dict, int] | None:
    """(the harness record payload a display message carries, the bytes it keeps), or None.

    Only what the grader reads is kept, and only in the shapes it accepts: a string ``part`` of
    at most :data:`MAX_PART_ID` characters, an integer ``cases``, ``npz`` text no longer than
    a message may carry besides outputs, ``errors`` as an object of at most
    :data:`~autograder.sandbox.harness.MAX_ERRORS` strings (cut to
    :data:`~autograder.sandbox.harness.MAX_ERROR_TEXT` characters). A field in any other shape
    is kept as None, which the grader rejects with a reason; nothing else of the message is
    kept, so what is kept is bounded however the message was built."""
    data = content.get("data") if isinstance(content, dict) else None
    if msg_type not in ("display_data", "execute_result") or not isinstance(data, dict) \
            or not isinstance(data.get(MIME), dict):
        return None
    value = data[MIME]
    kept: dict[str, Any] = {}
    for key, ok in (("part", lambda v: isinstance(v, str) and len(v) <= MAX_PART_ID),
                    ("cases", lambda v: type(v) is int),
                    ("npz", lambda v: isinstance(v, str) and len(v) <= MAX_MESSAGE_EXTRA)):
        if key in value:
            kept[key] = value[key] if ok(value[key]) else None
    if "errors" in value:
        errors = value["errors"]
        kept["errors"] = ({str(k)[:20]: v[:MAX_ERROR_TEXT] for k, v in errors.items()}
                          if isinstance(errors, dict) and len(errors) <= MAX_ERRORS
                          and all(isinstance(v, str) for v in errors.values()) else None)
    size = 256 + sum(len(v) for v in kept.values() if isinstance(v, str)) + sum(
        64 + len(k) + len(v) for k, v in (kept.get("errors") or {}).items())
    return kept, size


class SandboxedKernel:
    """One kernel for one notebook; use as a context manager (always killed on exit).

    ``run_dir`` is bound into the sandbox; the kernel's log (``<run_dir>.log``) and the relay's
    socket (``<run_dir>-relay``) lie beside it, where the kernel cannot reach them. Once
    ``cancel`` is set the kernel is ended (fault kind :attr:`Fault.ENDED`); before it has
    started, :class:`KernelDied` says so."""

    def __init__(self, isolation: Isolation, limits: Limits, *, slot: int, run_dir: str,
                 cases_dir: str, helper_files: dict[str, str], cgroup_name: str,
                 cancel: Cancel | None = None, deadline: float | None = None,
                 scratch: dict[str, str] | None = None):
        self.isolation, self.limits, self.slot = isolation, limits, slot
        self.cancel = cancel
        self.scratch = scratch or {}
        self.run_dir, self.cases_dir, self.helper_files = run_dir, cases_dir, helper_files
        self.log_path = run_dir.rstrip("/") + ".log"
        self.cgroup = Cgroup(isolation.cgroup, cgroup_name, limits)
        self.output_used = 0
        self.payload_used = 0
        self.output_overflow = False
        self.fault = ""
        self.fault_kind: Fault | None = None
        self.outside = ""               # evidence that a fault came from outside the notebook
        self.left = ""                  # what could not be removed (its control group)
        self.main_pid: int | None = None  # the process running the kernel (host pid)
        self._bad: list[str] = []
        self._dropped = 0
        self._payloads_dropped = 0
        self._folder_checked = 0.0
        self._final_counters: dict[str, int] | None = None
        self.proc: subprocess.Popen | None = None
        self.wire: KernelWire | None = None
        self.deadline = (deadline if deadline is not None
                         else time.monotonic() + limits.notebook_timeout)
        self._launched, self._launch_cpu = time.monotonic(), time.thread_time()
        self.startup = Startup()
        self._tree_cpu: procstat.TreeCPU | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> SandboxedKernel:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> None:
        uid = None
        if self.isolation.separate_user:
            uid = UID_BASE + self.slot
        ip = os.path.join(self.run_dir, "k")
        for path in (f"{ip}-{max(PORTS.values())}", self.run_dir + "-relay"):
            if len(path.encode()) > MAX_IPC_PATH:
                raise KernelDied(f"the socket path {path!r} is too long for ZeroMQ; use a "
                                 "shorter temporary folder (TMPDIR)")
        home = os.path.join(self.run_dir, "home")
        if not self.isolation.sandboxed:
            os.makedirs(home, exist_ok=True)
            for name, host in self.helper_files.items():
                with open(host, "rb") as src, open(os.path.join(home, name), "wb") as dst:
                    dst.write(src.read())
        key = secrets.token_hex(32)
        conn = {"transport": "ipc", "ip": ip, "key": key, "signature_scheme": "hmac-sha256",
                "kernel_name": "sandboxed", **{f"{k}_port": v for k, v in PORTS.items()}}
        conn_file = os.path.join(self.run_dir, "kernel.json")
        fd = os.open(conn_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(conn, f)
        if uid is not None:
            for path in (self.run_dir, conn_file, home):
                if os.path.exists(path):
                    os.chown(path, uid, uid)
        argv = [conn_file if a == "{connection_file}" else a for a in kernel_argv(
            self.isolation, self.limits, slot=self.slot, run_dir=self.run_dir,
            cases_dir=self.cases_dir, helper_files=self.helper_files, cgroup=self.cgroup,
            scratch=self.scratch)]
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
                      | os.O_CLOEXEC, 0o600)
        try:
            self.proc = subprocess.Popen(
                supervisor.command(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True,
                cwd=home if not self.isolation.sandboxed else self.run_dir,
                env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
        finally:
            os.close(log)
        session = Session(key=key.encode(), signature_scheme="hmac-sha256",
                          username="autograder")
        max_message = self.limits.output_bytes + MAX_MESSAGE_EXTRA
        self.wire = KernelWire(session, {c: f"ipc://{ip}-{PORTS[c]}" for c in
                                         ("shell", "control", "iopub")},
                               self.run_dir.rstrip("/"), max_message=max_message,
                               budget=self.limits.receive_bytes)
        self._wait_ready()
        self.main_pid = pressure.kernel_pid(self.proc.pid, [
            conn_file if a == "{connection_file}" else a for a in python_command()])
        self._time_startup()
        if uid is not None:
            # the kernel has bound its sockets: from now on it cannot create files here
            os.chown(self.run_dir, 0, 0)
            os.chmod(self.run_dir, 0o711)

    def _wait_ready(self) -> None:
        """Until the kernel answers ``kernel_info`` and its iopub messages arrive."""
        deadline = time.monotonic() + START_TIMEOUT
        replied = iopub = False
        next_request = 0.0
        while not (replied and iopub):
            now = time.monotonic()
            if self.cancelled():
                raise KernelEnded(ENDED_REASON)
            if self.proc.poll() is not None:
                raise KernelDied(f"the kernel did not start (exit status {self.proc.poll()}); "
                                 f"{self.kernel_log_tail()}")
            if self.wire.relay.poll() is not None:
                raise KernelDied(f"the message relay stopped at start (exit status "
                                 f"{self.wire.relay.poll()})")
            if now > deadline:
                raise KernelDied(f"the kernel did not start within {START_TIMEOUT:g} s; "
                                 f"{self.kernel_log_tail()}")
            if now >= next_request:
                self.wire.send("shell", "kernel_info_request", {})
                next_request = now + 1.0
            got = self.wire.recv(0.1)
            if got is not None and got.msg is not None:
                replied |= got.channel == "shell" and got.msg["msg_type"] == "kernel_info_reply"
                iopub |= got.channel == "iopub"

    def _time_startup(self) -> None:
        """Fill :attr:`startup` and find the kernel's processes (the deepest of the launched
        command's tree is the kernel's Python, the others launched it)."""
        ready = time.monotonic()
        procs = procstat.tree(self.proc.pid)
        deepest = max(depth for _, depth in procs)
        self._tree_cpu = procstat.TreeCPU([p for p, _ in procs])
        cpu = self._tree_cpu.last
        launch_cpu = sum(cpu[p] for p, depth in procs if depth < deepest)
        kernel_cpu = sum(cpu[p] for p, depth in procs if depth == deepest)
        started = self._launched
        first = files.head(self.log_path, 200).partition("\n")[0]
        if first.startswith(START_MARK):
            with contextlib.suppress(ValueError):
                started = min(max(float(first[len(START_MARK):]), self._launched), ready)
        self.startup = Startup(started - self._launched, launch_cpu, ready - started,
                               kernel_cpu + time.thread_time() - self._launch_cpu)

    def cpu_seconds(self) -> float:
        """CPU seconds the kernel's processes have used so far (0 before it answered)."""
        return self._tree_cpu.read() if self._tree_cpu is not None else 0.0

    def kernel_log_tail(self, n: int = 400) -> str:
        """The end of what the kernel wrote to its stdout and stderr."""
        return files.tail(self.log_path, n)

    def cancelled(self) -> bool:
        """Whether the grader asked for this kernel to be ended."""
        return self.cancel is not None and self.cancel.is_set()

    def close(self) -> None:
        """Kill the kernel and everything it started (the supervisor does, on SIGTERM); stop
        the relay. Idempotent."""
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(OSError):
                    self.proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=CLOSE_GRACE)
            if self.proc.poll() is None:  # a supervisor that did not end: the group at least
                with contextlib.suppress(OSError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                with contextlib.suppress(OSError):
                    self.proc.kill()
            with contextlib.suppress(Exception):
                self.proc.wait(timeout=10)
        if self._final_counters is None:
            self._final_counters = self.cgroup.counters()
        self.left = self.cgroup.remove() or self.left
        if self.wire is not None:
            with contextlib.suppress(Exception):
                self.wire.close()
            self.wire = None

    def counters(self) -> dict[str, int]:
        """The cgroup's event counters (:meth:`autograder.sandbox.Cgroup.counters`), as they
        were when the kernel was closed once it is."""
        if self._final_counters is not None:
            return self._final_counters
        return self.cgroup.counters()

    def usage(self) -> dict[str, float]:
        """CPU seconds and peak memory of the kernel so far (:meth:`Cgroup.usage`)."""
        return self.cgroup.usage()

    def _cpu_share(self) -> float:
        """The CPUs the notebook is entitled to (its quota; 1 without one)."""
        return min(self.limits.cpus, os.cpu_count() or 1) if self.limits.cpus > 0 else 1.0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.wire is not None

    def notes(self) -> list[str]:
        """What went wrong without stopping the notebook (for its reason)."""
        out = []
        if self.output_overflow:
            out.append(f"output beyond {human_size(self.limits.output_bytes)} was dropped")
        if self._dropped:
            out.append(f"{_count(self._dropped, 'message')} from the kernel larger than "
                       f"{human_size(self.limits.output_bytes + MAX_MESSAGE_EXTRA)} dropped "
                       "(output not kept)")
        if self._payloads_dropped:
            out.append(f"{_count(self._payloads_dropped, 'record message')} beyond "
                       f"{human_size(PAYLOAD_BUDGET)} ignored")
        if self._bad:
            out.append(f"{_count(len(self._bad), 'malformed message')} from the kernel ignored "
                       f"(first: {self._bad[0]})")
        return out

    # -- faults ----------------------------------------------------------------------------
    def _stop(self, result: StepResult, kind: Fault, reason: str) -> StepResult:
        self.fault, self.fault_kind = reason, kind
        self.close()
        result.status = "timeout" if kind is Fault.TIMEOUT else "dead"
        result.error = reason
        return result

    def _died(self, result: StepResult) -> StepResult:
        kind, reason = describe_death(self)
        return self._stop(result, kind, reason)

    def _gone_within(self, seconds: float) -> bool:
        """Whether the kernel has ended, or ends within ``seconds`` (its supervisor takes a
        moment to kill what the kernel left and pass its status on)."""
        if seconds > 0:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=seconds)
        return self.proc.poll() is not None

    def _watch(self, now: float) -> tuple[Fault, str] | None:
        """(kind, reason) when the relay stopped or the socket folder is being filled."""
        failure = self.wire.failure()
        if failure:
            # a dead kernel breaks the relay's connections too: give its death time to show (the
            # teardown of a scratch space full of files can take the kernel seconds)
            if self._gone_within(LOST_GRACE if self.wire.relay.poll() == relay.EXIT_LOST
                                 else 0.0):
                return None
            return Fault.OUTPUT, failure
        if now - self._folder_checked >= FOLDER_CHECK:
            self._folder_checked = now
            # without a sandbox the folder is also the kernel's home: the scratch size holds
            max_bytes, max_entries = ((FOLDER_MAX_BYTES, FOLDER_MAX_ENTRIES)
                                      if self.isolation.sandboxed
                                      else (self.limits.tmpfs_bytes, 100 * FOLDER_MAX_ENTRIES))
            size, entries = files.usage(self.run_dir, max_entries)
            # a notebook that filled the folder and then died: its death is what counts
            if (size > max_bytes or entries > max_entries) and not self._gone_within(DEATH_GRACE):
                return Fault.FOLDER, ("the notebook wrote into the kernel's socket folder (more "
                                  f"than {human_size(max_bytes)} or {max_entries} files), "
                                  "which is not allowed")
        return None

    # -- execution -------------------------------------------------------------------------
    def _keep(self, mtype: str, content: dict, result: StepResult) -> None:
        found = record_payload(mtype, content)
        if found is not None:
            payload, size = found
            if self.payload_used + size > PAYLOAD_BUDGET:
                self._payloads_dropped += 1  # a flood of (forged) records cannot fill memory
                return
            self.payload_used += size
            result.payloads.append(payload)
            out = output_from_message("display_data", {"data": {
                "text/plain": "<recorded outputs>"}})
        else:
            out = output_from_message(mtype, content)
            if out is None:
                return
        cost = len(json.dumps(out))
        if self.output_used + cost > self.limits.output_bytes:
            self.output_overflow = True
            if not any(o.get("name") == "stderr" and "[autograder:" in o.get("text", "")
                       for o in result.outputs):
                result.outputs.append(output_from_message("stream", {
                    "name": "stderr", "text": f"[autograder: output beyond "
                                              f"{human_size(self.limits.output_bytes)} "
                                              "was dropped]\n"}))
            return
        self.output_used += cost
        result.outputs.append(out)

    def _handle(self, got: Received, msg_id: str, result: StepResult, state: dict) -> bool:
        """Take one message into ``result``; True when the execution is over."""
        msg = got.msg
        if msg["parent_header"].get("msg_id") != msg_id:
            return False
        mtype, content = msg["msg_type"], msg["content"]
        if got.channel == "shell":
            if mtype == "execute_reply" and state["replied"] is None:
                state["replied"] = time.monotonic()
                # the reply says so too: an error whose output was dropped still counts
                if content.get("status") == "error" and result.status == "ok":
                    result.status = "error"
                    result.error = cap(f"{clean(content.get('ename', ''))}: "
                                       f"{clean(content.get('evalue', ''))}")
            return False
        if got.channel != "iopub":
            return False
        if mtype == "status":
            return content.get("execution_state") == "idle"
        if mtype == "clear_output":
            result.outputs = []
        elif mtype in ("stream", "display_data", "execute_result", "error"):
            if mtype == "error":
                if result.status == "ok":
                    result.status = "error"
                result.error = cap(f"{clean(content.get('ename', ''))}: "
                                   f"{clean(content.get('evalue', ''))}")
            self._keep(mtype, content, result)
        return False

    def execute(self, code: str) -> StepResult:
        """Run ``code``; never raises for anything the student's code does."""
        if self.fault or not self.alive():
            return StepResult("dead", error=self.fault or "the kernel is not running")
        result = StepResult("ok")
        msg_id = self.wire.send("shell", "execute_request", {
            "code": clean(code), "silent": False, "store_history": True,
            "user_expressions": {}, "allow_stdin": False, "stop_on_error": False})
        started = time.monotonic()
        before = pressure.sample(started, self.main_pid, self.cgroup)
        cell_deadline = min(started + self.limits.cell_timeout, self.deadline)
        interrupted_at = None
        heard = started
        state: dict[str, Any] = {"replied": None}
        while True:
            now = time.monotonic()
            if self.cancelled():
                return self._stop(result, Fault.ENDED, ENDED_REASON)
            if interrupted_at is None and now >= cell_deadline:
                interrupted_at = now
                result.status = "timeout"
                self.outside = self.outside or pressure.starved(
                    before, pressure.sample(now, self.main_pid, self.cgroup), self._cpu_share())
                if now >= self.deadline:
                    return self._stop(result, Fault.TIMEOUT, "the notebook exceeded its time limit "
                                      f"of {self.limits.notebook_timeout:g} s")
                with contextlib.suppress(Exception):
                    self.wire.send("control", "interrupt_request", {})
            if interrupted_at is not None and now >= interrupted_at + INTERRUPT_GRACE:
                return self._stop(result, Fault.TIMEOUT, "the cell exceeded the time limit of "
                                  f"{self.limits.cell_timeout:g} s and ignored the interrupt")
            watched = self._watch(now)
            if watched:
                return self._stop(result, *watched)
            if self.proc.poll() is not None:
                return self._died(result)
            # the reply arrived but the idle status was lost: the execution is over all the same
            # (once nothing has come for a while: its messages may still be on their way)
            if state["replied"] is not None and now - max(state["replied"], heard) > REPLY_GRACE:
                break
            got = self.wire.recv(0.25)
            if got is None:
                if self.proc.poll() is not None:
                    return self._died(result)
                continue
            heard = time.monotonic()
            if got.msg is None:
                if got.kind is Arrival.DROPPED:
                    self._dropped += 1
                    if got.channel == "shell" and result.status == "ok":
                        # the reply, too large to read: only an error (or a forgery) is
                        result.status = "error"
                        result.error = (f"the kernel's reply ({human_size(got.size)}) was too "
                                        "large to read")
                else:
                    self._bad.append(cap(got.bad, 200))
                continue
            try:
                if self._handle(got, msg_id, result, state):
                    break
            except Exception as exc:  # whatever a message holds, it is the kernel's doing
                self._bad.append(cap(f"{type(exc).__name__}: {exc}", 200))
        if result.status == "timeout":
            result.error = (f"the cell exceeded the time limit of {self.limits.cell_timeout:g} s "
                            "and was interrupted")
        return result


def describe_death(kernel: SandboxedKernel) -> tuple[Fault, str]:
    """(kind, reason): why the kernel is gone, as far as the grader can tell. Kinds: killed
    (by the machine's out-of-memory killer while within its own limit: the one outside cause
    the grader can prove, which also sets ``kernel.outside``), memory (its own memory limit),
    died (anything else, a SIGKILL it may have sent itself included)."""
    limit = human_size(kernel.limits.memory)
    counters = kernel.counters()
    outside = pressure.outside_oom(counters, kernel.limits.memory)
    if outside:
        kernel.outside = f"the kernel was {outside}"
        return Fault.KILLED, kernel.outside
    if counters.get("oom_kill", 0):
        return Fault.MEMORY, f"the kernel was killed for using more than {limit} of memory"
    rc = kernel.proc.poll() if kernel.proc is not None else None
    tail = kernel.kernel_log_tail(300)
    # bubblewrap passes a signal on as exit status 128 + signal number
    sig = -rc if rc is not None and rc < 0 else (
        rc - 128 if rc is not None and rc > 128 and kernel.isolation.sandboxed else None)
    if sig is not None:
        name = SIGNALS.get(sig, f"signal {sig}")
        what = f"killed by {name}" if sig == signal.SIGKILL else name
        return Fault.DIED, f"the kernel died ({what}, exit status {rc})"
    if "MemoryError" in tail:
        return Fault.MEMORY, f"the kernel died after running out of memory (limit {limit})"
    extra = f" (exit status {rc})" if rc is not None else ""
    return Fault.DIED, f"the kernel died{extra}"

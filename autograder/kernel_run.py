"""Run code cells one by one in a sandboxed kernel with time and output limits.

The kernel is an ordinary IPython kernel started with the command from
:func:`autograder.sandbox.kernel_argv`, talking over ZeroMQ ``ipc`` sockets in a per-kernel
folder (the sandbox has no network, not even loopback). Messages larger than the output budget
are refused by ZeroMQ itself (``MAXMSGSIZE``), outputs beyond the notebook's budget are dropped
with a note, and harness record payloads are set aside for the grader rather than counted.

Time limits: a cell that runs past the per-cell limit is interrupted (an ``interrupt_request``
on the control channel); if the kernel does not come back within a grace period, or the
notebook limit is reached, the kernel and everything it started are killed and the remaining
cells are not run.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import nbformat
import zmq
from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager

from .records import MIME
from .sandbox import Cgroup, Isolation, Limits, kernel_argv

INTERRUPT_GRACE = 5.0
REPLY_GRACE = 2.0
START_TIMEOUT = 90.0
PAYLOAD_BUDGET = 256 * 2**20  # record bytes (base64) kept per notebook


@dataclass
class StepResult:
    """What happened when one piece of code ran."""

    status: str                      # ok | error | timeout | dead | not-run
    outputs: list = field(default_factory=list)
    error: str = ""                  # "ename: evalue" of the last error output
    payloads: list = field(default_factory=list)  # harness record payloads, in order


class KernelDied(RuntimeError):
    """The kernel could not be started or stopped answering for good."""


class SandboxedKernel:
    """One kernel for one notebook; use as a context manager (always killed on exit)."""

    def __init__(self, isolation: Isolation, limits: Limits, *, slot: int, run_dir: str,
                 cases_dir: str, helper_files: dict[str, str], cgroup_name: str):
        self.isolation, self.limits, self.slot = isolation, limits, slot
        self.run_dir, self.cases_dir, self.helper_files = run_dir, cases_dir, helper_files
        self.cgroup = Cgroup(isolation.cgroup, cgroup_name, limits)
        self.output_used = 0
        self.payload_used = 0
        self.output_overflow = False
        self.km: KernelManager | None = None
        self.kc = None
        self._ctx = zmq.Context()
        self._ctx.setsockopt(zmq.MAXMSGSIZE, limits.output_bytes + 80 * 2**20)
        self.deadline = time.monotonic() + limits.notebook_timeout

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
            from .sandbox import UID_BASE
            uid = UID_BASE + self.slot
        specs = os.path.join(self.run_dir, "kernelspec")
        os.makedirs(os.path.join(specs, "sandboxed"), exist_ok=True)
        home = os.path.join(self.run_dir, "home")
        if not self.isolation.sandboxed:
            os.makedirs(home, exist_ok=True)
            for name, host in self.helper_files.items():
                dest = os.path.join(home, name)
                with open(host, "rb") as src, open(dest, "wb") as dst:
                    dst.write(src.read())
        argv = kernel_argv(self.isolation, self.limits, slot=self.slot, run_dir=self.run_dir,
                           cases_dir=self.cases_dir, helper_files=self.helper_files,
                           cgroup=self.cgroup)
        with open(os.path.join(specs, "sandboxed", "kernel.json"), "w") as f:
            json.dump({"argv": argv, "display_name": "sandboxed", "language": "python",
                       "interrupt_mode": "message"}, f)
        ksm = KernelSpecManager(kernel_dirs=[specs])
        self.km = KernelManager(kernel_name="sandboxed", kernel_spec_manager=ksm,
                                transport="ipc", ip=os.path.join(self.run_dir, "k"),
                                context=self._ctx,
                                connection_file=os.path.join(self.run_dir, "kernel.json"))
        self.km.write_connection_file()
        if uid is not None:
            for path in (self.run_dir, self.km.connection_file, home):
                if os.path.exists(path):
                    os.chown(path, uid, uid)
        log = open(os.path.join(self.run_dir, "kernel.log"), "wb")
        try:
            self.km.start_kernel(cwd=home if not self.isolation.sandboxed else self.run_dir,
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        finally:
            log.close()
        self.kc = self.km.client()
        self.kc.start_channels()
        try:
            self.kc.wait_for_ready(timeout=START_TIMEOUT)
        except RuntimeError as exc:
            raise KernelDied(f"the kernel did not start: {exc}; {self.kernel_log_tail()}") \
                from None
        if uid is not None:
            # the kernel has bound its sockets: from now on it cannot create files here
            os.chown(self.run_dir, 0, 0)
            os.chmod(self.run_dir, 0o711)

    def kernel_log_tail(self, n: int = 400) -> str:
        with contextlib.suppress(OSError):
            with open(os.path.join(self.run_dir, "kernel.log"), "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - n))
                return f.read().decode("utf-8", "replace").strip()
        return ""

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.kc is not None:
                self.kc.stop_channels()
        with contextlib.suppress(Exception):
            if self.km is not None and self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
        with contextlib.suppress(Exception):
            if self.km is not None:
                self.km.cleanup_resources()
        self.cgroup.remove()
        with contextlib.suppress(Exception):
            self._ctx.destroy(linger=0)

    def alive(self) -> bool:
        try:
            return self.km is not None and self.km.is_alive()
        except Exception:
            return False

    def oom_killed(self) -> bool:
        return self.cgroup.oom_killed()

    # -- execution -------------------------------------------------------------------------
    def _keep_output(self, out: dict, result: StepResult) -> None:
        data = out.get("data") if isinstance(out, dict) else None
        if isinstance(data, dict) and MIME in data:
            payload = data[MIME]
            npz = payload.get("npz") if isinstance(payload, dict) else None
            size = len(npz) if isinstance(npz, str) else 0
            if self.payload_used + size > PAYLOAD_BUDGET or not isinstance(payload, dict):
                return  # a flood of (forged) records cannot exhaust the grader's memory
            self.payload_used += size
            result.payloads.append(payload)
            out = nbformat.v4.new_output("display_data",
                                         data={"text/plain": "<recorded outputs>"})
            result.outputs.append(out)
            return
        size = len(json.dumps(out, default=str))
        if self.output_used + size > self.limits.output_bytes:
            if not self.output_overflow:
                self.output_overflow = True
                result.outputs.append(nbformat.v4.new_output(
                    "stream", name="stderr",
                    text=f"[autograder: output beyond {self.limits.output_bytes} bytes "
                         "was dropped]\n"))
            return
        self.output_used += size
        result.outputs.append(out)

    def execute(self, code: str) -> StepResult:
        """Run ``code``; never raises for anything the student's code does."""
        if not self.alive():
            return StepResult("dead", error="the kernel is not running")
        result = StepResult("ok")
        msg_id = self.kc.execute(code, store_history=True, allow_stdin=False,
                                 stop_on_error=False)
        cell_deadline = min(time.monotonic() + self.limits.cell_timeout, self.deadline)
        interrupted_at = None
        replied_at = None
        while True:
            now = time.monotonic()
            if interrupted_at is None and now >= cell_deadline:
                interrupted_at = now
                result.status = "timeout"
                if now >= self.deadline:
                    self.close()
                    result.error = (f"the notebook exceeded its time limit of "
                                    f"{self.limits.notebook_timeout:g} s")
                    return result
                with contextlib.suppress(Exception):
                    self.km.interrupt_kernel()
            if interrupted_at is not None and now >= interrupted_at + INTERRUPT_GRACE:
                self.close()
                result.error = (f"the cell exceeded the time limit of "
                                f"{self.limits.cell_timeout:g} s and ignored the interrupt")
                return result
            try:
                msg = self.kc.get_iopub_msg(timeout=0.25)
            except queue.Empty:
                if not self.alive():
                    result.status = "dead"
                    result.error = "the kernel died"
                    return result
                # the reply arrived but the idle status was lost (e.g. ZeroMQ dropped an
                # oversized output message): the execution is over all the same
                with contextlib.suppress(queue.Empty):
                    while replied_at is None:
                        reply = self.kc.get_shell_msg(timeout=0)
                        if reply.get("parent_header", {}).get("msg_id") == msg_id:
                            replied_at = now
                if replied_at is not None and now - replied_at > REPLY_GRACE:
                    break
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            mtype, content = msg["msg_type"], msg["content"]
            if mtype == "status" and content.get("execution_state") == "idle":
                break
            if mtype == "clear_output":
                result.outputs = []
                continue
            if mtype in ("stream", "display_data", "execute_result", "error"):
                try:
                    out = nbformat.v4.output_from_msg(msg)
                except Exception:
                    continue
                if mtype == "error":
                    if result.status == "ok":
                        result.status = "error"
                    result.error = f"{content.get('ename', '')}: {content.get('evalue', '')}"
                self._keep_output(out, result)
        if result.status == "timeout":
            result.error = (f"the cell exceeded the time limit of {self.limits.cell_timeout:g} s "
                            "and was interrupted")
        return result


def describe_death(kernel: SandboxedKernel) -> str:
    """Why the kernel is gone, as far as the grader can tell."""
    if kernel.oom_killed():
        return f"the kernel was killed for using more than {kernel.limits.memory} bytes"
    rc = None
    with contextlib.suppress(Exception):
        rc = kernel.km.provisioner.process.poll()
    tail = kernel.kernel_log_tail(200)
    extra = f" (exit status {rc})" if rc is not None else ""
    if "MemoryError" in tail:
        extra += " after a MemoryError"
    return f"the kernel died{extra}"


def step_summary(step: StepResult) -> dict[str, Any]:
    return {"status": step.status, "error": step.error}

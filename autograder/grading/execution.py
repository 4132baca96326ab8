"""Run a rebuilt notebook cell by cell in one sandboxed kernel and judge its parts.

Each code cell runs as one step; the hidden block of a test cell runs as a step of its own
right after the cell's visible tests, and its record payloads go to
:func:`autograder.grading.verdicts.judge`. Every fault gets a reason naming the cell (its
position in the notebook that ran and its nbgrader id), e.g. "cell 5 ('sum-impl') exceeded the
120 s cell limit and was interrupted" or "cell 7 ('forward'): the kernel was killed for using
more than 2 GiB of memory; the remaining cells were not run". A fault with evidence of a cause
outside the notebook (:mod:`autograder.sandbox.pressure`: a time limit reached while other
processes held the machine's CPUs, a process killed by the machine's out-of-memory killer
while within the notebook's limit) sets the outcome's ``outside`` to that evidence, so
:mod:`autograder.grading.worker` grades the notebook once more; a fault the notebook may have
caused itself never does.

The outcome's :class:`~autograder.grading.timings.Timings` hold the kernel's start (sandbox,
kernel) and its cells: ``imports`` are the code cells before the first answer (solution) cell,
``hidden`` the hidden blocks with their judging, ``student`` all other cells."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field

from ..build.cells import grade_id, is_grade, is_solution, split_hidden
from ..sandbox import pressure
from ..sandbox.kernel import Cancel, Fault, KernelDied, KernelEnded, SandboxedKernel, StepResult
from ..sandbox.limits import human_size
from .timings import Span, Stopwatch, Timings
from .verdicts import PartResult, judge

CGROUP_PREFIX = "ag-"  # kernel control groups are named <prefix><grading process id>-<n>
_KERNELS = itertools.count()


@dataclass
class Outcome:
    """What running one notebook gave."""

    parts: dict[str, PartResult] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)  # notebook-level, in order, no repeats
    outside: str = ""                                 # evidence of a cause outside it
    grader_failed: str = ""                           # the kernel could not be started
    interrupted: bool = False                         # the grader ended the kernel (cancel)
    left: str = ""                                    # what of the kernel was not removed
    timings: Timings = field(default_factory=Timings)  # sandbox, kernel and cells filled in

    def note(self, text: str) -> None:
        if text and text not in self.reasons:
            self.reasons.append(text)


def cell_name(index: int, cell) -> str:
    gid = grade_id(cell)
    return f"cell {index} ({gid!r})" if gid else f"cell {index}"


class _Watch:
    """Turns what a step did into reasons: time limits, deaths, memory and process limits."""

    def __init__(self, kernel: SandboxedKernel, outcome: Outcome):
        self.kernel, self.outcome = kernel, outcome
        self.seen = kernel.counters()

    def step(self, step: StepResult, where: str) -> None:
        k, limits, out = self.kernel, self.kernel.limits, self.outcome
        if k.fault:
            out.note(f"{where}: {k.fault}; the remaining cells were not run")
        elif step.status == "timeout":
            out.note(f"{where} exceeded the {limits.cell_timeout:g} s cell limit and was "
                     "interrupted")
        if k.outside and not out.outside:
            out.outside = f"{where}: {k.outside}"
        now = k.counters()
        oom = now.get("oom_kill", 0) > self.seen.get("oom_kill", 0)
        if oom and k.fault_kind not in (Fault.MEMORY, Fault.KILLED):
            outside = pressure.outside_oom(now, limits.memory)
            if outside:
                out.note(f"{where}: a process was {outside}")
                out.outside = out.outside or f"{where}: a process was {outside}"
            else:
                out.note(f"{where}: a process was killed for using more than "
                         f"{human_size(limits.memory)} of memory")
        if now.get("pids_max", 0) > self.seen.get("pids_max", 0):
            out.note(f"{where} reached the limit of {limits.processes} processes")
        if step.error.startswith("MemoryError") and not k.fault:
            out.note(f"{where} ran out of memory (MemoryError; limit "
                     f"{human_size(limits.memory)})")
        self.seen = now


def _usage(started: float, before: dict[str, float], after: dict[str, float]
           ) -> dict[str, float]:
    """What a part's test cell took: wall-clock seconds, CPU seconds (where the cgroup counts
    them) and the kernel's peak memory by the end of the part."""
    usage = {"seconds": round(time.monotonic() - started, 3)}
    if "cpu_seconds" in after and "cpu_seconds" in before:
        usage["cpu_seconds"] = round(after["cpu_seconds"] - before["cpu_seconds"], 3)
    if "memory_peak" in after:
        usage["memory_peak"] = after["memory_peak"]
    return usage


def run(nb, parts, cases, expected, limits, isolation, *, slot, run_dir, cases_dir,
        helpers, cancel: Cancel | None = None, deadline: float | None = None,
        scratch: dict[str, str] | None = None) -> Outcome:
    """Execute ``nb`` (outputs and execution counts are written into it) and judge ``parts``;
    ``deadline`` (monotonic) ends the notebook, ``scratch`` is the kernel's writable space
    (:func:`autograder.sandbox.command.kernel_argv`); once ``cancel`` is set the kernel is
    ended and the outcome is ``interrupted``."""
    outcome = Outcome()
    times = outcome.timings
    # unique among the threads of a process too (a Dask worker may grade several at once)
    name = f"{CGROUP_PREFIX}{os.getpid()}-{next(_KERNELS)}-{int(time.time() * 1000) % 10**9}"
    launch = Stopwatch()
    kernel = SandboxedKernel(isolation, limits, slot=slot, run_dir=run_dir,
                             cases_dir=cases_dir, helper_files=helpers, cgroup_name=name,
                             deadline=deadline, scratch=scratch, cancel=cancel)
    try:
        kernel.__enter__()
    except KernelEnded:
        outcome.interrupted = True
        return outcome
    except KernelDied as exc:
        outcome.grader_failed, outcome.left = str(exc), kernel.left
        times.kernel = launch.lap()
        return outcome
    start = kernel.startup
    times.sandbox = Span(start.sandbox_wall, start.sandbox_cpu)
    times.kernel = Span(start.kernel_wall, start.kernel_cpu)
    watch_time = Stopwatch(kernel.cpu_seconds)
    setup = True                                     # before the first answer cell
    try:
        watch = _Watch(kernel, outcome)
        count = 0
        for index, cell in enumerate(nb.cells, 1):
            if cell.cell_type != "code":
                continue
            setup = setup and not is_solution(cell)
            gid = grade_id(cell)
            graded = is_grade(cell) and gid in parts
            visible, hidden = (split_hidden(cell.source) if graded
                               else (cell.source, ""))
            where = cell_name(index, cell)
            cell.outputs = []
            vis = hid = None
            started, before = time.monotonic(), kernel.usage() if graded else {}
            if not kernel.fault:
                count += 1
                vis = kernel.execute(visible)
                cell.outputs += vis.outputs
                cell.execution_count = count
                watch.step(vis, where)
            if setup:
                times.imports = times.imports + watch_time.lap()
            else:
                times.student = times.student + watch_time.lap()
            if not graded:
                continue
            if not kernel.fault and hidden.strip():
                hid = kernel.execute(hidden)
                cell.outputs += hid.outputs
                watch.step(hid, f"the hidden tests of {where}")
            why = ""
            if hid is None:
                why = kernel.fault or "the hidden tests did not run"
            elif hid.status != "ok":
                why = hid.error or hid.status
            vis_err = vis.error if vis is not None and vis.status != "ok" else ""
            outcome.parts[gid] = judge(parts[gid], cases[gid], expected[gid],
                                       hid.payloads if hid is not None else [], why, vis_err)
            outcome.parts[gid].usage = _usage(started, before, kernel.usage())
            times.hidden = times.hidden + watch_time.lap()
        for text in kernel.notes():
            outcome.note(text)
    finally:
        kernel.close()
        outcome.left = kernel.left
    outcome.interrupted = kernel.fault_kind is Fault.ENDED
    times.total = Span(0.0, kernel.cpu_seconds())   # the kernel's processes; the caller adds
    return outcome                                   # its own wall and CPU time

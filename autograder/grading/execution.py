"""Run a rebuilt notebook cell by cell in one sandboxed kernel and judge its parts.

Each code cell runs as one step; the hidden block of a test cell runs as a step of its own
right after the cell's visible tests, and its record payloads go to
:func:`autograder.grading.verdicts.judge`. Every fault gets a reason naming the cell (its
position in the notebook that ran and its nbgrader id), e.g. "cell 5 ('sum-impl') exceeded the
120 s cell limit and was interrupted" or "cell 7 ('forward'): the kernel was killed for using
more than 2 GiB of memory; the remaining cells were not run". A fault that the machine rather
than the notebook may have caused (a time limit, or a kernel killed from outside) makes the
outcome ``suspect``, so :mod:`autograder.grading.worker` grades the notebook once more.

The outcome's :class:`~autograder.grading.timings.Timings` hold the kernel's start (sandbox,
kernel) and its cells: ``imports`` are the code cells before the first answer (solution) cell,
``hidden`` the hidden blocks with their judging, ``student`` all other cells."""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field

from ..build.cells import grade_id, is_grade, is_solution, split_hidden
from ..sandbox.kernel import Fault, KernelDied, SandboxedKernel, StepResult
from ..sandbox.limits import human_size
from .timings import Span, Stopwatch, Timings
from .verdicts import PartResult, judge

SUSPECT_FAULTS = (Fault.TIMEOUT, Fault.KILLED)
CGROUP_PREFIX = "ag-"  # kernel control groups are named <prefix><grading process id>-<n>
_KERNELS = itertools.count()


@dataclass
class Outcome:
    """What running one notebook gave."""

    parts: dict[str, PartResult] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)  # notebook-level, in order, no repeats
    suspect: bool = False                             # worth a second attempt
    grader_failed: str = ""                           # the kernel could not be started
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
            out.suspect |= k.fault_kind in SUSPECT_FAULTS
        elif step.status == "timeout":
            out.note(f"{where} exceeded the {limits.cell_timeout:g} s cell limit and was "
                     "interrupted")
            out.suspect = True
        now = k.counters()
        oom = now.get("oom_kill", 0) > self.seen.get("oom_kill", 0)
        if oom and k.fault_kind is not Fault.MEMORY:
            out.note(f"{where}: a process was killed for using more than "
                     f"{human_size(limits.memory)} of memory")
        if now.get("pids_max", 0) > self.seen.get("pids_max", 0):
            out.note(f"{where} reached the limit of {limits.processes} processes")
        if step.error.startswith("MemoryError") and not k.fault:
            out.note(f"{where} ran out of memory (MemoryError; limit "
                     f"{human_size(limits.memory)})")
        self.seen = now


def run(nb, parts, cases, expected, limits, isolation, *, slot, run_dir, cases_dir,
        helpers) -> Outcome:
    """Execute ``nb`` (outputs and execution counts are written into it) and judge ``parts``."""
    outcome = Outcome()
    times = outcome.timings
    # unique among the threads of a process too (a Dask worker may grade several at once)
    name = f"{CGROUP_PREFIX}{os.getpid()}-{next(_KERNELS)}-{int(time.time() * 1000) % 10**9}"
    launch = Stopwatch()
    try:
        kernel = SandboxedKernel(isolation, limits, slot=slot, run_dir=run_dir,
                                 cases_dir=cases_dir, helper_files=helpers, cgroup_name=name)
        kernel.__enter__()
    except KernelDied as exc:
        outcome.grader_failed = str(exc)
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
            times.hidden = times.hidden + watch_time.lap()
        for text in kernel.notes():
            outcome.note(text)
    finally:
        kernel.close()
    times.total = Span(0.0, kernel.cpu_seconds())   # the kernel's processes; the caller adds
    return outcome                                   # its own wall and CPU time

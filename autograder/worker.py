"""Grade one submission (runs in a worker process of the pool started by ``grade``).

Steps: read the student's notebook defensively; rebuild the notebook to run from the source
notebook (:mod:`autograder.reconstruct`); draw each part's cases with a fresh generator and
compute the references here, in the grader; run the notebook cell by cell in a sandboxed kernel
(:mod:`autograder.kernel_run`), the hidden block of each test cell as its own step; judge every
part (:mod:`autograder.verdicts`); write the autograded notebook and the result JSON atomically
into the state folder. Whatever the submission does, a result is written.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any

import nbformat
import numpy as np

from . import reconstruct
from .kernel_run import KernelDied, SandboxedKernel, describe_death
from .records import encode_cases
from .sandbox import Isolation, Limits
from .verdicts import PartResult, judge

MAX_NOTEBOOK_BYTES = 32 * 2**20
HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_grading_harness.py")

RETRY_PREFIX = "[grader] "  # marks failures of the grader itself: graded again on a rerun
_SLOT = 0
_PRIVATE_MOUNTS = False


def init_worker(slot_counter, isolation: Isolation) -> None:
    """Pool initializer: take a slot number, die with the parent, own a private mount
    namespace (root only) so per-kernel tmpfs mounts vanish with this process."""
    global _SLOT, _PRIVATE_MOUNTS
    with slot_counter.get_lock():
        _SLOT = slot_counter.value
        slot_counter.value += 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:
        os._exit(1)
    if os.geteuid() == 0 and isolation.sandboxed and not isolation.separate_user:
        clone_newns, ms_rec, ms_private = 0x00020000, 16384, 1 << 18
        if libc.unshare(clone_newns) == 0:
            _PRIVATE_MOUNTS = libc.mount(None, b"/", None, ms_rec | ms_private, None) == 0


def atomic_write(path: str, data: bytes | str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_student_notebook(path: str) -> tuple[Any, str]:
    """(notebook dict or None, reason when None)."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        return None, f"cannot read the notebook: {exc.strerror}"
    if size == 0:
        return None, "the notebook file is empty"
    if size > MAX_NOTEBOOK_BYTES:
        return None, f"the notebook file is too large ({size} bytes)"
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"the notebook is not readable UTF-8 text ({exc})"
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return None, f"the notebook is not valid JSON ({exc})"
    if not isinstance(data, dict):
        return None, "the notebook is not a JSON object"
    if "cells" not in data and "worksheets" in data:
        with contextlib.suppress(Exception):
            data = nbformat.convert(nbformat.from_dict(data), 4)
    if not isinstance(data.get("cells"), list):
        return None, "the notebook has no list of cells"
    return data, ""


def zero_result(job: dict, reason: str, parts=None) -> dict:
    parts = parts or []
    return {"student": job["student"], "assignment": job["assignment"], "key": job["key"],
            "timestamp": job.get("timestamp"), "max_score": job.get("max_score", 0.0),
            "score": 0.0, "reason": reason, "parts": parts, "autograded": None}


def _mount_tmpfs(path: str, size: int) -> bool:
    if not _PRIVATE_MOUNTS:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                       capture_output=True)
    return r.returncode == 0


def grade_job(job: dict) -> dict:
    """Grade one submission described by ``job`` and write its result into the state folder."""
    try:
        result = _grade(job)
    except Exception as exc:  # the grader's own failure still yields a row
        result = zero_result(job, f"internal grader error: {type(exc).__name__}: {exc}")
        result["retry"] = True
    atomic_write(job["state_file"], json.dumps(result, indent=1, sort_keys=True))
    return result


def _grade(job: dict) -> dict:
    from .grade import load_registry

    if job.get("problem"):
        return zero_result(job, job["problem"])
    assignment = load_registry(job["registry"])[job["assignment"]]
    parts_zero = [PartResult(p.id, p.title, float(p.points), 0.0, "not graded").to_dict()
                  for p in assignment.parts]
    student_nb, why = read_student_notebook(job["notebook"])
    if student_nb is None:
        return zero_result(job, why, parts_zero)
    source_nb = nbformat.read(job["source"], as_version=4)
    release_nb = None
    if job.get("release") and os.path.exists(job["release"]):
        release_nb = nbformat.read(job["release"], as_version=4)
    rebuilt = reconstruct.rebuild(source_nb, student_nb, release_nb)
    if not rebuilt.taken:
        return zero_result(job, "the notebook contains none of this assignment's answer cells "
                                "(is it the notebook of another assignment?)", parts_zero)
    notes = []
    if rebuilt.duplicates:
        notes.append(f"duplicate cell ids ignored: {', '.join(sorted(set(rebuilt.duplicates)))}")
    if rebuilt.missing:
        notes.append(f"answer cells missing, stubs used: {', '.join(rebuilt.missing)}")

    limits = Limits(**job["limits"])
    isolation = Isolation(**job["isolation"])
    parts = {p.id: p for p in assignment.parts}
    base = tempfile.mkdtemp(prefix="ag-", dir=job.get("tmp_root"))
    try:
        os.chmod(base, 0o755)
        cases_dir = os.path.join(base, "cases")
        run_dir = os.path.join(base, "run")
        os.makedirs(cases_dir)
        os.makedirs(run_dir)
        if not isolation.separate_user:
            _mount_tmpfs(run_dir, 8 * 2**20)
        rng = np.random.default_rng()
        cases, expected = {}, {}
        for part in assignment.parts:
            cases[part.id] = list(part.make_cases(rng))
            expected[part.id] = [part.reference(c) for c in cases[part.id]]
            path = os.path.join(cases_dir, f"{part.id}.npz")
            with open(path, "wb") as f:
                f.write(encode_cases(cases[part.id]))
            os.chmod(path, 0o644)
        # copies, so that not even the host paths of the course or project show inside
        files_dir = os.path.join(base, "files")
        os.makedirs(files_dir)
        helpers = {}
        for name, src in [*job.get("helpers", {}).items(), ("_grading_harness.py", HARNESS)]:
            helpers[name] = os.path.join(files_dir, name)
            shutil.copyfile(src, helpers[name])
            os.chmod(helpers[name], 0o644)
        part_results, reason = _execute(job, rebuilt.notebook, parts, cases, expected, limits,
                                        isolation, run_dir, cases_dir, helpers)
    finally:
        with contextlib.suppress(Exception):
            subprocess.run(["umount", "-l", os.path.join(base, "run")], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
    ordered = [part_results.get(p.id) or PartResult(p.id, p.title, float(p.points), 0.0,
                                                     "no test cell for this part")
               for p in assignment.parts]
    score = float(sum(r.score for r in ordered))
    retry = reason.startswith(RETRY_PREFIX)
    reason = reason.removeprefix(RETRY_PREFIX)
    reasons = ([reason] if reason else []) + notes
    nb_path = job["state_file"][:-len(".json")] + ".ipynb"
    atomic_write(nb_path, nbformat.writes(rebuilt.notebook))
    return {"student": job["student"], "assignment": job["assignment"], "key": job["key"],
            "timestamp": job.get("timestamp"), "max_score": assignment.max_score,
            "score": score, "reason": "; ".join(reasons),
            "parts": [r.to_dict() for r in ordered], "autograded": os.path.basename(nb_path),
            "retry": retry}


def _execute(job, nb, parts, cases, expected, limits, isolation, run_dir, cases_dir, helpers):
    """Run the rebuilt notebook; returns ({part id: PartResult}, notebook-level reason)."""
    results: dict[str, PartResult] = {}
    stopped = ""
    name = f"ag-{os.getpid()}-{int(time.time() * 1000) % 10**9}"
    started = time.monotonic()
    try:
        kernel = SandboxedKernel(isolation, limits, slot=_SLOT, run_dir=run_dir,
                                 cases_dir=cases_dir, helper_files=helpers, cgroup_name=name)
        kernel.__enter__()
    except KernelDied as exc:
        return results, RETRY_PREFIX + str(exc)
    try:
        count = 0
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            gid = reconstruct.grade_id(cell)
            graded = reconstruct.is_grade(cell) and gid in parts
            visible, hidden = (reconstruct.split_hidden(cell.source) if graded
                               else (cell.source, ""))
            outputs = []
            vis = None
            if stopped:
                vis_status = "not-run"
            else:
                count += 1
                vis = kernel.execute(visible)
                outputs += vis.outputs
                cell.execution_count = count
                vis_status = vis.status
                if vis.status in ("dead", "timeout") and not kernel.alive():
                    stopped = _stop_reason(kernel, vis, cell, limits, started)
            if graded:
                part = parts[gid]
                hid = None
                if not stopped and hidden.strip():
                    hid = kernel.execute(hidden)
                    outputs += hid.outputs
                    if hid.status in ("dead", "timeout") and not kernel.alive():
                        stopped = _stop_reason(kernel, hid, cell, limits, started)
                why = ""
                if hid is None:
                    why = stopped or "the hidden tests did not run"
                elif hid.status != "ok":
                    why = hid.error or hid.status
                vis_err = vis.error if vis is not None and vis.status != "ok" else ""
                if vis_status == "not-run":
                    vis_err = ""
                results[gid] = judge(part, cases[gid], expected[gid],
                                     hid.payloads if hid is not None else [], why, vis_err)
            cell.outputs = outputs
        if kernel.output_overflow:
            stopped = stopped or f"output beyond {limits.output_bytes} bytes was dropped"
    finally:
        kernel.close()
    return results, stopped


def _stop_reason(kernel, step, cell, limits, started) -> str:
    gid = reconstruct.grade_id(cell)
    where = f"cell {gid!r}" if gid else "a cell"
    if step.status == "timeout":
        return f"{where}: {step.error}; the remaining cells were not run"
    return f"{where}: {describe_death(kernel)}; the remaining cells were not run"

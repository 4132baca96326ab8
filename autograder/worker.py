"""Grade one submission (runs in a worker process of the pool started by ``grade``).

Steps: read the student's notebook defensively (:func:`read_student_notebook`); rebuild the
notebook to run from the source notebook (:mod:`autograder.reconstruct`); draw each part's
cases with a fresh generator and compute the references here, in the grader; run the notebook
in a sandboxed kernel and judge every part (:mod:`autograder.execution`); remove the temporary
folder (:func:`autograder.safefs.remove_tree`, whatever the kernel left in it); write the
autograded notebook and the result JSON atomically into the state folder.

A notebook whose run hit a time limit or whose kernel was killed from outside is graded a
second time when other kernels ran beside it (``job["fault_retry"]``): a busy machine, or a
hostile neighbour, can cause those faults, and the better attempt counts. Whatever the
submission does, a result is returned and, where the disk allows, written; :func:`grade_job`
never raises.
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
from typing import Any

import nbformat
import numpy as np

from . import execution, reconstruct, safefs
from .records import encode_cases
from .sandbox import Isolation, Limits
from .untrusted import MAX_TEXT, cap
from .verdicts import PartResult

MAX_NOTEBOOK_BYTES = 32 * 2**20
HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_grading_harness.py")

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
    """Write ``path`` by a temporary file in the same folder and a rename (the temporary file
    is removed again when anything fails)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _int(text: str):
    """JSON integers beyond Python's 4300-digit limit are read as None (no notebook field the
    grader uses is an integer that large)."""
    return int(text) if len(text) <= 4000 else None


def read_student_notebook(path: str) -> tuple[Any, str]:
    """(notebook dict or None, reason when None). Regular files only, no link followed, at
    most :data:`MAX_NOTEBOOK_BYTES`; a UTF-8 byte-order mark is accepted."""
    try:
        raw = safefs.read_regular(path, MAX_NOTEBOOK_BYTES)
    except safefs.UnsafeFile as exc:
        return None, f"the notebook file cannot be read: {exc}"
    if not raw.strip():
        return None, "the notebook file is empty"
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, f"the notebook is not readable UTF-8 text ({cap(exc, 200)})"
    try:
        data = json.loads(text, parse_int=_int)
    except (ValueError, RecursionError) as exc:
        return None, f"the notebook is not valid JSON ({cap(exc, 200)})"
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
            "score": 0.0, "reason": cap("; ".join([reason, *job.get("notes", [])])),
            "parts": parts, "autograded": None}


def _mount_tmpfs(path: str, size: int) -> bool:
    if not _PRIVATE_MOUNTS:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},nr_inodes=1024,mode=0700",
                        "tmpfs", path], capture_output=True)
    return r.returncode == 0


def _cleanup(base: str) -> str:
    """Remove the submission's temporary folder; "" or what was left behind (never raises)."""
    with contextlib.suppress(Exception):
        subprocess.run(["umount", "-l", os.path.join(base, "run")], capture_output=True)
    try:
        return safefs.remove_tree(base)
    except Exception as exc:  # remove_tree never raises; this is a last guard
        return f"{base}: {type(exc).__name__}: {exc}"


def _attempt(job: dict) -> dict:
    try:
        return _grade(job)
    except Exception as exc:  # the grader's own failure still yields a row
        result = zero_result(job, f"internal grader error: {type(exc).__name__}: {exc}")
        result["retry"] = True
        return result


def _better(first: dict, second: dict) -> dict:
    """The attempt that counts when a notebook was graded twice, with a reason saying so."""
    best, other = (second, first) if second["score"] > first["score"] else (first, second)
    note = ("graded twice, as a time limit or a killed kernel may come from a busy machine; "
            f"the better attempt counts (the other scored {other['score']:g})")
    best["reason"] = "; ".join(r for r in (best.get("reason", ""), note) if r)
    best["retry"] = bool(first.get("retry") and second.get("retry"))
    return best


def grade_job(job: dict) -> dict:
    """Grade one submission described by ``job`` (a second time when the first attempt hit a
    fault a busy machine may cause and ``job["fault_retry"]`` is set) and write its result and
    autograded notebook into the state folder. Never raises."""
    result = _attempt(job)
    if result.pop("suspect", False) and job.get("fault_retry"):
        second = _attempt(job)
        second.pop("suspect", None)
        result = _better(result, second)
    notebook = result.pop("notebook_text", None)
    result["cleanup"] = "; ".join(job.get("_cleanup", []))
    try:
        if notebook is not None:
            nb_path = job["state_file"][:-len(".json")] + ".ipynb"
            atomic_write(nb_path, notebook)
            result["autograded"] = os.path.basename(nb_path)
        atomic_write(job["state_file"], json.dumps(result, indent=1, sort_keys=True))
    except Exception as exc:  # e.g. a full disk: the row still comes back, marked for a rerun
        result["autograded"] = None
        result["retry"] = True
        result["reason"] = "; ".join(r for r in (result.get("reason", ""), cap(
            f"internal grader error: the result could not be saved ({exc})")) if r)
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
    notes = list(job.get("notes", []))
    if rebuilt.duplicates:
        notes.append(f"duplicate cell ids ignored: {', '.join(sorted(set(rebuilt.duplicates)))}")
    if rebuilt.missing:
        notes.append(f"answer cells missing, stubs used: {', '.join(rebuilt.missing)}")
    if rebuilt.cleaned:
        notes.append("invalid characters (unpaired surrogates) in cells were replaced by U+FFFD")

    limits = Limits(**job["limits"])
    isolation = Isolation(**job["isolation"])
    parts = {p.id: p for p in assignment.parts}
    base = tempfile.mkdtemp(prefix="", dir=job.get("tmp_root"))
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
        outcome = execution.run(rebuilt.notebook, parts, cases, expected, limits, isolation,
                                slot=_SLOT, run_dir=run_dir, cases_dir=cases_dir,
                                helpers=helpers)
    finally:
        left = _cleanup(base)
        if left:
            job.setdefault("_cleanup", []).append(left)
    ordered = [outcome.parts.get(p.id) or PartResult(p.id, p.title, float(p.points), 0.0,
                                                     "no test cell for this part")
               for p in assignment.parts]
    if outcome.grader_failed:
        result = zero_result(job, f"internal grader error: {outcome.grader_failed}",
                             [r.to_dict() for r in ordered])
        result.update(max_score=assignment.max_score, retry=True)
        return result
    return {"student": job["student"], "assignment": job["assignment"], "key": job["key"],
            "timestamp": job.get("timestamp"), "max_score": assignment.max_score,
            "score": float(sum(r.score for r in ordered)),
            "reason": cap("; ".join(outcome.reasons + notes), 4 * MAX_TEXT),
            "parts": [r.to_dict() for r in ordered], "autograded": None, "retry": False,
            "suspect": outcome.suspect, "notebook_text": notebook_text(rebuilt.notebook)}


def notebook_text(nb) -> str:
    """``nb`` as JSON text; should its outputs not serialize, it is written without them."""
    try:
        return nbformat.writes(nb)
    except Exception:
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = []
        return nbformat.writes(nb)

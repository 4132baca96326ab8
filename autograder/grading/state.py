"""The state folder ``<course>/.autograder_state``: one result per submission, written
atomically as it is finished, so a rerun after an interruption (even ``kill -9``) reuses what is
done and grades only the rest.

A kept result is reused only while its :func:`job_key` is unchanged. The key is a hash of
everything the result depends on: the student, assignment, problem, timestamp and notes of the
job; the handed-in notebook's bytes; the course's source and release notebooks and the helper
files released beside them; the limits; the code that declares the assignment's parts and the
``solutions/`` code it calls (:func:`autograder.grading.fingerprint.assignment_fingerprint`);
and the grader's own code (:func:`autograder.grading.fingerprint.grader_fingerprint`). Fixing a
hidden test therefore regrades that assignment's submissions and reuses every other result.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import hashlib
import json
import os
import sys

from .. import files
from ..assignments import DEFAULT_REGISTRY, load_registry
from ..text import is_safe_name
from .fingerprint import assignment_fingerprint, grader_fingerprint
from .jobs import Job, Result
from .notebook import MAX_NOTEBOOK_BYTES

STATE_DIR = ".autograder_state"


def state_file(state_root: str, student: str, assignment: str) -> str:
    """Where a submission's result is kept: ``<assignment>/<student>.json``, or a name made
    from a hash for folder names that are not safe file names (too long, odd characters)."""
    if is_safe_name(student) and is_safe_name(assignment):
        return os.path.join(state_root, assignment, f"{student}.json")
    digest = hashlib.sha256(repr((student, assignment)).encode()).hexdigest()[:32]
    return os.path.join(state_root, "_invalid", f"{digest}.json")


@functools.cache
def code_fingerprint(registry: str, assignment: str) -> str:
    """The fingerprint of the code declaring ``assignment`` in ``registry`` (the module whose
    ``ASSIGNMENT`` it is, else the registry's own module), "" for an unknown assignment."""
    registry = registry or DEFAULT_REGISTRY
    spec = load_registry(registry).get(assignment)
    if spec is None:
        return ""
    module = next((name for name, m in list(sys.modules.items())
                   if getattr(m, "ASSIGNMENT", None) is spec), registry.partition(":")[0])
    return assignment_fingerprint(module)


def _file_digest(path: str | None, limit: int | None = None) -> str:
    """The SHA-256 of a regular file of at most ``limit`` bytes, else its size, time and why
    it could not be read (so the key still changes with it and never blocks on a FIFO)."""
    if not path:
        return ""
    try:
        return hashlib.sha256(files.read_regular(path, limit or MAX_NOTEBOOK_BYTES)).hexdigest()
    except OSError as exc:
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            return f"{st.st_size} {st.st_mtime_ns} {exc}"
        return str(exc)


def course_digests(job: Job) -> dict:
    """The digests of the course code the result of ``job`` depends on: its source and release
    notebooks, the helper files released beside them, the assignment's code and the grader's
    (what a grading machine must match, see :mod:`autograder.grading.dask_worker`)."""
    return {"source": _file_digest(job.source), "release": _file_digest(job.release),
            "helpers": {name: _file_digest(path) for name, path in sorted(job.helpers.items())},
            "assignment": code_fingerprint(job.registry, job.assignment),
            "grader": grader_fingerprint()}


def job_key(job: Job) -> str:
    """A hash of everything the result of ``job`` depends on (see the module docstring)."""
    parts = [job.student, job.assignment, job.problem, job.timestamp, list(job.notes),
             _file_digest(job.notebook), course_digests(job), job.limits.as_dict()]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class Kept(enum.Enum):
    """What the state folder holds for a job: a result to reuse, none, a result of other code or
    inputs (the job is graded again), or one the grader could not produce (graded again)."""

    REUSE = "reuse"
    NONE = "none"
    CHANGED = "changed"
    RETRY = "retry"


def read_kept(path: str) -> Result | None:
    """The result kept at ``path`` (a state file), whatever it depends on; None when there is
    none or it cannot be read."""
    try:
        with open(path) as f:
            return Result.from_json(f.read())
    except (OSError, ValueError):
        return None


def previous_result(job: Job) -> tuple[Kept, Result | None]:
    """The kept result of ``job`` and whether it can be reused (same key, not marked for a
    retry)."""
    prev = read_kept(job.state_file)
    if prev is None:
        return Kept.NONE, None
    if prev.key != job.key:
        return Kept.CHANGED, prev
    if prev.retry:
        return Kept.RETRY, prev
    return Kept.REUSE, prev


def autograded_path(job: Job) -> str:
    """Where the autograded notebook of ``job`` is kept, beside its result."""
    return job.state_file[:-len(".json")] + ".ipynb"


def save(job: Job, result: Result, notebook: str | None) -> None:
    """Keep ``result`` (and the autograded ``notebook`` text) for ``job``, atomically."""
    if notebook is not None:
        path = autograded_path(job)
        files.atomic_write(path, notebook)
        result.autograded = os.path.basename(path)
    files.atomic_write(job.state_file, result.to_json())

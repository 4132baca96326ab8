"""Tests for autograder.grading.dask_worker: a grading machine grades only the course the
coordinator expects, in a sandbox, from the bytes it was sent (the worker's own code, called
here without a cluster; tests/autograder/grading/test_dask_pool.py runs it on real workers)."""

import dataclasses
import shutil

import nbformat
import pytest

pytest.importorskip("distributed", reason="dask/distributed is not installed; make setup "
                                          "installs the pinned versions")

from autograder.grading import state  # noqa: E402
from autograder.grading.course import course_assignment  # noqa: E402
from autograder.grading.dask_pool import task  # noqa: E402
from autograder.grading.dask_worker import (  # noqa: E402
    GraderPlugin,
    differences,
    grade_with,
    kernel_slot,
)
from autograder.grading.jobs import Job, Result  # noqa: E402
from autograder.sandbox.limits import Limits  # noqa: E402
from tests.support import toy  # noqa: E402
from tests.support.run import TOY_REGISTRY, sandboxed  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dask_worker")]


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    return toy.build_course(str(tmp_path_factory.mktemp("dw") / "course"))


def _plugin(course_dir, **isolation):
    plugin = GraderPlugin(str(course_dir))
    plugin.setup(None)
    plugin.address = "tcp://127.0.0.1:9999"
    if isolation:
        plugin.isolation = dataclasses.replace(plugin.isolation, **isolation)
    return plugin


def _task(course_dir, notebook: bytes, allow_unsandboxed=False):
    """A task as the coordinator sends it, with the digests of ``course_dir``'s code."""
    ca = course_assignment(str(course_dir), "toy", 5.0)
    job = Job("alice", "toy", notebook="/coordinator/only/alice/toy/toy.ipynb", max_score=5.0,
              key="k", registry=TOY_REGISTRY, source=ca.source, release=ca.release,
              helpers=ca.helpers, limits=Limits(cell_timeout=20, notebook_timeout=120))
    return task(job, notebook, state.course_digests(job), allow_unsandboxed)


def _solution() -> bytes:
    return nbformat.writes(toy.solution_notebook()).encode()


def _graded_by(course_dir, task, **isolation):
    """What a worker with course ``course_dir`` (and isolation changed by ``isolation``)
    answers to ``task``: (result, autograded notebook text)."""
    plugin = _plugin(course_dir, **isolation)
    try:
        answer = grade_with(plugin, task)
    finally:
        plugin.teardown(None)
    return Result.from_dict(answer["result"]), answer["notebook"]


def test_the_task_carries_no_path_of_the_coordinator(course):
    """The job a worker gets names no file of the coordinator's; the notebook is bytes."""
    t = _task(course, _solution())
    assert t["job"]["notebook"] is None and t["job"]["source"] is None
    assert t["job"]["helpers"] == {} and t["job"]["state_file"] == ""
    assert isinstance(t["notebook"], bytes)


def test_a_matching_worker_grades_the_bytes_it_was_sent(course):
    """A worker whose course matches grades the submission's bytes in its sandbox and returns
    the result and the autograded notebook as plain data, with its timings."""
    if not sandboxed():
        pytest.skip("no sandbox on this machine")
    result, notebook = _graded_by(course, _task(course, _solution()))
    assert result.score == 5.0 and not result.retry and result.reason == ""
    assert nbformat.reads(notebook, as_version=4).cells
    assert result.timings.kernel.wall > 0 and result.timings.total.wall > 0


def test_a_worker_with_another_source_notebook_refuses(course, tmp_path):
    """A worker whose source notebook differs grades nothing: a zero marked to be graded
    again, whose reason names the worker and the notebook."""
    other = tmp_path / "other"
    shutil.copytree(course, other)
    src = other / "source" / "toy" / "toy.ipynb"
    nb = nbformat.read(src, as_version=4)
    nb.cells[0].source += "\nchanged"
    nbformat.write(nb, src)
    result, _ = _graded_by(other, _task(course, _solution()))
    assert result.score == 0.0 and result.retry
    assert "worker tcp://127.0.0.1:9999" in result.reason
    assert "the source notebook source/toy/toy.ipynb differs" in result.reason
    assert result.timings.kernel.wall == 0


def test_a_worker_without_the_assignment_refuses(course, tmp_path):
    """A worker whose course folder lacks the assignment says so and grades nothing."""
    result, _ = _graded_by(tmp_path / "empty", _task(course, _solution()))
    assert result.retry and "has no assignment toy" in result.reason


def test_an_unsandboxed_worker_refuses_unless_allowed(course):
    """A worker without bubblewrap grades nothing unless the task allows it."""
    result, _ = _graded_by(course, _task(course, _solution()), bwrap=None)
    assert result.retry and "has no sandbox" in result.reason


def test_differences_name_each_part_of_the_course_code(course):
    """Helper files missing or extra, the assignment's code and the grader's code are each
    named."""
    ca = course_assignment(str(course), "toy", 5.0)
    same = {"source": "a", "release": "b", "helpers": {"x.txt": "1"}, "assignment": "c",
            "grader": "d"}
    assert differences(same, dict(same), ca, str(course)) == []
    got = {"source": "a", "release": "b", "helpers": {"y.txt": "1"}, "assignment": "C",
           "grader": "D"}
    text = "; ".join(differences(same, got, ca, str(course)))
    assert "release/toy/x.txt is missing" in text
    assert "release/toy/y.txt is not in the coordinator's course" in text
    assert "the code of assignment toy" in text and "the grader's code differs" in text


def test_kernel_slots_held_at_once_differ():
    """Two notebooks running at once on one machine get different kernel slots; a slot is
    free again once released."""
    with kernel_slot() as a, kernel_slot() as b:
        assert a != b
    with kernel_slot() as c:
        assert c in (a, b)

"""Grading on a real Dask cluster (a scheduler and two workers started by the tests with Dask's
own command lines on 127.0.0.1): the same grades.csv as the local pool, workers shown and
checked, and nothing lost when a worker or the coordinator is killed."""

import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from autograder.grading.jobs import Result
from tests.support import toy
from tests.support.dask_cluster import dask_cluster, require_dask
from tests.support.run import REPO, env, grade, grade_cmd, read_csv

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dask_pool")]

SLOW = "import time\ntime.sleep(8)\n"   # a cell that keeps a notebook busy for 8 s


def _slow_perfect():
    nb = toy.solution_notebook()
    import nbformat
    nb.cells.insert(2, nbformat.v4.new_code_cell(SLOW))
    return nb


def _class(subs, course):
    toy.write_submission(subs, "alice", toy.solution_notebook())
    toy.write_submission(subs, "bob", toy.release_notebook(course))
    toy.write_submission(subs, "carol", toy.with_answers(
        toy.solution_notebook(), sum_impl="def col_sum(x):\n    return x.sum(axis=1)\n"))
    toy.write_submission(subs, "dave", "{broken")
    toy.write_submission(subs, "erin", toy.solution_notebook(), name="other.ipynb")
    toy.write_submission(subs, "frank", toy.with_answers(
        toy.solution_notebook(), scale_impl="def scale(x, a):\n    return a + x\n"))
    toy.write_submission(subs, "mallory", _slow_perfect())


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The toy class, its course (the workers' too), and the grades.csv of the local pool."""
    require_dask()
    base = tmp_path_factory.mktemp("dask")
    course = toy.build_course(str(base / "course"))
    reference_course = str(base / "reference")
    shutil.copytree(course, reference_course)
    subs = base / "subs"
    _class(subs, course)
    ref = grade(subs, base / "reference.csv", reference_course)
    assert ref.returncode == 0, ref.stderr
    return base, course, subs, read_csv(base / "reference.csv")


@pytest.fixture(scope="module")
def cluster(setup, tmp_path_factory):
    _, course, _, _ = setup
    with dask_cluster(tmp_path_factory.mktemp("cluster"), course, workers=2,
                      allowed_failures=1) as c:
        yield c


def _fresh_course(setup, tmp_path):
    """A copy of the course that has graded nothing; the workers' course has the same
    notebooks, so it matches."""
    _, course, _, _ = setup
    copy = tmp_path / "course"
    shutil.copytree(course, copy, ignore=shutil.ignore_patterns(".autograder_state",
                                                                "gradebook.db"))
    return copy


def test_the_class_graded_on_two_workers_matches_the_local_pool(setup, cluster, tmp_path):
    """Through a scheduler file and two workers, grades.csv is the local pool's, row for
    row; the workers are listed (address, cores, isolation) on screen and in grades.log,
    and the log says where each notebook's time went."""
    _, _, subs, reference = setup
    course = _fresh_course(setup, tmp_path)
    proc = grade(subs, tmp_path / "out" / "grades.csv", course, "--scheduler",
                 cluster.scheduler_file)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_csv(tmp_path / "out" / "grades.csv") == reference
    log = (tmp_path / "out" / "grades.log").read_text()
    for address in cluster.worker_pids():
        assert address in proc.stdout and address in log
    assert "Dask workers: 2, 2 cores" in proc.stdout and "bubblewrap" in proc.stdout
    assert "where the time went (7 notebooks graded" in proc.stdout
    assert "graded alice/toy: 5/5" in log and "kernel " in log and "hidden " in log


def test_one_worker_grading_two_notebooks_at_once_matches_the_local_pool(setup, tmp_path):
    """A single worker process with two threads (two kernels at once, each with a slot and a
    control group of its own) gives the local pool's grades.csv."""
    _, course, subs, reference = setup
    with dask_cluster(tmp_path / "threads", course, workers=1, nthreads=2) as two:
        proc = grade(subs, tmp_path / "grades.csv", _fresh_course(setup, tmp_path),
                     "--scheduler", two.address)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Dask workers: 1, 2 cores" in proc.stdout
    assert read_csv(tmp_path / "grades.csv") == reference


def _watch_and_kill(cluster, student, stop, killed, times):
    """Kill (SIGKILL) the worker process grading ``student`` 1 s after it started, ``times``
    times at most, until ``stop`` is set."""
    with cluster.client() as client:
        pids = client.run(os.getpid)
        while not stop.is_set() and len(killed) < times:
            for address, keys in client.processing().items():
                if any(f"-{student}-" in str(k) for k in keys):
                    time.sleep(1.0)
                    if address not in pids:
                        pids = client.run(os.getpid)
                    if address in pids:
                        os.kill(pids[address], signal.SIGKILL)
                        killed.append(address)
                        pids.pop(address)
                    break
            time.sleep(0.1)


def _grade_while_killing(setup, cluster, tmp_path, times):
    """Grade the class on the cluster while killing the worker grading mallory ``times`` times;
    (grades.csv rows, the grade command's stderr). The cluster has two workers again after."""
    _, _, subs, _ = setup
    stop, killed = threading.Event(), []
    watcher = threading.Thread(target=_watch_and_kill,
                               args=(cluster, "mallory", stop, killed, times))
    watcher.start()
    try:
        proc = grade(subs, tmp_path / "grades.csv", _fresh_course(setup, tmp_path),
                     "--scheduler", cluster.address, timeout=900)
    finally:
        stop.set()
        watcher.join(timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(killed) == times
    cluster.wait_for_workers(2)
    return read_csv(tmp_path / "grades.csv"), proc.stderr


def test_a_worker_killed_mid_run_loses_nothing(setup, cluster, tmp_path):
    """A worker killed with SIGKILL while it grades: its notebook is graded elsewhere and
    grades.csv is the same as the local pool's."""
    rows, _ = _grade_while_killing(setup, cluster, tmp_path, times=1)
    assert rows == setup[3]


def test_a_job_that_kills_every_worker_gets_a_row_and_the_class_is_graded(setup, cluster,
                                                                          tmp_path):
    """A notebook whose every worker dies (allowed-failures 1: two deaths) gets a zero row
    saying so, marked to be graded again; every other row is the local pool's."""
    rows, stderr = _grade_while_killing(setup, cluster, tmp_path, times=2)
    bad = rows.pop(("mallory", "toy"))
    assert float(bad["score"]) == 0.0 and "died 2 times" in bad["reason"]
    assert rows == {k: v for k, v in setup[3].items() if k != ("mallory", "toy")}
    assert "graded again" in stderr


def _stop_coordinator_and_rerun(setup, cluster, tmp_path, sig):
    """Start grading on the cluster, send ``sig`` to the coordinator once two results are
    kept, then grade again; (the kept results after the signal, the rerun, grades.csv)."""
    _, _, subs, _ = setup
    course = _fresh_course(setup, tmp_path)
    out = tmp_path / "grades.csv"
    first = subprocess.Popen(grade_cmd(subs, out, course, "--scheduler", cluster.address),
                             cwd=REPO, env=env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    state = course / ".autograder_state" / "toy"
    deadline = time.monotonic() + 600
    while first.poll() is None and time.monotonic() < deadline:
        if state.is_dir() and sum(p.suffix == ".json" for p in state.iterdir()) >= 2:
            first.send_signal(sig)
            break
        time.sleep(0.05)
    first.wait(timeout=60)
    if sig == signal.SIGKILL:
        assert first.returncode == -signal.SIGKILL and not out.exists()
    else:   # the run's interrupt: a partial grades.csv, exit 128 + the signal
        assert first.returncode == 128 + sig and out.exists()
        assert "not graded: the run was interrupted" in out.read_text() or \
            read_csv(out) == setup[3]
    kept = [Result.from_json(p.read_text()) for p in state.glob("*.json")]
    second = grade(subs, out, course, "--scheduler", cluster.address)
    assert second.returncode == 0, second.stderr[-3000:]
    return kept, second, read_csv(out)


def test_the_coordinator_killed_resumes_from_the_state_folder(setup, cluster, tmp_path):
    """The coordinator killed with SIGKILL after its first results: a rerun reuses what was
    kept and ends with the local pool's grades.csv."""
    _, second, rows = _stop_coordinator_and_rerun(setup, cluster, tmp_path, signal.SIGKILL)
    assert "already graded by an earlier run: reused" in second.stdout
    assert rows == setup[3]


def test_sigterm_cancels_the_tasks_and_keeps_no_cancelled_result(setup, cluster, tmp_path):
    """SIGTERM to the coordinator stops the run (exit 143, a partial grades.csv), cancelling
    the tasks in flight; every result it kept is a finished grade (none a cancelled job's
    zero), and a rerun completes the local pool's grades.csv."""
    kept, second, rows = _stop_coordinator_and_rerun(setup, cluster, tmp_path, signal.SIGTERM)
    assert kept and not any(r.retry for r in kept)
    assert all(rows[r.ident]["score"] == setup[3][r.ident]["score"] for r in kept)
    assert rows == setup[3]


def test_an_unreachable_scheduler_is_a_clear_error_before_grading(setup, tmp_path):
    """A scheduler nobody listens at: exit status 4 and a message naming it; nothing graded."""
    import socket
    _, _, subs, _ = setup
    course = _fresh_course(setup, tmp_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = grade(subs, tmp_path / "grades.csv", course, "--scheduler",
                 f"tcp://127.0.0.1:{port}")
    assert proc.returncode == 4
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in proc.stderr
    assert not (tmp_path / "grades.csv").exists()
    assert not (course / ".autograder_state").exists()


def test_a_scheduler_without_workers_is_a_clear_error(setup, tmp_path):
    """A scheduler that no worker joins within --wait-workers: exit status 4."""
    _, _, subs, _ = setup
    course = _fresh_course(setup, tmp_path)
    with dask_cluster(tmp_path / "empty", course, workers=0) as empty:
        proc = grade(subs, tmp_path / "grades.csv", course, "--scheduler", empty.address,
                     "--wait-workers", "3")
    assert proc.returncode == 4
    assert "no Dask worker joined" in proc.stderr
    assert not (tmp_path / "grades.csv").exists()


@pytest.fixture(scope="module")
def unsandboxed(setup, tmp_path_factory):
    """A cluster whose one worker has no sandbox (bubblewrap disabled there)."""
    _, course, _, _ = setup
    with dask_cluster(tmp_path_factory.mktemp("nobwrap"), course, workers=1,
                      worker_env={"AUTOGRADER_BWRAP": "none"}) as c:
        yield c


def test_an_unsandboxed_worker_is_refused_without_the_flag(setup, unsandboxed, tmp_path):
    """A worker without a sandbox: the table says so and the run stops with status 3 before
    grading, unless --allow-unsandboxed is given."""
    _, _, subs, _ = setup
    course = _fresh_course(setup, tmp_path)
    cmd = grade_cmd(subs, tmp_path / "grades.csv", course, "--scheduler", unsandboxed.address,
                    auto_allow=False)
    proc = subprocess.run(cmd, cwd=REPO, env=env(), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 3
    assert "NONE (rlimits only)" in proc.stdout and "without a sandbox" in proc.stderr
    assert not (tmp_path / "grades.csv").exists()


def test_a_worker_with_another_course_is_refused(setup, unsandboxed, tmp_path):
    """A worker whose source notebook differs from the coordinator's: the run stops with status
    5 before grading, naming the worker and the notebook."""
    _, course, subs, _ = setup
    other = tmp_path / "other-course"
    shutil.copytree(course, other)
    import nbformat
    src = other / "source" / "toy" / "toy.ipynb"
    nb = nbformat.read(src, as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("an extra remark"))
    nbformat.write(nb, src)
    worker = unsandboxed.add_worker(other, "stale")
    try:
        unsandboxed.wait_for_workers(2)
        proc = grade(subs, tmp_path / "grades.csv", _fresh_course(setup, tmp_path),
                     "--scheduler", unsandboxed.address, "--allow-unsandboxed")
    finally:
        unsandboxed.remove_worker(worker)
    assert proc.returncode == 5, proc.stderr[-2000:]
    assert "the source notebook source/toy/toy.ipynb differs" in proc.stdout
    assert "course differs" in proc.stderr
    assert not (tmp_path / "grades.csv").exists()

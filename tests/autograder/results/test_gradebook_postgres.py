"""The gradebook in a real PostgreSQL server (started by the tests, Unix socket only): grades
land there, nbgrader's own export reads them, and two runs at the same moment both land."""

import os
import subprocess
import sys

import pytest

from tests.support import toy
from tests.support.postgres import postgres_server
from tests.support.run import REPO, env, grade, grade_cmd, read_csv

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grade_postgres")]


@pytest.fixture(scope="module")
def pg():
    with postgres_server() as server:
        yield server


def _class(subs, course, name="toy", students=("alice", "bob", "carol")):
    answers = {
        "alice": toy.solution_notebook(),
        "bob": toy.release_notebook(course, name),
        "carol": toy.with_answers(toy.solution_notebook(),
                                  sum_impl="def col_sum(x):\n    return x.sum(axis=1)\n"),
        "dave": toy.with_answers(toy.solution_notebook(),
                                 scale_impl="def scale(x, a):\n    return a + x\n"),
    }
    expected = {"alice": 5.0, "bob": 0.0, "carol": 2.0, "dave": 3.0}
    for s in students:
        toy.write_submission(subs, s, answers[s], assignment=name)
    return {(s, name): expected[s] for s in students}


def _gradebook_scores(url, course_id="toycourse"):
    from nbgrader.api import Gradebook
    with Gradebook(url, course_id=course_id) as gb:
        return {(s.student.id, a.name): s.score for a in gb.assignments for s in a.submissions}


def test_grades_land_in_postgres_and_nbgrader_export_reads_them(pg, tmp_path):
    """grade --db postgresql+psycopg://... fills the server's gradebook; nbgrader export with
    the same URL writes the same scores as grades.csv."""
    url = pg.create_database("one_run")
    course = toy.build_course(str(tmp_path / "course"))
    expected = _class(tmp_path / "subs", course)
    proc = grade(tmp_path / "subs", tmp_path / "out" / "grades.csv", course, "--db", url)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = read_csv(tmp_path / "out" / "grades.csv")
    assert {k: float(r["score"]) for k, r in rows.items()} == expected
    assert _gradebook_scores(url) == expected
    exe = os.path.join(os.path.dirname(sys.executable), "nbgrader")
    subprocess.run([exe, "export", f"--db={url}", "--to", str(tmp_path / "export.csv"),
                    "--log-level=ERROR"], cwd=course, env=env(), check=True,
                   capture_output=True, timeout=300)
    exported = read_csv(tmp_path / "export.csv")
    assert {k: float(r["score"]) for k, r in exported.items()} == expected
    assert not os.path.exists(os.path.join(course, "gradebook.db")) or \
        _gradebook_scores(f"sqlite:///{course}/gradebook.db") == {}


def test_two_runs_of_different_assignments_at_the_same_moment_both_land(pg, tmp_path):
    """Two grade commands started together into one empty PostgreSQL gradebook (the same
    students, different assignments) both finish, and every submission of both is there."""
    url = pg.create_database("two_runs")
    students = ("alice", "bob", "carol", "dave")
    course_a = toy.build_course(str(tmp_path / "a" / "course"))
    course_b = toy.build_course(str(tmp_path / "b" / "course"), name="toy-b")
    expected = _class(tmp_path / "a" / "subs", course_a, "toy", students)
    expected |= _class(tmp_path / "b" / "subs", course_b, "toy-b", students)
    cmds = [grade_cmd(tmp_path / "a" / "subs", tmp_path / "a" / "grades.csv", course_a,
                      "--db", url, "--workers", "1"),
            grade_cmd(tmp_path / "b" / "subs", tmp_path / "b" / "grades.csv", course_b,
                      "--db", url, "--workers", "1", "--registry", "tests.support.toy:OTHER")]
    procs = [subprocess.Popen(c, cwd=REPO, env=env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for c in cmds]
    outs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert _gradebook_scores(url) == expected
    for part in ("a", "b"):
        rows = read_csv(tmp_path / part / "grades.csv")
        assert all("could not be stored" not in r["reason"] for r in rows.values())


def test_a_database_that_cannot_be_reached_is_a_clear_error(tmp_path):
    """A --db URL whose server is not there stops the run with status 2 and a message naming
    the gradebook, before anything is graded."""
    course = toy.build_course(str(tmp_path / "course"))
    _class(tmp_path / "subs", course, students=("alice",))
    url = f"postgresql://nobody:secret@/gradebook?host={tmp_path}/no-server"
    proc = grade(tmp_path / "subs", tmp_path / "out" / "grades.csv", course, "--db", url)
    assert proc.returncode == 2
    assert "cannot open the gradebook" in proc.stderr and "secret" not in proc.stderr
    assert not (tmp_path / "out" / "grades.csv").exists()


def _writer(url, course_dir, name, students, barrier, errors):
    """One grading run's gradebook writer: open the gradebook and store a result per student,
    all writers released at the same moment."""
    import logging

    from autograder.grading.course import course_assignment
    from autograder.grading.jobs import Job, PartResult, Result
    from autograder.results.gradebook import GradebookSync
    ca = course_assignment(course_dir, "toy", 5.0)
    ca = type(ca)(name, ca.source, ca.release, ca.helpers, ca.max_score)
    try:
        barrier.wait(timeout=120)
        sync = GradebookSync(url, "toycourse", course_dir, {name: ca}, course_dir,
                             logging.getLogger("test"))
        for i, s in enumerate(students):
            r = Result(s, name, "k", None, 5.0, float(i % 6), "", parts=[
                PartResult("toy-scale", "Scaling", 2.0, float(min(i % 6, 2)), ""),
                PartResult("toy-sum", "Column sums", 3.0, float(max(i % 6 - 2, 0)), "")])
            sync.store(r, Job(s, name))
            if r.retry:
                errors.put(r.reason)
        sync.close()
    except Exception as exc:
        errors.put(f"{type(exc).__name__}: {exc}")


def test_writers_released_together_into_an_empty_gradebook_all_land(pg, tmp_path):
    """Four writers (four assignments, the same twelve students) opening one empty
    PostgreSQL gradebook at the same moment and storing at once: no error, every score there."""
    import multiprocessing
    url = pg.create_database("writers")
    course = toy.build_course(str(tmp_path / "course"))
    ctx = multiprocessing.get_context("fork")
    barrier, errors = ctx.Barrier(4), ctx.Queue()
    students = [f"s{i:02d}" for i in range(12)]
    names = [f"w{k}" for k in range(4)]
    procs = [ctx.Process(target=_writer, args=(url, course, n, students, barrier, errors))
             for n in names]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == [] and all(p.exitcode == 0 for p in procs)
    assert _gradebook_scores(url) == {(s, n): float(i % 6) for n in names
                                      for i, s in enumerate(students)}

"""``grade --scheduler``: the sample class graded on a real Dask cluster (a scheduler and two
workers started with Dask's command lines on 127.0.0.1) gives the local pool's grades.csv, and
a run without ``--scheduler`` neither imports nor starts Dask."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import toy
from tests.support.dask_cluster import dask_cluster, require_dask
from tests.support.run import REPO, TOY_REGISTRY, env, once, read_csv, sandboxed
from tests.support.samples import ONCE_KEY, grade_samples_locally

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grade_cluster")]

NO_DASK = """
import sys
from autograder import cli
status = cli.main(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))
print('loaded:', loaded)
sys.exit(status)
"""


def test_a_local_run_imports_no_dask(tmp_path):
    """Without --scheduler the grade command runs in the local pool and loads no module of
    Dask."""
    course = toy.build_course(str(tmp_path / "course"))
    toy.write_submission(tmp_path / "subs", "alice", toy.solution_notebook(), name="x.ipynb")
    allow = [] if sandboxed() else ["--allow-unsandboxed"]
    proc = subprocess.run([sys.executable, "-c", NO_DASK, "grade", str(tmp_path / "subs"),
                           "--out", str(tmp_path / "grades.csv"), "--course", course,
                           "--registry", TOY_REGISTRY, *allow], cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "loaded: []" in proc.stdout
    assert read_csv(tmp_path / "grades.csv")[("alice", "toy")]["reason"].startswith("misnamed")


def test_the_sample_class_on_two_workers_matches_the_local_pool(tmp_path_factory, tmp_path):
    """The real assignments' sample class graded through two Dask workers: grades.csv is the
    local pool's, row for row."""
    require_dask()
    local = once(ONCE_KEY, tmp_path_factory, grade_samples_locally)
    assert local["proc"]["returncode"] == 0, local["proc"]["stderr"][-2000:]
    course = tmp_path / "course"
    shutil.copytree(local["course"], course, ignore=shutil.ignore_patterns(
        ".autograder_state", "gradebook.db", "autograded", "submitted", "feedback"))
    allow = [] if sandboxed() else ["--allow-unsandboxed"]
    out = tmp_path / "grades.csv"
    with dask_cluster(tmp_path / "cluster", course, workers=2) as cluster:
        proc = subprocess.run([sys.executable, "-m", "autograder", "grade", local["subs"],
                               "--out", str(out), "--course", str(course), "--scheduler",
                               cluster.scheduler_file, *allow], cwd=REPO, env=env(),
                              capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_csv(out) == read_csv(Path(local["out"]))

"""Grading throughput: ``python -m autograder grade`` against plain sequential ``nbgrader
autograde`` on the same sample corpus (issue 4, "Speed").

Usage: ``python benchmarks/bench_grading.py [--workers N] [--repeat K] [--work DIR]``

1. ``python -m autograder release`` builds a course; :func:`autograder.samples.write_samples`
   writes the sample corpus (perfect, empty, one student per common mistake).
2. **ours**: ``python -m autograder grade SUBMISSIONS --fresh --workers N`` on a copy of the
   course: sandboxed kernels, verdicts in the grader, gradebook, CSV, feedback, histogram.
3. **baseline**: a second copy of the course with the same notebooks under ``submitted/``;
   ``nbgrader autograde <assignment>`` run once per assignment, one after the other (nbgrader's
   own sequential mode), with the course exactly as ``release`` built it: its
   ``source/<assignment>/_grading_harness.py`` (``autograder.assignments.stock_harness``)
   grades each part inside the kernel, as stock nbgrader does. The script checks that our run
   gives every notebook the score its sample expects (exit 1 otherwise) and says on how many
   notebooks stock nbgrader's scores differ (it gives 0 to a part whose visible test fails).

Wall-clock time of each whole command is measured (best of ``--repeat``); the script prints
notebooks per minute for both and the ratio ours / baseline. On 2 cores the ratio is bounded by
2 (two kernels at a time instead of one) minus our extra work per notebook: bubblewrap and
cgroup setup, the case files, the references computed in the grader, the gradebook writes and
the report files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"]
                                     if env.get("PYTHONPATH") else "")
    env["MPLBACKEND"] = "Agg"
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def fresh_course(work: Path) -> tuple[Path, Path]:
    """An empty ``work`` folder with a course released into ``work/course``; (the course, the
    submissions folder to fill)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    course = work / "course"
    subprocess.run([sys.executable, "-m", "autograder", "release", "--out", str(course)],
                   cwd=REPO, env=_env(), check=True, stdout=subprocess.DEVNULL)
    return course, work / "submissions"


def run_ours(course: Path, subs: Path, out: Path, workers: int, *extra: str) -> float:
    """Seconds ``python -m autograder grade --fresh`` took (``extra``: more options)."""
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autograder", "grade", str(subs), "--out", str(out),
                    "--course", str(course), "--workers", str(workers), "--fresh", *extra],
                   cwd=REPO, env=_env(), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def run_nbgrader(course: Path, subs: Path) -> float:
    from autograder.assignments import ASSIGNMENTS
    for student in os.listdir(subs):
        for assignment in os.listdir(subs / student):
            shutil.copytree(subs / student / assignment,
                            course / "submitted" / student / assignment, dirs_exist_ok=True)
    exe = Path(sys.executable).parent / "nbgrader"
    t = time.perf_counter()
    for name in ASSIGNMENTS:
        subprocess.run([str(exe), "autograde", name, "--force", "--log-level=ERROR"],
                       cwd=course, env=_env(), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def nbgrader_scores(course: Path) -> dict:
    """Every (student, assignment) of nbgrader's gradebook, as ``nbgrader export`` has it
    (0 where nothing was handed in), as grades.csv has it too."""
    from nbgrader.api import Gradebook

    from autograder.results.gradebook import course_settings
    course_id, url = course_settings(str(course))
    with Gradebook(url, course_id=course_id) as gb:
        scores = {(s.id, a.name): 0.0 for a in gb.assignments for s in gb.students}
        scores.update({(s.student.id, s.assignment.name): s.score
                       for a in gb.assignments for s in a.submissions})
        return scores


def csv_scores(path: Path) -> dict:
    import csv
    with open(path) as f:
        return {(r["student_id"], r["assignment"]): float(r["score"])
                for r in csv.DictReader(f)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--work", type=Path, default=REPO / "_build" / "bench_grading")
    args = p.parse_args(argv)
    from autograder.testing.samples import write_samples

    base_course, subs = fresh_course(args.work)
    expected = write_samples(base_course, subs)
    n = len(expected)
    ours, theirs = [], []
    for k in range(args.repeat):
        c1, c2 = args.work / f"ours{k}", args.work / f"nbgrader{k}"
        shutil.copytree(base_course, c1)
        shutil.copytree(base_course, c2)
        ours.append(run_ours(c1, subs, args.work / f"grades{k}.csv", args.workers))
        theirs.append(run_nbgrader(c2, subs))
    ours_scores = csv_scores(args.work / "grades0.csv")
    theirs_scores = nbgrader_scores(args.work / "nbgrader0")
    right = all(ours_scores.get(k) == v for k, v in expected.items())
    differ = sorted(k for k in expected if ours_scores.get(k) != theirs_scores.get(k))
    t_ours, t_theirs = min(ours), min(theirs)
    rate_ours, rate_theirs = 60 * n / t_ours, 60 * n / t_theirs
    print(f"corpus: {n} notebooks; cores: {os.cpu_count()}; workers: {args.workers}")
    print(f"python -m autograder grade : {t_ours:7.1f} s  {rate_ours:6.1f} notebooks/min")
    print(f"nbgrader autograde (seq.)  : {t_theirs:7.1f} s  {rate_theirs:6.1f} notebooks/min")
    print(f"ratio (ours / nbgrader)    : {rate_ours / rate_theirs:.2f}x")
    print(f"ours = the samples' expected scores: {right}")
    print(f"nbgrader's scores differ on {len(differ)} of {n} notebooks: stock nbgrader gives 0 "
          "to a part whose visible test fails, our grader scores its hidden checks (issue 14)")
    return 0 if right else 1


if __name__ == "__main__":
    sys.exit(main())

"""Grading on Dask against the local pool, on this machine (issue 15, "Benchmark"), and where a
notebook's time goes.

Usage: ``python benchmarks/bench_scale.py [--copies K] [--work DIR]`` (``make bench-scale``)

1. ``python -m autograder release`` builds a course;
   :func:`autograder.testing.samples.write_samples` writes the sample class (perfect, empty, one
   student per common mistake), ``--copies`` times under other student names.
2. The same ``python -m autograder grade SUBMISSIONS --fresh`` is timed, one after the other on
   copies of the course:

   * **local 1** and **local 2**: the local pool with ``--workers 1`` and ``--workers 2``;
   * **dask 1** and **dask 2**: ``--scheduler`` of a Dask scheduler started here with Dask's own
     command line (``dask scheduler --host 127.0.0.1``) and one or two workers (``dask worker
     ... --nworkers 1 --nthreads 1 --preload autograder.grading.dask_worker``), started before
     the timing as they would be on a cluster.

   Every run must give the same grades.csv as local 1 (checked).
3. It prints notebooks per minute for each, the ratios dask / local for the same number of
   kernels at a time, and the Dask overhead per notebook (seconds and percent; the goal is under
   5 %), then where the time went in each run (the :class:`~autograder.grading.timings.Timings`
   of every result, read back from the state folder): sandbox start, kernel start, imports,
   the student's cells, the hidden checks, the references computed in the grader, summed over
   the class; and a worked estimate for 10,000 students x 5 assignments on N grading hosts from
   the measured per-notebook cost.

Wall-clock times of whole commands, in rounds (each configuration once per round; ``--repeat``
rounds, the best counts), and the CPU seconds of the processes around the kernels (the grade
command with its pool; for Dask also the scheduler and the workers), which a busy machine
disturbs much less than wall time: their difference is Dask's own cost. (A kernel ends inside
bubblewrap's PID namespace, whose processes the system reaps, so its CPU time is not in these
sums; the tables of where the time went count it.) The load average is printed with each
run.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_grading import REPO, _env, fresh_course, run_ours  # noqa: E402

from autograder.testing.cluster import Cluster  # noqa: E402

STUDENTS, ASSIGNMENTS_PER_STUDENT = 10_000, 5
HOSTS = (1, 10, 50)


def _children_cpu() -> float:
    """CPU seconds of this script's children that have ended (the grade commands, with the
    pool workers and kernels they waited for)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def start_cluster(folder: Path, course: Path, workers: int) -> Cluster:
    """A scheduler and ``workers`` one-thread workers grading from ``course``, all joined."""
    cluster = Cluster(folder, _env())
    try:
        cluster.start_scheduler()
        for i in range(workers):
            cluster.add_worker(str(course), f"w{i}")
        cluster.wait_for_workers(workers, timeout=300)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def write_corpus(course: Path, subs: Path, copies: int) -> int:
    """The sample class ``copies`` times (students ``<name>-<k>`` after the first); the number
    of notebooks."""
    from autograder.testing.samples import write_samples
    first = subs / "c0"
    write_samples(course, first)
    n = 0
    for k in range(copies):
        for student in sorted(os.listdir(first)):
            name = student if k == 0 else f"{student}-{k}"
            shutil.copytree(first / student, subs / name)
            n += sum(1 for _ in (subs / name).iterdir())
    shutil.rmtree(first)
    return n


def timings_of(course: Path) -> list:
    """The Timings of every result kept in the state folder of ``course``."""
    from autograder.grading.jobs import Result
    from autograder.grading.state import STATE_DIR
    return [Result.from_json(path.read_text()).timings
            for path in sorted((course / STATE_DIR).glob("*/*.json"))]


def rows_of(path: Path) -> list[dict]:
    with open(path) as f:
        return sorted(csv.DictReader(f), key=lambda r: (r["assignment"], r["student_id"]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--copies", type=int, default=1, help="copies of the sample class")
    p.add_argument("--repeat", type=int, default=1, help="runs of each, the best counts")
    p.add_argument("--work", type=Path, default=REPO / "_build" / "bench_scale")
    args = p.parse_args(argv)
    from autograder.results import timing

    base, subs = fresh_course(args.work)
    n = write_corpus(base, subs, args.copies)
    print(f"corpus: {n} notebooks; cores: {os.cpu_count()}; load average before: {_load()}",
          flush=True)

    configs = ["local 1", "dask 1", "local 2", "dask 2"]
    clusters, courses = {}, {}
    for name in configs:
        courses[name] = args.work / name.replace(" ", "-")
        shutil.copytree(base, courses[name])
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    try:
        for workers in (1, 2):   # started before any timing, as a cluster would be
            clusters[f"dask {workers}"] = start_cluster(args.work / f"cluster-{workers}",
                                                        courses[f"dask {workers}"], workers)
        for _ in range(args.repeat):   # rounds, each configuration once per round
            for name in configs:
                cluster = clusters.get(name)
                extra = ("--scheduler", cluster.address) if cluster else ()
                out = args.work / f"{name.replace(' ', '-')}.csv"
                before = _children_cpu() + (cluster.cpu() if cluster else 0.0)
                t = run_ours(courses[name], subs, out, int(name[-1]), *extra)
                used = _children_cpu() + (cluster.cpu() if cluster else 0.0) - before
                if t < seconds.get(name, float("inf")):
                    seconds[name], cpu[name] = t, used
                same = rows_of(out) == rows_of(args.work / "local-1.csv")
                print(f"{name:8s}: {t:7.1f} s  {60 * n / t:6.1f} notebooks/min, "
                      f"{used / n:5.2f} CPU-s per notebook outside the kernels; same grades.csv "
                      f"as local 1: {same}; load average {_load()}", flush=True)
                if not same:
                    print(f"!! {name} graded differently from local 1", file=sys.stderr)
                    return 1
    finally:
        for cluster in clusters.values():
            cluster.stop()
    spent = {name: timings_of(courses[name]) for name in configs}
    print()
    for workers in (1, 2):
        local, dask = seconds[f"local {workers}"], seconds[f"dask {workers}"]
        per = (dask - local) / n * workers
        extra_cpu = (cpu[f"dask {workers}"] - cpu[f"local {workers}"]) / n
        print(f"{workers} worker{'s' if workers > 1 else ''}: dask / local notebooks per minute "
              f"= {local / dask:.3f}x; Dask overhead {dask / local - 1:+.1%} of the wall time "
              f"({per:+.2f} s per notebook per worker), {extra_cpu:+.3f} CPU-s per notebook "
              f"({cpu[f'dask {workers}'] / cpu[f'local {workers}'] - 1:+.1%} of the CPU time)")
    print(f"load average after: {_load()}")
    for name in seconds:
        print(f"\n{name}: {timing.summary(spent[name])}")
    wall_per = seconds["dask 2"] * 2 / n             # seconds of one worker per notebook
    cpu_per = sum(t.total.cpu for t in spent["dask 2"]) / len(spent["dask 2"])
    notebooks = STUDENTS * ASSIGNMENTS_PER_STUDENT
    print(f"\nestimate for {STUDENTS:,} students x {ASSIGNMENTS_PER_STUDENT} assignments = "
          f"{notebooks:,} notebooks, from dask 2: {wall_per:.2f} s of one worker (one core) "
          f"and {cpu_per:.2f} CPU-s per notebook ({notebooks * cpu_per / 3600:,.0f} CPU-hours)")
    for hosts in HOSTS:
        for cores in (16, 64):
            hours = notebooks * wall_per / (hosts * cores) / 3600
            print(f"  {hosts:3d} hosts x {cores:2d} cores (one worker per core): "
                  f"{hours:7.1f} h")
    return 0


if __name__ == "__main__":
    sys.exit(main())

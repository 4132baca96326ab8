"""``python -m tests.support.kernel_probe CONFIG``: run code in one sandboxed kernel from a
process of its own and print what happened as JSON (last line).

CONFIG (JSON): ``code`` (run as one cell), ``limits`` (keyword arguments of
:class:`autograder.sandbox.limits.Limits`), ``data_limit`` (bytes of RLIMIT_DATA for this process,
standing for the grader's memory: what the kernel sends must never exhaust it), ``mounts``
(true: the scratch space is mounted as the worker mounts it, in a mount namespace of this
process's own, where the grader is root). After the run the kernel's temporary folder is
removed the way the worker removes it, and the output says what is left: ``left`` (the folder),
``cgroups`` (the kernel's control groups), ``mounted`` (mounts below the folder).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile

from autograder.grading import worker
from autograder.sandbox import kernel as kernel_run
from autograder.sandbox import mounts
from autograder.sandbox.isolation import detect
from autograder.sandbox.limits import Limits


def main(cfg: dict) -> dict:
    if cfg.get("data_limit"):
        resource.setrlimit(resource.RLIMIT_DATA, (cfg["data_limit"], cfg["data_limit"]))
    limits = Limits(**cfg.get("limits", {}))
    isolation = detect()
    if cfg.get("mounts"):
        mounts.private_namespace()
    base = tempfile.mkdtemp(prefix="kp-", dir=cfg.get("tmp"))
    os.chmod(base, 0o755)
    os.makedirs(os.path.join(base, "cases"))
    run_dir, scratch = worker.scratch(base, limits, isolation, 7)
    with kernel_run.SandboxedKernel(isolation, limits, slot=7, run_dir=run_dir,
                                    cases_dir=os.path.join(base, "cases"), helper_files={},
                                    cgroup_name=f"ag-probe-{os.getpid()}",
                                    scratch=scratch) as k:
        dirs = list(k.cgroup.dirs)
        step = k.execute(cfg["code"])
        out = {"status": step.status, "error": step.error, "fault": k.fault,
               "notes": k.notes(), "outputs": step.outputs, "outside": k.outside,
               "scratch": scratch}
    out["cleanup"] = "; ".join(x for x in (k.left, worker._cleanup(base)) if x)
    out["left"] = os.path.exists(base)
    out["cgroups"] = [d for d in dirs if os.path.exists(d)]
    with open("/proc/self/mountinfo") as f:
        out["mounted"] = [line for line in f if base in line]
    out["maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))

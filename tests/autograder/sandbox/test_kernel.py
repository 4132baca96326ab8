"""Tests for autograder.sandbox (isolation, command, kernel): what student code can reach."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from autograder.grading import records
from autograder.sandbox import harness
from autograder.sandbox import kernel as kernel_run
from autograder.sandbox import mounts as mounts_mod
from autograder.sandbox.command import SANDBOX_HOME
from autograder.sandbox.isolation import detect
from autograder.sandbox.limits import Limits
from tests.support import hostile
from tests.support.run import REPO, env

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.xdist_group("sandbox")]
# The module's `kernel` serves every test that takes it, while the tests between them run for
# minutes on a busy machine: its notebook time limit (counted from its start) must outlast the
# module, or a late test would find the notebook's time spent. (The notebook limit itself is
# tested by the hostile batch's "per-notebook time limit" sample, tests/support/hostile.py.)
LIMITS = Limits(cell_timeout=5, notebook_timeout=1800, memory=2**30, processes=64,
                output_bytes=2**20)


@pytest.fixture(scope="module")
def isolation():
    return detect()


@pytest.fixture(scope="module")
def kernel(isolation, tmp_path_factory):
    base = tmp_path_factory.mktemp("sbx")
    os.chmod(base, 0o755)
    run_dir, cases = base / "run", base / "cases"
    run_dir.mkdir()
    cases.mkdir()
    (cases / "p.npz").write_bytes(records.encode_cases([{"x": np.arange(3.0)}]))
    helpers = {"_grading_harness.py": harness.__file__}
    with kernel_run.SandboxedKernel(isolation, LIMITS, slot=0, run_dir=str(run_dir),
                                    cases_dir=str(cases), helper_files=helpers,
                                    cgroup_name=f"ag-test-{os.getpid()}") as k:
        yield k


def run(kernel, code):
    return kernel.execute(code)


def test_describe_names_the_isolation(isolation):
    """The description says bubblewrap, the uid model and the limits."""
    text = isolation.describe(LIMITS)
    assert "bubblewrap" in text and "memory 1024 MiB" in text and "user:" in text


def test_project_modules_cannot_be_imported(kernel):
    """solutions and autograder are not importable inside the kernel."""
    for mod in ("solutions", "autograder", "tests"):
        r = run(kernel, f"import {mod}")
        assert r.status == "error" and "ModuleNotFoundError" in r.error, mod


def test_project_and_course_are_not_in_view(kernel):
    """Of the project tree the kernel sees at most the interpreter's venv (bound read-only
    where the venv lives inside the checkout): no solutions/, autograder/, tests/ or course."""
    r = run(kernel, f"import os\nprint(sorted(os.listdir({REPO!r})) "
                    f"if os.path.exists({REPO!r}) else [])")
    assert set(eval(r.outputs[0]["text"])) <= {".venv"}


def test_private_system_files_are_not_in_view(kernel):
    """/etc/shadow, SSH host keys and /root are absent from the kernel's view."""
    r = run(kernel, "import os\nprint([p for p in ('/etc/shadow', '/etc/ssh', '/root/.ssh') "
                    "if os.path.exists(p)])")
    assert r.outputs[0]["text"].strip() == "[]"


def test_no_network(kernel):
    """Outgoing connections fail: there is no network interface but loopback."""
    r = run(kernel, "import socket\nsocket.create_connection(('1.1.1.1', 53), timeout=2)")
    assert r.status == "error" and "OSError" in r.error


def test_grader_processes_are_invisible(kernel):
    """The kernel sees only its own PID namespace."""
    r = run(kernel, f"import os\nprint(os.path.exists('/proc/{os.getpid()}'), "
                    "len([p for p in os.listdir('/proc') if p.isdigit()]) < 10)")
    assert r.outputs[0]["text"].strip() == "False True"


def test_harness_reads_inputs_and_publishes(kernel):
    """The harness inside the sandbox reads the cases and publishes a record payload."""
    r = run(kernel, "import _grading_harness\n"
                    "_grading_harness.run('p', lambda c, record: record(y=2 * c['x']))")
    n, got, _ = records.decode_records(r.payloads[-1])
    assert n == 1 and got[0]["y"].tolist() == [0.0, 2.0, 4.0]


def test_cell_time_limit_interrupts(kernel):
    """An endless cell is interrupted at the cell limit and the kernel survives."""
    r = run(kernel, "while True:\n    pass")
    assert r.status == "timeout" and "interrupted" in r.error
    assert run(kernel, "print(1)").outputs[0]["text"] == "1\n"


def _fresh_kernel(isolation, tmp_path, slot, files=None):
    os.chmod(tmp_path, 0o755)
    (tmp_path / "run").mkdir()
    (tmp_path / "cases").mkdir()
    return kernel_run.SandboxedKernel(isolation, LIMITS, slot=slot, run_dir=str(tmp_path / "run"),
                                      cases_dir=str(tmp_path / "cases"), helper_files=files or {},
                                      cgroup_name=f"ag-test{slot}-{os.getpid()}")


def test_memory_limit_stops_a_memory_bomb(isolation, tmp_path):
    """Touching more memory than the limit ends in MemoryError or a killed kernel."""
    with _fresh_kernel(isolation, tmp_path, 2) as k:
        r = k.execute("x = bytearray(3 * 2**30)\nfor i in range(0, len(x), 4096):\n"
                      "    x[i] = 1")
        assert r.status in ("error", "dead")
        if r.status == "dead":
            assert "killed for using more than 1 GiB" in r.error and k.fault == r.error
        else:
            assert "MemoryError" in r.error


def test_output_is_capped(kernel):
    """Output beyond the budget is dropped with a note."""
    r = run(kernel, "print('x' * 3_000_000)")
    assert kernel.output_overflow and sum(len(str(o)) for o in r.outputs) < 2 * 2**20


def test_writes_are_limited(kernel):
    """The home folder is a small tmpfs and single files are size-limited."""
    r = run(kernel, "f = open('/home/student/big', 'wb')\nfor _ in range(10):\n"
                    "    f.write(b'x' * (10 * 2**20))\n    f.flush()")
    assert r.status == "error" and "File too large" in r.error


def test_background_processes_die_with_the_kernel(isolation, tmp_path):
    """A detached process started by the notebook is gone once the kernel is closed."""
    token = str(800000 + os.getpid() % 99999)
    with _fresh_kernel(isolation, tmp_path, 1) as k:
        k.execute(f"import subprocess\nsubprocess.Popen(['sleep', '{token}'], "
                  "start_new_session=True)")
    time.sleep(0.5)
    left = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if token in open(f"/proc/{pid}/cmdline").read():
                    left.append(pid)
            except OSError:
                pass
    assert left == []


def test_oversized_record_does_not_hang_the_grader(isolation, tmp_path):
    """A message larger than ZeroMQ's limit is dropped and the cell still ends."""
    limits = Limits(cell_timeout=20, notebook_timeout=60, output_bytes=2**20)
    os.chmod(tmp_path, 0o755)
    (tmp_path / "run").mkdir()
    (tmp_path / "cases").mkdir()
    with kernel_run.SandboxedKernel(isolation, limits, slot=3, run_dir=str(tmp_path / "run"),
                                    cases_dir=str(tmp_path / "cases"), helper_files={},
                                    cgroup_name=f"ag-test3-{os.getpid()}") as k:
        r = k.execute("from IPython.display import publish_display_data\n"
                      "publish_display_data({'text/plain': 'x' * (120 * 2**20)})\n"
                      "print('after')")
        assert r.status in ("ok", "timeout")
        assert k.execute("print('still here')").outputs[-1]["text"] == "still here\n"


def _probe(code, timeout=120, **cfg):
    """Run ``code`` via tests.support.kernel_probe (a grader process of its own)."""
    proc = subprocess.run([sys.executable, "-m", "tests.support.kernel_probe",
                           json.dumps({"code": code, **cfg})], cwd=REPO, env=env(),
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


@pytest.mark.parametrize("attack", ["frames", "messages"])
def test_output_floods_stop_the_notebook_not_the_grader(isolation, attack):
    """One message of thirty 80 MB frames, or a stream of 80 MB messages, ends the notebook
    with "output limit exceeded" while the grader (here limited to 1 GiB) never holds it."""
    code = (hostile.FLOOD_FRAMES if attack == "frames"
            else hostile.FLOOD_MESSAGES.format(count=20))
    r = _probe(code + "print('not reached')", data_limit=2**30, limits={
        "cell_timeout": 30, "notebook_timeout": 60, "output_bytes": 2**20,
        "receive_bytes": 512 * 2**20})
    assert r["status"] == "dead" and r["error"].startswith("output limit exceeded"), r
    assert r["fault"] == r["error"] and r["maxrss"] < 2**30


def test_malformed_messages_are_ignored_with_a_note(kernel):
    """Junk frames, bad signatures, non-object parts, deep nesting, huge integers, wrong types
    and too many frames are ignored and noted; execution goes on and returns normally (a
    well-formed forged error message counts as the cell's error, which only hurts the cell)."""
    r = run(kernel, hostile.MALFORMED_MESSAGES + "print('after')")
    assert r.status in ("ok", "error") and r.outputs[-1]["text"] == "after\n", r
    text = json.dumps(r.outputs)
    assert "<script" not in text and "javascript" not in text
    assert any("malformed messages from the kernel ignored" in n for n in kernel.notes())
    assert run(kernel, "print(1)").outputs[0]["text"] == "1\n"


def test_planted_fifos_and_trees_neither_hang_nor_stay(isolation, tmp_path):
    """A kernel that replaces the files of its socket folder by FIFOs and links, leaves deep
    and unreadable folders and dies: the death is reported at once and the folder removed."""
    r = _probe(hostile.PLANT_FILES, timeout=60, tmp=str(tmp_path),
               limits={"cell_timeout": 20, "notebook_timeout": 40})
    assert r["status"] == "dead" and "exit status 7" in r["error"], r
    assert r["cleanup"] == "" and not r["left"] and os.listdir(tmp_path) == []


WRITABLE = """
import json, os
cmd = open('/proc/self/cmdline').read().split('\\0')
run_dir = os.path.dirname(cmd[cmd.index('-f') + 1])
places = []
for line in open('/proc/self/mounts'):
    mnt, fstype, opts = line.split()[1:4]
    if 'rw' in opts.split(',') and fstype not in ('proc', 'devpts', 'sysfs', 'mqueue') \\
            and os.path.isdir(mnt):
        places.append(mnt)
written = {}
for place in places:
    total = 0
    if place != run_dir:
        for i in range(40):
            try:
                fd = os.open(os.path.join(place, f'fill{i}'), os.O_WRONLY | os.O_CREAT)
            except OSError:
                break
            try:
                while True:
                    total += os.write(fd, b'x' * 2**20)
            except OSError:
                pass
            finally:
                os.close(fd)
    written[place] = total
print(json.dumps({'run_dir': run_dir, 'written': written}))
"""


def test_every_writable_place_is_bounded(isolation, tmp_path):
    """The only writable places are home, /tmp, /dev/shm (each within its tmpfs size) and the
    socket folder (see the next test): not the root, not /dev."""
    limits = Limits(cell_timeout=30, notebook_timeout=60, file_size=4 * 2**20,
                            tmpfs_bytes=16 * 2**20)
    with kernel_run.SandboxedKernel(isolation, limits, slot=4, run_dir=_dirs(tmp_path),
                                    cases_dir=str(tmp_path / "cases"), helper_files={},
                                    cgroup_name=f"ag-test4-{os.getpid()}") as k:
        r = k.execute(WRITABLE)
        assert r.status == "ok", r.error
    found = json.loads(r.outputs[-1]["text"])
    written = found.pop("written")
    assert set(written) <= {SANDBOX_HOME, "/tmp", "/dev/shm", found["run_dir"]}, written
    assert {"/tmp", "/dev/shm", SANDBOX_HOME} <= set(written)
    assert all(n <= 16 * 2**20 for n in written.values()), written


def test_writing_into_the_socket_folder_stops_the_notebook(isolation, tmp_path):
    """The socket folder is writable (the kernel binds its sockets there) but filling it ends
    the notebook with a reason (without root it lies on the host's disk)."""
    code = ("import os, time\ncmd = open('/proc/self/cmdline').read().split('\\0')\n"
            "d = os.path.dirname(cmd[cmd.index('-f') + 1])\n"
            "for i in range(8):\n    open(os.path.join(d, f'f{i}'), 'wb').write(b'x' * 2**20)\n"
            "time.sleep(10)\n")
    with _fresh_kernel(isolation, tmp_path, 5) as k:
        r = k.execute(code)
        assert r.status == "dead" and "socket folder" in r.error, r.error


def test_cpu_quota_is_set_where_cgroups_allow(isolation, tmp_path):
    """With a CPU controller the kernel's group holds a quota of Limits.cpus (1 CPU)."""
    with _fresh_kernel(isolation, tmp_path, 6) as k:
        cpu = [d for d in k.cgroup.dirs if "/cpu" in d]
        if not cpu:
            pytest.skip("no cpu cgroup controller here")
        quota = open(os.path.join(cpu[0], "cpu.cfs_quota_us" if isolation.cgroup.startswith(
            "v1") else "cpu.max")).read().split()[0]
        assert int(quota) == 100_000
        assert open(os.path.join(cpu[0], "cgroup.procs")).read().split()  # the kernel is in


def _dirs(tmp_path):
    os.chmod(tmp_path, 0o755)
    (tmp_path / "run").mkdir()
    (tmp_path / "cases").mkdir()
    return str(tmp_path / "run")


def test_record_payloads_are_read_from_display_messages_only():
    """Only display_data/execute_result messages carry record payloads, and only the keys the
    grader reads are kept."""
    mime = "application/vnd.autograder.records+json"
    got = kernel_run.record_payload("display_data", {"data": {mime: {"part": "p", "evil": 1}}})
    assert got is not None and got[0] == {"part": "p"}
    assert kernel_run.record_payload("stream", {"text": "x"}) is None
    assert kernel_run.record_payload("display_data", {"data": {mime: [1]}}) is None


def test_what_is_kept_of_a_payload_is_bounded_whatever_its_shape():
    """Fields of the wrong shape (an errors list, too many errors, a long part id, a float
    case count) are kept as None, error messages are cut, and the reported size is what is
    kept, not what was sent."""
    mime = "application/vnd.autograder.records+json"
    sent = {"part": "p" * 300, "cases": 3.0, "npz": "AAAA",
            "errors": [{} for _ in range(100_000)]}
    kept, size = kernel_run.record_payload("display_data", {"data": {mime: sent}})
    assert kept == {"part": None, "cases": None, "npz": "AAAA", "errors": None}
    assert size < 1000
    many = dict(sent, errors={str(i): "x" for i in range(2000)})
    assert kernel_run.record_payload("display_data", {"data": {mime: many}})[0]["errors"] is None
    long = dict(sent, errors={"0": "e" * 10_000})
    assert kernel_run.record_payload("display_data", {"data": {mime: long}})[0]["errors"] == {
        "0": "e" * 500}


def test_a_kernel_killed_by_its_own_child_has_no_outside_cause(isolation):
    """SIGKILL sent by the notebook's own process ends it as a death, with no evidence of an
    outside cause (so no second attempt)."""
    r = _probe(hostile.SELF_KILL, limits={"cell_timeout": 20, "notebook_timeout": 40})
    assert r["status"] == "dead" and "killed by SIGKILL" in r["error"], r
    assert r["outside"] == ""


FILL_FOLDERS = """
import os, time
t, made = time.time(), {}
for root in ('/tmp', '/home/student', '/dev/shm'):
    made[root] = 0
    try:
        while time.time() - t < 25:
            os.mkdir(f'{root}/d{made[root]}')
            made[root] += 1
    except OSError as e:
        made[root] = (made[root], e.strerror)
print(made)
"""


@pytest.mark.parametrize("mounts", [True, False])
def test_a_scratch_full_of_folders_leaves_nothing_behind(isolation, tmp_path, mounts):
    """A notebook that fills its scratch space with empty folders (where the grader is root,
    up to the inode bound of the mounts; else for 25 s or until its memory limit kills it, the
    folders' kernel memory counting) leaves no control group, mount or temporary folder
    behind, and the removal reports nothing left."""
    if mounts and (os.geteuid() != 0 or isolation.separate_user):
        pytest.skip("the grader mounts the scratch space only as root")
    r = _probe(FILL_FOLDERS, timeout=300, tmp=str(tmp_path), mounts=mounts,
               limits={"cell_timeout": 60, "notebook_timeout": 120, "memory": 2**30})
    if mounts:
        assert r["status"] == "ok", r
        made = eval(r["outputs"][-1]["text"])
        assert set(r["scratch"]) == {"/tmp", SANDBOX_HOME, "/dev/shm"}
        assert all(m[0] < mounts_mod.SCRATCH_INODES and "space" in m[1]
                   for m in made.values()), made
    else:
        assert r["status"] == "ok" or "more than 1 GiB" in r["error"], r
    assert r["cleanup"] == "" and r["cgroups"] == [] and r["mounted"] == [], r
    assert not r["left"] and os.listdir(tmp_path) == []


def test_start_is_split_at_the_kernels_first_line_and_its_cpu_is_read(kernel):
    """The kernel's Python wrote its start mark, so start-up splits into a sandbox part and a
    kernel part, and the CPU seconds of its processes grow while a cell computes."""
    start = kernel.startup
    assert start.sandbox_wall > 0 and start.kernel_wall > 0 and start.kernel_cpu > 0
    before = kernel.cpu_seconds()
    r = run(kernel, "x = 0\nfor i in range(3_000_000):\n    x += i")
    assert r.status == "ok", r
    assert kernel.cpu_seconds() > before

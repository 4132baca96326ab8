"""Tests for the set-up step of ``make test`` (tests/support/system.py) and the skips of
tests/conftest.py: a machine that lacks the system packages, or cannot install them, is told
which are missing, how to install them and how many tests that skips, and the run passes."""

import os
import shutil
import stat
import subprocess
import sys

import pytest

from tests.support import system
from tests.support.run import REPO, env

TINY = '''
import pytest

@pytest.mark.sandbox
@pytest.mark.parametrize("n", [1, 2, 3])
def test_needs_the_sandbox(n):
    pass

@pytest.mark.browser
def test_needs_the_browser():
    pass

def test_needs_nothing():
    pass
'''


def _bin(folder, **programs) -> str:
    """A folder for PATH holding only ``programs`` (name: shell script body)."""
    folder.mkdir(exist_ok=True)
    for name, body in programs.items():
        path = folder / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(folder)


def _plain_env() -> dict:
    """The tests' environment without the settings that make missing packages fail (CI runs
    the suite with REQUIRE_SYSTEM_PACKAGES=1; these tests set them where they mean to)."""
    return {k: v for k, v in env().items()
            if k not in (system.REQUIRE_ALL, "REQUIRE_BROWSER")}


def _system(action, path, tiny, extra_env=None, python=sys.executable, prefix=()):
    e = {**_plain_env(), "PATH": path, **(extra_env or {})}
    return subprocess.run([*prefix, python, "-m", "tests.support.system", action, str(tiny)],
                          cwd=REPO, env=e, capture_output=True, text=True, timeout=300)


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny" / "test_tiny.py"
    path.parent.mkdir()
    path.write_text(TINY)
    return path


def test_check_names_what_is_missing_from_path_how_to_get_it_and_what_it_skips(tmp_path, tiny):
    """With bubblewrap, Chromium and npm out of PATH, the check says they are missing, how to
    install them and how many tests that skips, and exits 0."""
    done = _system("check", _bin(tmp_path / "bin"), tiny)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "bubblewrap (the grader's sandbox and its tests): bwrap is not installed" in out
    assert "3 tests marked 'sandbox' skipped" in out
    assert "chromium: not installed; chromedriver: not installed; npm: not installed" in out
    assert "1 test marked 'browser' skipped" in out
    assert "apt-get install -y" in out


def test_autograder_bwrap_none_counts_as_missing(tmp_path, tiny):
    """AUTOGRADER_BWRAP=none switches the sandbox off for the tests too, and says so."""
    done = _system("check", os.environ["PATH"], tiny, {"AUTOGRADER_BWRAP": "none"})
    assert "bubblewrap disabled by AUTOGRADER_BWRAP=none (unset it to use bubblewrap)" \
        in done.stdout
    assert "3 tests marked 'sandbox' skipped" in done.stdout


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv")
                    or not os.access("/usr/bin/python3", os.X_OK),
                    reason="needs root (to become nobody) and the system's python3")
def test_install_as_a_normal_user_says_it_cannot_and_passes(tmp_path, tiny):
    """Run by a user who is not root, install changes nothing, says why it cannot and what is
    missing, and exits 0 (the system's python3 without pytest: it cannot count the tests)."""
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    done = _system("install", os.environ["PATH"], tiny, {"AUTOGRADER_BWRAP": "none"},
                   python="/usr/bin/python3", prefix=nobody)
    assert done.returncode == 0, done.stderr
    assert "cannot be installed here (not root)" in done.stdout
    assert "the tests marked 'sandbox' skipped" in done.stdout
    assert "installing" not in done.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="the install path runs as root only")
def test_install_survives_a_failing_apt_get_without_waiting_for_input(tmp_path, tiny):
    """As root with an apt-get that fails (offline), install asks apt-get non-interactively,
    with no input, tries the packages one by one after they failed together, reports what
    failed and still exits 0 with the list of what is missing."""
    calls = tmp_path / "apt-calls"
    path = _bin(tmp_path / "bin",
                **{"apt-get": f'echo "$DEBIAN_FRONTEND $* <$(/bin/cat)>" >> {calls}\n'
                              'echo "E: Temporary failure resolving deb.debian.org" >&2\n'
                              "exit 100"})
    done = _system("install", path, tiny)
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    assert lines[0].startswith("noninteractive ") and " update -qq <>" in lines[0]
    installs = [line for line in lines if " install -y " in line]
    assert all(line.startswith("noninteractive ") and line.endswith("<>")
               and "--no-remove" in line for line in installs)
    assert len(installs) == 1 + 4   # bubblewrap chromium chromium-driver npm, then each alone
    assert "apt-get update failed" in done.stdout and "Temporary failure" in done.stdout
    assert "apt-get install chromium failed" in done.stdout
    assert "3 tests marked 'sandbox' skipped" in done.stdout


def _pytest(tiny, *args, extra_env=None):
    e = {**_plain_env(), "AUTOGRADER_BWRAP": "none", **(extra_env or {})}
    e.pop(system.REQUIRE_ALL, None)
    e.pop("REQUIRE_BROWSER", None)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p",
                           "no:cacheprovider", "--rootdir", str(tiny.parent), *args, str(tiny)],
                          cwd=REPO, env={**e, **(extra_env or {})}, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_summary_says_what_was_skipped_for_a_missing_package(tiny, xdist):
    """Tests marked with a missing feature skip with the reason, the run passes, and pytest's
    summary counts them under "missing system packages" (also with pytest-xdist)."""
    done = _pytest(tiny, *xdist)
    assert done.returncode == 0, done.stdout[-3000:]
    out = done.stdout
    assert "missing system packages" in out
    assert "3 tests skipped: needs bubblewrap (the grader's sandbox and its tests): " \
           "bubblewrap disabled by AUTOGRADER_BWRAP=none" in out


def test_required_packages_fail_instead_of_skipping(tiny):
    """With REQUIRE_SYSTEM_PACKAGES=1 (CI) a test whose feature is missing fails."""
    done = _pytest(tiny, extra_env={system.REQUIRE_ALL: "1"})
    assert done.returncode == 1
    assert "required here" in done.stdout and "needs bubblewrap" in done.stdout
    assert " errors" in done.stdout.splitlines()[-1] and "passed" in done.stdout.splitlines()[-1]

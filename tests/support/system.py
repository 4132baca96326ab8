"""The system packages the tests use: whether each is usable here, how to install it, and the
set-up step of ``make test`` that installs what it can.

``python -m tests.support.system install`` (``make test`` runs it before pytest): as root on
Debian or Ubuntu with ``apt-get`` it installs, for every feature that is not usable, the
packages whose programs are absent. It never removes a package (``--no-remove``), never waits
on a prompt or a dead mirror (``DEBIAN_FRONTEND=noninteractive``, no input, time limits), takes
a failing ``apt-get update`` as a note, and tries the packages one by one when they cannot be
installed together. Then, or where it cannot install (not root, no ``apt-get``, offline, a
package that fails), it says which features are missing, why, how to install them and how many
tests that skips. It exits 0 whatever happened: the tests that need a missing feature skip, and
pytest's summary says so again (``tests/conftest.py``).
``python -m tests.support.system check`` only says. Counting the tests collects them (some
seconds); it is done only when something is missing.

Usable, not merely installed: bubblewrap must be able to create namespaces
(:func:`autograder.sandbox.isolation.find_bwrap`; ``AUTOGRADER_BWRAP=none`` switches it off),
each program must run (``--version``).

A test that needs a feature carries its marker (``@pytest.mark.sandbox``, ``browser``,
``postgresql``); ``tests/conftest.py`` skips it where the feature is missing, or fails it where
``REQUIRE_SYSTEM_PACKAGES=1`` (CI: every feature) or ``REQUIRE_BROWSER=1`` (the book's
workflow: the browser feature) says that a skip would hide a failure.

The standard library only (and the checkout's ``autograder.sandbox.isolation``), so any
``python3`` runs it, before the virtual environment exists.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

from autograder.sandbox.isolation import Bwrap, find_bwrap

APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "a"}
APT_OPTIONS = ["-o", "Acquire::Retries=2", "-o", "Acquire::http::Timeout=30",
               "-o", "Acquire::https::Timeout=30", "-o", "DPkg::Lock::Timeout=120",
               "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"]
UPDATE_TIMEOUT = 300
INSTALL_TIMEOUT = 1800
VERSION_TIMEOUT = 30
REQUIRE_ALL = "REQUIRE_SYSTEM_PACKAGES"


def _runs(program: str | None, *args: str) -> str | None:
    """None when ``program args`` runs and exits 0, else why not."""
    if program is None:
        return "not installed"
    try:
        done = subprocess.run([program, *args], stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=VERSION_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{program} does not run ({exc})"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip()[-200:]
        return f"{program} {' '.join(args)} failed (exit status {done.returncode}): {tail}"
    return None


def chromium() -> str | None:
    return shutil.which("chromium")


def chromedriver() -> str | None:
    return shutil.which("chromedriver")


def postgresql_bin() -> str | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that holds initdb, pg_ctl and postgres
    (Debian's layout; these programs are not on PATH)."""
    found = [d for d in glob.glob("/usr/lib/postgresql/*/bin")
             if all(os.access(os.path.join(d, p), os.X_OK)
                    for p in ("initdb", "pg_ctl", "postgres"))]
    return max(found, key=lambda d: [int(x) if x.isdigit() else 0 for x in
                                     d.split("/")[-2].split(".")], default=None)


def _sandbox() -> str | None:
    state, _, note = find_bwrap()
    if state is Bwrap.MISSING:
        return "bwrap is not installed"
    if state is Bwrap.DISABLED:
        return note + " (unset it to use bubblewrap)"
    return None if state is Bwrap.USABLE else note


def _browser() -> str | None:
    problems = [f"{name}: {why}" for name, why in (
        ("chromium", _runs(chromium(), "--version")),
        ("chromedriver", _runs(chromedriver(), "--version")),
        ("npm", _runs(shutil.which("npm"), "--version"))) if why]
    return "; ".join(problems) or None


def _postgresql() -> str | None:
    found = postgresql_bin()
    if found is None:
        return "no /usr/lib/postgresql/<version>/bin with initdb, pg_ctl and postgres"
    return _runs(os.path.join(found, "initdb"), "--version")


@dataclass(frozen=True)
class Package:
    """A Debian package and whether what it provides is on this machine (usable or not: a
    program that is there but does not work is not mended by installing its package again, and
    one that came from elsewhere, e.g. npm with NodeSource's nodejs, must not be replaced)."""

    name: str
    present: Callable[[], bool]


@dataclass(frozen=True)
class Feature:
    """What some tests need from the system: the pytest marker of those tests, the Debian
    packages that provide it, what it enables, and a check (None when usable, else why not)."""

    marker: str
    packages: tuple[Package, ...]
    enables: str
    check: Callable[[], str | None]
    advice: str = ""          # what else to do when the programs are there but unusable

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.packages]

    def absent(self) -> list[str]:
        """The packages whose programs are not on this machine."""
        return [p.name for p in self.packages if not p.present()]

    def hint(self) -> str:
        """How to get the feature: install the packages absent, else the advice."""
        absent = self.absent()
        if absent:
            return f"install: sudo apt-get install -y {' '.join(absent)}"
        return self.advice or "the programs are there but do not work: see why"


FEATURES = (
    Feature("sandbox", (Package("bubblewrap", lambda: find_bwrap()[0] is not Bwrap.MISSING),),
            "the grader's sandbox and its tests", _sandbox,
            "where bwrap cannot create namespaces, allow unprivileged user namespaces (sysctl "
            "-w kernel.unprivileged_userns_clone=1 on Debian, "
            "kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu) or run as root"),
    Feature("browser", (Package("chromium", lambda: chromium() is not None),
                        Package("chromium-driver", lambda: chromedriver() is not None),
                        Package("npm", lambda: shutil.which("npm") is not None)),
            "the browser tests of the book; npm fetches a local MathJax for them", _browser,
            "the programs are there but do not run (on Ubuntu chromium is a snap)"),
    Feature("postgresql", (Package("postgresql", lambda: postgresql_bin() is not None),),
            "the PostgreSQL gradebook tests", _postgresql),
)
BY_MARKER = {f.marker: f for f in FEATURES}


def missing() -> dict[str, str]:
    """{marker: why} for every feature that is not usable here."""
    return {f.marker: why for f in FEATURES if (why := f.check()) is not None}


def required(feature: Feature) -> bool:
    """Whether a missing ``feature`` must fail its tests rather than skip them."""
    return os.environ.get(REQUIRE_ALL) == "1" or (
        feature.marker == "browser" and os.environ.get("REQUIRE_BROWSER") == "1")


def skip_reason(feature: Feature, why: str) -> str:
    return f"needs {', '.join(feature.names)} ({feature.enables}): {why}; {feature.hint()}"


def tests(n: int) -> str:
    return f"{n} test" + ("" if n == 1 else "s")


def _apt(args: list[str], timeout: float) -> str | None:
    """None when ``apt-get args`` succeeded, else why not (the end of its output)."""
    try:
        done = subprocess.run(["apt-get", *APT_OPTIONS, *args], stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **APT_ENV})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        return (done.stderr or done.stdout).strip()[-300:] or f"exit status {done.returncode}"
    return None


def cannot_install() -> str | None:
    """Why this process cannot install packages with apt-get (None when it can)."""
    if shutil.which("apt-get") is None:
        return "no apt-get here (not Debian or Ubuntu)"
    if os.geteuid() != 0:
        return "not root"
    return None


def install(packages: list[str], say: Callable[[str], None]) -> list[str]:
    """Install ``packages`` with apt-get (root); the notes of what failed."""
    notes = []
    say(f"installing {' '.join(packages)} (apt-get, as root) ...")
    why = _apt(["update", "-qq"], UPDATE_TIMEOUT)
    if why:
        notes.append(f"apt-get update failed (continuing with the package lists there are): "
                     f"{why}")
    if _apt(["install", "-y", "-qq", "--no-remove", *packages], INSTALL_TIMEOUT) is None:
        return notes
    for package in packages:       # together they failed: as many as possible, one by one
        why = _apt(["install", "-y", "-qq", "--no-remove", package], INSTALL_TIMEOUT)
        if why:
            notes.append(f"apt-get install {package} failed: {why}")
    return notes


def count_tests(markers: list[str], root: str, paths: list[str]) -> dict[str, int] | None:
    """How many tests collected from ``paths`` carry each marker (None where pytest cannot
    tell: pytest not importable from this Python, or collection failed)."""
    try:
        import pytest
    except ImportError:
        return None

    class Counter:
        counts = dict.fromkeys(markers, 0)

        def pytest_collection_modifyitems(self, items):
            for item in items:
                for m in markers:
                    if item.get_closest_marker(m) is not None:
                        self.counts[m] += 1

    counter = Counter()
    with open(os.devnull, "w") as null:
        out, err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = null
        try:
            code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider", "--rootdir",
                                root, *paths], plugins=[counter])
        finally:
            sys.stdout, sys.stderr = out, err
    return counter.counts if code == 0 else None


def report(gone: dict[str, str], counts: dict[str, int] | None, why_not: str | None) -> str:
    """The text that says which features are missing, how to install them, and how many tests
    that skips."""
    if not gone:
        return ("system packages for the tests: all usable ("
                + ", ".join(" + ".join(f.names) for f in FEATURES) + ")")
    lines = ["system packages for the tests: some are missing or unusable"
             + (f" and cannot be installed here ({why_not})" if why_not else "") + ":"]
    for marker, why in gone.items():
        f = BY_MARKER[marker]
        n = (tests(counts[marker]) if counts is not None else "the tests")
        effect = "fail (required here)" if required(f) else "skipped"
        lines.append(f"  {' + '.join(f.names)} ({f.enables}): {why}")
        lines.append(f"    {n} marked '{marker}' {effect}; {f.hint()}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """``[check|install] [TEST PATHS...]`` (the paths whose tests are counted; default tests/)."""
    action = argv[1] if len(argv) > 1 else "check"
    if action not in ("check", "install"):
        print("usage: python -m tests.support.system [check|install] [TEST PATHS...]",
              file=sys.stderr)
        return 2
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    paths = argv[2:] or [os.path.join(root, "tests")]
    gone = missing()
    why_not = None
    if gone and action == "install":
        why_not = cannot_install()
        if why_not is None:
            packages = [p for m in gone for p in BY_MARKER[m].absent()]
            if packages:
                for note in install(packages, lambda s: print(s, flush=True)):
                    print(f"  note: {note}", flush=True)
                gone = missing()
            else:
                why_not = "their programs are there but do not work here"
    counts = count_tests(list(gone), root, paths) if gone else None
    print(report(gone, counts, why_not), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""A throwaway PostgreSQL server for the tests: ``initdb`` and ``pg_ctl`` from the newest
``/usr/lib/postgresql/<version>/bin`` (Debian's layout; else those on PATH), a data folder and a
socket folder in a fresh temporary folder, listening on that Unix socket only (no TCP at all),
trust authentication for the ``postgres`` role. As root the server runs as the ``postgres`` user
(``runuser``; initdb refuses root), which owns the temporary folder. :func:`postgres_server`
stops the server (``pg_ctl stop -m immediate``) and removes the folder whatever happens;
:func:`require_postgres` skips a test, saying why, where there is no PostgreSQL.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

SUPERUSER = "postgres"


def pg_bin() -> str | None:
    """The folder of ``initdb`` and ``pg_ctl``: the newest Debian version folder, else PATH."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if found:
        def version(path: str) -> tuple[int, ...]:
            v = path.split("/")[4]
            return tuple(int(x) for x in re.findall(r"\d+", v))
        return os.path.dirname(max(found, key=version))
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def require_postgres() -> tuple[str, list[str]]:
    """(binary folder, command prefix to run as the server's user), or skip the test."""
    bin_dir = pg_bin()
    if bin_dir is None or not os.path.exists(os.path.join(bin_dir, "pg_ctl")):
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): "
                    "apt-get install -y postgresql")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg (3) is not installed; make setup installs the pinned version")
    if os.geteuid() != 0:
        return bin_dir, []
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        pytest.skip("running as root, and there is no 'postgres' user to run the server as")
    if shutil.which("runuser") is None:
        pytest.skip("running as root, and runuser (util-linux) is missing")
    return bin_dir, ["runuser", "-u", SUPERUSER, "--"]


class PostgresServer:
    """A running server in ``folder`` (see the module docstring)."""

    def __init__(self, bin_dir: str, as_user: list[str]):
        self.bin_dir, self.as_user = bin_dir, as_user
        self.folder = tempfile.mkdtemp(prefix="agpg-")
        self.data = os.path.join(self.folder, "data")
        self.socket_dir = os.path.join(self.folder, "sock")
        self.log = os.path.join(self.folder, "server.log")
        self.started = False

    def _run(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self.as_user, *argv], capture_output=True, text=True,
                              timeout=120, cwd="/")

    def start(self) -> None:
        os.makedirs(self.socket_dir)
        if self.as_user:
            user = pwd.getpwnam(SUPERUSER)
            for path in (self.folder, self.socket_dir):
                os.chown(path, user.pw_uid, user.pw_gid)
        os.chmod(self.folder, 0o700)
        init = self._run(os.path.join(self.bin_dir, "initdb"), "-D", self.data, "-A", "trust",
                         "-U", SUPERUSER, "--no-sync", "-E", "UTF8")
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr[-2000:]}")
        options = (f"-c listen_addresses='' -k {self.socket_dir} -c fsync=off "
                   "-c max_connections=60")
        start = self._run(os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data, "-o", options,
                          "-l", self.log, "-w", "-t", "60", "start")
        self.started = True
        if start.returncode != 0:
            raise RuntimeError(f"pg_ctl start failed: {start.stderr[-2000:]}"
                               f"{self.log_tail()}")

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            with open(self.log) as f:
                return f.read()[-2000:]
        return ""

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server (psycopg 3, Unix socket)."""
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}"

    def create_database(self, name: str) -> str:
        """Create an empty database ``name``; its URL."""
        import psycopg
        with psycopg.connect(host=self.socket_dir, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.started:
            self._run(os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data, "-m", "immediate",
                      "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A started throwaway server, stopped and removed at the end whatever happens (skips the
    test where PostgreSQL is missing)."""
    bin_dir, as_user = require_postgres()
    server = PostgresServer(bin_dir, as_user)
    try:
        server.start()
        yield server
    finally:
        server.stop()

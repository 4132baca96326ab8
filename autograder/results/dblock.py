"""Grading runs that write one gradebook database at the same time: a PostgreSQL gradebook may be
written by several ``grade`` commands at once (different assignments, different machines), and
nbgrader's ``update_or_create_*`` methods check, then insert, so two of them can race (the same
student added twice; the tables created twice in an empty database).

* :class:`GradebookLock` serializes the writers of one PostgreSQL database with a session-level
  advisory lock (``pg_advisory_lock``) held on a connection of its own, around opening the
  gradebook (which creates its tables) and around each submission's writes; a write takes
  milliseconds, so the runs still grade in parallel and only queue to write. SQLite needs
  nothing more (its file lock admits one writer).
* :data:`WRITE_ATTEMPTS`: a write that still meets a unique violation or a lost connection (a
  writer that does not take the lock, e.g. nbgrader's formgrader) is rolled back and tried again.
* :func:`engine_url`: ``postgresql://`` and ``postgres://`` URLs use psycopg 3, the driver this
  project installs (SQLAlchemy's default would be psycopg2); nbgrader's own commands need the
  explicit ``postgresql+psycopg://`` form.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

LOCK_KEY = int.from_bytes(hashlib.sha256(b"autograder gradebook writers").digest()[:8], "big",
                          signed=True)
WRITE_ATTEMPTS = 3


def engine_url(db_url: str) -> str:
    """``db_url`` with the psycopg 3 driver named for PostgreSQL URLs that name none."""
    url = make_url(db_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url.render_as_string(hide_password=False)


def shown(db_url: str) -> str:
    """``db_url`` fit to print (no password)."""
    try:
        return make_url(db_url).render_as_string(hide_password=True)
    except Exception:
        return "<an unreadable database URL>"


class GradebookLock:
    """The advisory lock of the writers of one PostgreSQL gradebook (nothing for other
    databases); :meth:`held` is re-entrant for one holder and never held across runs."""

    def __init__(self, db_url: str):
        self._conn = None
        self._engine = None
        if make_url(db_url).get_backend_name() == "postgresql":
            self._engine = create_engine(engine_url(db_url), poolclass=NullPool)
            self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        if self._conn is None:
            yield
            return
        self._conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
        try:
            yield
        finally:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._conn is not None:
                self._conn.close()
        with contextlib.suppress(Exception):
            if self._engine is not None:
                self._engine.dispose()

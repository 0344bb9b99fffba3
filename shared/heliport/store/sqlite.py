"""The one way heliport opens a SQLite file, shared by every local adapter.

SQLite calls in the adapters are synchronous inside ``async`` methods on purpose: key lookups,
cache and counter reads take tens of microseconds, less than a hop to a thread would. The log queue
is the exception: its writes sit on every request, so one writer thread group-commits them.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

__all__ = ["connect"]


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    # WAL with synchronous=NORMAL survives a process crash; only an OS crash can lose the last commits.
    _switch_to_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _switch_to_wal(conn: sqlite3.Connection, within: float = 5.0) -> None:
    """``PRAGMA journal_mode=WAL``, waiting for other connections that switch the same new file at once:
    the switch needs the file to itself and SQLite answers "database is locked" at once, without its
    busy handler (seen in 1 of 10 races of six connections opening one new file). Once a file is in
    WAL mode (it stays so), the pragma needs no lock."""
    ends = time.monotonic() + within
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > ends:
                raise
            time.sleep(0.005)

"""The one way heliport opens a SQLite file, shared by every local adapter.

SQLite calls in the adapters are synchronous inside ``async`` methods on purpose: key lookups,
cache and counter reads take tens of microseconds, less than a hop to a thread would. The log queue
is the exception: its writes sit on every request, so one writer thread group-commits them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["connect"]


def connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    # WAL with synchronous=NORMAL survives a process crash; only an OS crash can lose the last commits.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn

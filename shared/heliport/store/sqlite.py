"""The one way heliport opens a SQLite file, shared by every local adapter.

SQLite calls in the adapters are synchronous inside ``async`` methods on purpose: key lookups,
cache and counter reads take tens of microseconds, less than a hop to a thread would. The log queue's
writes sit on every request: one that finds nothing else writing commits at once on the caller's
thread, the rest go to a writer thread that group-commits them and waits out other processes' locks,
and a :class:`Checkpointer` keeps WAL checkpoints (two fsyncs each) off those commits.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

__all__ = ["Checkpointer", "connect"]

_log = logging.getLogger(__name__)


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


class Checkpointer:
    """Copies a WAL file's commits into its database from a thread and a connection of its own.

    By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages, and under
    ``synchronous=NORMAL`` a checkpoint fsyncs the WAL and then the database: the unlucky commit took
    3-7 ms instead of 0.1 (measured in ``bench/serve_p99.py``: about half of ``heliport serve``'s p99 was
    these). A connection that hands its file to a Checkpointer turns that off
    (``PRAGMA wal_autocheckpoint=0``) and reports its commits with :meth:`committed`. A passive
    checkpoint here runs beside the writer's commits (WAL lets them proceed), once ``after_commits``
    commits have accumulated or ``every`` seconds after the first commit since the last checkpoint;
    an idle file costs nothing. SQLite serialises checkpoints, so other processes that checkpoint the
    same file (the log pipeline's deletes) are no trouble. Closing the last connection checkpoints
    whatever is left, as SQLite always does.
    """

    def __init__(self, path: Path, *, every: float = 1.0, after_commits: int = 500) -> None:
        self._path = path
        self._every = every
        self._after_commits = after_commits
        self._commits = 0
        self._closed = False
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def adopt(self, conn: sqlite3.Connection) -> None:
        """From now on ``conn``'s commits never checkpoint: this checkpointer does it for them."""
        conn.execute("PRAGMA wal_autocheckpoint=0")

    def committed(self, commits: int = 1) -> None:
        """Count commits made on an adopted connection (from any thread)."""
        with self._changed:
            if self._closed:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="heliport-sqlite-checkpoint", daemon=True)
                self._thread.start()
            self._commits += commits
            if self._commits == commits or self._commits >= self._after_commits:
                self._changed.notify()

    def _run(self) -> None:
        conn = connect(self._path)
        try:
            while True:
                with self._changed:
                    self._changed.wait_for(lambda: self._closed or self._commits > 0)
                    self._changed.wait_for(
                        lambda: self._closed or self._commits >= self._after_commits, timeout=self._every
                    )
                    if self._closed:
                        return
                    self._commits = 0
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # the next round tries again; the WAL only grows meanwhile
                    _log.warning("WAL checkpoint of %s failed: %s", self._path, exc)
        finally:
            conn.close()

    def close(self) -> None:
        """Stop the thread (the adopted connection's own close checkpoints what is left)."""
        with self._changed:
            self._closed = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

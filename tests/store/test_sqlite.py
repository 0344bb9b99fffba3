"""The one SQLite opener (connections racing to open one new file all get it, in WAL mode) and the
checkpointer that keeps WAL checkpoints out of the log queue's commits."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from heliport.store.sqlite import Checkpointer, connect


def test_connections_racing_to_open_a_new_file_all_switch_it_to_wal(tmp_path: Path) -> None:
    """Six connections open one new file at once, fifty times over. Switching to WAL needs the file to
    itself, and SQLite answered "database is locked" at once to the losers (about one race in ten before
    ``connect`` waited for the others); every connection must now get the file, in WAL mode."""
    failures: list[str] = []
    modes: set[str] = set()
    for attempt in range(50):
        path = tmp_path / f"race{attempt}.sqlite3"
        barrier = threading.Barrier(6)

        def open_it(path: Path = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait(timeout=30)
            try:
                conn = connect(path)
                modes.add(conn.execute("PRAGMA journal_mode").fetchone()[0])
                conn.close()
            except Exception as exc:  # collected, so the assertion shows what went wrong
                failures.append(repr(exc))

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    assert modes == {"wal"}


def _rows_in_database_file(path: Path, tmp: Path) -> int:
    """Rows of ``t`` in the database file alone, as if its WAL were gone: what checkpoints have copied."""
    copy = tmp / f"copy-{time.monotonic_ns()}.sqlite3"
    shutil.copyfile(path, copy)
    conn = sqlite3.connect(copy)
    try:
        return int(conn.execute("SELECT count(*) FROM t").fetchone()[0])
    except sqlite3.OperationalError:  # the table itself is still only in the WAL
        return 0
    finally:
        conn.close()


def _wait_for_rows(path: Path, tmp: Path, rows: int) -> int:
    deadline = time.monotonic() + 10
    while (found := _rows_in_database_file(path, tmp)) < rows and time.monotonic() < deadline:
        time.sleep(0.01)
    return found


def _commit(conn: sqlite3.Connection, checkpointer: Checkpointer, value: int) -> None:
    conn.execute("INSERT INTO t VALUES (?)", (value,))
    checkpointer.committed()


@contextlib.contextmanager
def _adopted(path: Path, *, every: float, after_commits: int) -> Iterator[tuple[sqlite3.Connection, Checkpointer]]:
    """A connection whose checkpoints a Checkpointer makes, with table ``t`` created (one commit)."""
    conn = connect(path)
    checkpointer = Checkpointer(path, every=every, after_commits=after_commits)
    checkpointer.adopt(conn)
    try:
        conn.execute("CREATE TABLE t (v INTEGER)")
        checkpointer.committed()
        yield conn, checkpointer
    finally:
        checkpointer.close()
        conn.close()


def test_an_adopted_connection_never_checkpoints_and_the_checkpointer_does_after_enough_commits(
    tmp_path: Path,
) -> None:
    path = tmp_path / "q.sqlite3"
    with _adopted(path, every=3600, after_commits=3) as (conn, checkpointer):
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        _commit(conn, checkpointer, 1)
        time.sleep(0.2)
        assert _rows_in_database_file(path, tmp_path) == 0  # two commits: below the count, within the hour
        _commit(conn, checkpointer, 2)
        assert _wait_for_rows(path, tmp_path, 2) == 2


def test_the_checkpointer_copies_a_lone_commit_after_its_interval(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    with _adopted(path, every=0.05, after_commits=1000) as (conn, checkpointer):
        _commit(conn, checkpointer, 1)
        assert _wait_for_rows(path, tmp_path, 1) == 1


def test_a_closed_checkpointer_ignores_commits_and_sqlite_checkpoints_on_the_last_close(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    before = set(threading.enumerate())  # other tests' queues may still have checkpointers running
    conn = connect(path)
    checkpointer = Checkpointer(path, every=3600, after_commits=1)
    checkpointer.adopt(conn)
    checkpointer.close()
    conn.execute("CREATE TABLE t (v INTEGER)")
    _commit(conn, checkpointer, 1)
    assert not any(t.name == "heliport-sqlite-checkpoint" for t in set(threading.enumerate()) - before)
    assert _rows_in_database_file(path, tmp_path) == 0
    conn.close()
    assert _rows_in_database_file(path, tmp_path) == 1

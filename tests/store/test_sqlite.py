"""The one SQLite opener: connections racing to open one new file all get it, in WAL mode."""

from __future__ import annotations

import threading
from pathlib import Path

from heliport.store.sqlite import connect


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

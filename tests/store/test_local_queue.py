from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from heliport.logs.record import LogRecord
from heliport.store import queue as queue_module
from heliport.store.queue import SqliteQueue

pytestmark = pytest.mark.anyio


def record(n: int) -> LogRecord:
    return LogRecord(
        request_id=f"req-{n}",
        org_id="org",
        key_id="key",
        started_at=datetime(2026, 11, 22, 5, 0, n % 60, tzinfo=UTC),
        duration_ms=12.5,
        method="POST",
        path="/v1/gateway/oai/v1/chat/completions",
        provider="OPENAI",
        target_url="https://api.openai.com/v1/chat/completions",
        status=200,
        properties={"n": str(n)},
        request_body='{"model": "gpt-4o-mini"}',
    )


async def test_concurrent_sends_are_committed_in_order_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    queue = SqliteQueue(path)
    await asyncio.gather(*(queue.send(record(n)) for n in range(200)))
    await queue.aclose()

    reopened = SqliteQueue(path)  # a new process after a crash sees everything acknowledged
    received = reopened.receive(limit=500)
    assert [q.request_id for q in received] == [f"req-{n}" for n in range(200)]
    assert received[7].record == record(7)
    reopened.delete([q.seq for q in received[:150]])
    assert len(reopened.receive(limit=500)) == 50
    await reopened.aclose()


async def test_send_after_close_fails_loudly(tmp_path: Path) -> None:
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    await queue.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await queue.send(record(1))


def _hold_write_lock(path: Path, seconds: float, taken: threading.Event) -> threading.Thread:
    """Another connection (the log pipeline's deletes, say) holds the queue's write lock a while."""

    def hold() -> None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


async def test_a_send_waits_out_another_connections_write_lock(tmp_path: Path) -> None:
    """The writer's connection has SQLite's busy handler off (it sleeps 1, 2, 5 ... ms) and waits in its
    own finer steps: without them, a held lock would fail the commit at once."""
    path = tmp_path / "queue.sqlite3"
    queue = SqliteQueue(path)
    taken = threading.Event()
    holder = _hold_write_lock(path, 0.3, taken)
    await asyncio.to_thread(taken.wait, 5)
    await queue.send(record(1))
    await asyncio.to_thread(holder.join)
    assert [q.request_id for q in queue.receive()] == ["req-1"]
    await queue.aclose()


def writer_threads() -> set[threading.Thread]:
    """The queue writer threads running now (other tests may leave theirs)."""
    return {t for t in threading.enumerate() if t.name == "heliport-log-queue"}


async def test_a_send_with_nothing_else_writing_commits_without_the_writer_thread(tmp_path: Path) -> None:
    """The hop to the writer thread and back cost as much as the commit; alone, a record skips it."""
    before = writer_threads()
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    for n in range(3):
        await queue.send(record(n))
        # Committed by the time send returns: another connection (the pipeline's) sees it.
        with sqlite3.connect(tmp_path / "queue.sqlite3") as other:
            assert other.execute("SELECT COUNT(*) FROM log_queue").fetchone()[0] == n + 1
    assert writer_threads() - before == set()
    await queue.aclose()


async def test_sends_behind_a_held_lock_leave_the_loop_free_and_share_the_writers_commit(tmp_path: Path) -> None:
    """A direct commit never waits: behind another connection's lock the records go to the writer thread,
    which waits it out and commits them in order while the event loop keeps running."""
    path = tmp_path / "queue.sqlite3"
    queue = SqliteQueue(path)
    taken = threading.Event()
    holder = _hold_write_lock(path, 0.3, taken)
    await asyncio.to_thread(taken.wait, 5)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await asyncio.gather(*(queue.send(record(n)) for n in range(20)))
    ticker.cancel()
    await asyncio.to_thread(holder.join)
    assert ticks >= 5  # the loop ran while the lock was held (a blocking wait would leave it at 0)
    assert [q.request_id for q in queue.receive()] == [f"req-{n}" for n in range(20)]
    await queue.aclose()


async def test_a_lock_held_past_the_wait_fails_the_send(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the wait the send fails loudly (the proxy then spools the record), never silently."""
    monkeypatch.setattr(queue_module, "_BUSY_WAIT_S", 0.05)
    path = tmp_path / "queue.sqlite3"
    queue = SqliteQueue(path)
    taken = threading.Event()
    holder = _hold_write_lock(path, 1.0, taken)
    await asyncio.to_thread(taken.wait, 5)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        await queue.send(record(1))
    await asyncio.to_thread(holder.join)
    await queue.send(record(2))
    assert [q.request_id for q in queue.receive()] == ["req-2"]
    await queue.aclose()


async def test_the_writers_commits_leave_checkpoints_to_the_checkpointer(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    await queue.send(record(1))
    assert queue._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    (checkpointer,) = [t for t in set(threading.enumerate()) - before if t.name == "heliport-sqlite-checkpoint"]
    await queue.aclose()
    assert not checkpointer.is_alive()

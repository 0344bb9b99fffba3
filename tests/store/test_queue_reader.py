"""The SQLite log queue read by one process while another writes it (``heliport serve``'s pipeline process)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from heliport.store.queue import SqliteQueue
from tests.store.test_local_queue import record, writer_threads

pytestmark = pytest.mark.anyio


async def test_a_queue_only_read_runs_no_writer_thread(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    writer = SqliteQueue(path)
    await writer.send(record(1))
    before = writer_threads()
    reader = SqliteQueue(path)  # the pipeline process's side: receive, delete, retry_later
    received = reader.receive()
    reader.retry_later([q.seq for q in received])
    reader.delete([q.seq for q in received])
    assert writer_threads() == before
    await reader.aclose()  # closes without a thread to join
    assert writer_threads() == before
    await writer.aclose()


async def test_delete_and_retry_later_span_more_seqs_than_one_statement_holds(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    writer, reader = SqliteQueue(path), SqliteQueue(path)
    await asyncio.gather(*(writer.send(record(n)) for n in range(1_200)))
    received = reader.receive(limit=2_000)
    assert len(received) == 1_200
    retried = [q.seq for q in received[::2]]
    reader.retry_later(retried)
    attempts = {q.seq: q.attempts for q in reader.receive(limit=2_000)}
    assert {seq for seq, n in attempts.items() if n == 1} == set(retried)
    assert sum(attempts.values()) == 600
    reader.delete([q.seq for q in received[:1_100]])
    assert [q.request_id for q in reader.receive(limit=2_000)] == [f"req-{n}" for n in range(1_100, 1_200)]
    reader.delete([])  # nothing to do, and no transaction opened for it
    # The writer still commits after the reader's transactions (the lock was released).
    await writer.send(record(5_000))
    assert reader.receive(limit=2_000)[-1].request_id == "req-5000"
    await reader.aclose()
    await writer.aclose()

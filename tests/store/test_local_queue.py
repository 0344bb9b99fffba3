from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from heliport.logs.record import LogRecord
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

"""The bound on log hand-offs that outlive their responses (heliport.logs.backlog).

When the log queue falls behind, ``heliport serve`` must slow new requests down rather than hold an
ever-growing pile of records in memory, and it must drop none of them.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest

from heliport.logs.backlog import LogBacklog
from tests.harness import start_gateway, wait_for
from tests.mock_provider import MockProvider

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.anyio
async def test_admit_waits_while_the_limit_is_reached_and_any_outcome_frees_room() -> None:
    backlog = LogBacklog(limit=2)
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    backlog.track(first)
    await backlog.admit()  # one outstanding, limit two: straight through
    backlog.track(second)

    waiting = asyncio.ensure_future(backlog.admit())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    assert backlog.outstanding == 2

    first.set_exception(RuntimeError("queue down"))  # a failed hand-off is over too
    await asyncio.wait_for(waiting, timeout=1)
    assert backlog.outstanding == 1
    assert isinstance(first.exception(), RuntimeError)
    second.set_result(None)
    await asyncio.sleep(0)
    assert backlog.outstanding == 0


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LogBacklog(limit=0)


def logged_rows(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "logs.sqlite3") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM requests").fetchone()[0])


def test_serve_holds_new_requests_while_the_queue_is_stuck_and_logs_every_one(
    tmp_path: Path, mock_provider: MockProvider
) -> None:
    # The bound matters where hand-offs outlive their responses: with the log after the last byte.
    gw = start_gateway(tmp_path, mock_provider.url, pipeline=True, max_log_backlog=2, log_before_last_byte=False)
    headers = {"Helicone-Auth": f"Bearer {gw.key}", "Authorization": "Bearer sk-upstream"}
    url = f"{gw.oai_base}/chat/completions"
    # Another writer holds the queue file's write lock: hand-offs wait on it (busy timeout 5 s).
    blocker = sqlite3.connect(tmp_path / "log-queue.sqlite3", isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        for _ in range(2):  # answered at once: their records wait after the last byte
            assert httpx.post(url, json=CHAT, headers=headers, timeout=10).status_code == 200
        answers: list[int] = []
        third = threading.Thread(
            target=lambda: answers.append(httpx.post(url, json=CHAT, headers=headers, timeout=10).status_code)
        )
        third.start()
        third.join(timeout=0.7)
        assert third.is_alive(), "a third request was served while two hand-offs were stuck"
        blocker.execute("ROLLBACK")
        third.join(timeout=10)
        assert answers == [200]
        wait_for(lambda: logged_rows(tmp_path) == 3, timeout=10)
    finally:
        blocker.close()
        gw.stop()

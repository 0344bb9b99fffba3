"""``kill -9`` in the middle of a burst: every request that was answered is logged (issue 18).

The record of a request is committed to the local queue before the last byte of its answer
(``log_before_last_byte``), so a client that saw a complete answer saw a durable record; a crash
can only lose requests that were never answered. The test counts rows against answered requests
across a real ``heliport serve`` process killed without warning and started again.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
import uuid
from pathlib import Path

import httpx

from tests.mock_provider import MockProvider
from tests.test_cli import Served

CONNECTIONS = 16
#: Answered requests before the kill: enough that several are always between answer and hand-off.
ANSWERED_BEFORE_KILL = 1_500


def stored_ids(data_dir: Path) -> set[str]:
    path = data_dir / "logs.sqlite3"
    if not path.exists():
        return set()
    with sqlite3.connect(path) as conn:
        try:
            return {row[0] for row in conn.execute("SELECT request_id FROM requests")}
        except sqlite3.OperationalError:  # not migrated yet
            return set()


def test_kill_9_mid_burst_loses_no_answered_request(mock_provider: MockProvider, tmp_path: Path) -> None:
    server = Served(mock_provider, tmp_path)
    found = re.search(r"sk-heliport-[0-9a-f]{48}", server.output)
    assert found is not None
    url = f"http://127.0.0.1:{server.port}/v1/gateway/oai/v1/chat/completions"
    headers = {"Helicone-Auth": f"Bearer {found.group(0)}", "Authorization": "Bearer sk-provider"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    answered: list[str] = []
    sent = 0
    lock = threading.Lock()
    killed = threading.Event()

    def client() -> None:
        nonlocal sent
        with httpx.Client(timeout=10) as http:
            while not killed.is_set():
                request_id = str(uuid.uuid4())
                with lock:
                    sent += 1
                try:
                    answer = http.post(url, json=body, headers={**headers, "Helicone-Request-Id": request_id})
                    complete = answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
                except (httpx.HTTPError, ValueError):
                    continue  # cut off by the kill: never answered, so nothing was promised
                if complete:
                    with lock:
                        answered.append(request_id)

    threads = [threading.Thread(target=client, daemon=True) for _ in range(CONNECTIONS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(answered) < ANSWERED_BEFORE_KILL and time.monotonic() < deadline:
        time.sleep(0.005)
    server.process.kill()  # SIGKILL: no shutdown, no drain
    server.process.wait(10)
    killed.set()
    for thread in threads:
        thread.join(15)
    assert len(answered) >= ANSWERED_BEFORE_KILL

    restarted = Served(mock_provider, tmp_path)  # moves what the queue holds into the log database
    try:
        deadline = time.monotonic() + 30
        missing = set(answered) - stored_ids(tmp_path)
        while missing and time.monotonic() < deadline:
            time.sleep(0.2)
            missing -= stored_ids(tmp_path)
    finally:
        restarted.stop()
    print(f"sent {sent}, answered {len(answered)}, rows missing for answered requests: {len(missing)}")
    assert missing == set(), f"{len(missing)} of {len(answered)} answered requests were not logged"

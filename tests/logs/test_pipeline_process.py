"""``heliport serve``'s log pipeline in its own process (issue 24 §2): a real ``heliport serve``, real
HTTP, the official ``openai`` SDK against the mock provider; signals sent to the real processes.

The pipeline process is paused with SIGSTOP where a test needs records to sit in the queue file at
the moment something happens to it (a SIGTERM, a crash, the parent's death): then what the test
checks afterwards can only have come through that path.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from heliport.config import Settings
from heliport.logs.pipeline_process import PipelineProcess
from tests.logs.test_crash import stored_ids
from tests.mock_provider import MockProvider
from tests.test_cli import KEY, Served, poll_request

pytestmark = pytest.mark.anyio

WAIT_S = 30.0


def pipeline_pid(server: Served, other_than: int | None = None) -> int:
    """The pid of serve's pipeline child (waiting for it to be (re)started, if need be)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for pid in _children(server.process.pid):
            if pid != other_than and b"heliport.logs.pipeline_process" in _cmdline(pid):
                return pid
        time.sleep(0.05)
    raise AssertionError(f"no pipeline process under heliport serve (pid {server.process.pid})")


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie not yet reaped counts as exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while not gone(pid):
        assert time.monotonic() < deadline, f"pid {pid} still running"
        time.sleep(0.05)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def queued(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "log-queue.sqlite3") as conn:
        return int(conn.execute("SELECT count(*) FROM log_queue").fetchone()[0])


def client(server: Served, key: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=f"{server.url}/v1/gateway/oai/v1",
        api_key="sk-provider",
        default_headers={"Helicone-Auth": f"Bearer {key}"},
        max_retries=0,
    )


def send(sdk: openai.OpenAI, count: int) -> list[str]:
    """``count`` chat completions, JSON and streamed alternately; their request ids."""
    ids: list[str] = []
    for n in range(count):
        request_id = str(uuid.uuid4())
        headers = {"Helicone-Request-Id": request_id}
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": f"hello {n}"}]
        if n % 2:
            stream = sdk.chat.completions.create(
                model="gpt-4o-mini", messages=messages, stream=True, extra_headers=headers
            )
            assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        else:
            done = sdk.chat.completions.create(model="gpt-4o-mini", messages=messages, extra_headers=headers)
            assert done.choices[0].message.content
        ids.append(request_id)
    return ids


def wait_stored(data_dir: Path, ids: list[str]) -> None:
    deadline = time.monotonic() + WAIT_S
    missing = set(ids) - stored_ids(data_dir)
    while missing and time.monotonic() < deadline:
        time.sleep(0.1)
        missing -= stored_ids(data_dir)
    assert missing == set(), f"{len(missing)} of {len(ids)} requests not stored"


@pytest.fixture
def served(mock_provider: MockProvider, tmp_path: Path) -> Iterator[tuple[Served, str]]:
    server = Served(mock_provider, tmp_path)
    found = KEY.search(server.output)
    assert found is not None, server.output
    try:
        yield server, found.group(0)
    finally:
        if server.process.poll() is None:
            server.stop()


def test_serve_logs_through_a_pipeline_process_of_its_own(served: tuple[Served, str], tmp_path: Path) -> None:
    server, key = served
    child = pipeline_pid(server)
    assert child != server.process.pid
    assert os.getpgid(child) == os.getpgid(server.process.pid)  # a group signal reaches both
    (request_id,) = send(client(server, key), 1)
    row = poll_request(server.url, key, request_id)
    assert row["request_id"] == request_id
    assert row["model"] == "gpt-4o-mini"
    # The rows come from the child: paused, it stores nothing, and the next request stays queued.
    wait_until(lambda: queued(tmp_path) == 0)  # the row is visible a moment before its queue entry goes
    os.kill(child, signal.SIGSTOP)
    try:
        (paused,) = send(client(server, key), 1)
        time.sleep(1.0)  # five of the consumer's idle polls, had it run in the proxy's process
        assert queued(tmp_path) == 1 and paused not in stored_ids(tmp_path)
    finally:
        os.kill(child, signal.SIGCONT)
    assert poll_request(server.url, key, paused)["request_id"] == paused


def test_sigterm_drains_what_is_queued_then_both_exit(served: tuple[Served, str], tmp_path: Path) -> None:
    server, key = served
    child = pipeline_pid(server)
    os.kill(child, signal.SIGSTOP)  # records pile up in the queue file
    try:
        ids = send(client(server, key), 12)
        wait_until(lambda: queued(tmp_path) == 12)  # a stream's record may follow its last byte
    finally:
        server.process.terminate()  # SIGTERM to serve: it stops the proxy, then the pipeline process
        time.sleep(0.5)  # serve has sent its SIGTERM on; the child receives it when it runs again
        os.kill(child, signal.SIGCONT)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (its exit status says SIGTERM).
    assert server.process.wait(WAIT_S) in (0, -signal.SIGTERM)
    wait_gone(child)
    assert queued(tmp_path) == 0
    assert set(ids) <= stored_ids(tmp_path)


def test_a_killed_pipeline_process_is_reported_restarted_and_loses_nothing(
    served: tuple[Served, str], tmp_path: Path
) -> None:
    server, key = served
    child = pipeline_pid(server)
    os.kill(child, signal.SIGSTOP)
    ids = send(client(server, key), 10)
    wait_until(lambda: queued(tmp_path) == 10)
    os.kill(child, signal.SIGKILL)  # a crash: nothing drained, the records still queued
    replacement = pipeline_pid(server, other_than=child)
    assert replacement != server.process.pid
    wait_stored(tmp_path, ids)
    for request_id in ids[:2]:
        assert poll_request(server.url, key, request_id)["request_id"] == request_id
    # Still serving and logging after the restart.
    (later,) = send(client(server, key), 1)
    assert poll_request(server.url, key, later)["request_id"] == later
    server.stop()
    assert server.process.stdout is not None
    output = server.process.stdout.read()
    assert re.search(rf"log pipeline process \(pid {child}\) exited with code -9", output), output
    assert f"running again (pid {replacement})" in output


def test_the_pipeline_process_dies_with_serve_and_drains_first(served: tuple[Served, str], tmp_path: Path) -> None:
    server, key = served
    child = pipeline_pid(server)
    os.kill(child, signal.SIGSTOP)
    ids = send(client(server, key), 8)
    # A stream's record may be handed off just after its last byte: kill once all eight are queued.
    wait_until(lambda: queued(tmp_path) == 8)
    server.process.kill()  # SIGKILL: serve stops nothing; the child sees its stdin end
    server.process.wait(WAIT_S)
    os.kill(child, signal.SIGCONT)
    wait_gone(child)
    assert set(ids) <= stored_ids(tmp_path)
    assert queued(tmp_path) == 0


async def test_start_fails_loudly_when_the_log_database_refuses(tmp_path: Path) -> None:
    settings = replace(
        Settings(), data_dir=tmp_path, database_url="postgresql://postgres@127.0.0.1:9/heliport?connect_timeout=2"
    )
    pipeline = PipelineProcess(settings, start_timeout=60)
    with pytest.raises(RuntimeError, match="could not start"):
        await pipeline.start()
    assert pipeline.pid is None


async def test_start_and_stop_in_process(tmp_path: Path) -> None:
    """The parent side alone: a ready child with its own pid, stopped by SIGTERM with exit code 0."""
    pipeline = PipelineProcess(replace(Settings(), data_dir=tmp_path))
    await pipeline.start()
    pid = pipeline.pid
    assert pid is not None and pid != os.getpid()
    await pipeline.stop()
    assert pipeline.exit_code == 0  # it drained and exited on SIGTERM, not killed
    assert pipeline.pid is None and gone(pid)
    assert (tmp_path / "logs.sqlite3").exists()  # the child migrated the log database

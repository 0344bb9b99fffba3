"""The SQS log queue against moto's server: round trips, retries that give up, and a lazy import."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from heliport.errors import HeliportError
from heliport.logs.record import LogRecord
from heliport.store.queue import QueueUnavailableError, SqsQueue
from tests.aws import REGION

SHARED = Path(__file__).resolve().parents[2] / "shared"


def record(n: int, **extra: object) -> LogRecord:
    fields: dict[str, object] = {
        "request_id": f"req-{n}",
        "org_id": "org-1",
        "key_id": "key-1",
        "started_at": datetime(2024, 5, 17, 9, 30, 15, 123456 + n, tzinfo=UTC),
        "duration_ms": 12.5 + n,
        "method": "POST",
        "path": "/v1/chat/completions",
        "provider": "openai",
        "target_url": "https://api.openai.com/v1/chat/completions",
        "status": 200,
    }
    fields.update(extra)
    return LogRecord(**fields)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_send_receive_round_trip(aws_endpoint: str, sqs_queue_url: str) -> None:
    queue = SqsQueue(sqs_queue_url, region=REGION, endpoint_url=aws_endpoint)
    try:
        sent = [
            record(0),
            record(
                1,
                started_at=datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=5, minutes=30))),
                ttfb_ms=3.25,
                is_stream=True,
                properties={"env": "prod", "ünïcode": "✓"},
                errors=["cache: unavailable"],
                request_body='{"messages": []}',
                response_body="data: [DONE]\n\n",
            ),
            record(2, status=-2),
        ]
        for r in sent:
            await queue.send(r)
        received: list[tuple[str, LogRecord]] = []
        for _ in range(10):
            received += await queue.receive(max_messages=10)
            if len(received) >= len(sent):
                break
        assert sorted((r for _, r in received), key=lambda r: r.request_id) == sent
        await queue.delete(handle for handle, _ in received)
        assert await queue.receive(max_messages=10) == []
    finally:
        await queue.aclose()


@pytest.mark.anyio
async def test_send_sets_message_attributes(aws_endpoint: str, sqs_queue_url: str) -> None:
    import aioboto3

    queue = SqsQueue(sqs_queue_url, region=REGION, endpoint_url=aws_endpoint)
    try:
        await queue.send(record(7))
    finally:
        await queue.aclose()
    async with aioboto3.Session().client("sqs", region_name=REGION, endpoint_url=aws_endpoint) as sqs:
        response = await sqs.receive_message(QueueUrl=sqs_queue_url, MessageAttributeNames=["All"])
    (message,) = response["Messages"]
    assert message["MessageAttributes"]["request_id"] == {"DataType": "String", "StringValue": "req-7"}
    assert message["MessageAttributes"]["v"] == {"DataType": "Number", "StringValue": "1"}


@pytest.mark.anyio
async def test_receive_skips_undecodable_messages(aws_endpoint: str, sqs_queue_url: str) -> None:
    import aioboto3

    async with aioboto3.Session().client("sqs", region_name=REGION, endpoint_url=aws_endpoint) as sqs:
        await sqs.send_message(QueueUrl=sqs_queue_url, MessageBody="not json")
    queue = SqsQueue(sqs_queue_url, region=REGION, endpoint_url=aws_endpoint)
    try:
        await queue.send(record(1))
        received: list[tuple[str, LogRecord]] = []
        for _ in range(10):
            received += await queue.receive()
            if received:
                break
        assert [r for _, r in received] == [record(1)]
    finally:
        await queue.aclose()


@pytest.mark.anyio
async def test_missing_queue_is_unavailable(aws_endpoint: str) -> None:
    queue = SqsQueue(
        f"{aws_endpoint}/123456789012/no-such-queue", region=REGION, endpoint_url=aws_endpoint, backoff_base=0.001
    )
    try:
        with pytest.raises(QueueUnavailableError) as caught:
            await queue.send(record(1))
    finally:
        await queue.aclose()
    assert isinstance(caught.value, HeliportError)
    assert caught.value.status == 503
    assert caught.value.code == "queue_unavailable"


@pytest.mark.anyio
async def test_unreachable_endpoint_gives_up_after_retries(aws_endpoint: str) -> None:
    import aiohttp

    queue = SqsQueue(
        "http://127.0.0.1:1/123456789012/logs",
        region=REGION,
        endpoint_url="http://127.0.0.1:1",
        attempts=3,
        backoff_base=0.05,
    )
    started = time.monotonic()
    try:
        with pytest.raises(QueueUnavailableError, match="after 3 attempts") as caught:
            await queue.send(record(1))
    finally:
        await queue.aclose()
    # The error underneath is the refused connection itself (the send path is aiohttp's, sqs_send.py).
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)
    # Two backoffs, each at least half its step (0.05 s, then 0.1 s): proof the retries happened.
    assert time.monotonic() - started >= 0.025 + 0.05


def test_store_modules_import_without_boto() -> None:
    """The proxy's cold start must not pay aioboto3's import: every adapter imports it on first use."""
    modules = ", ".join(
        f"heliport.store.{name}"
        for name in ("aws", "keys", "queue", "blobs", "cache_store", "counter_store", "factory", "sqlite")
    )
    code = f"import {modules}, sys; assert 'aioboto3' not in sys.modules and 'botocore' not in sys.modules"
    env = {**os.environ, "PYTHONPATH": str(SHARED)}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr

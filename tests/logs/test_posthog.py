"""PostHog export (``Helicone-Posthog-Key`` / ``Helicone-Posthog-Host``), against a local PostHog stand-in.

End to end: the official ``openai`` SDK through a live heliport running the local log pipeline (queue,
consumer, SQLite) as ``heliport serve`` does; the stand-in on 127.0.0.1 is a trusted origin there. The
SQS path: ``handle_sqs_batch`` and the logger Lambda's own entry (PostgreSQL, S3 in moto).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import msgspec
import pytest

from heliport.config import Settings
from heliport.logs.consumer import LocalConsumer, LogWriter, handle_sqs_batch
from heliport.logs.posthog import EVENT_NAME, ExportLimits, PostHogExporter, event_uuid
from heliport.logs.record import LogRecord
from heliport.logs.row import RequestRow
from heliport.store.blobs import LocalBlobStore
from heliport.store.logdb import LogDb
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from heliport.store.queue import SqliteQueue
from tests.aws import REGION
from tests.harness import Gateway, load_entry, start_gateway
from tests.logs.records import ORG, chat_record
from tests.mock_provider import MockProvider
from tests.posthog_standin import PostHogStandIn

KEY = "phc_test_" + uuid.uuid4().hex
OTHER_KEY = "phc_other_" + uuid.uuid4().hex


@pytest.fixture
def posthog() -> Iterator[PostHogStandIn]:
    with PostHogStandIn() as standin:
        yield standin


@pytest.fixture
def served(tmp_path: Path, mock_provider: MockProvider, posthog: PostHogStandIn) -> Iterator[Gateway]:
    gw = start_gateway(
        tmp_path, mock_provider.url, pipeline=True, trusted_origins=frozenset({mock_provider.url, posthog.url})
    )
    yield gw
    gw.stop()


def _row(tmp_path: Path, org_id: str, request_id: str, *, until: str | None = None, timeout: float = 15) -> RequestRow:
    """The stored row, once it exists (and, with ``until``, once its checks hold that name)."""

    async def poll() -> RequestRow:
        db = SqliteLogDb(tmp_path / "logs.sqlite3")
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                row = await db.get_request(org_id, request_id)
                if row is not None and (until is None or until in row.checks):
                    return row
                await asyncio.sleep(0.05)
        finally:
            await db.aclose()
        raise AssertionError(f"no row for {request_id} with {until or 'anything'} in its checks")

    return asyncio.run(poll())


def _headers(request_id: str, host: str, key: str = KEY, **more: str) -> dict[str, str]:
    return {"Helicone-Request-Id": request_id, "Helicone-Posthog-Key": key, "Helicone-Posthog-Host": host, **more}


def _ask(gw: Gateway, headers: dict[str, str]) -> Any:
    return gw.openai().chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        extra_headers=headers,
    )


def _stored_bytes(data_dir: Path) -> bytes:
    """Everything the log database and the blob store hold on disk (bodies decompressed)."""
    out = bytearray()
    for path in data_dir.glob("logs.sqlite3*"):
        out += path.read_bytes()
    for path in (data_dir / "blobs").rglob("*") if (data_dir / "blobs").exists() else ():
        if path.is_file():
            raw = path.read_bytes()
            out += gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    return bytes(out)


# --- end to end: SDK -> heliport -> queue -> consumer -> row -> PostHog ---------------------------------------------


def test_a_request_with_the_headers_becomes_one_event_of_helicones_shape(
    served: Gateway, posthog: PostHogStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    request_id = str(uuid.uuid4())
    completion = _ask(
        served,
        _headers(
            request_id,
            posthog.url,
            **{
                "Helicone-User-Id": "alice",
                "Helicone-Session-Id": "trip-1",
                "Helicone-Session-Name": "Trip planner",
                "Helicone-Session-Path": "/plan/flights",
                "Helicone-Property-Team": "search",
            },
        ),
    )
    [received] = posthog.wait_for_requests(1)
    row = _row(tmp_path, served.org_id, request_id, until="posthog")

    assert received.path == "/capture/" and received.headers["content-type"] == "application/json"
    body = dict(received.body)
    sent_at = datetime.fromisoformat(body.pop("timestamp").replace("Z", "+00:00"))
    assert sent_at == row.created_at.astimezone(UTC)
    usage = completion.usage
    assert usage is not None and row.cost is not None and row.cost > 0 and row.model
    assert body == {
        "api_key": KEY,
        "event": EVENT_NAME,
        "distinct_id": "alice",
        "uuid": event_uuid(served.org_id, request_id),
        "properties": {
            "requestId": request_id,
            "model": row.model,
            "provider": "OPENAI",
            "path": "/v1/gateway/oai/v1/chat/completions",
            "status": 200,
            "promptTokens": usage.prompt_tokens,
            "completionTokens": usage.completion_tokens,
            "completetionTokens": usage.completion_tokens,
            "totalTokens": usage.total_tokens,
            "cost": float(row.cost),
            "delayMs": row.delay_ms,
            "timeToFirstToken": None,
            "userId": "alice",
            "sessionId": "trip-1",
            "sessionName": "Trip planner",
            "sessionPath": "/plan/flights",
            "promptId": None,
            "isStream": False,
            "cacheHit": False,
            "customProperties": {"team": "search"},
            "$process_person_profile": True,
        },
    }
    assert row.checks["posthog"] == {
        "delivered": True,
        "status": 200,
        "attempts": 1,
        "error": None,
        "host": posthog.url,
    }
    # The key travels on the queue only: not on the row, in the database files, the bodies or the logs.
    assert KEY not in msgspec.json.encode(row).decode()
    assert KEY.encode() not in _stored_bytes(tmp_path)
    assert KEY not in caplog.text


def test_without_the_header_nothing_is_sent(served: Gateway, posthog: PostHogStandIn, tmp_path: Path) -> None:
    quiet, loud = str(uuid.uuid4()), str(uuid.uuid4())
    _ask(served, {"Helicone-Request-Id": quiet})
    _row(tmp_path, served.org_id, quiet)
    _ask(served, _headers(loud, posthog.url))  # stored and exported after the quiet one
    posthog.wait_for_requests(1)
    _row(tmp_path, served.org_id, loud, until="posthog")
    time.sleep(0.3)

    assert [event["properties"]["requestId"] for event in posthog.events()] == [loud]
    # No user: the request id is the distinct id, and PostHog is told not to make a person of it.
    [event] = posthog.events()
    assert event["distinct_id"] == loud and event["properties"]["$process_person_profile"] is False
    assert "posthog" not in _row(tmp_path, served.org_id, quiet).checks


def test_a_500_is_retried_and_then_delivered(served: Gateway, posthog: PostHogStandIn, tmp_path: Path) -> None:
    posthog.script([500, 200])
    request_id = str(uuid.uuid4())
    _ask(served, _headers(request_id, posthog.url))
    first, second = posthog.wait_for_requests(2)
    row = _row(tmp_path, served.org_id, request_id, until="posthog")

    assert first.body == second.body and first.path == second.path == "/capture/"
    assert row.checks["posthog"] == {
        "delivered": True,
        "status": 200,
        "attempts": 2,
        "error": None,
        "host": posthog.url,
    }


def test_a_posthog_that_keeps_failing_is_recorded_and_the_row_kept(
    served: Gateway, posthog: PostHogStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    posthog.script([500])
    request_id = str(uuid.uuid4())
    started = time.monotonic()
    completion = _ask(served, _headers(request_id, posthog.url))
    assert time.monotonic() - started < 2  # the caller never waits for PostHog
    assert completion.choices[0].message.content

    row = _row(tmp_path, served.org_id, request_id, until="posthog")
    assert len(posthog.received) == ExportLimits().attempts == 3
    assert row.status == 200 and row.total_tokens  # stored whatever PostHog says
    outcome = row.checks["posthog"]
    assert (outcome["delivered"], outcome["status"], outcome["attempts"]) == (False, 500, 3)
    assert outcome["error"].startswith("PostHog answered 500")
    assert "not delivered" in caplog.text and KEY not in caplog.text


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("https://169.254.169.254", "non-public address"),  # the metadata service: refused before any connection
        ("https://localhost", "non-public address"),  # a name: refused by the guarded resolver at connect time
    ],
)
def test_a_private_host_is_refused_and_recorded(
    served: Gateway, posthog: PostHogStandIn, tmp_path: Path, host: str, why: str
) -> None:
    request_id = str(uuid.uuid4())
    _ask(served, _headers(request_id, host))
    row = _row(tmp_path, served.org_id, request_id, until="posthog")

    outcome = row.checks["posthog"]
    assert outcome["delivered"] is False and outcome["status"] is None and outcome["host"] == host
    assert "Helicone-Posthog-Host" in outcome["error"] and why in outcome["error"]
    assert posthog.received == []


def test_a_bad_host_header_is_a_400_naming_it(served: Gateway) -> None:
    import openai

    with pytest.raises(openai.BadRequestError) as caught:
        _ask(served, _headers(str(uuid.uuid4()), "ftp://posthog.example.com"))
    assert "Helicone-Posthog-Host" in str(caught.value)


# --- the consumer's side: grouping, bounds, the SQS path --------------------------------------------------------------


@pytest.fixture
async def sqlite_writer(tmp_path: Path) -> Any:
    logdb = SqliteLogDb(tmp_path / "logs.sqlite3")
    await logdb.migrate()
    yield LogWriter(logdb, LocalBlobStore(tmp_path / "blobs"))
    await logdb.aclose()


def _sqs_event(records: list[LogRecord]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{i}",
                "body": msgspec.json.encode(r).decode(),
                "attributes": {"ApproximateReceiveCount": "1"},
            }
            for i, r in enumerate(records)
        ]
    }


async def _checks(logdb: LogDb, record: LogRecord) -> dict[str, Any]:
    row = await logdb.get_request(record.org_id, record.request_id)
    assert row is not None
    return row.checks


@pytest.mark.anyio
async def test_a_batch_is_grouped_by_host_and_key(sqlite_writer: LogWriter) -> None:
    with PostHogStandIn() as one, PostHogStandIn() as two:
        a_on_one = [chat_record(posthog_key=KEY, posthog_host=one.url) for _ in range(3)]
        b_on_one = [chat_record(posthog_key=OTHER_KEY, posthog_host=one.url) for _ in range(2)]
        a_on_two = [chat_record(posthog_key=KEY, posthog_host=two.url)]
        plain = [chat_record()]
        records = [a_on_one[0], b_on_one[0], plain[0], a_on_two[0], a_on_one[1], b_on_one[1], a_on_one[2]]
        exporter = PostHogExporter(Settings(trusted_origins=frozenset({one.url, two.url})))
        try:
            result = await handle_sqs_batch(_sqs_event(records), sqlite_writer, exporter=exporter)
        finally:
            await exporter.aclose()

        assert result == {"batchItemFailures": []}
        by_key = {r.body["api_key"]: r for r in one.received}
        assert sorted(by_key) == sorted([KEY, OTHER_KEY]) and len(one.received) == 2
        assert all(r.path == "/batch/" for r in one.received)
        assert [e["properties"]["requestId"] for e in by_key[KEY].body["batch"]] == [r.request_id for r in a_on_one]
        assert [e["properties"]["requestId"] for e in by_key[OTHER_KEY].body["batch"]] == [
            r.request_id for r in b_on_one
        ]
        assert all(e["event"] == EVENT_NAME and e["distinct_id"] == "user-7" for e in by_key[KEY].body["batch"])
        [single] = two.received
        assert single.path == "/capture/" and single.body["api_key"] == KEY
        assert single.body["properties"]["requestId"] == a_on_two[0].request_id

    logdb = sqlite_writer.logdb
    for record in (*a_on_one, *b_on_one, *a_on_two):
        assert (await _checks(logdb, record))["posthog"]["delivered"] is True
    assert "posthog" not in await _checks(logdb, plain[0])


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("http://us.i.posthog.com", "must use https"),
        ("https://us.i.posthog.com:8443", "default https port"),
        ("https://10.1.2.3", "non-public address"),
        ("https://[::1]", "non-public address"),
        ("https://[fd00::1]", "non-public address"),
        ("https://2130706433", "non-public address"),  # 127.0.0.1 written as one number
        ("http://127.0.0.1:9", "must use https"),  # loopback without being a trusted origin
        ("https://user:pass@us.i.posthog.com", "credentials"),
    ],
)
async def test_the_host_obeys_the_address_rules_of_target_urls(sqlite_writer: LogWriter, host: str, why: str) -> None:
    record = chat_record(posthog_key=KEY, posthog_host=host)
    exporter = PostHogExporter(Settings())
    try:
        outcome = await sqlite_writer.write([record])
        [delivery] = await exporter.export(outcome.stored, sqlite_writer.logdb)
    finally:
        await exporter.aclose()

    assert (delivery.delivered, delivery.attempts, delivery.status) == (False, 0, None)
    check = (await _checks(sqlite_writer.logdb, record))["posthog"]
    assert check["delivered"] is False and why in check["error"] and "Helicone-Posthog-Host" in check["error"]
    assert KEY not in json.dumps(check)


@pytest.mark.anyio
async def test_a_hanging_posthog_cannot_hold_the_batch_past_the_deadline(sqlite_writer: LogWriter) -> None:
    with PostHogStandIn(delay=5.0) as slow:
        records = [chat_record(posthog_key=KEY, posthog_host=slow.url) for _ in range(2)]
        limits = ExportLimits(attempts=3, backoff=0.05, attempt_timeout=0.3, deadline=0.8)
        exporter = PostHogExporter(Settings(trusted_origins=frozenset({slow.url})), limits=limits)
        started = time.monotonic()
        try:
            result = await handle_sqs_batch(_sqs_event(records), sqlite_writer, exporter=exporter)
        finally:
            await exporter.aclose()
        took = time.monotonic() - started

    assert result == {"batchItemFailures": []}  # PostHog never makes SQS redeliver
    assert took < 0.8 + 0.7, took
    for record in records:
        check = (await _checks(sqlite_writer.logdb, record))["posthog"]
        assert check["delivered"] is False and check["status"] is None and check["attempts"] >= 1
        assert "no answer within" in check["error"] or "deadline" in check["error"]


@pytest.mark.anyio
async def test_the_local_consumer_skips_rather_than_waits_when_exports_pile_up(tmp_path: Path) -> None:
    logdb = SqliteLogDb(tmp_path / "logs.sqlite3")
    await logdb.migrate()
    queue = SqliteQueue(tmp_path / "queue.sqlite3")
    with PostHogStandIn(delay=0.5) as slow:
        exporter = PostHogExporter(Settings(trusted_origins=frozenset({slow.url})))
        consumer = LocalConsumer(
            queue, LogWriter(logdb, LocalBlobStore(tmp_path / "blobs")), exporter=exporter, max_exports=1
        )
        first, second = (chat_record(posthog_key=KEY, posthog_host=slow.url) for _ in range(2))
        try:
            await queue.send(first)
            started = time.monotonic()
            assert await consumer.drain_once() == 1
            await queue.send(second)
            assert await consumer.drain_once() == 1
            assert time.monotonic() - started < 0.4  # stored both without waiting for PostHog
            assert (await _checks(logdb, second))["posthog"]["error"].startswith("skipped: 1 exports already in flight")
            await consumer.settle_exports()
            assert (await _checks(logdb, first))["posthog"]["delivered"] is True
            assert len(slow.received) == 1
        finally:
            await exporter.aclose()
            await queue.aclose()
            await logdb.aclose()


def test_the_logger_lambda_exports_once_rows_are_written(
    pg_dsn_sync: str, aws_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, posthog: PostHogStandIn
) -> None:
    bucket = f"heliport-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", region_name=REGION, endpoint_url=aws_endpoint).create_bucket(Bucket=bucket)
    for name, value in {
        "HELIPORT_DATABASE_URL": pg_dsn_sync,
        "HELIPORT_BUCKET": bucket,
        "HELIPORT_AWS_ENDPOINT_URL": aws_endpoint,
        "HELIPORT_AWS_REGION": REGION,
        "HELIPORT_DATA_DIR": str(tmp_path),
        "HELIPORT_TRUSTED_ORIGINS": posthog.url,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HELIPORT_QUEUE_URL", raising=False)
    records = [chat_record(posthog_key=KEY, posthog_host=posthog.url, user_id=None) for _ in range(2)]
    event = _sqs_event([*records, chat_record()])
    module = load_entry("logger")
    try:
        assert module.handler(event, None) == {"batchItemFailures": []}
        [sent] = posthog.received
        assert sent.path == "/batch/" and sent.body["api_key"] == KEY
        assert [e["distinct_id"] for e in sent.body["batch"]] == [r.request_id for r in records]

        async def rows() -> list[RequestRow]:
            db = PostgresLogDb(pg_dsn_sync)
            try:
                found = [await db.get_request(ORG, r.request_id) for r in records]
            finally:
                await db.aclose()
            return [row for row in found if row is not None]

        stored = asyncio.run(rows())
        assert len(stored) == 2
        assert all(row.checks["posthog"]["delivered"] is True for row in stored)
        assert all(KEY not in msgspec.json.encode(row).decode() for row in stored)

        # Redelivered after its rows were stored (say the invocation timed out): sent again under the
        # same event uuids, which PostHog de-duplicates.
        assert module.handler(event, None) == {"batchItemFailures": []}
        first, again = posthog.wait_for_requests(2)
        assert [e["uuid"] for e in again.body["batch"]] == [e["uuid"] for e in first.body["batch"]]
    finally:
        module._loop.run_until_complete(module._exporter.aclose())
        module._loop.run_until_complete(module._writer.blobs.aclose())

"""The consumer's Lambda entry, run as Lambda would: handler(event, context) with the file in events/.

Besides the happy path: a database that cannot be reached (still resuming, or behind a Secrets
Manager the function has no route to) must give the whole batch back to SQS and leave the schema
to be migrated by the next invocation, and must never break the module's import.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import uuid
from pathlib import Path

import boto3
import msgspec
import pytest

from heliport.store.logdb import DeadLetter
from heliport.store.logdb_postgres import PostgresLogDb
from tests.api.paused import PausedDatabase
from tests.aws import REGION
from tests.faults import closed_port
from tests.harness import load_entry
from tests.logs.records import chat_record

ROOT = Path(__file__).resolve().parents[2]
EVENT = ROOT / "events" / "logger-sqs-batch.json"


def _every_message(event: dict[str, object]) -> dict[str, list[dict[str, str]]]:
    records = event["Records"]
    assert isinstance(records, list)
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}


@pytest.mark.parametrize("inline", [None, "0"], ids=["small-bodies-on-the-row", "every-body-in-s3"])
def test_logger_handler_stores_the_batch_and_keeps_the_poison_message_as_a_dead_letter(
    pg_dsn_sync: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch, inline: str | None
) -> None:
    bucket = f"heliport-{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws_endpoint)
    s3.create_bucket(Bucket=bucket)
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=aws_endpoint)
    queue_url = sqs.create_queue(QueueName=f"logs-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    # A record the proxy spooled while SQS was down: the consumer's first invocation re-enqueues it.
    spooled = msgspec.json.encode(chat_record()).decode()
    s3.put_object(Bucket=bucket, Key="spool/2026/11/22/spooled.json", Body=spooled.encode())
    for name, value in {
        "HELIPORT_DATABASE_URL": pg_dsn_sync,
        "HELIPORT_QUEUE_URL": queue_url,
        "HELIPORT_BUCKET": bucket,
        "HELIPORT_AWS_ENDPOINT_URL": aws_endpoint,
        "HELIPORT_AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    if inline is not None:  # HELIPORT_INLINE_BODY_BYTES=0: every body is put in S3, as before issue 24
        monkeypatch.setenv("HELIPORT_INLINE_BODY_BYTES", inline)
    asyncio.run(_migrate(pg_dsn_sync))

    module = load_entry("logger")

    event = json.loads(EVENT.read_text())
    # The undecodable message is kept in the log database with its reason, and acknowledged.
    assert module.handler(event, None) == {"batchItemFailures": []}
    # Redelivery of the same batch is harmless: one row, the same answer.
    assert module.handler(event, None) == {"batchItemFailures": []}
    letters = asyncio.run(_dead_letters(pg_dsn_sync))
    assert [letter.record.decode() for letter in letters] == [event["Records"][1]["body"]] * 2

    assert s3.list_objects_v2(Bucket=bucket, Prefix="spool/").get("KeyCount") == 0
    requeued = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    assert [m["Body"] for m in requeued] == [spooled]

    record = json.loads(event["Records"][0]["body"])
    row = asyncio.run(_row(pg_dsn_sync, record["org_id"], record["request_id"]))
    assert row is not None and row.total_tokens == 1500 and row.cost is not None
    assert row.body_key is not None
    if inline is None:  # the batch's bodies are small: on the row, and no PUT was made for them
        assert row.body_inline is not None
        assert s3.list_objects_v2(Bucket=bucket, Prefix=row.body_key).get("KeyCount") == 0
        assert json.loads(gzip.decompress(row.body_inline))["request"] == record["request_body"]
        return
    assert row.body_inline is None
    body = boto3.client("s3", region_name=REGION, endpoint_url=aws_endpoint).get_object(Bucket=bucket, Key=row.body_key)
    assert json.loads(gzip.decompress(body["Body"].read()))["request"] == record["request_body"]


def test_a_database_that_cannot_take_connections_gives_the_whole_batch_back(
    pg_dsn_sync: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Aurora still starting: every message comes back for SQS to redeliver, and the schema is
    migrated by the first invocation that reaches the database, not marked done before."""
    with PausedDatabase(pg_dsn_sync, "starting") as database:
        monkeypatch.setenv("HELIPORT_DATABASE_URL", database.dsn)
        monkeypatch.setenv("HELIPORT_DATA_DIR", str(tmp_path))  # local blobs; no queue, so no respool
        for name in ("HELIPORT_QUEUE_URL", "HELIPORT_BUCKET", "HELIPORT_DATABASE_SECRET_ARN"):
            monkeypatch.delenv(name, raising=False)
        module = load_entry("logger")
        event = json.loads(EVENT.read_text())

        assert module.handler(event, None) == _every_message(event)
        assert module._migrated is False
        assert database.accepted == 1

        database.resume()
        assert module.handler(event, None) == {"batchItemFailures": []}  # the poison one: a dead letter
        assert module._migrated is True
    record = json.loads(event["Records"][0]["body"])
    assert asyncio.run(_row(pg_dsn_sync, record["org_id"], record["request_id"])) is not None


def test_an_unreachable_secrets_manager_fails_the_batch_not_the_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    closed = closed_port()
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-cluster-abc"
    for name, value in {
        "HELIPORT_DATABASE_SECRET_ARN": arn,
        "HELIPORT_DATABASE_HOST": "heliport.cluster-abc.us-east-1.rds.amazonaws.com",
        "HELIPORT_DATABASE_NAME": "heliport",
        "HELIPORT_DATABASE_PORT": "5432",
        "HELIPORT_AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed}",
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "HELIPORT_DATA_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("HELIPORT_DATABASE_URL", "HELIPORT_QUEUE_URL", "HELIPORT_BUCKET"):
        monkeypatch.delenv(name, raising=False)
    module = load_entry("logger")  # reads no secret: nothing to fail here
    event = json.loads(EVENT.read_text())

    with caplog.at_level(logging.ERROR, logger="heliport.consumer"):
        assert module.handler(event, None) == _every_message(event)
    assert module._migrated is False
    logged = caplog.text
    assert "could not migrate the log database; all 2 messages will be redelivered" in logged
    assert f"could not reach Secrets Manager at http://127.0.0.1:{closed} to read {arn}" in logged
    assert "interface endpoint for secretsmanager" in logged


async def _migrate(dsn: str) -> None:
    db = PostgresLogDb(dsn, max_size=1)
    await db.migrate()
    await db.aclose()


async def _row(dsn: str, org_id: str, request_id: str):  # type: ignore[no-untyped-def]  # returns RequestRow | None
    db = PostgresLogDb(dsn, max_size=1)
    try:
        return await db.get_request(org_id, request_id)
    finally:
        await db.aclose()


async def _dead_letters(dsn: str) -> list[DeadLetter]:
    db = PostgresLogDb(dsn, max_size=1)
    try:
        return await db.list_dead_letters()
    finally:
        await db.aclose()

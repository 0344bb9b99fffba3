"""The consumer's Lambda entry, run as Lambda would: handler(event, context) with the file in events/."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import json
import uuid
from pathlib import Path

import boto3
import msgspec
import pytest

from heliport.store.logdb_postgres import PostgresLogDb
from tests.aws import REGION
from tests.logs.records import chat_record

ROOT = Path(__file__).resolve().parents[2]


def test_logger_handler_stores_the_batch_and_reports_the_poison_message(
    pg_dsn_sync: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
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
    asyncio.run(_migrate(pg_dsn_sync))

    spec = importlib.util.spec_from_file_location("heliport_logger_entry", ROOT / "functions" / "logger" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    event = json.loads((ROOT / "events" / "logger-sqs-batch.json").read_text())
    poison = event["Records"][1]["messageId"]
    assert module.handler(event, None) == {"batchItemFailures": [{"itemIdentifier": poison}]}
    # Redelivery of the same batch is harmless: one row, the same answer.
    assert module.handler(event, None) == {"batchItemFailures": [{"itemIdentifier": poison}]}

    assert s3.list_objects_v2(Bucket=bucket, Prefix="spool/").get("KeyCount") == 0
    requeued = sqs.receive_message(QueueUrl=queue_url)["Messages"]
    assert [m["Body"] for m in requeued] == [spooled]

    record = json.loads(event["Records"][0]["body"])
    row = asyncio.run(_row(pg_dsn_sync, record["org_id"], record["request_id"]))
    assert row is not None and row.total_tokens == 1500 and row.cost is not None
    assert row.body_key is not None
    body = boto3.client("s3", region_name=REGION, endpoint_url=aws_endpoint).get_object(Bucket=bucket, Key=row.body_key)
    assert json.loads(gzip.decompress(body["Body"].read()))["request"] == record["request_body"]


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

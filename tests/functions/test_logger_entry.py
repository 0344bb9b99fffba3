"""The consumer's Lambda entry, run as Lambda would: handler(event, context) with the file in events/."""

from __future__ import annotations

import asyncio
import gzip
import importlib.util
import json
import uuid
from pathlib import Path

import boto3
import pytest

from heliport.store.logdb_postgres import PostgresLogDb
from tests.aws import REGION

ROOT = Path(__file__).resolve().parents[2]


def test_logger_handler_stores_the_batch_and_reports_the_poison_message(
    pg_dsn_sync: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"heliport-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", region_name=REGION, endpoint_url=aws_endpoint).create_bucket(Bucket=bucket)
    for name, value in {
        "HELIPORT_DATABASE_URL": pg_dsn_sync,
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

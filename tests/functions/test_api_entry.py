"""The query API's Lambda entry, run as Lambda runs it: handler(event, context) with events/api-*.json.

Keys live in DynamoDB (moto's server), rows in PostgreSQL; the event's placeholder key is replaced
by a real one, as a user edits the file before ``sam local invoke``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from heliport.auth import create_key
from heliport.logs.row import RequestRow
from heliport.store.aws import DynamoKeyStore, create_table
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.ports import Organisation
from tests.aws import REGION

ROOT = Path(__file__).resolve().parents[2]


def _row(org_id: str, environment: str) -> RequestRow:
    return RequestRow(
        request_id=str(uuid.uuid4()),
        org_id=org_id,
        key_id="k",
        created_at=datetime.now(UTC),
        status=200,
        provider="OPENAI",
        target_url="https://api.openai.com/v1/chat/completions",
        path="/v1/chat/completions",
        model="gpt-4o-mini",
        properties={"Environment": environment},
    )


def test_api_handler_answers_the_query_event_with_the_callers_rows_only(
    pg_dsn_sync: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamo_table = f"heliport-{uuid.uuid4().hex[:12]}"
    assert asyncio.run(create_table(dynamo_table, region=REGION, endpoint_url=aws_endpoint))
    for name, value in {
        "HELIPORT_DATABASE_URL": pg_dsn_sync,
        "HELIPORT_TABLE": dynamo_table,
        "HELIPORT_AWS_ENDPOINT_URL": aws_endpoint,
        "HELIPORT_AWS_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": "heliport-api",
    }.items():
        monkeypatch.setenv(name, value)

    async def setup() -> tuple[str, str, str]:
        keys = DynamoKeyStore(dynamo_table, region=REGION, endpoint_url=aws_endpoint)
        orgs = []
        for name in ("mine", "theirs"):
            org = Organisation(id=str(uuid.uuid4()), name=name, created_at=datetime.now(UTC))
            await keys.put_org(org)
            orgs.append(org.id)
        plain, _ = await create_key(keys, orgs[0], "events")
        await keys.aclose()
        db = PostgresLogDb(pg_dsn_sync)
        await db.migrate()
        mine, theirs = _row(orgs[0], "sam-local"), _row(orgs[1], "sam-local")
        await db.insert_requests([mine, theirs, _row(orgs[0], "prod")])
        await db.aclose()
        return plain, mine.request_id, theirs.request_id

    key, mine, theirs = asyncio.run(setup())
    spec = importlib.util.spec_from_file_location("heliport_api_entry", ROOT / "functions" / "api" / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    for path in sorted((ROOT / "events").glob("api-*.json")):
        event = json.loads(path.read_text().replace("sk-heliport-your-key", key))
        response = module.handler(event, None)
        assert response["statusCode"] == 200, response
        body = json.loads(response["body"])
        assert body["error"] is None
        assert [r["request_id"] for r in body["data"]] == [mine]
        assert theirs not in response["body"]

    unauthorised = json.loads((ROOT / "events" / "api-request-query.json").read_text())
    assert module.handler(unauthorised, None)["statusCode"] == 401

    # The dashboard page comes from the same function (and origin) as the API it calls.
    page = dict(unauthorised, path="/dashboard/", httpMethod="GET", body=None, headers={})
    page["requestContext"] = dict(page["requestContext"], path="/v1/dashboard/", httpMethod="GET")
    answer = module.handler(page, None)
    assert answer["statusCode"] == 200
    assert answer["headers"]["content-type"].startswith("text/html")
    assert "default-src 'self'" in answer["headers"]["content-security-policy"]

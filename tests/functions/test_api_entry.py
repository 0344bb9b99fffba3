"""The query API's Lambda entry, run as Lambda runs it: handler(event, context) with events/api-*.json.

Keys live in DynamoDB (moto's server), rows in PostgreSQL; the event's placeholder key is replaced
by a real one, as a user edits the file before ``sam local invoke``. The database is reached with a
fixed DSN, or as deployed: an RDS-style secret in moto's Secrets Manager plus host, port and name;
and in front of it may sit the paused-Aurora stand-in of ``tests/api/paused.py``.
"""

from __future__ import annotations

import asyncio
import json
import uuid
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from heliport.auth import create_key
from heliport.logs.row import RequestRow
from heliport.store.aws import create_table
from heliport.store.keys import DynamoKeyStore, Organisation
from heliport.store.logdb_postgres import PostgresLogDb
from tests.api.paused import PausedDatabase
from tests.aws import REGION
from tests.harness import load_entry
from tests.logs.records import chat_row

ROOT = Path(__file__).resolve().parents[2]
QUERY_EVENT = ROOT / "events" / "api-request-query.json"


def _row(org_id: str, environment: str) -> RequestRow:
    return chat_row(org_id, properties={"Environment": environment})


def _environment(monkeypatch: pytest.MonkeyPatch, aws_endpoint: str, **variables: str) -> str:
    """The function's environment with a new key table; returns the table's name."""
    dynamo_table = f"heliport-{uuid.uuid4().hex[:12]}"
    assert asyncio.run(create_table(dynamo_table, region=REGION, endpoint_url=aws_endpoint))
    for name, value in {
        "HELIPORT_TABLE": dynamo_table,
        "HELIPORT_AWS_ENDPOINT_URL": aws_endpoint,
        "HELIPORT_AWS_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": "heliport-api",
        **variables,
    }.items():
        monkeypatch.setenv(name, value)
    return dynamo_table


def _keys_and_rows(pg_dsn: str, dynamo_table: str, aws_endpoint: str) -> tuple[str, str, str]:
    """A key of "mine", and one row of "mine" and one of "theirs" tagged sam-local (the event's filter)."""

    async def setup() -> tuple[str, str, str]:
        keys = DynamoKeyStore(dynamo_table, region=REGION, endpoint_url=aws_endpoint)
        orgs = []
        for name in ("mine", "theirs"):
            org = Organisation(id=str(uuid.uuid4()), name=name, created_at=datetime.now(UTC))
            await keys.put_org(org)
            orgs.append(org.id)
        plain, _ = await create_key(keys, orgs[0], "events")
        await keys.aclose()
        db = PostgresLogDb(pg_dsn)
        await db.migrate()
        mine, theirs = _row(orgs[0], "sam-local"), _row(orgs[1], "sam-local")
        await db.insert_requests([mine, theirs, _row(orgs[0], "prod")])
        await db.aclose()
        return plain, mine.request_id, theirs.request_id

    return asyncio.run(setup())


def _query_event(key: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(QUERY_EVENT.read_text().replace("sk-heliport-your-key", key))
    return event


def test_api_handler_answers_the_query_event_with_the_callers_rows_only(
    pg_dsn_sync: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamo_table = _environment(monkeypatch, aws_endpoint, HELIPORT_DATABASE_URL=pg_dsn_sync)
    key, mine, theirs = _keys_and_rows(pg_dsn_sync, dynamo_table, aws_endpoint)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = load_entry("api")

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
    _assert_no_deprecation_warning(caught)

    # The dashboard page comes from the same function (and origin) as the API it calls.
    page = dict(unauthorised, path="/dashboard/", httpMethod="GET", body=None, headers={})
    page["requestContext"] = dict(page["requestContext"], path="/v1/dashboard/", httpMethod="GET")
    answer = module.handler(page, None)
    assert answer["statusCode"] == 200
    assert answer["headers"]["content-type"].startswith("text/html")
    assert "default-src 'self'" in answer["headers"]["content-security-policy"]


def _assert_no_deprecation_warning(caught: list[warnings.WarningMessage]) -> None:
    """Nothing the entry ran on import or invocation is deprecated (``asyncio.get_event_loop()`` without a
    running loop warns from Python 3.12 and fails from 3.14). moto's server thread is not the function."""
    deprecations = [
        f"{item.filename}:{item.lineno}: {item.message}"
        for item in caught
        if issubclass(item.category, DeprecationWarning)
        and not any(double in Path(item.filename).parts for double in ("moto", "werkzeug"))
    ]
    assert not deprecations, "\n".join(deprecations)


def test_the_entry_owns_its_event_loop(pg_dsn_sync: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every invocation runs on the loop the module created, whatever the process did in between: an
    ``asyncio.run()`` leaves no current loop, where a handler that looked the loop up would fail (or, on
    Python >= 3.12, warn and run on a new loop, away from the pools the earlier invocations opened)."""
    dynamo_table = _environment(monkeypatch, aws_endpoint, HELIPORT_DATABASE_URL=pg_dsn_sync)
    key, mine, _ = _keys_and_rows(pg_dsn_sync, dynamo_table, aws_endpoint)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = load_entry("api")
        assert isinstance(module._loop, asyncio.AbstractEventLoop) and not module._loop.is_closed()
        for _ in range(2):
            asyncio.run(asyncio.sleep(0))  # and then there is no current event loop
            response = module.handler(_query_event(key), None)
            assert response["statusCode"] == 200, response
            assert [r["request_id"] for r in json.loads(response["body"])["data"]] == [mine]
    _assert_no_deprecation_warning(caught)


def test_a_database_resuming_from_pause_is_a_503_and_migration_is_tried_again(
    pg_dsn_sync: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first invocation after Aurora paused: its migration cannot connect within the bound, so
    the invocation answers 503 with Retry-After (not an unhandled exception, which API Gateway
    would turn into an opaque 502), and the next one migrates and answers."""
    with PausedDatabase(pg_dsn_sync) as database:
        dynamo_table = _environment(
            monkeypatch, aws_endpoint, HELIPORT_DATABASE_URL=database.dsn, HELIPORT_DATABASE_CONNECT_TIMEOUT="1"
        )
        key, mine, _ = _keys_and_rows(pg_dsn_sync, dynamo_table, aws_endpoint)
        module = load_entry("api")

        response = module.handler(_query_event(key), None)
        assert response["statusCode"] == 503, response
        assert response["headers"]["retry-after"] == "15"
        assert response["headers"]["content-type"] == "application/json"
        body = json.loads(response["body"])
        assert body["data"] is None
        assert "no connection within 1 s" in body["error"]
        assert "the database is starting (resuming from pause) or unreachable; retry in 15 s" in body["error"]
        assert module._migrated is False

        database.resume()
        response = module.handler(_query_event(key), None)
        assert response["statusCode"] == 200, response
        assert [r["request_id"] for r in json.loads(response["body"])["data"]] == [mine]
        assert module._migrated is True


def test_the_deployed_environment_reads_the_aurora_secret_once_for_migrating_and_querying(
    pg_dsn_sync: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts = urlsplit(pg_dsn_sync)
    secrets = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws_endpoint)
    arn = secrets.create_secret(
        Name=f"rds-{uuid.uuid4().hex[:12]}",
        SecretString=json.dumps({"username": parts.username or "postgres", "password": "unused-by-trust"}),
    )["ARN"]
    dynamo_table = _environment(
        monkeypatch,
        aws_endpoint,
        HELIPORT_DATABASE_SECRET_ARN=arn,
        HELIPORT_DATABASE_HOST=parts.hostname or "127.0.0.1",
        HELIPORT_DATABASE_PORT=str(parts.port or 5432),
        HELIPORT_DATABASE_NAME=parts.path.lstrip("/"),
        AWS_REGION=REGION,
    )
    monkeypatch.delenv("HELIPORT_DATABASE_URL", raising=False)
    key, mine, _ = _keys_and_rows(pg_dsn_sync, dynamo_table, aws_endpoint)
    module = load_entry("api")
    assert module._credentials.reads == 0  # nothing read at import

    for _ in range(2):
        response = module.handler(_query_event(key), None)
        assert response["statusCode"] == 200, response
        assert [r["request_id"] for r in json.loads(response["body"])["data"]] == [mine]
    assert module._credentials.reads == 1  # the migration and the queries share one read

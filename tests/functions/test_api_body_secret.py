"""The query API's Lambda entry reads the body-URL secret at cold start, and its environments agree.

Two copies of ``functions/api/app.py`` loaded with one environment are two execution environments of
the deployed function: each imports (its cold start) and reads ``HELIPORT_BODY_URL_SECRET_ARN`` from
moto's Secrets Manager. A row whose bodies ride on it is listed by one (``handler(event, None)``, as
Lambda calls it) and its ``signed_body_url`` is answered by the other. A secret that cannot be read
fails the import, as an init error fails a Lambda cold start, rather than signing with a per-process
key that other environments would refuse.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import pytest

from heliport.api.body_secret import VARIABLE
from heliport.auth import create_key
from heliport.config import ConfigError
from heliport.logs.consumer import LogWriter
from heliport.store.aws import create_table
from heliport.store.blobs import S3BlobStore
from heliport.store.keys import DynamoKeyStore, Organisation
from heliport.store.logdb_postgres import PostgresLogDb
from tests.aws import REGION
from tests.harness import load_entry
from tests.logs.records import CHAT_REQUEST, CHAT_RESPONSE, chat_record

ROOT = Path(__file__).resolve().parents[2]
QUERY_EVENT = ROOT / "events" / "api-request-query.json"


def _deploy(pg_dsn: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """The function's environment (keys in DynamoDB, rows in PostgreSQL, bodies bucket in S3) and one
    logged request whose bodies are on its row; returns (key, request id)."""
    suffix = uuid.uuid4().hex[:12]
    table, bucket = f"heliport-{suffix}", f"heliport-bodies-{suffix}"
    assert asyncio.run(create_table(table, region=REGION, endpoint_url=aws_endpoint))
    boto3.client("s3", region_name=REGION, endpoint_url=aws_endpoint).create_bucket(Bucket=bucket)
    for name, value in {
        "HELIPORT_TABLE": table,
        "HELIPORT_BUCKET": bucket,
        "HELIPORT_DATABASE_URL": pg_dsn,
        "HELIPORT_AWS_ENDPOINT_URL": aws_endpoint,
        "HELIPORT_AWS_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": "heliport-api",
    }.items():
        monkeypatch.setenv(name, value)

    async def setup() -> tuple[str, str]:
        keys = DynamoKeyStore(table, region=REGION, endpoint_url=aws_endpoint)
        org = Organisation(id=str(uuid.uuid4()), name="environments", created_at=datetime.now(UTC))
        await keys.put_org(org)
        plain, _ = await create_key(keys, org.id, "environments")
        await keys.aclose()
        logdb = PostgresLogDb(pg_dsn, max_size=1)
        await logdb.migrate()
        blobs = S3BlobStore(bucket, region=REGION, endpoint_url=aws_endpoint)
        record = chat_record(org_id=org.id)
        await LogWriter(logdb, blobs).write([record])  # small bodies: on the row, not in S3
        await blobs.aclose()
        await logdb.aclose()
        return plain, record.request_id

    return asyncio.run(setup())


def _secret(aws_endpoint: str, value: str | None = None) -> str:
    client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws_endpoint)
    if value is None:  # what the template's GenerateSecretString makes
        value = client.get_random_password(PasswordLength=64, ExcludePunctuation=True)["RandomPassword"]
    arn: str = client.create_secret(Name=f"heliport/body-url-{uuid.uuid4().hex[:10]}", SecretString=value)["ARN"]
    return arn


def _listed_body_url(module: Any, key: str, request_id: str) -> str:
    event: dict[str, Any] = json.loads(QUERY_EVENT.read_text().replace("sk-heliport-your-key", key))
    event["body"] = json.dumps({"filter": "all", "limit": 10})
    response = module.handler(event, None)
    assert response["statusCode"] == 200, response
    rows = json.loads(response["body"])["data"]
    url: str = next(row["signed_body_url"] for row in rows if row["request_id"] == request_id)
    assert urlsplit(url).path == f"/v1/request/{request_id}/body", url  # heliport's route, not S3's
    return url


def _follow(module: Any, url: str) -> dict[str, Any]:
    """API Gateway's event for a browser following ``url``: a GET without a key."""
    template: dict[str, Any] = json.loads(QUERY_EVENT.read_text())
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    event = dict(
        template,
        path=parts.path,
        httpMethod="GET",
        headers={"Accept": "application/json"},
        queryStringParameters=query,
        multiValueQueryStringParameters={name: [value] for name, value in query.items()},
        pathParameters={"proxy": parts.path.removeprefix("/v1/request/")},
        body=None,
    )
    event["requestContext"] = dict(template["requestContext"], path=f"/v1{parts.path}", httpMethod="GET")
    answer: dict[str, Any] = module.handler(event, None)
    return answer


def test_a_body_url_from_one_environment_is_answered_by_another(
    pg_dsn_sync: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key, request_id = _deploy(pg_dsn_sync, aws_endpoint, monkeypatch)
    monkeypatch.setenv(VARIABLE, _secret(aws_endpoint))
    first, second = load_entry("api"), load_entry("api")
    assert first._settings.body_url_secret == second._settings.body_url_secret is not None

    answer = _follow(second, _listed_body_url(first, key, request_id))
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"]) == {"request": CHAT_REQUEST, "response": CHAT_RESPONSE}
    assert _follow(first, _listed_body_url(second, key, request_id))["statusCode"] == 200


def test_without_the_secret_another_environment_refuses_the_url(
    pg_dsn_sync: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control: per-process keys, and the URL is a 404 anywhere but where it was made."""
    key, request_id = _deploy(pg_dsn_sync, aws_endpoint, monkeypatch)
    monkeypatch.delenv(VARIABLE, raising=False)
    first, second = load_entry("api"), load_entry("api")
    url = _listed_body_url(first, key, request_id)
    assert _follow(first, url)["statusCode"] == 200
    refused = _follow(second, url)
    assert refused["statusCode"] == 404, refused
    assert json.loads(refused["body"])["error"] == "This body URL is invalid or has expired."


def test_a_secret_that_cannot_be_read_fails_the_cold_start(
    pg_dsn_sync: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deploy(pg_dsn_sync, aws_endpoint, monkeypatch)
    missing = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:heliport/gone-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv(VARIABLE, missing)
    with pytest.raises(ConfigError, match=f"^{VARIABLE}: Secrets Manager refused to return {missing} "):
        load_entry("api")
    monkeypatch.setenv(VARIABLE, _secret(aws_endpoint, "too-short"))
    with pytest.raises(ConfigError, match="must hold a SecretString of at least 32 characters"):
        load_entry("api")

"""One body-URL secret for every query API built from the same settings (``HELIPORT_BODY_URL_SECRET_ARN``).

Two heliport servers on loopback are built from the same environment, as two Lambda execution
environments of one function are: each reads the secret from moto's Secrets Manager (server mode) when
it is built. A row whose bodies are kept on it (so its ``signed_body_url`` is heliport's own signed
route, even with S3 as the blob store) is listed through one server, and the URL is followed, without a
key, through the other; so is an HQL CSV download link. Without the secret, each server signs with a
key of its own and the other refuses the URL: the control that shows the first test can fail.

Errors are tried through :func:`with_body_url_secret` itself: an unknown secret, one too short, one
set twice, and Secrets Manager unreachable each stop the start with an error naming the variable.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import httpx
import pytest

from heliport.api.body_secret import MIN_SECRET_CHARS, VARIABLE, with_body_url_secret
from heliport.auth import create_key
from heliport.config import ConfigError, SecretTimeouts, SecretUnreachableError, Settings
from heliport.logs.consumer import LogWriter
from heliport.store.blobs import S3BlobStore
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb_postgres import PostgresLogDb
from tests.aws import REGION
from tests.faults import closed_port
from tests.harness import serve_local
from tests.logs.records import CHAT_REQUEST, CHAT_RESPONSE, chat_record
from tests.postgres import throwaway_database_sync


def _create_secret(aws_endpoint: str, value: str | None = None) -> tuple[str, str]:
    """(ARN, value) of a new secret; by default what the template's GenerateSecretString makes."""
    client = boto3.client("secretsmanager", region_name=REGION, endpoint_url=aws_endpoint)
    if value is None:
        value = client.get_random_password(PasswordLength=64, ExcludePunctuation=True)["RandomPassword"]
    arn: str = client.create_secret(Name=f"heliport/body-url-{uuid.uuid4().hex[:10]}", SecretString=value)["ARN"]
    return arn, value


@dataclass
class Deployment:
    """What two environments of one query API share: the database, the bucket, the keys, the environment."""

    environ: dict[str, str]
    data_dir: Path
    key: str
    request_id: str
    #: The row's model, as HQL's request_model column answers it.
    model: str


@pytest.fixture
def deployment(tmp_path: Path, aws_endpoint: str) -> Iterator[Deployment]:
    bucket = f"heliport-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", region_name=REGION, endpoint_url=aws_endpoint).create_bucket(Bucket=bucket)
    with throwaway_database_sync() as dsn:
        keys = SqliteKeyStore(tmp_path / "keys.sqlite3")

        async def setup() -> tuple[str, str, str]:
            org = Organisation(id=f"org-{uuid.uuid4().hex[:8]}", name="shared", created_at=datetime.now(UTC))
            await keys.put_org(org)
            plain, _ = await create_key(keys, org.id, "shared")
            logdb = PostgresLogDb(dsn, max_size=1)
            await logdb.migrate()
            blobs = S3BlobStore(bucket, region=REGION, endpoint_url=aws_endpoint)
            record = chat_record(org_id=org.id)
            # A chat's bodies are far below the inline threshold: they ride on the row, and no S3 object
            # exists, so even with S3 as the blob store the URL is heliport's own signed route.
            await LogWriter(logdb, blobs).write([record])
            await blobs.aclose()
            await logdb.aclose()
            return plain, record.request_id, str(record.request_model)

        key, request_id, model = asyncio.run(setup())
        environ = {
            "HELIPORT_DATA_DIR": str(tmp_path),
            "HELIPORT_DATABASE_URL": dsn,
            "HELIPORT_BUCKET": bucket,
            "HELIPORT_AWS_REGION": REGION,
            "HELIPORT_AWS_ENDPOINT_URL": aws_endpoint,
        }
        yield Deployment(environ, tmp_path, key, request_id, model)


@dataclass
class Environment:
    """One query API, serving on loopback, built from the deployment's environment."""

    url: str
    client: httpx.Client


@contextlib.contextmanager
def _environment(deployment: Deployment, extra: dict[str, str]) -> Iterator[Environment]:
    settings = Settings.from_env({**deployment.environ, **extra})
    server = serve_local(settings, SqliteKeyStore(deployment.data_dir / "keys.sqlite3"))
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {deployment.key}"}, timeout=30)
    try:
        yield Environment(server.url, client)
    finally:
        client.close()
        server.stop()


def _on(environment: Environment, url: str) -> str:
    """``url`` (issued by another environment) as sent to ``environment``: the same path and query."""
    parts = urlsplit(url)
    return f"{environment.url}{parts.path}?{parts.query}"


def _data(response: httpx.Response) -> object:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["error"] is None, body
    return body["data"]


def _signed_body_url(environment: Environment, request_id: str) -> str:
    rows = _data(environment.client.post("/v1/request/query", json={"filter": "all", "limit": 10}))
    assert isinstance(rows, list)
    url = next(row["signed_body_url"] for row in rows if row["request_id"] == request_id)
    assert isinstance(url, str) and url.startswith(f"{environment.url}/v1/request/{request_id}/body?"), url
    return url


def test_a_body_url_issued_by_one_environment_is_accepted_by_another(deployment: Deployment, aws_endpoint: str) -> None:
    arn, _ = _create_secret(aws_endpoint)
    with (
        _environment(deployment, {VARIABLE: arn}) as first,
        _environment(deployment, {VARIABLE: arn}) as second,
    ):
        url = _signed_body_url(first, deployment.request_id)
        fetched = httpx.get(_on(second, url), timeout=30)  # no key: the signature is the proof
        assert fetched.status_code == 200, fetched.text
        bodies = fetched.json()
        assert bodies == {"request": CHAT_REQUEST, "response": CHAT_RESPONSE}
        # And the other way round, and still refused when tampered with.
        back = _signed_body_url(second, deployment.request_id)
        assert httpx.get(_on(first, back), timeout=30).status_code == 200
        assert httpx.get(_on(first, back.replace("signature=", "signature=0")), timeout=30).status_code == 404


def test_an_hql_download_link_issued_by_one_environment_is_accepted_by_another(
    deployment: Deployment, aws_endpoint: str
) -> None:
    arn, _ = _create_secret(aws_endpoint)
    with (
        _environment(deployment, {VARIABLE: arn}) as first,
        _environment(deployment, {VARIABLE: arn}) as second,
    ):
        sql = "SELECT request_model, status FROM request_response_rmt"
        url = _data(first.client.post("/v1/helicone-sql/download", json={"sql": sql}))
        assert isinstance(url, str) and url.startswith(first.url)
        fetched = httpx.get(_on(second, url), timeout=30)
        assert fetched.status_code == 200, fetched.text
        assert list(csv.reader(io.StringIO(fetched.text))) == [["request_model", "status"], [deployment.model, "200"]]


def test_without_the_secret_each_environment_refuses_the_others_urls(deployment: Deployment) -> None:
    """The control: a random key per process, as before, and the second environment answers 404."""
    with _environment(deployment, {}) as first, _environment(deployment, {}) as second:
        url = _signed_body_url(first, deployment.request_id)
        assert httpx.get(url, timeout=30).status_code == 200  # its own URL, to its issuer
        refused = httpx.get(_on(second, url), timeout=30)
        assert refused.status_code == 404, refused.text
        assert refused.json()["error"] == "This body URL is invalid or has expired."


def _settings(aws_endpoint: str, arn: str, **extra: str) -> Settings:
    return Settings.from_env(
        {VARIABLE: arn, "HELIPORT_AWS_REGION": REGION, "HELIPORT_AWS_ENDPOINT_URL": aws_endpoint, **extra}
    )


def test_the_secret_becomes_the_settings_signing_key(aws_endpoint: str) -> None:
    arn, value = _create_secret(aws_endpoint)
    settings = _settings(aws_endpoint, arn)
    assert settings.body_url_secret_arn == arn and settings.body_url_secret is None  # from_env reads nothing
    resolved = with_body_url_secret(settings)
    assert resolved.body_url_secret == value.encode() and resolved.body_url_secret_arn == arn
    # Without an ARN nothing is read, and an explicit secret stays what it was.
    plain = Settings.from_env({"HELIPORT_BODY_URL_SECRET": "local-secret"})
    assert with_body_url_secret(plain) is plain


def test_an_unknown_secret_stops_the_start_naming_the_variable_and_the_secret(aws_endpoint: str) -> None:
    arn = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:heliport/missing-AbCdEf"
    with pytest.raises(ConfigError) as raised:
        with_body_url_secret(_settings(aws_endpoint, arn))
    message = str(raised.value)
    assert message.startswith(f"{VARIABLE}: ") and arn in message and "ResourceNotFoundException" in message


def test_a_secret_too_short_to_sign_with_is_refused(aws_endpoint: str) -> None:
    arn, _ = _create_secret(aws_endpoint, "x" * (MIN_SECRET_CHARS - 1))
    with pytest.raises(ConfigError, match=f"at least {MIN_SECRET_CHARS} characters \\(it holds 31\\)"):
        with_body_url_secret(_settings(aws_endpoint, arn))
    arn, value = _create_secret(aws_endpoint, "y" * MIN_SECRET_CHARS)
    assert with_body_url_secret(_settings(aws_endpoint, arn)).body_url_secret == value.encode()


def test_a_secret_set_both_ways_is_refused(aws_endpoint: str) -> None:
    arn, _ = _create_secret(aws_endpoint)
    with pytest.raises(ConfigError, match="HELIPORT_BODY_URL_SECRET and HELIPORT_BODY_URL_SECRET_ARN are both set"):
        with_body_url_secret(_settings(aws_endpoint, arn, HELIPORT_BODY_URL_SECRET="local-secret-value"))


def test_an_unreachable_secrets_manager_is_a_bounded_error_naming_the_variable() -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    settings = _settings(endpoint, "heliport/body-url")
    with pytest.raises(SecretUnreachableError) as raised:
        with_body_url_secret(settings, timeouts=SecretTimeouts(connect=1, read=1, attempts=1))
    message = str(raised.value)
    assert message.startswith(f"{VARIABLE}: could not reach Secrets Manager at {endpoint} to read heliport/body-url")

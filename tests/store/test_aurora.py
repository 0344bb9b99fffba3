"""The Aurora DSN built from an RDS-style managed secret (moto's Secrets Manager, a real PostgreSQL)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import aioboto3
import pytest

from heliport.config import ConfigError
from heliport.store.aurora import database_url_from_environment
from heliport.store.logdb_postgres import PostgresLogDb


async def _secret(endpoint: str, value: dict[str, str]) -> str:
    async with aioboto3.Session().client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1") as sm:
        return str(
            (await sm.create_secret(Name=f"rds-{len(json.dumps(value))}", SecretString=json.dumps(value)))["ARN"]
        )


@pytest.mark.anyio
async def test_a_dsn_from_the_managed_secret_reaches_the_database(aws_endpoint: str, pg_dsn: str) -> None:
    parts = urlsplit(pg_dsn)
    arn = await _secret(aws_endpoint, {"username": parts.username or "postgres", "password": "p@ss:w/rd"})
    env = {
        "HELIPORT_DATABASE_SECRET_ARN": arn,
        "HELIPORT_DATABASE_HOST": parts.hostname or "127.0.0.1",
        "HELIPORT_DATABASE_PORT": str(parts.port or 5432),
        "HELIPORT_DATABASE_NAME": parts.path.lstrip("/"),
        "HELIPORT_AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_REGION": "us-east-1",
    }
    dsn = database_url_from_environment(env)
    assert dsn is not None and "p%40ss%3Aw%2Frd@" in dsn  # a password with URL syntax in it survives
    db = PostgresLogDb(dsn)
    try:
        assert "0001_requests" in await db.migrate()
    finally:
        await db.aclose()


def test_an_explicit_url_wins_and_nothing_configured_means_local() -> None:
    assert database_url_from_environment({"HELIPORT_DATABASE_URL": "postgresql://x/y"}) == "postgresql://x/y"
    assert database_url_from_environment({}) is None


def test_a_secret_without_its_endpoint_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="HELIPORT_DATABASE_HOST"):
        database_url_from_environment({"HELIPORT_DATABASE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:x"})

"""Aurora credentials: the DSN built from an RDS-style managed secret (moto's Secrets Manager over HTTP,
a real PostgreSQL), bounded Secrets Manager calls, and re-reading the secret after a rotation.

The test server trusts loopback connections, so it never checks a password: a changed password
cannot be refused there. A rotation is staged as what the client sees of one instead: the role the
remembered credentials name stops being allowed to log in (ALTER ROLE ... NOLOGIN, refused with
SQLSTATE 28000 even under trust, the class asyncpg's InvalidPasswordError for 28P01 belongs to),
and the secret's new version names a role that may.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import urlsplit, urlunsplit

import aioboto3
import asyncpg
import pytest

from heliport.api.database import PostgresQueries
from heliport.config import ConfigError, SecretTimeouts, SecretUnreachableError, Settings
from heliport.logs.row import RequestRow
from heliport.store.aurora import AuroraCredentials, FixedDsn, database_credentials
from heliport.store.logdb_postgres import PostgresLogDb
from tests.aws import REGION
from tests.faults import closed_port
from tests.logs.records import chat_row

ORG = "org-rotation"


async def _secret(endpoint: str, value: dict[str, str]) -> str:
    async with aioboto3.Session().client("secretsmanager", endpoint_url=endpoint, region_name=REGION) as sm:
        created = await sm.create_secret(Name=f"rds-{uuid.uuid4().hex[:12]}", SecretString=json.dumps(value))
        return str(created["ARN"])


async def _put_secret(endpoint: str, arn: str, value: dict[str, str]) -> None:
    """What RDS does at a rotation: a new AWSCURRENT version of the same secret."""
    async with aioboto3.Session().client("secretsmanager", endpoint_url=endpoint, region_name=REGION) as sm:
        await sm.put_secret_value(SecretId=arn, SecretString=json.dumps(value))


def _environment(arn: str, pg_dsn: str, endpoint: str) -> dict[str, str]:
    parts = urlsplit(pg_dsn)
    return {
        "HELIPORT_DATABASE_SECRET_ARN": arn,
        "HELIPORT_DATABASE_HOST": parts.hostname or "127.0.0.1",
        "HELIPORT_DATABASE_PORT": str(parts.port or 5432),
        "HELIPORT_DATABASE_NAME": parts.path.lstrip("/"),
        "HELIPORT_AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
    }


def _credentials(arn: str, pg_dsn: str, endpoint: str) -> AuroraCredentials:
    credentials = database_credentials(Settings.from_env(_environment(arn, pg_dsn, endpoint)))
    assert isinstance(credentials, AuroraCredentials)
    return credentials


def _row() -> RequestRow:
    return chat_row(ORG)


# --- the DSN -------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_dsn_from_the_managed_secret_reaches_the_database(aws_endpoint: str, pg_dsn: str) -> None:
    parts = urlsplit(pg_dsn)
    arn = await _secret(aws_endpoint, {"username": parts.username or "postgres", "password": "p@ss:w/rd"})
    dsn = await _credentials(arn, pg_dsn, aws_endpoint).dsn()
    assert "p%40ss%3Aw%2Frd@" in dsn  # a password with URL syntax in it survives
    db = PostgresLogDb(dsn)
    try:
        assert "0001_requests" in await db.migrate()
    finally:
        await db.aclose()


def test_an_explicit_url_wins_and_nothing_configured_means_local() -> None:
    explicit = database_credentials(Settings.from_env({"HELIPORT_DATABASE_URL": "postgresql://x/y"}))
    assert isinstance(explicit, FixedDsn) and explicit.url == "postgresql://x/y"
    assert database_credentials(Settings.from_env({})) is None
    fixed = database_credentials(Settings(database_url="postgresql://x/y", database_secret_arn="arn:ignored"))
    assert isinstance(fixed, FixedDsn) and not fixed.renewable


def test_a_secret_without_its_endpoint_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="HELIPORT_DATABASE_HOST"):
        database_credentials(
            Settings.from_env({"HELIPORT_DATABASE_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:x"})
        )


def test_naming_the_secret_reads_nothing_until_a_connection_is_opened() -> None:
    """The Lambda entries build their credentials at import: that must not touch the network."""
    credentials = _credentials("arn:aws:secretsmanager:us-east-1:1:secret:x", "postgresql://u@db/heliport", "http://x")
    assert credentials.reads == 0


# --- Secrets Manager out of reach ------------------------------------------------------------------------


@contextmanager
def _silent_port() -> Iterator[int]:
    """A port whose listener completes the TCP handshake (the kernel's backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as server:
        yield server.getsockname()[1]


@pytest.mark.anyio
async def test_an_unreachable_secrets_manager_fails_fast_and_says_why() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:1:secret:rds-unreachable"
    endpoint = f"http://127.0.0.1:{closed_port()}"
    credentials = _credentials(arn, "postgresql://u@db/heliport", endpoint)
    started = time.monotonic()
    with pytest.raises(SecretUnreachableError) as caught:
        await credentials.dsn()
    assert time.monotonic() - started < 15
    message = str(caught.value)
    assert message.startswith("HELIPORT_DATABASE_SECRET_ARN: could not reach Secrets Manager at " + endpoint)
    assert arn in message and "within 3 s to connect and 3 s to answer, 2 attempt(s)" in message
    assert "No route from the VPC? (interface endpoint for secretsmanager)" in message
    assert isinstance(caught.value, ConfigError)


@pytest.mark.anyio
async def test_a_secrets_manager_that_never_answers_fails_within_the_read_bound() -> None:
    arn = "arn:aws:secretsmanager:us-east-1:1:secret:rds-silent"
    with _silent_port() as port:
        credentials = AuroraCredentials(
            arn,
            "db",
            "heliport",
            region=REGION,
            endpoint_url=f"http://127.0.0.1:{port}",
            timeouts=SecretTimeouts(connect=1, read=0.5, attempts=2),
        )
        started = time.monotonic()
        with pytest.raises(SecretUnreachableError, match="interface endpoint for secretsmanager") as caught:
            await credentials.dsn()
    assert time.monotonic() - started < 15  # two 0.5 s reads and a backoff, not botocore's minutes
    assert "within 1 s to connect and 0.5 s to answer, 2 attempt(s) (ReadTimeoutError" in str(caught.value)


# --- rotation --------------------------------------------------------------------------------------------


@asynccontextmanager
async def _roles(pg_dsn: str, count: int) -> AsyncIterator[tuple[asyncpg.Connection, list[str]]]:
    """Login roles that may read and write every table (past row-level security, as the table's owner
    does) and act as the query API; dropped afterwards. Yields an admin connection to the test's
    database as well."""
    admin = await asyncpg.connect(pg_dsn)
    names = [f"heliport_rot_{uuid.uuid4().hex[:10]}" for _ in range(count)]
    try:
        for name in names:
            # Role names cannot be bound parameters; these are ours, made of hex digits.
            await admin.execute(f"CREATE ROLE {name} LOGIN BYPASSRLS PASSWORD 'A'")
            await admin.execute(f"GRANT pg_read_all_data, pg_write_all_data, heliport_api TO {name}")
        yield admin, names
    finally:
        for name in names:
            await admin.execute(f"ALTER ROLE {name} NOLOGIN")
            await _drop_connections(admin, name)
            await admin.execute(f"DROP ROLE {name}")
        await admin.close()


async def _drop_connections(admin: asyncpg.Connection, role: str) -> None:
    await admin.execute(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
        role,
    )
    await asyncio.sleep(0.2)  # the pool's side of the closed sockets: let asyncpg see them go


async def _rotate(admin: asyncpg.Connection, endpoint: str, arn: str, *, old: str, new: str | None) -> None:
    """The database stops taking the remembered credentials, the secret gets a new version naming
    ``new`` (or keeps the refused one, when None), and the open connections go away."""
    await admin.execute(f"ALTER ROLE {old} PASSWORD 'B'")  # what RDS does; the trusting test server ignores it
    await admin.execute(f"ALTER ROLE {old} NOLOGIN")  # ...so refuse the old credentials outright
    if new is not None:
        await admin.execute(f"ALTER ROLE {new} PASSWORD 'B'")  # so a server that checks passwords agrees
        await _put_secret(endpoint, arn, {"username": new, "password": "B"})
    await _drop_connections(admin, old)


async def _migrated(pg_dsn: str) -> None:
    db = PostgresLogDb(pg_dsn, max_size=1)
    await db.migrate()  # as the superuser: the rotating roles own nothing, so they can be dropped
    await db.aclose()


@pytest.mark.anyio
async def test_the_log_writer_reads_a_rotated_secret_once_and_writes_on(aws_endpoint: str, pg_dsn: str) -> None:
    await _migrated(pg_dsn)
    async with _roles(pg_dsn, 2) as (admin, (old, new)):
        arn = await _secret(aws_endpoint, {"username": old, "password": "A"})
        credentials = _credentials(arn, pg_dsn, aws_endpoint)
        db = PostgresLogDb(credentials, max_size=2)
        try:
            before = _row()
            assert await db.insert_requests([before]) == 1
            assert await db.get_request(ORG, before.request_id) is not None
            assert credentials.reads == 1  # read at the first connection, then remembered

            await _rotate(admin, aws_endpoint, arn, old=old, new=new)
            after = _row()
            assert await db.insert_requests([after]) == 1
            assert credentials.reads == 2  # the refused login made it read the secret once more
            assert await admin.fetchval("SELECT count(*) FROM requests WHERE org_id = $1", ORG) == 2
        finally:
            await db.aclose()


@pytest.mark.anyio
async def test_a_secret_still_refused_after_one_reread_surfaces_the_error(aws_endpoint: str, pg_dsn: str) -> None:
    await _migrated(pg_dsn)
    async with _roles(pg_dsn, 1) as (admin, (old,)):
        arn = await _secret(aws_endpoint, {"username": old, "password": "A"})
        credentials = _credentials(arn, pg_dsn, aws_endpoint)
        # min_size=0: no background refill of the pool, so every connection attempt is the test's own.
        db = PostgresLogDb(credentials, min_size=0, max_size=1)
        try:
            assert await db.insert_requests([_row()]) == 1
            await _rotate(admin, aws_endpoint, arn, old=old, new=None)  # rotated, but the secret was not
            with pytest.raises(asyncpg.InvalidAuthorizationSpecificationError, match="not permitted to log in"):
                await db.insert_requests([_row()])
            assert credentials.reads == 2  # one re-read, not a loop
        finally:
            await db.aclose()


@pytest.mark.anyio
async def test_connections_refused_together_share_one_reread(aws_endpoint: str) -> None:
    arn = await _secret(aws_endpoint, {"username": "heliport", "password": "A"})
    credentials = _credentials(arn, "postgresql://u@127.0.0.1:5432/heliport", aws_endpoint)
    stale = await credentials.dsn()
    await _put_secret(aws_endpoint, arn, {"username": "heliport", "password": "B"})
    fresh = await asyncio.gather(*(credentials.refresh(stale) for _ in range(5)))
    assert set(fresh) == {stale.replace(":A@", ":B@")}
    assert credentials.reads == 2


@pytest.mark.anyio
async def test_a_fixed_dsn_is_not_retried_on_a_refused_login(pg_dsn: str, caplog: pytest.LogCaptureFixture) -> None:
    async with _roles(pg_dsn, 1) as (admin, (role,)):
        await admin.execute(f"ALTER ROLE {role} NOLOGIN")
        parts = urlsplit(pg_dsn)
        as_role = urlunsplit(parts._replace(netloc=f"{role}:A@{parts.hostname}:{parts.port or 5432}"))
        db = PostgresLogDb(as_role, max_size=1)
        try:
            with caplog.at_level("WARNING"), pytest.raises(asyncpg.InvalidAuthorizationSpecificationError):
                await db.insert_requests([_row()])
        finally:
            await db.aclose()
    # A fixed DSN has nothing to re-read: the refusal surfaces at once, without a second attempt.
    assert "reading its credentials again" not in caplog.text


@pytest.mark.anyio
async def test_the_query_api_reads_a_rotated_secret_once_and_answers(aws_endpoint: str, pg_dsn: str) -> None:
    await _migrated(pg_dsn)
    writer = PostgresLogDb(pg_dsn, max_size=1)
    await writer.insert_requests([_row(), _row()])
    await writer.aclose()
    async with _roles(pg_dsn, 2) as (admin, (old, new)):
        arn = await _secret(aws_endpoint, {"username": old, "password": "A"})
        credentials = _credentials(arn, pg_dsn, aws_endpoint)
        queries = PostgresQueries(credentials)
        count = "SELECT count(*) AS n FROM requests WHERE org_id = $1"
        try:
            assert await queries.fetch(ORG, count, [ORG]) == [{"n": 2}]
            assert credentials.reads == 1

            await _rotate(admin, aws_endpoint, arn, old=old, new=new)
            assert await queries.fetch(ORG, count, [ORG]) == [{"n": 2}]
            assert credentials.reads == 2
            assert await admin.fetchval("SELECT count(*) FROM pg_stat_activity WHERE usename = $1", new) >= 1
        finally:
            await queries.aclose()

"""Database credentials: a fixed DSN, or the Aurora DSN assembled from the cluster's managed secret.

Aurora's managed master secret (``manage_master_user_password``) holds only ``username`` and
``password``, and RDS rotates it (every 7 days by default); host, port and database name are
Terraform outputs that never change. So SAM passes the secret's ARN and the endpoint, never a DSN (a
DSN resolved into an environment variable at deploy time would go stale at the first rotation and
show the password in the function's configuration).

:class:`AuroraCredentials` reads the secret when the first connection is opened, not at import, so
an unreachable Secrets Manager fails an invocation (which is retried) rather than the module import.
It keeps the DSN for the life of the execution environment, and reads the secret again when the
database refuses the login (:meth:`AuroraCredentials.refresh`, called by the pools in
``store.logdb_postgres``): after a rotation the connections already open keep working, and the first
new one picks up the new password. Every Secrets Manager call is bounded by
:class:`~heliport.config.SecretTimeouts`: the functions reach it through an interface endpoint in a
VPC without NAT, and a missing endpoint must fail in seconds with a message that says so, not hang a
cold start on botocore's 60 s connect timeout.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

import msgspec

from heliport.config import ConfigError, SecretTimeouts, Settings

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "AuroraCredentials",
    "DatabaseCredentials",
    "FixedDsn",
    "database_credentials",
]

_SECRET_VARIABLE = "HELIPORT_DATABASE_SECRET_ARN"


class DatabaseCredentials(Protocol):
    """Where a PostgreSQL pool gets the DSN of each new connection."""

    #: Whether :meth:`refresh` can ever give a different DSN (a fixed URL cannot; a rotated secret can).
    renewable: bool

    async def dsn(self) -> str:
        """The DSN to connect with: remembered after the first call."""
        ...

    async def refresh(self, stale: str) -> str:
        """The database refused ``stale``: read the credentials again and return the DSN to retry with."""
        ...


class FixedDsn:
    """``HELIPORT_DATABASE_URL`` (or a test's DSN): always the same, nothing to re-read."""

    renewable = False

    def __init__(self, dsn: str) -> None:
        self.url = dsn

    async def dsn(self) -> str:
        return self.url

    async def refresh(self, stale: str) -> str:
        return self.url


class AuroraCredentials:
    """The DSN of an Aurora cluster whose user and password live in an RDS managed secret."""

    renewable = True

    def __init__(
        self,
        secret_arn: str,
        host: str,
        database: str,
        *,
        port: int = 5432,
        region: str | None = None,
        endpoint_url: str | None = None,
        timeouts: SecretTimeouts | None = None,
    ) -> None:
        self.secret_arn = secret_arn
        self._host = host
        self._database = database
        self._port = port
        self._region = region
        self._endpoint_url = endpoint_url
        self.timeouts = timeouts or SecretTimeouts()
        #: GetSecretValue calls made so far: one per execution environment, one more per rotation seen.
        self.reads = 0
        self._dsn: str | None = None
        # A thread lock, not an asyncio one: the read runs in a worker thread (botocore is blocking).
        # It makes concurrent refreshes share one read.
        self._lock = threading.Lock()
        self._read_started = -1.0

    async def dsn(self) -> str:
        if self._dsn is not None:
            return self._dsn
        return await asyncio.to_thread(self._current, None, None)

    async def refresh(self, stale: str) -> str:
        return await asyncio.to_thread(self._current, stale, time.monotonic())

    def _current(self, stale: str | None, refused_at: float | None) -> str:
        with self._lock:
            if self._dsn is not None:
                if stale is None:
                    return self._dsn
                # Another connection met the same refusal and already re-read: one read serves them all.
                if self._dsn != stale or (refused_at is not None and self._read_started >= refused_at):
                    return self._dsn
            self._read_started = time.monotonic()
            self._dsn = self._build(self._read_secret())
            return self._dsn

    def _read_secret(self) -> dict[str, Any]:
        from heliport.store.secrets import read_secret_string

        self.reads += 1
        text = read_secret_string(
            _SECRET_VARIABLE,
            self.secret_arn,
            region=self._region,
            endpoint_url=self._endpoint_url,
            timeouts=self.timeouts,
        )
        try:
            secret = msgspec.json.decode(text)
        except msgspec.DecodeError:
            secret = None
        if not isinstance(secret, dict) or not secret.get("username") or "password" not in secret:
            raise ConfigError(f"{_SECRET_VARIABLE} must hold {{username, password}} (an RDS managed secret)")
        return secret

    def _build(self, secret: Mapping[str, Any]) -> str:
        user, password = quote(str(secret["username"]), safe=""), quote(str(secret["password"]), safe="")
        # Aurora accepts TLS; require it whenever the host is not this machine (tests talk to a local server).
        tls = "" if self._host in ("127.0.0.1", "localhost") else "?sslmode=require"
        return f"postgresql://{user}:{password}@{self._host}:{self._port}/{quote(self._database, safe='')}{tls}"


def database_credentials(settings: Settings) -> DatabaseCredentials | None:
    """``HELIPORT_DATABASE_URL`` if set; else the Aurora secret with ``HELIPORT_DATABASE_HOST``,
    ``HELIPORT_DATABASE_NAME`` (and ``HELIPORT_DATABASE_PORT``); else None (the local SQLite file).
    Nothing is read from the network here."""
    if settings.database_url:
        return FixedDsn(settings.database_url)
    if not settings.database_secret_arn:
        return None
    if not settings.database_host or not settings.database_name:
        raise ConfigError(f"{_SECRET_VARIABLE} needs HELIPORT_DATABASE_HOST and HELIPORT_DATABASE_NAME")
    return AuroraCredentials(
        settings.database_secret_arn,
        settings.database_host,
        settings.database_name,
        port=settings.database_port,
        region=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
    )

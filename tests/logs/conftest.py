"""Fixtures the log pipeline's tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from heliport.store.blobs import BlobStore, LocalBlobStore, S3BlobStore
from heliport.store.logdb import LogDb
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.logdb_sqlite import SqliteLogDb
from tests.aws import REGION


@pytest.fixture(params=["sqlite+dir", "postgres+s3"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path, pg_dsn: str, aws_endpoint: str, s3_bucket: str
) -> AsyncIterator[tuple[LogDb, BlobStore]]:
    """A log database and a blob store that work together: SQLite and a directory (``heliport serve``),
    or PostgreSQL and S3 on moto's server (AWS)."""
    logdb: LogDb
    blobs: BlobStore
    if request.param == "sqlite+dir":
        logdb, blobs = SqliteLogDb(tmp_path / "logs.sqlite3"), LocalBlobStore(tmp_path / "blobs")
    else:
        logdb = PostgresLogDb(pg_dsn, max_size=2)
        blobs = S3BlobStore(s3_bucket, region=REGION, endpoint_url=aws_endpoint)
    await logdb.migrate()
    yield logdb, blobs
    await logdb.aclose()
    await blobs.aclose()

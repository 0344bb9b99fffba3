"""Which adapter serves each port: AWS when the deployment names its resources, local otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING

from heliport.config import Settings
from heliport.store.aurora import DatabaseCredentials, database_credentials
from heliport.store.blobs import BlobStore
from heliport.store.cache_store import CacheStore
from heliport.store.counter_store import CounterStore
from heliport.store.keys import KeyStore
from heliport.store.logdb import LogDb
from heliport.store.queue import LogQueue

if TYPE_CHECKING:
    from heliport.api.database import QueryDb

__all__ = [
    "open_blobs",
    "open_cache_store",
    "open_counter_store",
    "open_inner_queue",
    "open_key_store",
    "open_logdb",
    "open_query_db",
    "open_queue",
]


def open_key_store(settings: Settings) -> KeyStore:
    if settings.table_name:
        from heliport.store.keys import DynamoKeyStore

        return DynamoKeyStore(settings.table_name, region=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
    from heliport.store.keys import SqliteKeyStore

    return SqliteKeyStore(settings.data_dir / "keys.sqlite3")


def open_blobs(settings: Settings) -> BlobStore:
    if settings.bucket:
        from heliport.store.blobs import S3BlobStore

        return S3BlobStore(settings.bucket, region=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
    from heliport.store.blobs import LocalBlobStore

    return LocalBlobStore(settings.data_dir / "blobs")


def open_inner_queue(settings: Settings) -> LogQueue:
    """The queue itself, without the spool: what a consumer reads and ``respool`` writes to."""
    if settings.queue_url:
        from heliport.store.queue import SqsQueue

        return SqsQueue(settings.queue_url, region=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
    from heliport.store.queue import SqliteQueue

    return SqliteQueue(settings.data_dir / "log-queue.sqlite3")


def open_queue(settings: Settings, blobs: BlobStore | None = None, inner: LogQueue | None = None) -> LogQueue:
    """The queue the proxy sends to: claim check for large records, spool when the queue is down."""
    from heliport.logs.spool import SpoolingQueue

    return SpoolingQueue(inner or open_inner_queue(settings), blobs or open_blobs(settings))


def open_logdb(
    settings: Settings, credentials: DatabaseCredentials | None = None, *, connect_timeout: float | None = None
) -> LogDb:
    """PostgreSQL when the settings name one (a DSN or the Aurora secret), else the local SQLite file.

    ``credentials`` shares one source between this writer and the query API's reader (one secret
    read per cold start); ``connect_timeout`` replaces the writer's own wait for a new connection.
    """
    credentials = credentials or database_credentials(settings)
    if credentials is not None:
        from heliport.store.logdb_postgres import WRITER_CONNECT_TIMEOUT, PostgresLogDb

        return PostgresLogDb(credentials, connect_timeout=connect_timeout or WRITER_CONNECT_TIMEOUT)
    from heliport.store.logdb_sqlite import SqliteLogDb

    return SqliteLogDb(settings.data_dir / "logs.sqlite3")


def open_cache_store(settings: Settings, blobs: BlobStore | None = None) -> CacheStore:
    """Response-cache entries: the DynamoDB table (large entries in the blob store), or a local SQLite file."""
    if settings.table_name:
        from heliport.store.cache_store import DynamoCacheStore

        return DynamoCacheStore(
            settings.table_name,
            blobs or open_blobs(settings),
            region=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
        )
    from heliport.store.cache_store import SqliteCacheStore

    return SqliteCacheStore(settings.data_dir / "cache.sqlite3")


def open_counter_store(settings: Settings) -> CounterStore:
    """Rate-limit counters: the DynamoDB table shared by every instance, or a local SQLite file."""
    if settings.table_name:
        from heliport.store.counter_store import DynamoCounterStore

        return DynamoCounterStore(
            settings.table_name, region=settings.aws_region, endpoint_url=settings.aws_endpoint_url
        )
    from heliport.store.counter_store import SqliteCounterStore

    return SqliteCounterStore(settings.data_dir / "counters.sqlite3")


def open_query_db(settings: Settings, credentials: DatabaseCredentials | None = None) -> QueryDb:
    """The query API's reader of the log database: the same database :func:`open_logdb` writes. A new
    connection not open within ``database_connect_timeout`` is answered 503 with Retry-After."""
    from heliport.api.database import PostgresQueries, SqliteQueries

    credentials = credentials or database_credentials(settings)
    if credentials is not None:
        return PostgresQueries(credentials, connect_timeout=settings.database_connect_timeout)
    return SqliteQueries(settings.data_dir / "logs.sqlite3")

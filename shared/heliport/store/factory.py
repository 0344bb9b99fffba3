"""Which adapter serves each port: AWS when the deployment names its resources, local otherwise."""

from __future__ import annotations

from heliport.config import Settings
from heliport.store.ports import KeyStore, LogQueue

__all__ = ["open_key_store", "open_queue"]


def open_key_store(settings: Settings) -> KeyStore:
    if settings.table_name:
        from heliport.store.aws import DynamoKeyStore

        return DynamoKeyStore(settings.table_name, region=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
    from heliport.store.local import SqliteKeyStore

    return SqliteKeyStore(settings.data_dir / "keys.sqlite3")


def open_queue(settings: Settings) -> LogQueue:
    if settings.queue_url:
        from heliport.store.aws import SqsQueue

        return SqsQueue(settings.queue_url, region=settings.aws_region, endpoint_url=settings.aws_endpoint_url)
    from heliport.store.local import SqliteQueue

    return SqliteQueue(settings.data_dir / "log-queue.sqlite3")

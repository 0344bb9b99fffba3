from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.aws import atomic_moto_writes, aws_endpoint, blob_target, blobs, dynamo_table, s3_bucket, sqs_queue_url
from tests.harness import Gateway, start_gateway
from tests.mock_provider import MockProvider
from tests.postgres import throwaway_database, throwaway_database_sync

__all__ = [
    "atomic_moto_writes",
    "aws_endpoint",
    "blob_target",
    "blobs",
    "dynamo_table",
    "s3_bucket",
    "sqs_queue_url",
]  # fixtures from tests.aws


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def mock_provider() -> Iterator[MockProvider]:
    with MockProvider() as mock:
        yield mock


@pytest.fixture(scope="session")
def gateway(mock_provider: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One heliport for the session; tests tell their requests apart by request id."""
    data_dir: Path = tmp_path_factory.mktemp("heliport")
    gw = start_gateway(
        data_dir,
        mock_provider.url,
        target_hosts=("localhost",),
        trusted_origins=frozenset({mock_provider.url}),
    )
    yield gw
    gw.stop()


@pytest.fixture
async def pg_dsn() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    async with throwaway_database() as dsn:
        yield dsn


@pytest.fixture
def pg_dsn_sync() -> Iterator[str]:
    """``pg_dsn`` for synchronous tests (the SDK end-to-end tests are plain functions)."""
    with throwaway_database_sync() as dsn:
        yield dsn

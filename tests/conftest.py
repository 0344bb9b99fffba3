"""Fixtures shared by the whole suite.

Nothing heavy is imported here at module level (tests/test_conftest_is_light.py checks it): moto, the
AWS SDKs, asyncpg, the SDK-driven harness and the mock provider are imported by the first fixture that
needs them, so a unit test file runs without the rest of the dev environment and without paying for it.

The AWS fixtures are written once, in tests/aws.py (which imports moto's server at module level); the
fixtures here are lazy stand-ins with the same names, scopes and parameters that run those functions.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from heliport.store.blobs import BlobStore
    from tests.harness import Gateway
    from tests.mock_provider import MockProvider


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def mock_provider() -> Iterator[MockProvider]:
    from tests.mock_provider import MockProvider

    with MockProvider() as mock:
        yield mock


@pytest.fixture(scope="session")
def gateway(mock_provider: MockProvider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """One heliport for the session; tests tell their requests apart by request id."""
    from tests.harness import start_gateway

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
    from tests.postgres import throwaway_database

    async with throwaway_database() as dsn:
        yield dsn


@pytest.fixture
def pg_dsn_sync() -> Iterator[str]:
    """``pg_dsn`` for synchronous tests (the SDK end-to-end tests are plain functions)."""
    from tests.postgres import throwaway_database_sync

    with throwaway_database_sync() as dsn:
        yield dsn


# --- AWS (moto's server): lazy stand-ins for the fixtures of tests/aws.py --------------------------------------


def _aws(name: str) -> Callable[..., Any]:
    """The function behind the fixture ``name`` of tests/aws.py, imported (with moto) on first use."""
    import tests.aws

    function: Callable[..., Any] = inspect.unwrap(getattr(tests.aws, name))
    return function


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """moto's server on a free local port, with fake credentials in the environment meanwhile."""
    yield from _aws("aws_endpoint")()


@pytest.fixture
async def dynamo_table(aws_endpoint: str) -> str:
    """A new, empty heliport table for one test."""
    name: str = await _aws("dynamo_table")(aws_endpoint)
    return name


@pytest.fixture
async def sqs_queue_url(aws_endpoint: str) -> AsyncIterator[str]:
    """A new, empty SQS queue for one test."""
    async for url in _aws("sqs_queue_url")(aws_endpoint):
        yield url


@pytest.fixture
async def s3_bucket(aws_endpoint: str) -> AsyncIterator[str]:
    """A new, empty S3 bucket for one test; emptied and removed afterwards."""
    async for name in _aws("s3_bucket")(aws_endpoint):
        yield name


@pytest.fixture(params=["local", "s3"])
def blob_target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str | None]:
    """(kind, root or bucket, endpoint); sync, so it may pull the async S3 fixtures in only when needed."""
    target: tuple[str, str, str | None] = _aws("blob_target")(request, tmp_path)
    return target


@pytest.fixture
async def blobs(blob_target: tuple[str, str, str | None]) -> AsyncIterator[BlobStore]:
    async for store in _aws("blobs")(blob_target):
        yield store


@pytest.fixture
def atomic_moto_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give moto DynamoDB's per-item write atomicity, which the concurrency tests rely on (tests/aws.py)."""
    _aws("atomic_moto_writes")(monkeypatch)

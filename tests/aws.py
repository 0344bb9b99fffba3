"""AWS services for tests: moto as a server on loopback, and a fresh table, queue or bucket per test.

moto runs as a server (never ``mock_aws``) so the adapters go through aiobotocore's real HTTP stack:
signing, serialisation, error parsing and connection handling are all exercised.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from heliport.store.aws import create_table
from heliport.store.blobs import BlobStore, LocalBlobStore, S3BlobStore

REGION = "us-east-1"


_dynamodb_lock = threading.RLock()  # re-entrant: a transaction calls put_item and friends itself


def _serialise_dynamodb() -> None:
    """One DynamoDB call at a time in moto's server, as DynamoDB itself isolates them.

    moto serves each request on its own thread, and its ``TransactWriteItems`` checks the conditions and
    applies the writes without a lock (and on failure restores a copy of the whole table taken before),
    so two concurrent transactions can both pass conditions the real service would let only one pass:
    ``test_concurrent_environment_moves_leave_one_holder[dynamo]`` then saw two holders of one
    environment. Serialising DynamoDB's calls (never SQS's or S3's, whose long polls would stall the rest)
    gives the tests DynamoDB's serializable transactions back.
    """
    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend, "_heliport_serialised", False):
        return
    for name in ("transact_write_items", "transact_get_items", "put_item", "update_item", "delete_item",
                 "get_item", "query", "scan", "batch_write_item", "batch_get_item"):  # fmt: skip
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self: Any, *args: Any, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with _dynamodb_lock:
                return _original(self, *args, **kwargs)

        setattr(DynamoDBBackend, name, locked)
    DynamoDBBackend._heliport_serialised = True  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    """moto's server on a free local port, with fake credentials in the environment meanwhile."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", REGION)
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"):
            env.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        _serialise_dynamodb()
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
async def dynamo_table(aws_endpoint: str) -> str:
    """A new, empty heliport table for one test."""
    name = f"heliport-{uuid.uuid4().hex[:12]}"
    assert await create_table(name, region=REGION, endpoint_url=aws_endpoint)
    return name


@pytest.fixture
async def sqs_queue_url(aws_endpoint: str) -> AsyncIterator[str]:
    """A new, empty SQS queue for one test."""
    import aioboto3  # slow to import; only the tests that use AWS pay for it

    async with aioboto3.Session().client("sqs", region_name=REGION, endpoint_url=aws_endpoint) as sqs:
        response = await sqs.create_queue(QueueName=f"heliport-logs-{uuid.uuid4().hex[:12]}")
        url: str = response["QueueUrl"]
        yield url
        await sqs.delete_queue(QueueUrl=url)


@pytest.fixture
async def s3_bucket(aws_endpoint: str) -> AsyncIterator[str]:
    """A new, empty S3 bucket for one test; emptied and removed afterwards."""
    import aioboto3

    name = f"heliport-{uuid.uuid4().hex[:12]}"
    async with aioboto3.Session().client("s3", region_name=REGION, endpoint_url=aws_endpoint) as s3:
        await s3.create_bucket(Bucket=name)
        yield name
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=name):
            for item in page.get("Contents", []):
                await s3.delete_object(Bucket=name, Key=item["Key"])
        await s3.delete_bucket(Bucket=name)


@pytest.fixture(params=["local", "s3"])
def blob_target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str | None]:
    """(kind, root or bucket, endpoint); sync, so it may pull the async S3 fixtures in only when needed."""
    if request.param == "local":
        return "local", str(tmp_path / "blobs"), None
    return "s3", request.getfixturevalue("s3_bucket"), request.getfixturevalue("aws_endpoint")


@pytest.fixture
async def blobs(blob_target: tuple[str, str, str | None]) -> AsyncIterator[BlobStore]:
    kind, where, endpoint = blob_target
    store: BlobStore = (
        LocalBlobStore(Path(where)) if kind == "local" else S3BlobStore(where, region=REGION, endpoint_url=endpoint)
    )
    try:
        yield store
    finally:
        await store.aclose()


@pytest.fixture
def atomic_moto_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give moto DynamoDB's per-item write atomicity, which the concurrency tests rely on.

    moto reads an item, evaluates the condition and applies the update with no lock, and its server
    answers requests on threads: concurrent writes to one item can interleave there (seen as 21 or 22
    admissions of 20), where DynamoDB itself serialises them. A lock around moto's writes restores
    the service's guarantee without hiding any interleaving on the client side.
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item"):
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(self: object, *args: Any, __original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)

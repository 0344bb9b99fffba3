"""The spooling queue: claim checks for big records, a spool when the queue is down, and respooling.

Real adapters throughout (SQS and S3 on moto's server, files under tmp_path) so that what is tested
is what runs: the only stand-ins are a blob store that records its calls and a queue that fails on
cue.
"""

from __future__ import annotations

import gzip
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from heliport.logs.record import LogRecord
from heliport.logs.spool import (
    CLAIM_PREFIX,
    DEAD_PREFIX,
    DEFAULT_MAX_MESSAGE_BYTES,
    SPOOL_PREFIX,
    ClaimNotFoundError,
    SpoolingQueue,
    claim_key,
    load_bodies,
    respool,
    spool_key,
)
from heliport.store.blobs import BlobStore, LocalBlobStore, S3BlobStore
from heliport.store.queue import MemoryQueue, QueueUnavailableError, SqsQueue
from tests.aws import REGION

pytestmark = pytest.mark.anyio

# moto's server and a fresh queue or bucket per test, shared with the store tests.

MIB = 1024 * 1024


def record(n: int = 1, **extra: object) -> LogRecord:
    fields: dict[str, object] = {
        "request_id": f"req-{n}",
        "org_id": "org-1",
        "key_id": "key-1",
        "started_at": datetime(2024, 5, 17, 9, 30, 15, 123456, tzinfo=UTC),
        "duration_ms": 12.5,
        "method": "POST",
        "path": "/v1/chat/completions",
        "provider": "openai",
        "target_url": "https://api.openai.com/v1/chat/completions",
        "status": 200,
        "request_body": '{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi ✓"}]}',
        "response_body": '{"choices": [{"message": {"content": "hello"}}]}',
    }
    fields.update(extra)
    return LogRecord(**fields)  # type: ignore[arg-type]


def big_record(n: int = 1) -> LogRecord:
    # Text that compresses poorly, like real model output does not, so size checks are honest.
    response = os.urandom(int(0.75 * MIB)).hex()  # 1.5 MiB of text
    return record(n, response_body=response, request_body='{"messages": ["' + "x" * 1000 + '"]}')


def down_queue() -> SqsQueue:
    """An SQS queue nobody listens on: every send fails fast with QueueUnavailableError."""
    return SqsQueue(
        "http://127.0.0.1:1/123456789012/logs",
        region=REGION,
        endpoint_url="http://127.0.0.1:1",
        attempts=1,
        backoff_base=0.001,
    )


class SpyBlobs:
    """A blob store that records each call, and fails every call once told to."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner
        self.calls: list[tuple[str, str]] = []
        self.down = False

    def _call(self, name: str, key: str) -> None:
        self.calls.append((name, key))
        if self.down:
            raise OSError("blob store down")

    async def put(
        self, key: str, data: bytes, *, content_type: str = "application/json", content_encoding: str | None = None
    ) -> None:
        self._call("put", key)
        await self.inner.put(key, data, content_type=content_type, content_encoding=content_encoding)

    async def get(self, key: str) -> bytes | None:
        self._call("get", key)
        return await self.inner.get(key)

    async def list(self, prefix: str, limit: int = 1000) -> list[str]:
        self._call("list", prefix)
        return await self.inner.list(prefix, limit)

    async def delete(self, key: str) -> None:
        self._call("delete", key)
        await self.inner.delete(key)

    async def presign_get(self, key: str, expires_in: int) -> str | None:
        self._call("presign_get", key)
        return await self.inner.presign_get(key, expires_in)

    async def aclose(self) -> None:
        self.calls.append(("aclose", ""))
        await self.inner.aclose()


class FlakyQueue(MemoryQueue):
    """A memory queue whose sends fail from the ``fail_from``-th on (counting from 0)."""

    def __init__(self, fail_from: int) -> None:
        super().__init__()
        self.fail_from = fail_from
        self.attempts = 0
        self.closed = False

    async def send(self, record: LogRecord) -> None:
        self.attempts += 1
        if self.attempts > self.fail_from:
            raise QueueUnavailableError("down")
        await super().send(record)

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
def local_blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


async def receive_all(queue: SqsQueue, expected: int) -> list[LogRecord]:
    received: list[tuple[str, LogRecord]] = []
    for _ in range(20):
        received += await queue.receive(max_messages=10)
        if len(received) >= expected:
            break
    await queue.delete(handle for handle, _ in received)
    return [r for _, r in received]


# --- The happy path and the claim check ----------------------------------------------------------


async def test_happy_path_goes_to_the_queue_without_touching_blobs(local_blobs: LocalBlobStore) -> None:
    inner, spy = MemoryQueue(), SpyBlobs(local_blobs)
    queue = SpoolingQueue(inner, spy)
    sent = [record(1), record(2, response_body=None, request_body=None)]
    for r in sent:
        await queue.send(r)
    assert inner.records == sent
    assert spy.calls == []


async def test_big_record_is_claim_checked(blobs: BlobStore) -> None:
    inner = MemoryQueue()
    queue = SpoolingQueue(inner, blobs)
    original = big_record()
    assert len(msgspec.json.encode(original)) > MIB

    await queue.send(original)

    (sent,) = inner.records
    assert sent.bodies_key == claim_key(original) == "claims/org-1/req-1.json"
    assert sent.request_body is None and sent.response_body is None
    assert len(msgspec.json.encode(sent)) < MIB
    assert msgspec.structs.replace(sent, bodies_key=None) == msgspec.structs.replace(
        original, request_body=None, response_body=None
    )
    # The claim is gzip JSON holding exactly the two bodies.
    claim = await blobs.get(sent.bodies_key)
    assert claim is not None
    assert msgspec.json.decode(gzip.decompress(claim)) == {
        "request_body": original.request_body,
        "response_body": original.response_body,
    }
    assert await load_bodies(sent, blobs) == original


async def test_claim_threshold_is_the_encoded_size(local_blobs: LocalBlobStore) -> None:
    r = record(1)
    size = len(msgspec.json.encode(r))
    at_limit, over_limit = MemoryQueue(), MemoryQueue()
    await SpoolingQueue(at_limit, local_blobs, max_message_bytes=size).send(r)
    await SpoolingQueue(over_limit, local_blobs, max_message_bytes=size - 1).send(r)
    assert at_limit.records == [r]
    assert over_limit.records[0].bodies_key == "claims/org-1/req-1.json"
    assert await load_bodies(over_limit.records[0], local_blobs) == r
    assert DEFAULT_MAX_MESSAGE_BYTES == MIB - 8 * 1024


async def test_claim_keeps_omitted_bodies_omitted(local_blobs: LocalBlobStore) -> None:
    inner = MemoryQueue()
    original = record(1, request_body=None, response_body="x" * 2000)
    await SpoolingQueue(inner, local_blobs, max_message_bytes=1000).send(original)
    assert await load_bodies(inner.records[0], local_blobs) == original


async def test_big_record_through_sqs_and_s3(aws_endpoint: str, sqs_queue_url: str, s3_bucket: str) -> None:
    """End to end on the real adapters: a 1.5 MiB record crosses SQS as a claim and comes back whole."""
    blobs = S3BlobStore(s3_bucket, region=REGION, endpoint_url=aws_endpoint)
    sqs = SqsQueue(sqs_queue_url, region=REGION, endpoint_url=aws_endpoint)
    queue = SpoolingQueue(sqs, blobs)
    original = big_record()
    try:
        await queue.send(original)
        (received,) = await receive_all(sqs, 1)
        assert received.bodies_key == "claims/org-1/req-1.json"
        assert await load_bodies(received, blobs) == original
        assert await blobs.list(SPOOL_PREFIX) == []
    finally:
        await queue.aclose()


async def test_claim_with_blobs_down_sends_the_record_without_bodies(
    local_blobs: LocalBlobStore, caplog: pytest.LogCaptureFixture
) -> None:
    inner, spy = MemoryQueue(), SpyBlobs(local_blobs)
    spy.down = True
    original = big_record()
    with caplog.at_level(logging.ERROR, "heliport.logs.spool"):
        await SpoolingQueue(inner, spy).send(original)
    (sent,) = inner.records
    assert sent.request_body is None and sent.response_body is None and sent.bodies_key is None
    assert sent.errors == ["logging: bodies dropped, blob store unavailable"]
    assert "req-1" in caplog.text


async def test_load_bodies_without_claim_is_the_record_itself(local_blobs: LocalBlobStore) -> None:
    r = record(1)
    assert await load_bodies(r, local_blobs) is r


async def test_load_bodies_of_a_missing_claim_raises(local_blobs: LocalBlobStore) -> None:
    r = record(1, request_body=None, response_body=None, bodies_key="claims/org-1/req-1.json")
    with pytest.raises(ClaimNotFoundError, match="req-1"):
        await load_bodies(r, local_blobs)


# --- The spool -----------------------------------------------------------------------------------


async def test_queue_down_spools_the_record(blobs: BlobStore, caplog: pytest.LogCaptureFixture) -> None:
    inner = down_queue()
    queue = SpoolingQueue(inner, blobs)
    original = record(1)
    try:
        with caplog.at_level(logging.WARNING, "heliport.logs.spool"):
            await queue.send(original)  # returns: the record is durably accepted
    finally:
        await inner.aclose()
    assert await blobs.list(SPOOL_PREFIX) == ["spool/2024/05/17/req-1.json"]
    stored = await blobs.get("spool/2024/05/17/req-1.json")
    assert stored is not None and msgspec.json.decode(stored, type=LogRecord) == original
    assert "req-1" in caplog.text and "spooled" in caplog.text


async def test_respool_moves_spooled_records_to_sqs(blobs: BlobStore, aws_endpoint: str, sqs_queue_url: str) -> None:
    down = down_queue()
    spooling = SpoolingQueue(down, blobs)
    originals = [record(1), big_record(2)]
    try:
        for r in originals:
            await spooling.send(r)
    finally:
        await down.aclose()
    assert await blobs.list(SPOOL_PREFIX) == ["spool/2024/05/17/req-1.json", "spool/2024/05/17/req-2.json"]

    # Still down: nothing moves and nothing is lost.
    still_down = down_queue()
    try:
        assert await respool(blobs, still_down) == 0
    finally:
        await still_down.aclose()
    assert len(await blobs.list(SPOOL_PREFIX)) == 2

    sqs = SqsQueue(sqs_queue_url, region=REGION, endpoint_url=aws_endpoint)
    try:
        assert await respool(blobs, sqs) == 2
        assert await blobs.list(SPOOL_PREFIX) == []
        received = sorted(await receive_all(sqs, 2), key=lambda r: r.request_id)
    finally:
        await sqs.aclose()
    assert received[0] == originals[0]
    # The big one was claim-checked before it was spooled; its claim is still there to restore from.
    assert received[1].bodies_key == "claims/org-1/req-2.json"
    assert await load_bodies(received[1], blobs) == originals[1]


async def test_respool_goes_oldest_first_and_stops_at_the_first_failure(local_blobs: LocalBlobStore) -> None:
    days = [datetime(2024, 5, d, 12, tzinfo=UTC) for d in (19, 17, 18)]
    records = [record(n, started_at=day) for n, day in enumerate(days)]
    spooling = SpoolingQueue(FlakyQueue(fail_from=0), local_blobs)
    for r in records:
        await spooling.send(r)

    flaky = FlakyQueue(fail_from=2)
    assert await respool(local_blobs, flaky) == 2
    assert [r.request_id for r in flaky.records] == ["req-1", "req-2"]  # 17th, then 18th
    assert flaky.attempts == 3  # tried the 19th once, then stopped
    assert await local_blobs.list(SPOOL_PREFIX) == ["spool/2024/05/19/req-0.json"]

    assert await spooling.respool() == 0  # the wrapper's own inner queue is still down
    ok = MemoryQueue()
    assert await respool(local_blobs, ok, limit=10) == 1
    assert ok.records == [records[0]]


async def test_respool_limit(local_blobs: LocalBlobStore) -> None:
    spooling = SpoolingQueue(FlakyQueue(fail_from=0), local_blobs)
    for n in range(5):
        await spooling.send(record(n))
    ok = MemoryQueue()
    assert await respool(local_blobs, ok, limit=3) == 3
    assert len(await local_blobs.list(SPOOL_PREFIX)) == 2


async def test_corrupt_spool_object_goes_to_dead_letters(blobs: BlobStore, caplog: pytest.LogCaptureFixture) -> None:
    await blobs.put("spool/2024/05/16/garbage.json", b"{not json")
    await blobs.put("spool/2024/05/16/wrong-shape.json", b'{"request_id": 5}')
    spooling = SpoolingQueue(FlakyQueue(fail_from=0), blobs)
    await spooling.send(record(1))

    ok = MemoryQueue()
    with caplog.at_level(logging.ERROR, "heliport.logs.spool"):
        assert await respool(blobs, ok) == 1
    assert ok.records == [record(1)]
    assert await blobs.list(SPOOL_PREFIX) == []
    assert await blobs.list(DEAD_PREFIX) == [
        "spool-dead/2024/05/16/garbage.json",
        "spool-dead/2024/05/16/wrong-shape.json",
    ]
    assert await blobs.get("spool-dead/2024/05/16/garbage.json") == b"{not json"
    assert "garbage.json" in caplog.text


async def test_queue_and_blobs_both_down_raises(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_bytes(b"")
    broken = LocalBlobStore(tmp_path / "not-a-dir")  # every put fails: its root is a file
    inner = down_queue()
    queue = SpoolingQueue(inner, broken)
    try:
        with pytest.raises(NotADirectoryError) as caught:
            await queue.send(record(1))
    finally:
        await queue.aclose()
    assert isinstance(caught.value.__cause__, QueueUnavailableError)


async def test_spool_keys_are_dated_in_utc_and_safe(local_blobs: LocalBlobStore) -> None:
    from datetime import timedelta, timezone

    late = datetime(2024, 5, 17, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # the 18th in UTC
    assert spool_key(record(1, started_at=late)) == "spool/2024/05/18/req-1.json"
    assert spool_key(record(1, started_at=datetime(2024, 5, 17))) == "spool/2024/05/17/req-1.json"
    hostile = record(1, request_id="../../etc/passwd", org_id="..")
    assert claim_key(hostile).startswith(CLAIM_PREFIX) and "/../" not in claim_key(hostile)
    assert spool_key(hostile).count("/") == 4
    # Safe enough for the local store, which refuses anything that could leave its root.
    queue = SpoolingQueue(FlakyQueue(fail_from=0), local_blobs, max_message_bytes=100)
    await queue.send(hostile)
    assert await local_blobs.list("") == [claim_key(hostile), spool_key(hostile)]


async def test_aclose_closes_queue_and_blobs(local_blobs: LocalBlobStore) -> None:
    inner, spy = FlakyQueue(fail_from=10), SpyBlobs(local_blobs)
    await SpoolingQueue(inner, spy).aclose()
    assert inner.closed and spy.calls == [("aclose", "")]

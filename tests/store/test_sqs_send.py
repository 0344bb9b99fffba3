"""The lean SQS send path (store/sqs_send.py) against moto's server, through a proxy that checks its signatures.

moto does not verify SigV4, so every test here sends through :class:`SigV4Gate`: a small HTTP server
in front of moto that recomputes each request's signature with botocore's own signer from what
arrived on the wire (method, path, the signed headers, the body) and answers 403 when it differs,
as SQS does; otherwise it forwards the request to moto and relays the answer. It can also inject
the failures SQS produces (5xx, throttling, partial batch failures) without touching heliport.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession, web

from heliport.logs.record import LogRecord
from heliport.logs.spool import SPOOL_PREFIX, SpoolingQueue
from heliport.store.blobs import LocalBlobStore
from heliport.store.queue import QueueUnavailableError, SqsQueue
from heliport.store.sqs_send import SqsSender
from tests.aws import REGION
from tests.faults import TcpRelay

_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/[^,]+, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})")


def record(n: int, **extra: Any) -> LogRecord:
    fields: dict[str, Any] = {
        "request_id": f"req-{n}",
        "org_id": "org-1",
        "key_id": "key-1",
        "started_at": datetime(2024, 5, 17, 9, 30, 15, n, tzinfo=UTC),
        "duration_ms": 12.5,
        "method": "POST",
        "path": "/v1/chat/completions",
        "provider": "openai",
        "target_url": "https://api.openai.com/v1/chat/completions",
        "status": 200,
    }
    fields.update(extra)
    return LogRecord(**fields)


class SigV4Gate:
    """Verifies SigV4 with botocore's signer, then forwards to moto; counts and can fail requests."""

    def __init__(self, upstream: str, secret: str | None = None) -> None:
        self.upstream = upstream
        # The secret the sender finds in the environment: tests/aws.py's, unless a session fixture
        # started later (the AI gateway's) has put its own there for the rest of the session.
        self.secret = secret or os.environ["AWS_SECRET_ACCESS_KEY"]
        #: Other secrets to accept (rotated credentials), and the secret each passing request was signed with.
        self.also_accept: set[str] = set()
        self.signed_with: list[str] = []
        self.requests: list[dict[str, Any]] = []  # every request that passed the check, JSON-decoded
        self.refused = 0
        #: Answer this many of the next requests with this (status, error type) instead of forwarding.
        self.fail_next = 0
        self.failure = (500, "InternalError")
        #: Entry ids to report failed in the next batch answer, with their SenderFault flag.
        self.fail_entries: dict[str, bool] = {}
        #: Reset the connection of this many of the next requests without answering (a dead keep-alive).
        self.drop_next = 0
        self.dropped = 0
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: ClientSession | None = None

    async def start(self) -> SigV4Gate:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._session = ClientSession()
        return self

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def verify(self, request: web.Request, body: bytes) -> bool:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import ReadOnlyCredentials

        match = _AUTH.fullmatch(request.headers.get("Authorization", ""))
        if match is None:
            return False
        access_key, signed_headers, signature = match.groups()
        names = signed_headers.split(";")
        if "host" not in names or "x-amz-date" not in names:
            return False
        headers = {name: request.headers[name] for name in names if name in request.headers}
        if len(headers) != len(names):
            return False
        aws_request = AWSRequest(
            method=request.method, url=f"http://{request.host}{request.path_qs}", data=body, headers=headers
        )
        aws_request.context["timestamp"] = request.headers["X-Amz-Date"]
        token = request.headers.get("X-Amz-Security-Token")
        for secret in (self.secret, *sorted(self.also_accept)):
            signer = SigV4Auth(ReadOnlyCredentials(access_key, secret, token), "sqs", REGION)
            canonical = signer.canonical_request(aws_request)
            if signer.signature(signer.string_to_sign(aws_request, canonical), aws_request) == signature:
                self.signed_with.append(secret)
                return True
        return False

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not self.verify(request, body):
            self.refused += 1
            error = {"__type": "com.amazon.coral.service#InvalidSignatureException", "message": "bad signature"}
            return web.Response(status=403, body=json.dumps(error), content_type="application/x-amz-json-1.0")
        if self.drop_next:
            self.drop_next -= 1
            self.dropped += 1
            assert request.transport is not None
            request.transport.abort()
            raise ConnectionResetError("dropped by the test")
        decoded = json.loads(body)
        self.requests.append({"target": request.headers.get("X-Amz-Target"), **decoded})
        if self.fail_next:
            self.fail_next -= 1
            status, kind = self.failure
            error = {"__type": f"com.amazonaws.sqs#{kind}", "message": "injected"}
            return web.Response(status=status, body=json.dumps(error), content_type="application/x-amz-json-1.0")
        failing, self.fail_entries = self.fail_entries, {}
        if failing:  # forward without the failing entries, then report them failed
            decoded["Entries"] = [e for e in decoded["Entries"] if e["Id"] not in failing]
            body = json.dumps(decoded).encode()
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with self._session.post(self.upstream + request.path_qs, data=body, headers=headers) as answer:
            payload = await answer.read()
            status = answer.status
            relayed = {
                k: v
                for k, v in answer.headers.items()
                if k.lower() in ("content-type", "x-amzn-query-error", "x-amzn-requestid")
            }
        if failing and status == 200:
            result = json.loads(payload)
            result.setdefault("Failed", [])
            for entry_id, sender_fault in failing.items():
                code = "InvalidParameterValue" if sender_fault else "InternalError"
                result["Failed"].append({"Id": entry_id, "SenderFault": sender_fault, "Code": code, "Message": "x"})
            payload = json.dumps(result).encode()
        return web.Response(status=status, body=payload, headers=relayed)

    def entries(self) -> int:
        return sum(len(r.get("Entries", [])) for r in self.requests)


@pytest.fixture
async def gate(aws_endpoint: str) -> AsyncIterator[SigV4Gate]:
    proxy = await SigV4Gate(aws_endpoint).start()
    try:
        yield proxy
    finally:
        await proxy.stop()


async def drain(queue: SqsQueue, expected: int) -> list[LogRecord]:
    """Receive (and delete) until ``expected`` records came back, then once more to see nothing is left."""
    received: list[LogRecord] = []
    for _ in range(200):
        batch = await queue.receive(max_messages=10)
        received += [r for _, r in batch]
        await queue.delete(h for h, _ in batch)
        if len(received) >= expected and not batch:
            break
    return received


def queue_via(gate: SigV4Gate, url: str, **options: Any) -> SqsQueue:
    return SqsQueue(url, region=REGION, endpoint_url=gate.url, **options)


@pytest.mark.anyio
async def test_send_is_signed_as_botocore_signs(gate: SigV4Gate, sqs_queue_url: str) -> None:
    queue = queue_via(gate, sqs_queue_url)
    try:
        await queue.send(record(1))
        assert gate.refused == 0
        assert [r["target"] for r in gate.requests] == ["AmazonSQS.SendMessageBatch"]
        assert await drain(queue, 1) == [record(1)]
    finally:
        await queue.aclose()


@pytest.mark.anyio
async def test_gate_accepts_the_sdk_and_refuses_a_wrong_signature(gate: SigV4Gate, sqs_queue_url: str) -> None:
    """The check is real: botocore's own client passes it, a request signed with another secret does not."""
    import aioboto3

    async with aioboto3.Session().client("sqs", region_name=REGION, endpoint_url=gate.url) as sqs:
        await sqs.send_message(QueueUrl=sqs_queue_url, MessageBody="from the sdk")
    assert gate.refused == 0
    gate.secret = "another-secret"
    queue = queue_via(gate, sqs_queue_url, backoff_base=0.001)
    try:
        with pytest.raises(QueueUnavailableError, match="InvalidSignatureException"):
            await queue.send(record(2))
    finally:
        await queue.aclose()
    assert gate.refused == 1  # refused outright: no retry can fix a signature


@pytest.mark.anyio
async def test_attributes_and_body_round_trip(gate: SigV4Gate, sqs_queue_url: str, aws_endpoint: str) -> None:
    import aioboto3

    sent = record(7, properties={"ünïcode": '✓ "quoted" \\ \n'}, request_body='{"messages": []}')
    queue = queue_via(gate, sqs_queue_url)
    try:
        await queue.send(sent)
    finally:
        await queue.aclose()
    async with aioboto3.Session().client("sqs", region_name=REGION, endpoint_url=aws_endpoint) as sqs:
        response = await sqs.receive_message(QueueUrl=sqs_queue_url, MessageAttributeNames=["All"])
    (message,) = response["Messages"]
    assert message["MessageAttributes"]["request_id"] == {"DataType": "String", "StringValue": "req-7"}
    assert message["MessageAttributes"]["v"] == {"DataType": "Number", "StringValue": str(sent.v)}
    from heliport.store.queue import SqsQueue as Queue

    assert Queue._decoder.decode(message["Body"]) == sent


@pytest.mark.anyio
async def test_concurrent_sends_are_batched_and_each_delivered_once(gate: SigV4Gate, sqs_queue_url: str) -> None:
    queue = queue_via(gate, sqs_queue_url)
    records = [record(n) for n in range(60)]
    try:
        await asyncio.gather(*(queue.send(r) for r in records))
        # Group commit: records that arrived while a batch was in flight shared the next one.
        assert gate.entries() == 60
        assert len(gate.requests) < 60
        assert max(len(r["Entries"]) for r in gate.requests) <= 10
        received = await drain(queue, 60)
    finally:
        await queue.aclose()
    assert sorted(r.request_id for r in received) == sorted(r.request_id for r in records)


@pytest.mark.anyio
async def test_close_sends_what_was_accepted(gate: SigV4Gate, sqs_queue_url: str) -> None:
    queue = queue_via(gate, sqs_queue_url)
    sends = [asyncio.ensure_future(queue.send(record(n))) for n in range(25)]
    await asyncio.sleep(0)  # every send has handed its record over (two batches are in flight)
    await queue.aclose()
    assert [s.exception() for s in sends if s.done()] == [None] * 25
    check = queue_via(gate, sqs_queue_url)
    try:
        assert sorted(r.request_id for r in await drain(check, 25)) == sorted(f"req-{n}" for n in range(25))
    finally:
        await check.aclose()


@pytest.mark.anyio
async def test_a_single_record_goes_alone_at_once(gate: SigV4Gate, sqs_queue_url: str) -> None:
    queue = queue_via(gate, sqs_queue_url)
    try:
        for n in range(3):
            await queue.send(record(n))
    finally:
        await queue.aclose()
    assert [len(r["Entries"]) for r in gate.requests] == [1, 1, 1]


@pytest.mark.anyio
async def test_batches_stay_under_the_size_limit(gate: SigV4Gate, sqs_queue_url: str) -> None:
    queue = queue_via(gate, sqs_queue_url)
    big = "x" * 300_000  # three of these and their envelopes fit in 1 MiB, four do not
    try:
        await asyncio.gather(*(queue.send(record(n, response_body=big)) for n in range(8)))
    finally:
        await queue.aclose()
    assert gate.entries() == 8
    assert all(len(json.dumps(r).encode()) <= 1024 * 1024 + 4096 for r in gate.requests)
    assert max(len(r["Entries"]) for r in gate.requests) <= 3


@pytest.mark.anyio
async def test_transient_errors_are_retried(gate: SigV4Gate, sqs_queue_url: str) -> None:
    gate.fail_next, gate.failure = 2, (500, "InternalError")
    queue = queue_via(gate, sqs_queue_url, attempts=3, backoff_base=0.001)
    try:
        await queue.send(record(1))
        assert len(gate.requests) == 3
        assert await drain(queue, 1) == [record(1)]
    finally:
        await queue.aclose()


@pytest.mark.anyio
async def test_throttling_is_retried_then_gives_up(gate: SigV4Gate, sqs_queue_url: str) -> None:
    gate.fail_next, gate.failure = 5, (400, "RequestThrottled")
    queue = queue_via(gate, sqs_queue_url, attempts=3, backoff_base=0.001)
    try:
        with pytest.raises(QueueUnavailableError, match="after 3 attempts"):
            await queue.send(record(1))
    finally:
        await queue.aclose()
    assert len(gate.requests) == 3


@pytest.mark.anyio
async def test_partial_failure_in_one_batch(gate: SigV4Gate, sqs_queue_url: str) -> None:
    """A batch of three, entry 1 failing transiently and entry 2 for good: 0 and 1 stored, 2 refused."""
    queue = queue_via(gate, sqs_queue_url, attempts=3, backoff_base=0.001)
    sender = queue._sender
    try:
        # One slot, held by a record whose first request fails (retried after a backoff): the next
        # three wait meanwhile and go together as one batch, ids "0", "1", "2" in arrival order.
        sender._max_in_flight = 1
        gate.fail_next = 1
        blocker = asyncio.ensure_future(queue.send(record(9)))
        await asyncio.sleep(0)
        trio = [asyncio.ensure_future(queue.send(record(n))) for n in range(3)]
        await blocker  # its retry succeeded; the trio's batch has just been started
        gate.fail_entries = {"1": False, "2": True}
        results = await asyncio.gather(*trio, return_exceptions=True)
        received = await drain(queue, 3)
    finally:
        await queue.aclose()
    assert results[0] is None and results[1] is None
    assert isinstance(results[2], QueueUnavailableError)
    assert "InvalidParameterValue" in str(results[2])
    assert sorted(r.request_id for r in received) == ["req-0", "req-1", "req-9"]


@pytest.mark.anyio
async def test_queue_down_sends_the_record_to_the_spool(gate: SigV4Gate, sqs_queue_url: str, tmp_path: Path) -> None:
    host, port = gate.url.removeprefix("http://").split(":")
    relay = await TcpRelay(host, int(port)).start()
    relay_url = f"http://127.0.0.1:{relay.port}"
    inner = SqsQueue(sqs_queue_url, region=REGION, endpoint_url=relay_url, attempts=2, backoff_base=0.001)
    blobs = LocalBlobStore(tmp_path / "blobs")
    queue = SpoolingQueue(inner, blobs)
    try:
        await queue.send(record(1))  # through the relay: stored in SQS
        await relay.cut()
        await queue.send(record(2))  # the relay refuses: spooled
        spooled = await blobs.list(SPOOL_PREFIX)
    finally:
        await queue.aclose()
    assert len(spooled) == 1 and spooled[0].endswith("req-2.json")
    check = SqsQueue(sqs_queue_url, region=REGION, endpoint_url=gate.url)
    try:
        assert await drain(check, 1) == [record(1)]
    finally:
        await check.aclose()


@pytest.mark.anyio
async def test_missing_queue_is_refused_at_once(gate: SigV4Gate, aws_endpoint: str) -> None:
    url = f"{aws_endpoint}/123456789012/no-such-queue-{uuid.uuid4().hex[:6]}"
    queue = queue_via(gate, url, attempts=3, backoff_base=0.001)
    try:
        with pytest.raises(
            QueueUnavailableError, match=re.escape("refused SendMessage: AWS.SimpleQueueService.NonExistentQueue")
        ):
            await queue.send(record(1))
    finally:
        await queue.aclose()
    assert len(gate.requests) == 1


_CREDENTIAL_PROCESS = """
import json, sys, pathlib
from datetime import datetime, timedelta, timezone
counter = pathlib.Path(sys.argv[1])
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
# Expiring within botocore's mandatory refresh window (10 min): every use asks for a refresh.
expiration = (datetime.now(timezone.utc) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({"Version": 1, "AccessKeyId": "AKIAROTATING", "SecretAccessKey": f"rotated-{n}",
                  "SessionToken": f"token-{n}", "Expiration": expiration}))
"""


@pytest.mark.anyio
async def test_refreshable_credentials_are_refreshed(
    gate: SigV4Gate, sqs_queue_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials from botocore's provider chain that expire are refreshed before signing, as the SDK does.

    A ``credential_process`` (a real provider of botocore's chain) hands out a new secret every time
    it runs, each expiring within botocore's mandatory refresh window.
    """
    import sys

    script = tmp_path / "credentials.py"
    script.write_text(_CREDENTIAL_PROCESS)
    config = tmp_path / "config"
    config.write_text(f"[default]\ncredential_process = {sys.executable} {script} {tmp_path / 'count'}\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    gate.also_accept = {f"rotated-{n}" for n in range(1, 10)}
    queue = queue_via(gate, sqs_queue_url)
    try:
        for n in range(3):
            await queue.send(record(n))
    finally:
        await queue.aclose()
    assert gate.refused == 0
    # Each send signed with a secret newer than the last: refreshed, not read once and kept.
    assert len(gate.signed_with) == 3
    assert len(set(gate.signed_with)) == 3


@pytest.mark.anyio
async def test_a_dropped_pooled_connection_is_redialled_without_the_backoff(
    gate: SigV4Gate, sqs_queue_url: str
) -> None:
    """The kept-alive connection dies while the environment is frozen: the next send finds it reset. One
    retry goes at once on a new connection (no backoff, which Lambda would bill); a second drop in a
    row backs off as any transient error does."""
    waits: list[int] = []

    def backoff(attempt: int) -> float:
        waits.append(attempt)
        return 0.001

    sender = SqsSender(
        sqs_queue_url,
        region=REGION,
        endpoint_url=gate.url,
        attempts=4,
        backoff=backoff,
        connect_timeout=2,
        read_timeout=5,
    )
    try:
        await sender.send("first", 5, "req-1", 1)
        gate.drop_next = 1
        await sender.send("second", 6, "req-2", 1)
        assert (gate.dropped, waits) == (1, [])
        gate.drop_next = 2
        await sender.send("third", 5, "req-3", 1)
        assert (gate.dropped, waits) == (3, [1])
    finally:
        await sender.aclose()
    bodies = [entry["MessageBody"] for r in gate.requests for entry in r["Entries"]]
    assert bodies == ["first", "second", "third"]

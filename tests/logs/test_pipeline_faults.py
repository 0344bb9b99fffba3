"""Nothing acknowledged is lost: the pipeline through real SQS (moto), S3 (moto) and PostgreSQL.

``drain`` plays the part of Lambda's SQS event source mapping: it receives a batch, calls the
consumer's handler, deletes what succeeded and makes the failures visible again at once, so SQS's
own redrive policy moves a message that keeps failing to the dead-letter queue.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import msgspec
import pytest

from heliport.logs.consumer import BatchResponse, LogWriter, handle_sqs_batch
from heliport.logs.record import LogRecord
from heliport.logs.spool import SpoolingQueue, respool
from heliport.logs.stored_bodies import stored_bodies
from heliport.store.blobs import S3BlobStore
from heliport.store.logdb_postgres import PostgresLogDb
from heliport.store.queue import SqsQueue
from tests.aws import REGION
from tests.faults import TcpRelay
from tests.logs.records import ORG, chat_record

pytestmark = pytest.mark.anyio


class Sqs:
    """A queue with a DLQ (maxReceiveCount 2), and the event-source-mapping loop over it."""

    def __init__(self, client: Any, url: str, dlq_url: str) -> None:
        self.client, self.url, self.dlq_url = client, url, dlq_url

    async def drain(self, writer: LogWriter, *, rounds: int = 5, max_attempts: int = 2) -> list[BatchResponse]:
        results = []
        for _ in range(rounds):
            got = await self.client.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["ApproximateReceiveCount"]
            )
            messages = got.get("Messages", [])
            if not messages:
                break
            event = {
                "Records": [
                    {"messageId": m["MessageId"], "body": m["Body"], "attributes": m.get("Attributes", {})}
                    for m in messages
                ]
            }
            result = await handle_sqs_batch(event, writer, max_attempts=max_attempts)
            results.append(result)
            failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
            for m in messages:
                if m["MessageId"] in failed:
                    await self.client.change_message_visibility(
                        QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                    )
                else:
                    await self.client.delete_message(QueueUrl=self.url, ReceiptHandle=m["ReceiptHandle"])
        return results

    async def dead_letters(self) -> list[str]:
        got = await self.client.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10)
        return [m["Body"] for m in got.get("Messages", [])]


@pytest.fixture
async def sqs(aws_endpoint: str) -> AsyncIterator[Sqs]:
    import aioboto3

    async with aioboto3.Session().client("sqs", region_name=REGION, endpoint_url=aws_endpoint) as client:
        suffix = uuid.uuid4().hex[:10]
        dlq = (await client.create_queue(QueueName=f"logs-dlq-{suffix}"))["QueueUrl"]
        dlq_arn = (await client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"]))["Attributes"][
            "QueueArn"
        ]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
        url = (await client.create_queue(QueueName=f"logs-{suffix}", Attributes={"RedrivePolicy": redrive}))["QueueUrl"]
        yield Sqs(client, url, dlq)


@pytest.fixture
async def blobs(aws_endpoint: str, s3_bucket: str) -> AsyncIterator[S3BlobStore]:
    store = S3BlobStore(s3_bucket, region=REGION, endpoint_url=aws_endpoint)
    yield store
    await store.aclose()


@pytest.fixture
async def relay(pg_dsn: str) -> AsyncIterator[tuple[TcpRelay, str]]:
    """PostgreSQL behind a relay the test can cut: the database 'goes down' for the consumer only."""
    parts = urlsplit(pg_dsn)
    relay = await TcpRelay(parts.hostname or "127.0.0.1", parts.port or 5432).start()
    netloc = f"{parts.username}@127.0.0.1:{relay.port}" if parts.username else f"127.0.0.1:{relay.port}"
    migrator = PostgresLogDb(pg_dsn, max_size=1)
    await migrator.migrate()
    await migrator.aclose()
    yield relay, urlunsplit(parts._replace(netloc=netloc))
    await relay.cut()


async def test_database_down_during_a_batch_then_stored_once_up(
    sqs: Sqs, blobs: S3BlobStore, relay: tuple[TcpRelay, str], pg_dsn: str, aws_endpoint: str
) -> None:
    tcp, relayed_dsn = relay
    queue = SqsQueue(sqs.url, region=REGION, endpoint_url=aws_endpoint)
    records = [chat_record() for _ in range(3)]
    for record in records:
        await queue.send(record)

    await tcp.cut()  # the database goes away
    down = LogWriter(PostgresLogDb(relayed_dsn, max_size=1), blobs)
    results = await sqs.drain(down, rounds=1)
    assert len(results[0]["batchItemFailures"]) == 3  # every message comes back
    await down.logdb.aclose()

    up = LogWriter(PostgresLogDb(pg_dsn, max_size=1), blobs)  # ...and is back
    await sqs.drain(up)
    for record in records:
        assert await up.logdb.get_request(ORG, record.request_id) is not None
    assert await sqs.dead_letters() == []
    await up.logdb.aclose()
    await queue.aclose()


async def test_poison_message_is_kept_with_its_reason_and_the_rest_is_stored(
    sqs: Sqs, blobs: S3BlobStore, pg_dsn: str, aws_endpoint: str
) -> None:
    queue = SqsQueue(sqs.url, region=REGION, endpoint_url=aws_endpoint)
    good = chat_record()
    refused = chat_record(request_id="not-a-uuid")  # PostgreSQL refuses it even as a bare row
    for record in (good, refused):
        await queue.send(record)
    await sqs.client.send_message(QueueUrl=sqs.url, MessageBody='{"v": 1, "garbage": true}')
    writer = LogWriter(PostgresLogDb(pg_dsn, max_size=1), blobs)
    await writer.logdb.migrate()

    results = await sqs.drain(writer, max_attempts=2)
    assert await writer.logdb.get_request(ORG, good.request_id) is not None
    # the refused record came back once, and on its second (= max_attempts) receive was set aside
    assert [len(r["batchItemFailures"]) for r in results] == [1, 0]
    letters = {letter.request_id: letter for letter in await writer.logdb.list_dead_letters()}
    assert set(letters) == {None, "not-a-uuid"}
    assert letters[None].record == b'{"v": 1, "garbage": true}' and "unreadable" in letters[None].error
    assert letters["not-a-uuid"].attempts == 2 and "uuid" in letters["not-a-uuid"].error.lower()
    assert msgspec.json.decode(letters["not-a-uuid"].record, type=LogRecord) == refused
    assert await sqs.dead_letters() == []  # acknowledged: kept by heliport, with the reason
    await writer.logdb.aclose()
    await queue.aclose()


async def test_dead_letters_that_cannot_be_kept_go_back_to_sqs_and_its_dlq(
    sqs: Sqs, blobs: S3BlobStore, relay: tuple[TcpRelay, str]
) -> None:
    tcp, relayed_dsn = relay
    await sqs.client.send_message(QueueUrl=sqs.url, MessageBody="not a record")
    await tcp.cut()  # nowhere to keep the dead letter: SQS keeps redelivering, then its DLQ holds it
    writer = LogWriter(PostgresLogDb(relayed_dsn, max_size=1, connect_timeout=2), blobs)
    results = await sqs.drain(writer, rounds=3)
    assert [r["batchItemFailures"] != [] for r in results] == [True, True]
    assert await sqs.dead_letters() == ["not a record"]
    await writer.logdb.aclose()


async def test_queue_down_at_send_is_spooled_then_stored(
    sqs: Sqs, blobs: S3BlobStore, pg_dsn: str, aws_endpoint: str
) -> None:
    down = SqsQueue(sqs.url + "-missing", region=REGION, endpoint_url=aws_endpoint, attempts=1, backoff_base=0.01)
    record = chat_record()
    await SpoolingQueue(down, blobs).send(record)  # returns: the record is durably accepted
    assert await blobs.list("spool/") != []

    up = SqsQueue(sqs.url, region=REGION, endpoint_url=aws_endpoint)
    assert await respool(blobs, up) == 1
    writer = LogWriter(PostgresLogDb(pg_dsn, max_size=1), blobs)
    await writer.logdb.migrate()
    await sqs.drain(writer)
    row = await writer.logdb.get_request(ORG, record.request_id)
    assert row is not None and row.total_tokens == 1500
    assert await blobs.list("spool/") == []
    await writer.logdb.aclose()
    await up.aclose()
    await down.aclose()


async def test_body_over_the_message_limit_travels_by_claim_check(
    sqs: Sqs, blobs: S3BlobStore, pg_dsn: str, aws_endpoint: str
) -> None:
    queue = SqsQueue(sqs.url, region=REGION, endpoint_url=aws_endpoint)
    big = "x" * (1536 * 1024)
    record = chat_record(
        request_body=json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": big}]})
    )
    await SpoolingQueue(queue, blobs).send(record)
    sent = await sqs.client.receive_message(QueueUrl=sqs.url, VisibilityTimeout=0)
    assert len(sent["Messages"][0]["Body"]) < 1024 * 1024  # what SQS carried was small

    writer = LogWriter(PostgresLogDb(pg_dsn, max_size=1), blobs)
    await writer.logdb.migrate()
    await sqs.drain(writer)
    row = await writer.logdb.get_request(ORG, record.request_id)
    assert row is not None and row.body_key is not None
    stored = json.loads(gzip.decompress(await stored_bodies(row, blobs) or b""))
    assert stored["request"] == record.request_body  # stored whole
    assert stored["response"] == record.response_body
    await writer.logdb.aclose()
    await queue.aclose()

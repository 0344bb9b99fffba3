"""Webhooks as the AWS deployment runs them, over moto's server: the consumer's batch (``handle_sqs_batch``)
puts signed deliveries on a real SQS outbox queue, the delivery function's handler
(``handle_outbox_batch``) sends them to a receiver on loopback (a trusted origin) one attempt per
receive, outcomes and dead letters land in the DynamoDB store, and the query API lists them.

Redeliveries are SQS's own: each round receives from the moto queue what is visible, hands it to the
handler as the event source mapping would (``ApproximateReceiveCount`` and all), deletes what the handler
did not report failed, and waits for the visibility the handler set to pass.
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import msgspec
import pytest

from heliport.alerts.index import DynamoAlertIndex
from heliport.api.app import QueryApi
from heliport.api.bodies import BodyLinks
from heliport.app import Heliport
from heliport.auth import Authenticator, create_key
from heliport.config import Settings
from heliport.logs.consumer import LogWriter, handle_sqs_batch
from heliport.logs.record import LogRecord
from heliport.outbound import MAX_RECEIVES, OutboxSender, SqsVisibility, handle_outbox_batch
from heliport.outbox import WebhookDelivery, encode
from heliport.outbox_sqs import SqsOutbox
from heliport.store.aws import create_table
from heliport.store.blobs import LocalBlobStore
from heliport.store.factory import open_blobs, open_cache_store, open_counter_store, open_query_db
from heliport.store.keys import Organisation, SqliteKeyStore
from heliport.store.logdb_sqlite import SqliteLogDb
from heliport.store.queue import MemoryQueue
from heliport.webhooks.dynamo_store import DynamoWebhookStore
from heliport.webhooks.fanout import WebhookFanOut, sample_rng
from heliport.webhooks.signing import verify
from tests.aws import REGION
from tests.harness import ServerThread
from tests.logs.records import chat_record
from tests.webhooks.receiver import Delivery, Receiver


@dataclass
class Deployment:
    endpoint: str
    table: str
    outbox_url: str
    dlq_url: str
    receiver: Receiver
    a: httpx.Client
    b: httpx.Client
    org_a: str
    org_b: str
    data_dir: Path

    @property
    def settings(self) -> Settings:
        return Settings(
            data_dir=self.data_dir,
            table_name=self.table,
            aws_region=REGION,
            aws_endpoint_url=self.endpoint,
            outbox_queue_url=self.outbox_url,
            trusted_origins=frozenset({self.receiver.url}),
        )

    def store(self) -> DynamoWebhookStore:
        return DynamoWebhookStore(self.table, region=REGION, endpoint_url=self.endpoint)


def _queues(endpoint: str) -> tuple[str, str]:
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=endpoint)
    name = f"outbox-{uuid.uuid4().hex[:10]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVES})
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive, "VisibilityTimeout": "30"})["QueueUrl"]
    return url, dlq


@pytest.fixture
def deployment(request: pytest.FixtureRequest, tmp_path: Path, aws_endpoint: str) -> Iterator[Deployment]:
    """Parametrized indirectly with True: the API is given the outbox, as in AWS (no internet there)."""
    with_outbox = bool(getattr(request, "param", False))
    table = f"heliport-{uuid.uuid4().hex[:12]}"
    asyncio.run(create_table(table, region=REGION, endpoint_url=aws_endpoint))
    outbox_url, dlq_url = _queues(aws_endpoint)
    keys = SqliteKeyStore(tmp_path / "keys.sqlite3")

    async def orgs() -> list[tuple[str, str]]:
        made = []
        for name in ("a", "b"):
            org = Organisation(id=f"org-{name}-{uuid.uuid4().hex[:6]}", name=name, created_at=datetime.now(UTC))
            await keys.put_org(org)
            plain, _ = await create_key(keys, org.id, name)
            made.append((org.id, plain))
        db = SqliteLogDb(tmp_path / "logs.sqlite3")
        await db.migrate()
        await db.aclose()
        return made

    (org_a, key_a), (org_b, key_b) = asyncio.run(orgs())
    with Receiver() as receiver:
        settings = Settings(data_dir=tmp_path, trusted_origins=frozenset({receiver.url}))

        def make_api(authenticator: Authenticator) -> QueryApi:
            links = BodyLinks(open_blobs(settings), secret=settings.body_url_secret)
            store = DynamoWebhookStore(table, region=REGION, endpoint_url=aws_endpoint)
            outbox = SqsOutbox(outbox_url, region=REGION, endpoint_url=aws_endpoint) if with_outbox else None
            return QueryApi(
                open_query_db(settings),
                authenticator,
                links,
                trusted_origins=settings.trusted_origins,
                webhooks=store,
                outbox=outbox,
                alert_index=DynamoAlertIndex(table, region=REGION, endpoint_url=aws_endpoint),
            )

        app = Heliport(
            settings,
            key_store=keys,
            queue=MemoryQueue(),
            cache_store=open_cache_store(settings),
            counter_store=open_counter_store(settings),
            api_factory=make_api,
            steps=(),
        )
        server = ServerThread(app).start()
        a = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key_a}"}, timeout=30)
        b = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key_b}"}, timeout=30)
        try:
            yield Deployment(aws_endpoint, table, outbox_url, dlq_url, receiver, a, b, org_a, org_b, tmp_path)
        finally:
            a.close()
            b.close()
            server.stop()


def _data(answer: httpx.Response) -> Any:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["error"] is None, body
    return body["data"]


def _create(client: httpx.Client, destination: str, **body: Any) -> dict[str, Any]:
    made: dict[str, Any] = _data(client.post("/v1/webhooks", json={"destination": destination, **body}))
    return made


def _sqs_event(records: list[LogRecord]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{i}",
                "body": msgspec.json.encode(r).decode(),
                "attributes": {"ApproximateReceiveCount": "1"},
            }
            for i, r in enumerate(records)
        ]
    }


async def _consume(deployment: Deployment, records: list[LogRecord]) -> dict[str, Any]:
    """The logger function's batch, as ``functions/logger/app.py`` runs it in AWS."""
    settings = deployment.settings
    writer = LogWriter(SqliteLogDb(deployment.data_dir / "logs.sqlite3"), LocalBlobStore(deployment.data_dir / "b"))
    assert settings.outbox_queue_url is not None
    fanout = WebhookFanOut(
        deployment.store(), SqsOutbox(settings.outbox_queue_url, region=REGION, endpoint_url=deployment.endpoint)
    )
    try:
        return dict(await handle_sqs_batch(_sqs_event(records), writer, webhooks=fanout))
    finally:
        await fanout.outbox.aclose()
        await fanout.store.aclose()
        await writer.logdb.aclose()


def _sender(deployment: Deployment) -> OutboxSender:
    settings = deployment.settings
    return OutboxSender(
        settings,
        deployment.store(),
        SqsVisibility(region=REGION, endpoint_url=deployment.endpoint),
        queue_url=settings.outbox_queue_url,
        rng=random.Random(7),
        attempt_timeout=10,
    )


async def _deliver_all(deployment: Deployment, *, rounds: int = 30) -> int:
    """Run the delivery function over the outbox queue until it is empty, as the event source mapping
    would; returns how many invocations it took."""
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=deployment.endpoint)
    sender = _sender(deployment)
    arn = sqs.get_queue_attributes(QueueUrl=deployment.outbox_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    invocations = 0
    try:
        for _ in range(rounds):
            got = sqs.receive_message(
                QueueUrl=deployment.outbox_url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1,
                AttributeNames=["ApproximateReceiveCount"],
            ).get("Messages", [])
            if not got:
                counts = sqs.get_queue_attributes(
                    QueueUrl=deployment.outbox_url,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                if (
                    counts["ApproximateNumberOfMessages"] == "0"
                    and counts["ApproximateNumberOfMessagesNotVisible"] == "0"
                ):
                    return invocations
                continue
            event = {
                "Records": [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": m["Attributes"],
                        "eventSource": "aws:sqs",
                        "eventSourceARN": arn,
                    }
                    for m in got
                ]
            }
            answer = await handle_outbox_batch(event, sender)
            invocations += 1
            failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
            done = [m for m in got if m["MessageId"] not in failed]
            if done:  # what the event source mapping deletes
                sqs.delete_message_batch(
                    QueueUrl=deployment.outbox_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
                )
        raise AssertionError(f"the outbox queue was not empty after {rounds} rounds")
    finally:
        await sender.aclose()


def _signed(delivery: Delivery, key: str) -> bool:
    return verify(key, delivery.raw, delivery.headers["helicone-signature"])


def _by_path(deployment: Deployment, path: str) -> list[str]:
    return sorted(d.body["request_id"] for d in deployment.receiver.received(path))


def test_a_stored_batch_reaches_exactly_the_webhooks_that_match_signed_once(deployment: Deployment) -> None:
    receiver, origin = deployment.receiver, deployment.receiver.url
    receiver.script("/flaky", [503, 500, 200])
    receiver.script("/gone", [410])
    every = _create(deployment.a, f"{origin}/all")
    team = _create(deployment.a, f"{origin}/team", config={"propertyFilters": [{"key": "Team", "value": "x"}]})
    half = _create(deployment.a, f"{origin}/half", config={"sampleRate": 50}, includeData=True)
    flaky = _create(deployment.a, f"{origin}/flaky", config={"propertyFilters": [{"key": "flaky", "value": "1"}]})
    gone = _create(deployment.a, f"{origin}/gone", config={"propertyFilters": [{"key": "flaky", "value": "1"}]})
    theirs = _create(deployment.b, f"{origin}/theirs")

    mine = [chat_record(org_id=deployment.org_a, properties={"team": "x" if i % 3 == 0 else "y"}) for i in range(12)]
    mine.append(chat_record(org_id=deployment.org_a, properties={"flaky": "1"}))
    other = chat_record(org_id=deployment.org_b, properties={"team": "x"})
    assert asyncio.run(_consume(deployment, [*mine, other])) == {"batchItemFailures": []}
    asyncio.run(_deliver_all(deployment))

    ids = sorted(r.request_id for r in mine)
    assert _by_path(deployment, "/all") == ids
    assert _by_path(deployment, "/team") == sorted(r.request_id for r in mine if r.properties.get("team") == "x")
    sampled = sorted(r.request_id for r in mine if sample_rng(half["id"], r.request_id).uniform(0, 100) < 50)
    assert 0 < len(sampled) < len(mine)  # the draw is a real sample, and this one is exactly what was sent
    assert _by_path(deployment, "/half") == sampled
    assert _by_path(deployment, "/theirs") == [other.request_id]  # and none of organisation A's

    hooks = {hook["id"]: hook for hook in (every, team, half, flaky, gone, theirs)}
    paths = {"/all": every, "/team": team, "/half": half, "/flaky": flaky, "/gone": gone, "/theirs": theirs}
    for path, hook in paths.items():
        assert all(_signed(d, hooks[hook["id"]]["hmac_key"]) for d in receiver.received(path)), path
    assert all("model" in d.body and "metadata" in d.body for d in receiver.received("/half"))

    # Failing twice, then answering 200: three attempts, one delivery, counted once.
    assert [d.status for d in receiver.received("/flaky")] == [503, 500, 200]
    assert len({d.raw for d in receiver.received("/flaky")}) == 1
    listed = {hook["id"]: hook for hook in _data(deployment.a.get("/v1/webhooks"))}
    assert listed[flaky["id"]]["delivery"] | {"last_attempt_at": None} == {
        "delivered": 1, "failed": 0, "last_status": 200, "last_error": None, "last_attempt_at": None,
    }  # fmt: skip
    assert listed[every["id"]]["delivery"]["delivered"] == len(mine)

    # A final answer: one attempt, a dead letter with the exact body, listed by the API.
    assert [d.status for d in receiver.received("/gone")] == [410]
    assert listed[gone["id"]]["delivery"]["failed"] == 1
    [letter] = _data(deployment.a.get(f"/v1/webhooks/{gone['id']}/dead-letters"))
    assert letter["status"] == 410 and letter["attempts"] == 1 and "410" in letter["error"]
    assert letter["payload"].encode() == receiver.received("/gone")[0].raw
    # Organisation B sees none of it.
    assert deployment.b.get(f"/v1/webhooks/{gone['id']}/dead-letters").status_code == 404
    assert [hook["id"] for hook in _data(deployment.b.get("/v1/webhooks"))] == [theirs["id"]]


def test_still_failing_at_the_last_receive_is_a_dead_letter_and_acknowledged(deployment: Deployment) -> None:
    deployment.receiver.script("/down", [503])
    down = _create(deployment.a, f"{deployment.receiver.url}/down")
    body = b'{"request_id":"r-1","request_body":null,"response_body":null}'
    from heliport.webhooks.signing import sign

    message = WebhookDelivery(
        org_id=deployment.org_a,
        webhook_id=down["id"],
        request_id="r-1",
        destination=f"{deployment.receiver.url}/down",
        signature=sign(down["hmac_key"], body),
        body=body.decode(),
    )

    def event(receives: int) -> dict[str, Any]:
        record = {
            "messageId": f"m-{receives}",
            "receiptHandle": "not-a-real-handle",  # the visibility call fails; the message is still retried
            "body": encode(message).decode(),
            "attributes": {"ApproximateReceiveCount": str(receives)},
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:outbox",
        }
        return {"Records": [record]}

    async def run() -> None:
        sender = _sender(deployment)
        try:
            # Before the last receive: handed back, nothing recorded yet.
            assert await handle_outbox_batch(event(MAX_RECEIVES - 1), sender) == {
                "batchItemFailures": [{"itemIdentifier": f"m-{MAX_RECEIVES - 1}"}]
            }
            assert list(await sender.store.list_dead_letters(deployment.org_a, down["id"])) == []
            # The last receive: given up on, kept, acknowledged (SQS deletes it; the DLQ stays empty).
            assert await handle_outbox_batch(event(MAX_RECEIVES), sender) == {"batchItemFailures": []}
            [letter] = await sender.store.list_dead_letters(deployment.org_a, down["id"])
            assert letter.attempts == MAX_RECEIVES and letter.status == 503 and letter.payload == body
            assert f"after {MAX_RECEIVES} attempts" in letter.error
        finally:
            await sender.aclose()

    asyncio.run(run())
    assert len(deployment.receiver.received("/down")) == 2


def test_undecodable_messages_are_handed_back_until_the_dlq_takes_them(deployment: Deployment) -> None:
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=deployment.endpoint)
    sqs.send_message(QueueUrl=deployment.outbox_url, MessageBody='{"type": "pigeon"}')

    async def run() -> None:
        sender = _sender(deployment)
        try:
            for receives in range(1, MAX_RECEIVES + 1):
                [m] = sqs.receive_message(
                    QueueUrl=deployment.outbox_url, WaitTimeSeconds=1, AttributeNames=["ApproximateReceiveCount"]
                )["Messages"]
                assert m["Attributes"]["ApproximateReceiveCount"] == str(receives)
                record = {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
                answer = await handle_outbox_batch({"Records": [record]}, sender)
                assert answer == {"batchItemFailures": [{"itemIdentifier": m["MessageId"]}]}
                # What the event source mapping does with a reported failure: nothing; let it come back now.
                sqs.change_message_visibility(
                    QueueUrl=deployment.outbox_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0
                )
        finally:
            await sender.aclose()

    asyncio.run(run())
    assert sqs.receive_message(QueueUrl=deployment.outbox_url, WaitTimeSeconds=1).get("Messages") is None
    [dead] = sqs.receive_message(QueueUrl=deployment.dlq_url, WaitTimeSeconds=1)["Messages"]
    assert dead["Body"] == '{"type": "pigeon"}'


def test_a_webhook_deleted_after_queueing_gets_nothing(deployment: Deployment) -> None:
    hook = _create(deployment.a, f"{deployment.receiver.url}/deleted")
    asyncio.run(_consume(deployment, [chat_record(org_id=deployment.org_a)]))
    assert _data(deployment.a.delete(f"/v1/webhooks/{hook['id']}")) is None
    asyncio.run(_deliver_all(deployment))
    assert deployment.receiver.received("/deleted") == []


def test_the_test_route_sends_one_signed_sample_now(deployment: Deployment) -> None:
    receiver = deployment.receiver
    receiver.script("/refuses", [404])
    hook = _create(deployment.a, f"{receiver.url}/sample", includeData=True)
    refusing = _create(deployment.a, f"{receiver.url}/refuses")
    assert _data(deployment.a.post(f"/v1/webhooks/{hook['id']}/test")) == {
        "ok": True, "status": 200, "error": None, "queued": False,
    }  # fmt: skip
    [sample] = receiver.received("/sample")
    assert sample.body["request_id"].startswith("test-") and _signed(sample, hook["hmac_key"])
    assert sample.body["model"] and "metadata" in sample.body
    answer = _data(deployment.a.post(f"/v1/webhooks/{refusing['id']}/test"))
    assert answer["ok"] is False and answer["status"] == 404 and "404" in answer["error"]
    # Not counted in the delivery log; another organisation's webhook is a 404.
    listed = {h["id"]: h for h in _data(deployment.a.get("/v1/webhooks"))}
    assert listed[hook["id"]]["delivery"]["delivered"] == 0
    assert deployment.b.post(f"/v1/webhooks/{hook['id']}/test").status_code == 404
    assert len(receiver.received("/sample")) == 1


def test_a_failed_hand_over_brings_the_batch_back_until_the_last_attempts(deployment: Deployment) -> None:
    """The outbox refusing (here: a queue that does not exist) reports the organisation's messages failed,
    so SQS redelivers them; from MAX_ATTEMPTS receives on they are acknowledged (the rows are stored)."""
    from heliport.logs.consumer import MAX_ATTEMPTS

    _create(deployment.a, f"{deployment.receiver.url}/all")
    records = [chat_record(org_id=deployment.org_a), chat_record(org_id=deployment.org_b)]
    missing = deployment.outbox_url.rsplit("/", 1)[0] + "/no-such-queue"

    async def run(receives: int) -> dict[str, Any]:
        writer = LogWriter(SqliteLogDb(deployment.data_dir / "logs.sqlite3"), LocalBlobStore(deployment.data_dir / "b"))
        fanout = WebhookFanOut(deployment.store(), SqsOutbox(missing, region=REGION, endpoint_url=deployment.endpoint))
        event = _sqs_event(records)
        for record in event["Records"]:
            record["attributes"]["ApproximateReceiveCount"] = str(receives)
        try:
            return dict(await handle_sqs_batch(event, writer, webhooks=fanout))
        finally:
            await fanout.outbox.aclose()
            await fanout.store.aclose()
            await writer.logdb.aclose()

    # Organisation B has no webhooks, so only A's message comes back.
    assert asyncio.run(run(1)) == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    assert asyncio.run(run(MAX_ATTEMPTS)) == {"batchItemFailures": []}

    async def count() -> int:
        db = SqliteLogDb(deployment.data_dir / "logs.sqlite3")
        try:
            return len([r for r in records if await db.get_request(r.org_id, r.request_id) is not None])
        finally:
            await db.aclose()

    assert asyncio.run(count()) == 2


def test_realtime_parts_are_stored_but_never_delivered(deployment: Deployment) -> None:
    _create(deployment.a, f"{deployment.receiver.url}/all")
    whole = chat_record(org_id=deployment.org_a)
    part = chat_record(org_id=deployment.org_a, part=1)
    assert asyncio.run(_consume(deployment, [whole, part])) == {"batchItemFailures": []}
    asyncio.run(_deliver_all(deployment))
    assert _by_path(deployment, "/all") == [whole.request_id]

    async def stored() -> bool:
        db = SqliteLogDb(deployment.data_dir / "logs.sqlite3")
        try:
            return await db.get_request(part.org_id, part.request_id) is not None
        finally:
            await db.aclose()

    assert asyncio.run(stored())


@pytest.mark.parametrize("deployment", [True], indirect=True)
def test_where_the_api_has_no_internet_the_test_goes_through_the_outbox(deployment: Deployment) -> None:
    hook = _create(deployment.a, f"{deployment.receiver.url}/queued")
    assert _data(deployment.a.post(f"/v1/webhooks/{hook['id']}/test")) == {
        "ok": True, "status": None, "error": None, "queued": True,
    }  # fmt: skip
    assert deployment.receiver.received("/queued") == []
    asyncio.run(_deliver_all(deployment))
    [sample] = deployment.receiver.received("/queued")
    assert sample.body["request_id"].startswith("test-") and _signed(sample, hook["hmac_key"])


@pytest.mark.parametrize("deployment", [True], indirect=True)
def test_where_the_api_has_no_internet_an_alert_test_goes_through_the_outbox(deployment: Deployment) -> None:
    """The alert test route of the AWS API queues its notifications; the delivery function sends them
    (here to a Slack stand-in, a trusted origin), and the route said so instead of claiming an outcome."""
    channels = [{"type": "slack", "url": f"{deployment.receiver.url}/services/T1/B1/alertsecret"}]
    created = deployment.a.post(
        "/v1/alerts",
        json={"name": "n", "metric": "count", "threshold": 1, "windowMinutes": 5, "channels": channels},
    )
    alert = _data(created)
    results = _data(deployment.a.post(f"/v1/alerts/{alert['id']}/test"))
    assert [(r["channel"], r["ok"], r["queued"]) for r in results] == [("slack", True, True)]
    assert results[0]["target"].endswith("****cret")
    assert deployment.receiver.received("/services/T1/B1/alertsecret") == []
    asyncio.run(_deliver_all(deployment))
    [sent] = deployment.receiver.received("/services/T1/B1/alertsecret")
    assert sent.body["text"].startswith("Test notification: ")
    assert deployment.b.post(f"/v1/alerts/{alert['id']}/test").status_code == 404


def test_the_api_keeps_the_alert_index_a_superset_of_the_enabled_alerts(deployment: Deployment) -> None:
    """What lets the deployed evaluator leave an idle Aurora paused (heliport.alerts.index): an
    organisation is in the index while it has an enabled alert, and leaves it with its last one."""
    index = DynamoAlertIndex(deployment.table, region=REGION, endpoint_url=deployment.endpoint)

    def marked() -> list[str]:
        async def read() -> list[str]:
            try:
                return sorted(await index.organisations())
            finally:
                await index.aclose()

        return asyncio.run(read())

    channels = [{"type": "email", "address": "ops@example.com"}]
    body = {"name": "n", "metric": "cost", "threshold": 1, "windowMinutes": 60, "channels": channels}
    assert marked() == []
    first = _data(deployment.a.post("/v1/alerts", json=body))
    second = _data(deployment.a.post("/v1/alerts", json=body | {"enabled": False}))
    assert marked() == [deployment.org_a]
    _data(deployment.a.patch(f"/v1/alerts/{first['id']}", json={"enabled": False}))
    assert marked() == []  # no enabled alert left
    _data(deployment.a.patch(f"/v1/alerts/{second['id']}", json={"enabled": True}))
    assert marked() == [deployment.org_a]
    _data(deployment.a.delete(f"/v1/alerts/{first['id']}"))
    assert marked() == [deployment.org_a]  # the second is still enabled
    _data(deployment.a.delete(f"/v1/alerts/{second['id']}"))
    assert marked() == []
    _data(deployment.b.post("/v1/alerts", json=body))
    assert marked() == [deployment.org_b]

"""The delivery function's handler on alert notifications: Slack to a stand-in on loopback (a trusted
origin), e-mail through Amazon SES on moto's server; one attempt per receive, the retry rule of webhooks.
(Webhook deliveries through a real SQS queue: tests/webhooks/test_aws_delivery.py.)"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from heliport.config import Settings
from heliport.outbound import MAX_RECEIVES, OutboxSender, handle_outbox_batch, queue_url_of
from heliport.outbox import EmailMessage, Outbound, SlackMessage, encode
from heliport.store.aws import create_table
from heliport.webhooks.dynamo_store import DynamoWebhookStore
from tests.aws import REGION
from tests.webhooks.receiver import Receiver


class RecordedVisibility:
    """Stands in for ChangeMessageVisibility (the SQS path is covered in the webhook tests)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    async def later(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        self.calls.append((queue_url, receipt_handle, seconds))

    async def aclose(self) -> None:
        pass


@pytest.fixture
def slack() -> Iterator[Receiver]:
    with Receiver() as standin:
        yield standin


def _event(message: Outbound, receives: int) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m-{receives}",
                "receiptHandle": f"handle-{receives}",
                "body": encode(message).decode(),
                "attributes": {"ApproximateReceiveCount": str(receives)},
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:heliport-outbox",
            }
        ]
    }


def _sender(settings: Settings, table: str, endpoint: str, visibility: RecordedVisibility) -> OutboxSender:
    store = DynamoWebhookStore(table, region=REGION, endpoint_url=endpoint)
    return OutboxSender(settings, store, visibility, rng=random.Random(3))


def test_a_slack_notification_is_retried_through_the_queue_then_sent(
    slack: Receiver, aws_endpoint: str, tmp_path: Path
) -> None:
    slack.script("/services/T0/B0/secret", [503, 200])
    payload = json.dumps({"text": "High error rate is over the line"})
    message = SlackMessage(org_id="org-a", alert_id="a-1", url=f"{slack.url}/services/T0/B0/secret", payload=payload)
    settings = Settings(data_dir=tmp_path, trusted_origins=frozenset({slack.url}))
    visibility = RecordedVisibility()

    async def run() -> None:
        table = f"heliport-{uuid.uuid4().hex[:12]}"
        await create_table(table, region=REGION, endpoint_url=aws_endpoint)
        sender = _sender(settings, table, aws_endpoint, visibility)
        try:
            assert await handle_outbox_batch(_event(message, 1), sender) == {
                "batchItemFailures": [{"itemIdentifier": "m-1"}]
            }
            assert await handle_outbox_batch(_event(message, 2), sender) == {"batchItemFailures": []}
        finally:
            await sender.aclose()

    asyncio.run(run())
    assert [d.status for d in slack.received()] == [503, 200]
    assert slack.received()[1].body == {"text": "High error rate is over the line"}
    # The first failure came back after its backoff (1 s, jittered, rounded up), on the record's own queue.
    [(url, handle, seconds)] = visibility.calls
    assert url == "https://sqs.us-east-1.amazonaws.com/123456789012/heliport-outbox"
    assert handle == "handle-1" and seconds == 1


def test_a_slack_url_refused_by_the_address_rules_is_final(aws_endpoint: str, tmp_path: Path) -> None:
    message = SlackMessage(org_id="org-a", alert_id="a-1", url="https://127.0.0.1/services/x", payload="{}")
    visibility = RecordedVisibility()

    async def run() -> None:
        table = f"heliport-{uuid.uuid4().hex[:12]}"
        await create_table(table, region=REGION, endpoint_url=aws_endpoint)
        sender = _sender(Settings(data_dir=tmp_path), table, aws_endpoint, visibility)
        try:
            assert await handle_outbox_batch(_event(message, 1), sender) == {"batchItemFailures": []}
        finally:
            await sender.aclose()

    asyncio.run(run())
    assert visibility.calls == []


def test_backoff_grows_with_the_receives(slack: Receiver, aws_endpoint: str, tmp_path: Path) -> None:
    slack.script("/down", [500])
    message = SlackMessage(org_id="org-a", alert_id="a-1", url=f"{slack.url}/down", payload="{}")
    settings = Settings(data_dir=tmp_path, trusted_origins=frozenset({slack.url}))
    visibility = RecordedVisibility()

    async def run() -> None:
        table = f"heliport-{uuid.uuid4().hex[:12]}"
        await create_table(table, region=REGION, endpoint_url=aws_endpoint)
        sender = _sender(settings, table, aws_endpoint, visibility)
        try:
            for receives in range(1, MAX_RECEIVES):
                answer = await handle_outbox_batch(_event(message, receives), sender)
                assert answer == {"batchItemFailures": [{"itemIdentifier": f"m-{receives}"}]}
            # The last receive: given up (logged; notifications keep no dead letters) and acknowledged.
            assert await handle_outbox_batch(_event(message, MAX_RECEIVES), sender) == {"batchItemFailures": []}
        finally:
            await sender.aclose()

    asyncio.run(run())
    waits = [seconds for _, _, seconds in visibility.calls]
    assert len(waits) == MAX_RECEIVES - 1
    for attempt, wait in enumerate(waits, start=1):
        assert 2 ** (attempt - 2) <= wait <= 2 ** (attempt - 1) + 1  # base 1 s doubled, jittered 50-100 %
    assert len(slack.received("/down")) == MAX_RECEIVES


def test_an_email_goes_out_through_ses_as_the_configured_sender(aws_endpoint: str, tmp_path: Path) -> None:
    ses = boto3.client("ses", region_name=REGION, endpoint_url=aws_endpoint)
    ses.verify_email_identity(EmailAddress="alerts@example.com")
    sent_before = ses.get_send_quota()["SentLast24Hours"]
    message = EmailMessage(
        org_id="org-a", alert_id="a-1", to=("ops@example.com",), subject="Alert: cost", text="Cost is over.", html=None
    )
    settings = Settings(
        data_dir=tmp_path, aws_region=REGION, aws_endpoint_url=aws_endpoint, alert_email_from="alerts@example.com"
    )
    visibility = RecordedVisibility()

    async def run() -> None:
        table = f"heliport-{uuid.uuid4().hex[:12]}"
        await create_table(table, region=REGION, endpoint_url=aws_endpoint)
        sender = _sender(settings, table, aws_endpoint, visibility)
        try:
            assert await handle_outbox_batch(_event(message, 1), sender) == {"batchItemFailures": []}
        finally:
            await sender.aclose()

    asyncio.run(run())
    assert ses.get_send_quota()["SentLast24Hours"] == sent_before + 1
    assert visibility.calls == []


def test_a_queue_arn_names_its_url() -> None:
    assert queue_url_of("arn:aws:sqs:eu-west-1:123456789012:q") == "https://sqs.eu-west-1.amazonaws.com/123456789012/q"
    with pytest.raises(ValueError, match="not an SQS queue ARN"):
        queue_url_of("arn:aws:sns:eu-west-1:123456789012:t")

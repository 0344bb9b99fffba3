"""The delivery function's work: send what is on the outbox queue, one attempt per receive.

``functions/delivery`` runs :func:`handle_outbox_batch` on each SQS batch of the outbox queue
(:mod:`heliport.outbox`; ``ReportBatchItemFailures``). It runs outside the VPC: receivers and Slack are
on the public internet and the VPC has no NAT gateway, and a function out there cannot reach Aurora or
anything private even if an address check failed. Every message is complete in itself (the exact
bytes, where to, the signature), so sending needs no database; the webhook store it writes outcomes to
is the DynamoDB table (:mod:`heliport.webhooks.dynamo_store`).

Retries are the queue's, not a sleeping function's: each receive makes one attempt
(:class:`~heliport.webhooks.delivery.WebhookPoster` for webhooks, ``alerts.channels.send_notification``
for Slack and e-mail), all of a batch's messages at once.

- delivered: the webhook's delivery log counts it; the message is acknowledged;
- worth another attempt (5xx, 429, no answer, connection failure) before the :data:`MAX_RECEIVES`-th
  receive: the message's visibility is set to the backoff (1, 2, 4, 8 s..., jittered,
  ``retry.backoff``) with ``ChangeMessageVisibility`` and the message reported failed, so
  SQS hands it back after that long;
- final (any other answer, a refused address), or still failing at the :data:`MAX_RECEIVES`-th receive:
  the failure is counted and the body kept as a dead letter the API lists; the message is acknowledged;
- a message that does not decode is reported failed every time, so the queue's redrive policy
  (maxReceiveCount 5, ``template.yaml``) moves it to the outbox DLQ, which an alarm watches;
- a webhook deleted since its delivery was queued gets nothing: the message is acknowledged.

Alert notifications have no store: their outcomes are logged, with the same retry rule. If recording a
webhook outcome fails (DynamoDB unreachable), the message is reported failed without a backoff, so it
comes back after the queue's visibility timeout and, failing on, ends in the DLQ: never dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlsplit

import msgspec

from heliport.outbox import EmailMessage, FinalDelivery, Outbound, RetryableDelivery, SlackMessage, WebhookDelivery
from heliport.outbox import decode as decode_outbound
from heliport.retry import backoff
from heliport.webhooks import DeadLetter, WebhookStore
from heliport.webhooks.delivery import WebhookPoster

if TYPE_CHECKING:
    from heliport.config import Settings
    from heliport.logs.consumer import BatchItemFailure, BatchResponse
    from heliport.proxy.transport import UpstreamTransport

__all__ = ["MAX_RECEIVES", "OutboxSender", "Visibility", "handle_outbox_batch", "queue_url_of"]

logger = logging.getLogger("heliport.outbound")

#: Receives (attempts) a message gets; the outbox queue's maxReceiveCount (template.yaml) is the same,
#: so the last attempt is this function's to judge, and only a message that cannot even be handled
#: (undecodable, or its outcome unrecordable) reaches the DLQ.
MAX_RECEIVES: Final = 5
#: Wait before the second attempt, doubled for each further one (with jitter); at most MAX_BACKOFF.
BACKOFF: Final = 1.0
MAX_BACKOFF: Final = 300.0
#: Longest wait for one attempt's answer (Helicone's 2 minutes); the function's timeout is a bit more.
ATTEMPT_TIMEOUT: Final = 120.0


class Visibility(Protocol):
    """Puts a received message back on the queue after ``seconds``."""

    async def later(self, queue_url: str, receipt_handle: str, seconds: int) -> None: ...

    async def aclose(self) -> None: ...


class SqsVisibility:
    """:class:`Visibility` by ``ChangeMessageVisibility`` (botocore retries a throttled call)."""

    def __init__(self, *, region: str | None = None, endpoint_url: str | None = None) -> None:
        from heliport.store.aws import LazyClient

        self._client = LazyClient(
            "sqs",
            region=region,
            endpoint_url=endpoint_url,
            config={"retries": {"mode": "standard", "max_attempts": 3}, "connect_timeout": 2, "read_timeout": 5},
        )

    async def later(self, queue_url: str, receipt_handle: str, seconds: int) -> None:
        client = await self._client.get()
        await client.change_message_visibility(
            QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    async def aclose(self) -> None:
        await self._client.aclose()


def queue_url_of(arn: str) -> str:
    """The queue URL SQS answers to for a queue ARN (``arn:aws:sqs:<region>:<account>:<name>``)."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        raise ValueError(f"not an SQS queue ARN: {arn!r}")
    region, account, name = parts[3], parts[4], parts[5]
    suffix = "amazonaws.com.cn" if parts[1] == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{name}"


class OutboxSender:
    """What :func:`handle_outbox_batch` sends with; one per execution environment, on its event loop.

    ``queue_url`` is the outbox queue's (``HELIPORT_OUTBOX_QUEUE_URL``); without it each record's is
    derived from its ``eventSourceARN``. ``transport`` replaces the webhooks' (and notifications')
    upstream transport; ``rng`` the backoff's jitter.
    """

    def __init__(
        self,
        settings: Settings,
        store: WebhookStore,
        visibility: Visibility,
        *,
        queue_url: str | None = None,
        transport: UpstreamTransport | None = None,
        rng: random.Random | None = None,
        attempt_timeout: float = ATTEMPT_TIMEOUT,
    ) -> None:
        self.settings = settings
        self.store = store
        self.visibility = visibility
        self.queue_url = queue_url
        self.transport = transport
        self.poster = WebhookPoster(settings, attempt_timeout=attempt_timeout, transport=transport)
        self.rng = rng or random.Random()

    async def aclose(self) -> None:
        await self.poster.aclose()
        await self.visibility.aclose()
        await self.store.aclose()


class _Again(Exception):
    """Report the message failed (with ``delay`` seconds of visibility, or the queue's own when None)."""

    def __init__(self, delay: int | None) -> None:
        super().__init__(delay)
        self.delay = delay


async def handle_outbox_batch(event: Mapping[str, Any], sender: OutboxSender) -> BatchResponse:
    """The SQS event source's batch: every message attempted once, concurrently; the answer lists the
    messages SQS should hand back (ReportBatchItemFailures)."""
    records = list(event.get("Records", []))
    outcomes = await asyncio.gather(*(_handle(record, sender) for record in records), return_exceptions=True)
    failures: list[BatchItemFailure] = []
    for record, outcome in zip(records, outcomes, strict=True):
        if isinstance(outcome, BaseException) and not isinstance(outcome, Exception):
            raise outcome  # cancellation: not ours to swallow
        if outcome is None:
            continue
        if isinstance(outcome, Exception) and not isinstance(outcome, _Again):
            logger.error("outbox message %s failed unexpectedly: %r", record.get("messageId"), outcome)
        failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}


async def _handle(record: Mapping[str, Any], sender: OutboxSender) -> None:
    """None when the message is done with; raises :class:`_Again` when SQS should hand it back."""
    try:
        message = decode_outbound(record["body"])
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        # Reported failed on every receive: the redrive policy moves it to the DLQ (and its alarm).
        logger.error("undecodable outbox message %s: %s", record.get("messageId"), exc)
        raise _Again(None) from exc
    receives = _receives(record)
    try:
        await _attempt(message, sender)
    except RetryableDelivery as exc:
        if receives < MAX_RECEIVES:
            delay = max(1, math.ceil(backoff(receives, base=BACKOFF, cap=MAX_BACKOFF, rng=sender.rng)))
            logger.warning("%s: attempt %d failed (%s); again in %d s", _label(message), receives, exc, delay)
            await _later(record, sender, delay)
            raise _Again(delay) from exc
        await _given_up(message, sender, exc.status, receives, f"{exc} (after {receives} attempts)")
        return
    except FinalDelivery as exc:
        await _given_up(message, sender, exc.status, receives, str(exc))
        return


async def _attempt(message: Outbound, sender: OutboxSender) -> None:
    if isinstance(message, WebhookDelivery):
        await _deliver(message, sender)
        return
    from heliport.alerts.channels import send_notification  # lazily: only notifications need it

    await send_notification(message, sender.settings, sender.transport)
    logger.info("%s sent", _label(message))


async def _deliver(message: WebhookDelivery, sender: OutboxSender) -> None:
    try:
        webhook = await sender.store.get(message.org_id, message.webhook_id)
    except Exception as exc:
        raise RetryableDelivery(f"could not read the webhook: {type(exc).__name__}") from exc
    if webhook is None:
        logger.info("%s: the webhook was deleted; not sent", _label(message))
        return
    status = await sender.poster.post(message.destination, message.body.encode(), message.signature)
    logger.info("%s delivered to %s (status %d)", _label(message), _host(message.destination), status)
    await _record(sender, message.org_id, message.webhook_id, delivered=True, status=status, error=None, letter=None)


async def _given_up(message: Outbound, sender: OutboxSender, status: int | None, receives: int, error: str) -> None:
    if not isinstance(message, WebhookDelivery):
        logger.error("%s not sent after %d attempts: %s", _label(message), receives, error)
        return
    logger.warning(
        "%s not delivered to %s after %d attempts: %s", _label(message), _host(message.destination), receives, error
    )
    letter = DeadLetter(
        id=str(uuid.uuid4()),
        org_id=message.org_id,
        webhook_id=message.webhook_id,
        request_id=message.request_id,
        failed_at=datetime.now(UTC),
        attempts=receives,
        status=status,
        error=error,
        payload=message.body.encode(),
    )
    await _record(
        sender, message.org_id, message.webhook_id, delivered=False, status=status, error=error, letter=letter
    )


async def _record(
    sender: OutboxSender,
    org_id: str,
    webhook_id: str,
    *,
    delivered: bool,
    status: int | None,
    error: str | None,
    letter: DeadLetter | None,
) -> None:
    """The outcome into the delivery log (and the dead letter); on failure the message comes back after the
    queue's visibility timeout (a delivered one is then sent again: at least once, never lost)."""
    try:
        await sender.store.record_outcome(
            org_id, webhook_id, delivered=delivered, status=status, error=error, at=datetime.now(UTC)
        )
        if letter is not None:
            await sender.store.add_dead_letter(letter)
    except Exception as exc:
        logger.exception("could not record the outcome of a delivery of webhook %s", webhook_id)
        raise _Again(None) from exc


async def _later(record: Mapping[str, Any], sender: OutboxSender, seconds: int) -> None:
    try:
        url = sender.queue_url or queue_url_of(record["eventSourceARN"])
        await sender.visibility.later(url, record["receiptHandle"], seconds)
    except Exception:  # it then comes back after the queue's own visibility timeout: later, still retried
        logger.exception("could not set the visibility of outbox message %s", record.get("messageId"))


def _receives(record: Mapping[str, Any]) -> int:
    """How many times SQS has delivered this message, this time included."""
    try:
        return max(1, int(record.get("attributes", {}).get("ApproximateReceiveCount", 1)))
    except (TypeError, ValueError):
        return 1


def _host(url: str) -> str | None:
    """Only the host is logged: a URL's path or query may hold a token (Slack's does)."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _label(message: Outbound) -> str:
    if isinstance(message, WebhookDelivery):
        return f"webhook {message.webhook_id} request {message.request_id}"
    if isinstance(message, SlackMessage):
        return f"alert {message.alert_id} slack notification"
    if isinstance(message, EmailMessage):
        return f"alert {message.alert_id} e-mail to {len(message.to)} recipients"
    return "outbox message"

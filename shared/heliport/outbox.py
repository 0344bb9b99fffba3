"""What heliport sends to the outside world after the fact: webhook deliveries and alert notifications.

Each outbound message is complete in itself: the exact bytes to send, where to, and (for a webhook) the
signature already computed, so whoever sends it needs no database and no secret of heliport's. That is
what lets the AWS deployment send them from a function outside the VPC (it reaches the internet without a
NAT gateway, and cannot reach Aurora or anything private even if an address check failed), while the
consumer and the alert evaluator, inside the VPC, only put messages on a queue.

- :class:`Outbox` is the port: ``put`` hands messages over and returns once they are safely queued.
  In AWS it is an SQS queue with a dead-letter queue (:class:`heliport.outbox_sqs.SqsOutbox`); the
  delivery function (``functions/delivery``) sends each message once per receive and lets SQS retry.
- A sender raises :class:`RetryableDelivery` for an outcome worth another attempt (5xx, 429, timeout,
  connection failure) and :class:`FinalDelivery` for one that is not (any other 4xx, a refused address).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

__all__ = [
    "EmailMessage",
    "FinalDelivery",
    "Outbound",
    "Outbox",
    "RetryableDelivery",
    "SlackMessage",
    "WebhookDelivery",
    "decode",
    "encode",
]


class WebhookDelivery(msgspec.Struct, frozen=True, kw_only=True, tag="webhook"):
    """One stored request for one webhook: ``body`` is the exact JSON text to POST, ``signature`` its
    ``Helicone-Signature`` under the webhook's key (computed by whoever built it)."""

    org_id: str
    webhook_id: str
    request_id: str
    destination: str
    signature: str
    body: str


class SlackMessage(msgspec.Struct, frozen=True, kw_only=True, tag="slack"):
    """An alert notification for a Slack incoming-webhook URL; ``payload`` is the JSON text to POST
    (``{"text": ..., "blocks": [...]}``)."""

    org_id: str
    alert_id: str
    url: str
    payload: str


class EmailMessage(msgspec.Struct, frozen=True, kw_only=True, tag="email"):
    """An alert notification by e-mail (Amazon SES in AWS, an SMTP server locally)."""

    org_id: str
    alert_id: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None


Outbound = WebhookDelivery | SlackMessage | EmailMessage

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Outbound)


def encode(message: Outbound) -> bytes:
    return _encoder.encode(message)


def decode(data: bytes | str) -> Outbound:
    """:class:`msgspec.ValidationError` / :class:`msgspec.DecodeError` for anything that is not one."""
    return _decoder.decode(data)


class Outbox(Protocol):
    async def put(self, messages: Sequence[Outbound]) -> None:
        """Queue ``messages``; returns when every one is accepted, raises when any is not."""
        ...

    async def aclose(self) -> None: ...


class RetryableDelivery(Exception):
    """Worth another attempt later: 5xx, 429, no answer, connection failure."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FinalDelivery(Exception):
    """Not worth another attempt: any other answer, or an address the rules refuse."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

"""Webhooks (issue 22): every logged request POSTed, signed, to the organisation's receivers.

An organisation registers a webhook through the query API (``/v1/webhooks``, ``api/webhooks.py``): a
``destination`` URL, a ``config`` (``sampleRate`` 0-100, ``propertyFilters`` that must all match the
request's properties) and ``includeData``. After a request's row is stored, the log consumer hands it to
:class:`~heliport.webhooks.delivery.WebhookDispatcher`, which POSTs a JSON body to every webhook the
request matches, signed with the webhook's own ``hmac_key`` (``Helicone-Signature``,
:mod:`heliport.webhooks.signing`), retrying 5xx, 429 and connection failures; the outcome goes into the
webhook's delivery log, and a delivery given up on becomes a dead letter the API lists.

This module holds the records and the storage port. :mod:`heliport.webhooks.store` implements the port
over the query API's per-organisation reader of the log database (row-level security on PostgreSQL),
for ``heliport serve``; :mod:`heliport.webhooks.dynamo_store` in the deployment's DynamoDB table, for AWS
(:mod:`heliport.webhooks.factory` picks one). In AWS the consumer does not deliver: it puts signed
deliveries on the outbox queue (:mod:`heliport.webhooks.fanout`) and the delivery function, outside the
VPC, sends them (:mod:`heliport.outbound`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

import msgspec

__all__ = [
    "VERSION",
    "DeadLetter",
    "DeliveryLog",
    "PropertyFilter",
    "Webhook",
    "WebhookConfig",
    "WebhookStore",
]

#: The payload version a webhook is created with (Helicone's ``version`` column).
VERSION = "2025-01-01"


class PropertyFilter(msgspec.Struct, frozen=True):
    """A request matches when its property ``key`` (case-insensitive, as properties are stored lower
    case) equals ``value`` exactly."""

    key: str
    value: str


class WebhookConfig(msgspec.Struct, frozen=True, rename="camel"):
    """Helicone's webhook ``config`` object."""

    #: Percent of the matching requests delivered, 0-100.
    sample_rate: float = 100.0
    property_filters: tuple[PropertyFilter, ...] = ()


class DeliveryLog(msgspec.Struct, frozen=True, kw_only=True):
    """How a webhook's deliveries went: counts and the latest attempt's outcome."""

    delivered: int = 0
    failed: int = 0
    last_status: int | None = None
    last_error: str | None = None
    last_attempt_at: datetime | None = None


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    org_id: str
    created_at: datetime
    destination: str
    version: str
    config: WebhookConfig
    include_data: bool
    #: The signing secret: shown to its organisation by design (receivers need it), never logged.
    hmac_key: str
    #: Where the query API was reached when the webhook was made; ``request_response_url`` points there.
    base_url: str
    log: DeliveryLog = DeliveryLog()


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery given up on, with the exact body that was (or would have been) sent."""

    id: str
    org_id: str
    webhook_id: str
    request_id: str
    failed_at: datetime
    attempts: int
    #: The receiver's last status; None when no answer came (refused, unreachable, timed out).
    status: int | None
    error: str
    payload: bytes


class WebhookStore(Protocol):
    """Webhooks and their delivery log; every call confined to one organisation."""

    async def create(self, webhook: Webhook) -> None: ...

    async def list(self, org_id: str) -> list[Webhook]:
        """The organisation's webhooks, oldest first."""
        ...

    async def get(self, org_id: str, webhook_id: str) -> Webhook | None: ...

    async def delete(self, org_id: str, webhook_id: str) -> bool:
        """Remove the webhook and its dead letters; False when the organisation has no such webhook."""
        ...

    async def record_outcome(
        self, org_id: str, webhook_id: str, *, delivered: bool, status: int | None, error: str | None, at: datetime
    ) -> None:
        """Count one delivery in the webhook's log (a deleted webhook is ignored)."""
        ...

    async def add_dead_letter(self, letter: DeadLetter) -> None: ...

    async def list_dead_letters(self, org_id: str, webhook_id: str, *, limit: int = 100) -> Sequence[DeadLetter]:
        """The webhook's dead letters, newest first."""
        ...

    async def aclose(self) -> None: ...

"""From stored requests to webhook deliveries on the outbox: the AWS consumer's half of webhooks.

In AWS the log consumer does not POST anything itself (it runs in the VPC, which has no route to the
internet): after a batch's rows are stored it hands them to :meth:`WebhookFanOut.hand_over`, which
reads each organisation's webhooks once, keeps the requests each webhook matches
(:func:`~heliport.webhooks.delivery.matches`), builds the exact body
(:func:`~heliport.webhooks.delivery.build_payload`) and its ``Helicone-Signature``, and puts one
:class:`~heliport.outbox.WebhookDelivery` per (webhook, request) on the outbox queue. The delivery
function sends them from outside the VPC (:mod:`heliport.outbound`).

Records logged in parts (realtime sessions) are left out, as in ``heliport serve``'s consumer: each part
rewrites one row, and a receiver gets a request once, not once per part.

The sample is decided by a generator seeded with the webhook and request ids, not by chance alone: a
batch that SQS redelivers (because its hand-over failed, see ``logs/consumer.py``) is sampled the same
way again, so a redelivery never changes which requests a webhook gets.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from heliport.outbox import Outbox, WebhookDelivery
from heliport.webhooks.delivery import build_payload, matches
from heliport.webhooks.signing import sign

if TYPE_CHECKING:
    from heliport.logs.record import LogRecord
    from heliport.logs.row import RequestRow
    from heliport.webhooks import Webhook, WebhookStore

__all__ = ["HandOver", "WebhookFanOut", "sample_rng"]

logger = logging.getLogger("heliport.webhooks")


def sample_rng(webhook_id: str, request_id: str) -> random.Random:
    """The same draw for the same (webhook, request), whichever process or redelivery makes it."""
    return random.Random(f"{webhook_id}/{request_id}")


@dataclass(frozen=True, slots=True)
class HandOver:
    """What :meth:`WebhookFanOut.hand_over` did."""

    #: Deliveries put on the outbox.
    queued: int = 0
    #: Organisations whose deliveries could not be queued (their webhooks unreadable, or the outbox
    #: refused): the caller decides whether their records come back (see ``logs/consumer.py``).
    failed_orgs: frozenset[str] = field(default_factory=frozenset)


class WebhookFanOut:
    """Turns stored requests into queued webhook deliveries; one per consumer environment."""

    def __init__(self, store: WebhookStore, outbox: Outbox) -> None:
        self.store = store
        self.outbox = outbox

    async def hand_over(self, stored: Sequence[tuple[LogRecord, RequestRow]]) -> HandOver:
        """Queue the deliveries of ``stored``; never raises (cancellation aside)."""
        by_org: dict[str, list[tuple[LogRecord, RequestRow]]] = {}
        for record, row in stored:
            if record.part is None:
                by_org.setdefault(row.org_id, []).append((record, row))
        failed: set[str] = set()
        messages: list[WebhookDelivery] = []
        origins: list[str] = []
        for org_id, pairs in by_org.items():
            try:
                webhooks = await self.store.list(org_id)
                built = [d for webhook in webhooks for d in self._deliveries(webhook, pairs)]
            except Exception:
                logger.exception("could not read the webhooks of an organisation (%d stored requests)", len(pairs))
                failed.add(org_id)
                continue
            messages.extend(built)
            origins.extend(org_id for _ in built)
        if not messages:
            return HandOver(0, frozenset(failed))
        try:
            await self.outbox.put(messages)
        except Exception:
            logger.exception("could not queue %d webhook deliveries", len(messages))
            return HandOver(0, frozenset(failed | set(origins)))
        return HandOver(len(messages), frozenset(failed))

    @staticmethod
    def _deliveries(webhook: Webhook, pairs: Sequence[tuple[LogRecord, RequestRow]]) -> list[WebhookDelivery]:
        out: list[WebhookDelivery] = []
        for record, row in pairs:
            if not matches(webhook, row, sample_rng(webhook.id, row.request_id)):
                continue
            try:
                body = build_payload(webhook, record, row)
            except Exception:  # a record no payload can be made of must not stop the others
                logger.exception("could not build the webhook payload of request %s", row.request_id)
                continue
            out.append(
                WebhookDelivery(
                    org_id=webhook.org_id,
                    webhook_id=webhook.id,
                    request_id=row.request_id,
                    destination=webhook.destination,
                    signature=sign(webhook.hmac_key, body),
                    body=body.decode(),
                )
            )
        return out

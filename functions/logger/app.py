"""Lambda entry of the log consumer: an SQS batch in, request rows and bodies out.

The event source mapping sets ``ReportBatchItemFailures``, so only the messages listed in
``batchItemFailures`` come back. One event loop lives for the whole execution environment: the
database pool and the S3 client belong to it and are reused by every warm invocation. The first
invocation of each environment also re-enqueues records the proxy spooled to S3 while SQS was down.

Nothing reaches the network at import (the Aurora secret is read when the first connection opens),
so an unreachable Secrets Manager or database fails invocations, never the module. An invocation
that cannot migrate gives the whole batch back to SQS, which redelivers it after the visibility
timeout; the next invocation migrates again.

Requests that carry ``Helicone-Posthog-Key`` are sent to PostHog after their batch's rows are stored,
within the invocation (at most the exporter's deadline, 10 s, of the 60 s timeout): PostHog's outcome
is recorded on the rows and never makes SQS redeliver a message. Reaching PostHog needs egress from the
consumer's subnets (a NAT gateway); without it, exports time out and the rows say so.

With ``HELIPORT_OUTBOX_QUEUE_URL`` set, the stored requests are also handed to their organisations'
webhooks (``heliport.webhooks.fanout``): the webhooks are read from DynamoDB (the gateway endpoint) and
one signed delivery per (webhook, request) goes onto the outbox queue (the ``sqs`` interface endpoint),
which the delivery function (``functions/delivery``) sends from outside the VPC.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from heliport.config import Settings
from heliport.logs.consumer import BatchResponse, LogWriter, handle_sqs_batch
from heliport.logs.posthog import PostHogExporter
from heliport.logs.spool import respool
from heliport.outbox_sqs import open_outbox
from heliport.store.factory import open_blobs, open_inner_queue, open_logdb
from heliport.webhooks.fanout import WebhookFanOut

logger = logging.getLogger("heliport.consumer")

_loop = asyncio.new_event_loop()
_settings = Settings.from_env()
_writer = LogWriter(open_logdb(_settings), open_blobs(_settings), inline_bytes=_settings.inline_body_bytes)
#: Its HTTP client is made by the first export, inside ``_loop``, and reused by warm invocations.
_exporter = PostHogExporter(_settings)
_respooled = False
_migrated = False


def _open_webhooks(settings: Settings) -> WebhookFanOut | None:
    """The hand-over to the webhooks; none when the deployment has no outbox queue. Opens nothing yet."""
    outbox = open_outbox(settings)
    if outbox is None:
        return None
    from heliport.webhooks.factory import open_webhook_store

    return WebhookFanOut(open_webhook_store(settings), outbox)


_webhooks = _open_webhooks(_settings)


async def _migrate_once() -> None:
    """The schema is brought up to date by the first invocation of each environment after a deploy:
    idempotent, serialised by an advisory lock, one query when there is nothing to do."""
    global _migrated
    if not _migrated:
        applied = await _writer.logdb.migrate()
        if applied:
            logger.warning("applied migrations %s", ", ".join(applied))
        _migrated = True


async def _respool_once() -> None:
    global _respooled
    if _respooled or not _settings.queue_url:
        return
    _respooled = True
    try:
        moved = await respool(_writer.blobs, open_inner_queue(_settings))
        if moved:
            logger.warning("re-enqueued %d spooled log records", moved)
    except Exception:
        logger.exception(
            "could not re-enqueue spooled log records; they stay spooled for the next environment"
            " (no route from the VPC to SQS? interface endpoint for sqs)"
        )


async def _handle(event: dict[str, Any]) -> BatchResponse:
    await _respool_once()  # S3 to SQS: needs no database
    try:
        await _migrate_once()
    except Exception:
        records = event.get("Records", [])
        logger.exception("could not migrate the log database; all %d messages will be redelivered", len(records))
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records]}
    return await handle_sqs_batch(event, _writer, exporter=_exporter, webhooks=_webhooks)


def handler(event: dict[str, Any], context: object) -> BatchResponse:
    return _loop.run_until_complete(_handle(event))

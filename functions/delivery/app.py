"""Lambda entry of the delivery function: outbox messages (webhook deliveries, alert notifications) out.

It runs outside the VPC, so it reaches receivers and Slack on the internet (the VPC has no NAT) and
nothing private; the event source mapping sets ``ReportBatchItemFailures``, and each receive of a
message is one attempt (``heliport.outbound``): a retryable failure is handed back to SQS with the
backoff as its visibility, a final one is recorded in the webhook's delivery log and dead letters
(DynamoDB).

One event loop lives for the whole execution environment: the HTTP sessions and the AWS clients belong
to it and are reused by every warm invocation. Nothing reaches the network at import.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from heliport.config import Settings
from heliport.outbound import OutboxSender, SqsVisibility, handle_outbox_batch
from heliport.webhooks.factory import open_webhook_store

if TYPE_CHECKING:
    from heliport.logs.consumer import BatchResponse

_loop = asyncio.new_event_loop()
_settings = Settings.from_env()
_sender = OutboxSender(
    _settings,
    open_webhook_store(_settings),
    SqsVisibility(region=_settings.aws_region, endpoint_url=_settings.aws_endpoint_url),
    queue_url=_settings.outbox_queue_url,
)


def handler(event: dict[str, Any], context: object) -> BatchResponse:
    return _loop.run_until_complete(handle_outbox_batch(event, _sender))

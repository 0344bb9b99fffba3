"""The outbox on SQS (:class:`heliport.outbox.Outbox`): outbound messages onto the deployment's outbox queue.

The log consumer and the alert evaluator (inside the VPC, through the ``sqs`` interface endpoint) put
messages here; the delivery function (outside the VPC) receives them and sends each once per receive
(:mod:`heliport.outbound`). Messages go ten to a ``SendMessageBatch`` (SQS's limit); an entry SQS
refuses for a transient reason is sent again with the rest of a retry, one it refuses for good raises.

As in :class:`heliport.store.queue.SqsQueue`, botocore's own retries are off so that this class's are
the only ones (bounded, exponential backoff with jitter), and nothing imports aioboto3 or botocore at
load time. ``put`` raises :class:`OutboxUnavailableError` when a message could not be queued, which the
caller decides about (the consumer logs and counts it; see ``logs/consumer.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from heliport.outbox import Outbound, encode
from heliport.store.aws import SqsAdapter, retryable_error

if TYPE_CHECKING:
    from heliport.config import Settings

__all__ = ["MAX_MESSAGE_BYTES", "OutboxUnavailableError", "SqsOutbox", "open_outbox"]

logger = logging.getLogger("heliport.outbox")

#: SQS's largest message (256 KiB). A webhook body is bounded well below it (bodies over 10 KB are
#: replaced by a note), so a larger message is a bug, refused here rather than by SQS.
MAX_MESSAGE_BYTES: Final = 256 * 1024
#: SendMessageBatch's largest batch.
_BATCH: Final = 10


class OutboxUnavailableError(RuntimeError):
    """Some messages could not be queued; ``unsent`` says how many."""

    def __init__(self, message: str, unsent: int) -> None:
        super().__init__(message)
        self.unsent = unsent


class SqsOutbox(SqsAdapter):
    """:class:`~heliport.outbox.Outbox` on an SQS queue (``HELIPORT_OUTBOX_QUEUE_URL``)."""

    async def put(self, messages: Sequence[Outbound]) -> None:
        bodies = [encode(message).decode() for message in messages]
        too_big = [len(body.encode()) for body in bodies if len(body.encode()) > MAX_MESSAGE_BYTES]
        if too_big:
            raise OutboxUnavailableError(f"{len(too_big)} outbound messages over SQS's 256 KiB", len(too_big))
        unsent = 0
        errors: list[str] = []
        for start in range(0, len(bodies), _BATCH):
            left, error = await self._send_batch(bodies[start : start + _BATCH])
            unsent += left
            if error:
                errors.append(error)
        if unsent:
            raise OutboxUnavailableError(f"{unsent} outbound messages not queued: {'; '.join(errors)}", unsent)

    async def _send_batch(self, bodies: list[str]) -> tuple[int, str | None]:
        """Send one batch, retrying what failed transiently; (how many were not sent, why)."""
        from botocore.exceptions import ClientError, HTTPClientError
        from botocore.exceptions import ConnectionError as BotoConnectionError

        client = await self._client.get()
        pending = {str(i): body for i, body in enumerate(bodies)}
        refused = 0
        error: str | None = None
        for attempt in range(self._attempts):
            entries = [{"Id": key, "MessageBody": body} for key, body in pending.items()]
            try:
                response: dict[str, Any] = await client.send_message_batch(QueueUrl=self._url, Entries=entries)
            except (BotoConnectionError, HTTPClientError) as exc:
                error = f"SendMessageBatch failed: {type(exc).__name__}"
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "?")
                error = f"the outbox queue refused SendMessageBatch: {code}"
                if not retryable_error(exc):
                    return refused + len(pending), error
            else:
                for sent in response.get("Successful", []):
                    pending.pop(sent["Id"], None)
                for entry in response.get("Failed", []):
                    error = f"SQS did not take a message: {entry.get('Code')}"
                    if entry.get("SenderFault"):  # never gets better by retrying: given up on now
                        logger.error("outbox message refused by SQS: %s %s", entry.get("Code"), entry.get("Message"))
                        pending.pop(entry["Id"], None)
                        refused += 1
                if not pending:
                    return refused, error if refused else None
            if attempt + 1 < self._attempts:
                await asyncio.sleep(self._backoff(attempt))
        return refused + len(pending), error


def open_outbox(settings: Settings) -> SqsOutbox | None:
    """The deployment's outbox queue when it has one (``HELIPORT_OUTBOX_QUEUE_URL``, AWS), else None: the
    caller sends in process. Opens nothing on the network."""
    if not settings.outbox_queue_url:
        return None
    return SqsOutbox(settings.outbox_queue_url, region=settings.aws_region, endpoint_url=settings.aws_endpoint_url)

"""The local outbox (``heliport serve``): alert notifications sent in process, with a few retries.

In AWS the evaluator puts notifications on the SQS outbox (``heliport.outbox_sqs``) and the delivery
function sends them; locally there is no queue, so :class:`DirectOutbox` sends each message itself with
:func:`~heliport.alerts.channels.send_notification`: up to :attr:`attempts` attempts for an outcome worth
another (5xx, 429, no answer), with exponential, jittered backoff
(:func:`heliport.retry.send_with_retries`, the one retry loop). A message given up on is logged
(without its Slack URL) and dropped: ``put`` has then done all it can, so it does not raise, and the
alert's state and history are already written. Messages of one ``put`` go out concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from heliport.alerts.channels import mask_url, send_notification
from heliport.config import Settings
from heliport.outbox import EmailMessage, Outbound, SlackMessage
from heliport.retry import send_with_retries

if TYPE_CHECKING:
    from heliport.proxy.transport import UpstreamTransport

__all__ = ["DirectOutbox"]

logger = logging.getLogger("heliport.alerts")


class DirectOutbox:
    """:class:`~heliport.outbox.Outbox` that sends alert notifications in process."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: UpstreamTransport | None = None,
        attempts: int = 3,
        backoff: float = 1.0,
    ) -> None:
        self.settings = settings
        self.attempts = attempts
        self.backoff = backoff
        self._transport = transport
        self._owns_transport = transport is None
        #: (message, error or None) of every message handled, newest last (bounded), for diagnostics.
        self.outcomes: list[tuple[Outbound, str | None]] = []

    def _upstream(self) -> UpstreamTransport:
        if self._transport is None:
            from heliport.alerts.channels import SEND_TIMEOUT
            from heliport.config import Timeouts
            from heliport.proxy.transport import AiohttpTransport

            self._transport = AiohttpTransport(
                Timeouts(connect=min(self.settings.timeouts.connect, SEND_TIMEOUT), read=SEND_TIMEOUT)
            )
        return self._transport

    async def put(self, messages: Sequence[Outbound]) -> None:
        notifications: list[SlackMessage | EmailMessage] = []
        for message in messages:
            if not isinstance(message, SlackMessage | EmailMessage):
                # Webhook deliveries are sent locally by the consumer's WebhookDispatcher.
                raise TypeError(f"DirectOutbox sends alert notifications only, not {type(message).__name__}")
            notifications.append(message)
        await asyncio.gather(*(self._send(message) for message in notifications))

    async def _send(self, message: SlackMessage | EmailMessage) -> None:
        target = mask_url(message.url) if isinstance(message, SlackMessage) else ", ".join(message.to)
        transport = self._upstream()

        async def attempt(_: float | None) -> None:
            await send_notification(message, self.settings, transport)

        sent = await send_with_retries(attempt, attempts=self.attempts, base=self.backoff)
        error = None
        if not sent.ok:
            error = sent.error if sent.final else f"{sent.error} (after {sent.attempts} attempts)"
            logger.warning("alert %s: notification to %s not sent: %s", message.alert_id, target, error)
        self.outcomes.append((message, error))
        del self.outcomes[:-100]

    async def aclose(self) -> None:
        if self._owns_transport and self._transport is not None:
            await self._transport.aclose()
            self._transport = None

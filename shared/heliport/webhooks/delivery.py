"""Delivering stored requests to webhooks: matching, the signed body, retries, the delivery log.

The log consumer hands each stored batch to :meth:`WebhookDispatcher.submit`, which returns at once:
the work runs in tasks of its own, so a slow or dead receiver never slows logging. For each
organisation in the batch the webhooks are read once; a request goes to each webhook whose
``propertyFilters`` all match its properties, sampled at ``sampleRate`` percent.

Each delivery is one JSON body, signed (``Helicone-Signature``, :mod:`heliport.webhooks.signing`) and
POSTed to the destination, 2 minutes per attempt. A 5xx, 429, timeout or connection failure is tried
again after an exponential, jittered backoff, up to :attr:`DeliveryLimits.attempts` attempts; any other
answer is final. The outcome is counted in the webhook's delivery log; a delivery given up on is kept as
a dead letter with the body, which the API lists. At most :attr:`DeliveryLimits.concurrency` deliveries
are in flight and :attr:`DeliveryLimits.max_pending` wait; past that a delivery becomes a dead letter at
once instead of growing the process.

One attempt is :class:`WebhookPoster`'s (check the destination, POST, call the answer
:class:`~heliport.outbox.RetryableDelivery` or :class:`~heliport.outbox.FinalDelivery`), shared with
the AWS delivery function (:mod:`heliport.outbound`), which retries through its queue instead of
sleeping; the attempts and waits here are :func:`heliport.retry.send_with_retries`'s.

Destinations obey the proxy's rules for caller-chosen URLs (:mod:`heliport.proxy.targets`, as the
PostHog export does): https on the default port, no credentials, no address that is not globally
routable, names checked again at connect time by the guarded resolver; origins in
``HELIPORT_TRUSTED_ORIGINS`` skip the checks.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import msgspec

from heliport.config import Settings, Timeouts
from heliport.errors import TargetRefusedError, UpstreamError
from heliport.outbox import FinalDelivery, RetryableDelivery
from heliport.retry import send_with_retries
from heliport.webhooks import DeadLetter, Webhook, WebhookStore
from heliport.webhooks.signing import SIGNATURE_HEADER, link_signature, sign

if TYPE_CHECKING:
    from heliport.logs.record import LogRecord
    from heliport.logs.row import RequestRow
    from heliport.proxy.targets import TargetResolver
    from heliport.proxy.transport import UpstreamTransport

__all__ = [
    "BODY_LIMIT",
    "LINK_LIFETIME",
    "DeliveryLimits",
    "Metadata",
    "Outcome",
    "Payload",
    "WebhookDispatcher",
    "WebhookPoster",
    "build_payload",
    "checked_destination",
    "matches",
]

logger = logging.getLogger("heliport.webhooks")

#: A body longer than this (UTF-8 bytes) is replaced by a note in the payload.
BODY_LIMIT = 10 * 1024
#: Seconds a delivery's ``request_response_url`` stays valid.
LINK_LIFETIME = 1800
#: The field named in refusals of a destination.
DESTINATION = "destination"


class Metadata(msgspec.Struct, kw_only=True, rename="camel"):
    #: USD; null when no price is known.
    cost: float | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    latency_ms: float | None


class Payload(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A delivery's body. ``user_id`` only when set; the last four only with ``includeData``."""

    request_id: str
    request_body: str | None
    response_body: str | None
    user_id: str | msgspec.UnsetType = msgspec.UNSET
    request_response_url: str | msgspec.UnsetType | None = msgspec.UNSET
    model: str | msgspec.UnsetType | None = msgspec.UNSET
    provider: str | msgspec.UnsetType = msgspec.UNSET
    metadata: Metadata | msgspec.UnsetType = msgspec.UNSET


_encoder = msgspec.json.Encoder()


def _clipped(body: str | None, omitted: bool, name: str) -> str | None:
    if omitted or body is None:
        return None
    size = len(body.encode("utf-8", "surrogatepass"))
    if size > BODY_LIMIT:
        return f"[{name} omitted: {size} bytes, over the webhook limit of {BODY_LIMIT} bytes; see request_response_url]"
    return body


def body_link(webhook: Webhook, request_id: str, *, now: float | None = None) -> str:
    """A URL the query API answers with ``{request, response}`` (the full bodies) until it expires, signed
    with the webhook's key (``GET /v1/webhooks/{id}/bodies/{requestId}``)."""
    expires = int(now if now is not None else time.time()) + LINK_LIFETIME
    signature = link_signature(webhook.hmac_key, webhook.org_id, webhook.id, request_id, expires)
    query = urlencode({"org": webhook.org_id, "expires": expires, "signature": signature})
    return f"{webhook.base_url.rstrip('/')}/v1/webhooks/{webhook.id}/bodies/{request_id}?{query}"


def build_payload(webhook: Webhook, record: LogRecord, row: RequestRow) -> bytes:
    """The exact bytes POSTed (and signed) for one stored request."""
    payload = Payload(
        request_id=row.request_id,
        request_body=_clipped(record.request_body, record.omit_request, "request_body"),
        response_body=_clipped(record.response_body, record.omit_response, "response_body"),
    )
    if row.user_id:
        payload.user_id = row.user_id
    if webhook.include_data:
        payload.request_response_url = body_link(webhook, row.request_id) if row.body_key else None
        payload.model = row.model
        payload.provider = row.provider
        payload.metadata = Metadata(
            cost=None if row.cost is None else float(row.cost),
            prompt_tokens=row.prompt_tokens,
            completion_tokens=row.completion_tokens,
            total_tokens=row.total_tokens,
            latency_ms=row.delay_ms,
        )
    return _encoder.encode(payload)


def matches(webhook: Webhook, row: RequestRow, rng: random.Random) -> bool:
    """Every property filter matches (keys case-insensitively, values exactly), then the sample."""
    properties = {key.lower(): value for key, value in row.properties.items()}
    for wanted in webhook.config.property_filters:
        if properties.get(wanted.key.lower()) != wanted.value:
            return False
    rate = webhook.config.sample_rate
    return rate >= 100 or (rate > 0 and rng.uniform(0, 100) < rate)


def checked_destination(resolver: TargetResolver, destination: str, field: str = DESTINATION) -> tuple[str, bool]:
    """The URL to post to and whether it goes through the guarded resolver; :class:`TargetRefusedError`
    (a 400 naming ``field``, ``destination`` by default) when the address rules of caller-chosen URLs
    refuse it (:meth:`~heliport.proxy.targets.TargetResolver.checked_callback`)."""
    return resolver.checked_callback(destination, field)


@dataclass(frozen=True, slots=True)
class DeliveryLimits:
    """How hard a delivery tries; code defaults, not settings."""

    #: Attempts per delivery, the first included.
    attempts: int = 5
    #: Wait before the second attempt; doubled for each further one, with jitter (50-100 %).
    backoff: float = 1.0
    #: Longest wait between two attempts.
    max_backoff: float = 60.0
    #: Longest wait for one attempt's answer (Helicone's 2 minutes).
    attempt_timeout: float = 120.0
    #: Deliveries in flight at once, all webhooks together.
    concurrency: int = 16
    #: Deliveries waiting for a slot; past it a delivery is a dead letter at once.
    max_pending: int = 1000

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff < 0 or self.attempt_timeout <= 0 or self.concurrency < 1:
            raise ValueError("delivery limits must be positive")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one delivery."""

    webhook_id: str
    request_id: str
    delivered: bool
    #: The receiver's last status; None when no answer came.
    status: int | None
    attempts: int
    error: str | None = None


class WebhookPoster:
    """One attempt at a delivery: check the destination, POST the signed body, classify the answer.

    Shared by the in-process :class:`WebhookDispatcher` (which retries by sleeping) and the AWS delivery
    function (:mod:`heliport.outbound`, which retries through the queue), so both apply the same address
    rules and call the same answers retryable. ``transport`` defaults to heliport's upstream transport
    (pooled aiohttp sessions, the guarded one for destinations that are not trusted origins), created on
    the first attempt inside the running loop.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        attempt_timeout: float = 120.0,
        concurrency: int = 16,
        transport: UpstreamTransport | None = None,
    ) -> None:
        self.attempt_timeout = attempt_timeout
        self._settings = settings
        self._concurrency = concurrency
        self._transport = transport
        self._owns_transport = transport is None
        self._resolver: TargetResolver | None = None

    def checked(self, destination: str) -> tuple[str, bool]:
        """The URL to post to and whether it goes through the guarded resolver; :class:`TargetRefusedError`
        when the address rules refuse it."""
        if self._resolver is None:
            from heliport.proxy.targets import TargetResolver

            self._resolver = TargetResolver(self._settings)
        return checked_destination(self._resolver, destination)

    async def post(self, destination: str, body: bytes, signature: str) -> int:
        """One attempt at ``destination``: the status on a 2xx, else :class:`RetryableDelivery` or
        :class:`FinalDelivery` (a destination the address rules refuse is final)."""
        try:
            url, guarded = self.checked(destination)
        except TargetRefusedError as exc:
            raise FinalDelivery(str(exc)) from exc
        return await self.send(url, guarded, body, signature)

    async def send(self, url: str, guarded: bool, body: bytes, signature: str) -> int:
        """One attempt at an already checked URL (:meth:`checked`)."""
        from heliport.proxy.transport import UpstreamRequest

        request = UpstreamRequest(
            method="POST",
            url=url,
            headers=(
                ("content-type", "application/json"),
                ("user-agent", "heliport-webhooks"),
                (SIGNATURE_HEADER.lower(), signature),
            ),
            body=body,
            guarded=guarded,
        )
        within = self.attempt_timeout
        try:
            async with asyncio.timeout(within):
                response = await self._upstream().send(request)
                try:
                    async for _ in response.chunks():  # read and drop: the receiver's answer is not kept
                        pass
                finally:
                    response.close()
        except TargetRefusedError as exc:  # the guarded resolver found a non-public address
            raise FinalDelivery(str(exc)) from exc
        except TimeoutError as exc:
            raise RetryableDelivery(f"no answer within {within:g} s") from exc
        except UpstreamError as exc:
            raise RetryableDelivery(str(exc)) from exc
        status = response.status
        if 200 <= status < 300:
            return status
        if status >= 500 or status == 429:
            raise RetryableDelivery(f"the receiver answered {status}", status)
        raise FinalDelivery(f"the receiver answered {status}", status)

    def _upstream(self) -> UpstreamTransport:
        if self._transport is None:
            from heliport.proxy.transport import AiohttpTransport

            within = self.attempt_timeout
            timeouts = Timeouts(connect=min(self._settings.timeouts.connect, within), read=within)
            self._transport = AiohttpTransport(timeouts, limit_per_host=self._concurrency)
        return self._transport

    async def aclose(self) -> None:
        if self._transport is not None and self._owns_transport:
            await self._transport.aclose()
            self._transport = None


class WebhookDispatcher:
    """Delivers stored requests to their organisations' webhooks; one per consumer, on its event loop.

    ``transport`` defaults to heliport's upstream transport (pooled aiohttp sessions, the guarded one for
    destinations that are not trusted origins), created on the first delivery inside the running loop.
    """

    def __init__(
        self,
        settings: Settings,
        store: WebhookStore,
        *,
        limits: DeliveryLimits | None = None,
        transport: UpstreamTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.limits = limits or DeliveryLimits()
        self.store = store
        self._poster = WebhookPoster(
            settings,
            attempt_timeout=self.limits.attempt_timeout,
            concurrency=self.limits.concurrency,
            transport=transport,
        )
        self._rng = rng or random.Random()
        self._tasks: set[asyncio.Task[object]] = set()
        self._gate: asyncio.Semaphore | None = None
        self._pending = 0
        #: Every outcome, newest last, for tests and diagnostics (bounded).
        self.outcomes: list[Outcome] = []

    # --- hand-off ---------------------------------------------------------------------------------------

    def submit(self, stored: Sequence[tuple[LogRecord, RequestRow]]) -> None:
        """Deliver ``stored`` in the background; returns at once, never raises."""
        if not stored:
            return
        self._spawn(self._dispatch(list(stored)), "heliport-webhooks-dispatch")

    async def settle(self, grace: float | None = None) -> None:
        """Wait until every submitted batch has been delivered or given up; with ``grace`` seconds (shutting
        down), what is still running after it is interrupted and kept as a dead letter."""
        ends = None if grace is None else time.monotonic() + grace
        while self._tasks:
            remaining = None if ends is None else ends - time.monotonic()
            if remaining is not None and remaining <= 0:
                running = list(self._tasks)
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)
                continue  # a delivery spawned meanwhile is cancelled on the next turn
            await asyncio.wait(list(self._tasks), timeout=remaining)

    async def aclose(self) -> None:
        await self._poster.aclose()

    def _spawn(self, work: Coroutine[Any, Any, object], name: str) -> None:
        task: asyncio.Task[object] = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- matching ---------------------------------------------------------------------------------------

    async def _dispatch(self, stored: list[tuple[LogRecord, RequestRow]]) -> None:
        try:
            await self._match(stored)
        except Exception:  # a bug here must stay here: the rows are stored, and the consumer goes on
            logger.exception("webhook dispatch failed unexpectedly for %d stored requests", len(stored))

    async def _match(self, stored: list[tuple[LogRecord, RequestRow]]) -> None:
        by_org: dict[str, list[tuple[LogRecord, RequestRow]]] = {}
        for record, row in stored:
            by_org.setdefault(row.org_id, []).append((record, row))
        for org_id, pairs in by_org.items():
            try:
                webhooks = await self.store.list(org_id)
            except Exception:
                logger.exception(
                    "could not read the webhooks of an organisation; %d requests not delivered", len(pairs)
                )
                continue
            for webhook in webhooks:
                for record, row in pairs:
                    if not matches(webhook, row, self._rng):
                        continue
                    try:
                        body = build_payload(webhook, record, row)
                    except Exception as exc:  # a record no payload can be made of must not stop the others
                        logger.exception("could not build the webhook payload of request %s", row.request_id)
                        await self._give_up(webhook, row.request_id, b"", None, 0, f"payload failed: {exc!r}")
                        continue
                    if self._pending >= self.limits.max_pending:
                        reason = f"skipped: {self._pending} deliveries already waiting (receivers slow or down)"
                        await self._give_up(webhook, row.request_id, body, None, 0, reason)
                        continue
                    self._pending += 1
                    self._spawn(self._deliver(webhook, row.request_id, body), "heliport-webhook-delivery")

    # --- delivery ---------------------------------------------------------------------------------------

    async def _deliver(self, webhook: Webhook, request_id: str, body: bytes) -> Outcome:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.limits.concurrency)
        waiting = True  # counted in _pending until a slot is ours (or the task is cancelled first)
        try:
            async with self._gate:
                waiting = False
                self._pending -= 1
                outcome = await self._attempts(webhook, request_id, body)
        except asyncio.CancelledError:
            # Shutting down mid-delivery: kept as a dead letter, so the request is not silently lost.
            await self._record(webhook, body, Outcome(webhook.id, request_id, False, None, 0, "interrupted: stopped"))
            raise
        finally:
            if waiting:
                self._pending -= 1
        await self._record(webhook, body, outcome)
        return outcome

    async def _attempts(self, webhook: Webhook, request_id: str, body: bytes) -> Outcome:
        limits = self.limits
        try:
            url, guarded = self._poster.checked(webhook.destination)
        except TargetRefusedError as exc:
            return Outcome(webhook.id, request_id, False, None, 0, str(exc))
        signature = sign(webhook.hmac_key, body)

        async def attempt(_: float | None) -> int:
            return await self._poster.send(url, guarded, body, signature)

        sent = await send_with_retries(
            attempt, attempts=limits.attempts, base=limits.backoff, cap=limits.max_backoff, rng=self._rng
        )
        if sent.ok:
            return Outcome(webhook.id, request_id, True, sent.value, sent.attempts)
        error = sent.error if sent.final else f"{sent.error} (after {sent.attempts} attempts)"
        return Outcome(webhook.id, request_id, False, sent.status, sent.attempts, error)

    # --- outcome ----------------------------------------------------------------------------------------

    async def _record(self, webhook: Webhook, body: bytes, outcome: Outcome) -> None:
        """Count the outcome in the delivery log; a failure becomes a dead letter. Never raises."""
        self.outcomes.append(outcome)
        del self.outcomes[:-1000]
        host = urlsplit(webhook.destination).hostname  # never the whole URL: its query may hold a token
        if outcome.delivered:
            logger.info(
                "webhook %s: request %s delivered to %s (status %s, %d attempts)",
                webhook.id, outcome.request_id, host, outcome.status, outcome.attempts,
            )  # fmt: skip
        else:
            logger.warning(
                "webhook %s: request %s not delivered to %s after %d attempts: %s",
                webhook.id, outcome.request_id, host, outcome.attempts, outcome.error,
            )  # fmt: skip
        try:
            await self.store.record_outcome(
                webhook.org_id,
                webhook.id,
                delivered=outcome.delivered,
                status=outcome.status,
                error=outcome.error,
                at=datetime.now(UTC),
            )
            if not outcome.delivered:
                await self._dead_letter(
                    webhook, outcome.request_id, body, outcome.status, outcome.attempts, outcome.error
                )
        except Exception:
            logger.exception(
                "could not record the outcome of webhook %s for request %s", webhook.id, outcome.request_id
            )

    async def _give_up(
        self, webhook: Webhook, request_id: str, body: bytes, status: int | None, attempts: int, error: str
    ) -> None:
        await self._record(webhook, body, Outcome(webhook.id, request_id, False, status, attempts, error))

    async def _dead_letter(
        self, webhook: Webhook, request_id: str, body: bytes, status: int | None, attempts: int, error: str | None
    ) -> None:
        await self.store.add_dead_letter(
            DeadLetter(
                id=str(uuid.uuid4()),
                org_id=webhook.org_id,
                webhook_id=webhook.id,
                request_id=request_id,
                failed_at=datetime.now(UTC),
                attempts=attempts,
                status=status,
                error=error or "not delivered",
                payload=body,
            )
        )

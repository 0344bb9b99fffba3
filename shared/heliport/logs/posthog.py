"""PostHog export: ``Helicone-Posthog-Key`` / ``Helicone-Posthog-Host``, sent by the log consumer.

A request that carries a PostHog project key becomes one ``helicone_request`` event in that PostHog
project, sent after its row is stored, by the log consumer (never on the request's hot path). The
consumer hands each stored batch to :meth:`PostHogExporter.export`, which groups the records by
(host, key) and sends each group in one request: ``POST <host>/capture/`` for one event,
``POST <host>/batch/`` for several (PostHog's public capture API: ``api_key`` in the body, events with
``event``, ``distinct_id``, ``properties``, ``timestamp`` and ``uuid``).

Delivery is best effort and bounded:

- an attempt that meets a 5xx, 408, 429, a timeout or a connection error is tried again after a short
  backoff (``Retry-After`` honoured within the budget), up to :attr:`ExportLimits.attempts` attempts;
  any other answer is final (a 400 or 401 will not get better);
- the whole export of a batch has a deadline (:attr:`ExportLimits.deadline`): what has not been
  delivered by then is given up, so a slow or dead PostHog never holds the consumer for longer;
- nothing raises: the outcome of each record is merged into its stored row's ``checks`` as
  ``{"posthog": {"delivered", "status", "attempts", "error", "host"}}`` and logged (never the key),
  so a failure is visible, and never fails, delays or redelivers the rows.

Each event's ``uuid`` is derived from the organisation and request id, so a record exported twice (an
SQS batch redelivered after its rows were stored) is one event to PostHog, which de-duplicates on it.

The host obeys the proxy's address rules for caller-chosen URLs (:mod:`heliport.proxy.targets`):
https on the default port and a name or address that is globally routable, checked again at connect
time by the guarded resolver of :mod:`heliport.proxy.transport`; an origin listed in
``HELIPORT_TRUSTED_ORIGINS`` skips both (a PostHog inside the VPC). There is no host allow-list:
self-hosted PostHog lives anywhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import msgspec

from heliport.config import Settings, Timeouts
from heliport.errors import TargetRefusedError, UpstreamError
from heliport.outbox import FinalDelivery, RetryableDelivery
from heliport.retry import send_with_retries

if TYPE_CHECKING:
    from heliport.logs.record import LogRecord
    from heliport.logs.row import RequestRow
    from heliport.proxy.targets import TargetResolver
    from heliport.proxy.transport import UpstreamResponse, UpstreamTransport
    from heliport.store.logdb import LogDb

__all__ = [
    "DEFAULT_HOST",
    "EVENT_NAME",
    "BatchPayload",
    "CaptureEvent",
    "CapturePayload",
    "Delivery",
    "EventProperties",
    "ExportLimits",
    "PostHogExporter",
    "capture_event",
    "event_uuid",
]

logger = logging.getLogger("heliport.posthog")

#: Helicone's default when ``Helicone-Posthog-Host`` is absent.
DEFAULT_HOST = "https://app.posthog.com"
#: The event name Helicone exports.
EVENT_NAME = "helicone_request"
#: The header named in refusals of the host.
HOST_HEADER = "Helicone-Posthog-Host"
#: Where event uuids come from (uuid5 of the organisation and the request id).
_EVENT_NAMESPACE = uuid.UUID("0b6f3f8e-57c1-4d7a-9a55-2f4d8f7e6c31")


class EventProperties(msgspec.Struct, kw_only=True, rename="camel"):
    """A ``helicone_request`` event's properties, in Helicone's camelCase names.

    A value heliport does not know is ``null`` (a request with no known price has ``cost: null``, not 0).
    The caller's ``Helicone-Property-*`` headers go, as Helicone sends them, into one object,
    ``customProperties``, keyed by the property name as stored (lower case).
    """

    request_id: str
    model: str | None
    provider: str
    path: str
    status: int
    prompt_tokens: int | None
    completion_tokens: int | None
    #: Helicone's own spelling of ``completionTokens``, so insights built on its export keep working.
    completetion_tokens: int | None = msgspec.field(name="completetionTokens")
    total_tokens: int | None
    #: USD.
    cost: float | None
    #: Whole request, milliseconds.
    delay_ms: float | None
    #: Streams only, milliseconds.
    time_to_first_token: float | None
    user_id: str | None
    session_id: str | None
    session_name: str | None
    session_path: str | None
    prompt_id: str | None
    is_stream: bool
    cache_hit: bool
    custom_properties: dict[str, str]
    #: No user id: the distinct id is the request id, so PostHog must not create a person for it.
    process_person_profile: bool = msgspec.field(name="$process_person_profile")


class CaptureEvent(msgspec.Struct, kw_only=True):
    """One event of a ``/batch/`` request."""

    event: str
    distinct_id: str
    properties: EventProperties
    #: ISO 8601: when the request started.
    timestamp: datetime
    #: PostHog de-duplicates events with the same uuid.
    uuid: str


class BatchPayload(msgspec.Struct, kw_only=True):
    """``POST <host>/batch/``."""

    api_key: str
    batch: list[CaptureEvent]


class CapturePayload(CaptureEvent, kw_only=True):
    """``POST <host>/capture/``: one event, with the key beside it."""

    api_key: str


_encoder = msgspec.json.Encoder()


def event_uuid(org_id: str, request_id: str) -> str:
    """The event's uuid: the same for every export of one request (PostHog de-duplicates on it)."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{org_id}/{request_id}"))


def capture_event(record: LogRecord, row: RequestRow) -> CaptureEvent:
    """The ``helicone_request`` event of a stored request: identity from the record, the numbers from
    its row (model, tokens and cost as the consumer resolved them)."""
    properties = EventProperties(
        request_id=row.request_id,
        model=row.model,
        provider=row.provider,
        path=row.path,
        status=row.status,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        completetion_tokens=row.completion_tokens,
        total_tokens=row.total_tokens,
        cost=None if row.cost is None else float(row.cost),
        delay_ms=row.delay_ms,
        time_to_first_token=row.time_to_first_token,
        user_id=row.user_id,
        session_id=row.session_id,
        session_name=row.session_name,
        session_path=row.session_path,
        prompt_id=row.prompt_id,
        is_stream=row.is_stream,
        cache_hit=row.cache_hit,
        custom_properties=dict(row.properties),
        process_person_profile=row.user_id is not None,
    )
    return CaptureEvent(
        event=EVENT_NAME,
        distinct_id=row.user_id or row.request_id,
        properties=properties,
        timestamp=row.created_at,
        uuid=event_uuid(row.org_id, row.request_id),
    )


@dataclass(frozen=True, slots=True)
class ExportLimits:
    """How hard an export tries. The defaults bound one batch's export to :attr:`deadline` seconds."""

    #: Attempts per (host, key) group, the first included.
    attempts: int = 3
    #: Wait before the second attempt; doubled for each further one, with jitter (50-100 %).
    backoff: float = 0.5
    #: Longest wait for one attempt's answer.
    attempt_timeout: float = 4.0
    #: Longest time one batch's export may take, all groups and retries included.
    deadline: float = 10.0
    #: Groups (requests to PostHog) of one batch in flight at once.
    concurrency: int = 8

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.backoff < 0 or self.attempt_timeout <= 0 or self.deadline <= 0:
            raise ValueError("export limits must be positive")
        if self.concurrency < 1:
            raise ValueError("export concurrency must be at least 1")


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one (host, key) group: merged into each of its rows as ``checks.posthog``."""

    delivered: bool
    host: str
    #: PostHog's last HTTP status; None when no answer came (refused, unreachable, timed out).
    status: int | None
    attempts: int
    error: str | None = None
    events: int = 0

    def as_check(self) -> dict[str, object]:
        return {
            "delivered": self.delivered,
            "status": self.status,
            "attempts": self.attempts,
            "error": self.error,
            "host": self.host,
        }


@dataclass(frozen=True, slots=True)
class _Group:
    host: str
    key: str
    records: list[tuple[str, str]]  # (org_id, request_id) of each event, for the outcome
    events: list[CaptureEvent]


class _Retryable(RetryableDelivery):
    """An attempt that may succeed if tried again: 5xx/408/429, timeout, connection failure; with the
    ``Retry-After`` PostHog asked for, if any."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


def _retry_after_of(exc: RetryableDelivery) -> float | None:
    return exc.retry_after if isinstance(exc, _Retryable) else None


class PostHogExporter:
    """Sends stored requests to PostHog; one per consumer, living as long as its event loop.

    ``transport`` defaults to heliport's own upstream transport (pooled aiohttp sessions, the guarded
    one for hosts that are not trusted origins), created on the first export inside the running loop.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        limits: ExportLimits | None = None,
        transport: UpstreamTransport | None = None,
    ) -> None:
        self.limits = limits or ExportLimits()
        self._settings = settings
        self._transport = transport
        self._owns_transport = transport is None
        self._resolver: TargetResolver | None = None

    @staticmethod
    def wanted(stored: Sequence[tuple[LogRecord, RequestRow]]) -> list[tuple[LogRecord, RequestRow]]:
        """The stored requests that asked for an export (cheap: nothing else is looked at)."""
        return [pair for pair in stored if pair[0].posthog_key]

    async def export(self, stored: Sequence[tuple[LogRecord, RequestRow]], logdb: LogDb) -> list[Delivery]:
        """Send the requests of ``stored`` that asked for it and record each outcome on its row.

        Never raises (cancellation aside) and returns within the deadline plus the time the outcomes take
        to store. Returns one :class:`Delivery` per (host, key) group.
        """
        try:
            groups = self._groups(self.wanted(stored))
            if not groups:
                return []
            deliveries = await self._deliver_all(groups)
            await self._record(groups, deliveries, logdb)
            return deliveries
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug here must not reach the batch: its rows are stored, and SQS must not redeliver them.
            logger.exception("PostHog export failed unexpectedly; %d stored requests were not exported", len(stored))
            return []

    async def give_up(self, stored: Sequence[tuple[LogRecord, RequestRow]], logdb: LogDb, reason: str) -> None:
        """Record on each row that asked for an export that it was not attempted, and why."""
        try:
            groups = self._groups(self.wanted(stored))
            deliveries = [Delivery(False, g.host, None, 0, reason, len(g.events)) for g in groups]
            for delivery in deliveries:
                logger.warning("PostHog export to %s skipped for %d events: %s", delivery.host, delivery.events, reason)
            await self._record(groups, deliveries, logdb)
        except Exception:
            logger.exception("could not record skipped PostHog exports")

    async def aclose(self) -> None:
        if self._transport is not None and self._owns_transport:
            await self._transport.aclose()
            self._transport = None

    # --- grouping -----------------------------------------------------------------------------------------

    @staticmethod
    def _groups(pairs: Sequence[tuple[LogRecord, RequestRow]]) -> list[_Group]:
        grouped: dict[tuple[str, str], _Group] = {}
        for record, row in pairs:
            key = record.posthog_key or ""
            host = (record.posthog_host or DEFAULT_HOST).strip().rstrip("/")
            group = grouped.get((host, key))
            if group is None:
                group = grouped[(host, key)] = _Group(host, key, [], [])
            group.records.append((row.org_id, row.request_id))
            group.events.append(capture_event(record, row))
        return list(grouped.values())

    # --- delivery -----------------------------------------------------------------------------------------

    async def _deliver_all(self, groups: Sequence[_Group]) -> list[Delivery]:
        limits = self.limits
        ends = time.monotonic() + limits.deadline
        gate = asyncio.Semaphore(limits.concurrency)
        attempts = [0] * len(groups)

        async def one(index: int, group: _Group) -> Delivery:
            async with gate:
                return await self._deliver(group, ends, attempts, index)

        tasks = [asyncio.create_task(one(i, g)) for i, g in enumerate(groups)]
        done, pending = await asyncio.wait(tasks, timeout=limits.deadline)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        deliveries: list[Delivery] = []
        for index, (task, group) in enumerate(zip(tasks, groups, strict=True)):
            if task in done and not task.cancelled() and task.exception() is None:
                deliveries.append(task.result())
            else:
                error = f"gave up after the export deadline of {limits.deadline:g} s"
                if task in done and not task.cancelled() and task.exception() is not None:
                    error = f"export failed: {type(task.exception()).__name__}"
                deliveries.append(Delivery(False, group.host, None, attempts[index], error, len(group.events)))
        for delivery in deliveries:
            if delivery.delivered:
                logger.info(
                    "PostHog: delivered %d events to %s (status %s, %d attempts)",
                    delivery.events,
                    delivery.host,
                    delivery.status,
                    delivery.attempts,
                )
            else:
                logger.warning(
                    "PostHog: %d events not delivered to %s after %d attempts: %s",
                    delivery.events,
                    delivery.host,
                    delivery.attempts,
                    delivery.error,
                )
        return deliveries

    async def _deliver(self, group: _Group, ends: float, attempts: list[int], index: int) -> Delivery:
        """One group, with retries, within the batch's deadline ``ends`` (monotonic)."""
        limits = self.limits
        count = len(group.events)
        try:
            url, guarded = self._destination(group.host)
        except TargetRefusedError as exc:
            return Delivery(False, group.host, None, 0, str(exc), count)
        if count == 1:
            event = group.events[0]
            body = _encoder.encode(
                CapturePayload(
                    api_key=group.key,
                    event=event.event,
                    distinct_id=event.distinct_id,
                    properties=event.properties,
                    timestamp=event.timestamp,
                    uuid=event.uuid,
                )
            )
            url += "/capture/"
        else:
            body = _encoder.encode(BatchPayload(api_key=group.key, batch=group.events))
            url += "/batch/"

        async def attempt(remaining: float | None) -> int:
            within = limits.attempt_timeout if remaining is None else min(limits.attempt_timeout, remaining)
            return await self._post(url, body, guarded, within, group.key)

        def started(number: int) -> None:
            attempts[index] = number  # read if the deadline cancels this group mid-attempt

        sent = await send_with_retries(
            attempt,
            attempts=limits.attempts,
            base=limits.backoff,
            ends=ends,
            least_wait=_retry_after_of,
            started=started,
        )
        return Delivery(sent.ok, group.host, sent.value if sent.ok else sent.status, sent.attempts, sent.error, count)

    async def _post(self, url: str, body: bytes, guarded: bool, within: float, key: str) -> int:
        """One attempt: the status on a 2xx, else :class:`_Retryable` or :class:`FinalDelivery`."""
        from heliport.proxy.transport import UpstreamRequest

        transport = self._upstream()
        request = UpstreamRequest(
            method="POST",
            url=url,
            headers=(("content-type", "application/json"), ("user-agent", "heliport-posthog-export")),
            body=body,
            guarded=guarded,
        )
        try:
            async with asyncio.timeout(within):
                response = await transport.send(request)
                try:
                    text = await _read_some(response)
                finally:
                    response.close()
        except TargetRefusedError as exc:  # the guarded resolver found a non-public address
            raise FinalDelivery(f"{HOST_HEADER} refused: {exc}") from exc
        except TimeoutError as exc:  # UpstreamTimeoutError is one too
            raise _Retryable(f"no answer within {within:.1f} s") from exc
        except UpstreamError as exc:
            raise _Retryable(str(exc)) from exc
        status = response.status
        if 200 <= status < 300:
            return status
        detail = text.replace(key, "***")[:200] if key else text[:200]  # an echo of the key stays out of the row
        message = f"PostHog answered {status}" + (f": {detail}" if detail else "")
        if status >= 500 or status in (408, 429):
            raise _Retryable(message, status, _retry_after(response.headers))
        raise FinalDelivery(message, status)

    def _upstream(self) -> UpstreamTransport:
        if self._transport is None:
            from heliport.proxy.transport import AiohttpTransport

            # Read timeout per silence; the per-attempt timeout above bounds the whole exchange.
            limits = self.limits
            timeouts = Timeouts(
                connect=min(self._settings.timeouts.connect, limits.attempt_timeout), read=limits.attempt_timeout
            )
            self._transport = AiohttpTransport(timeouts, limit_per_host=limits.concurrency)
        return self._transport

    def _destination(self, host: str) -> tuple[str, bool]:
        """The base URL to post to and whether it must go through the guarded resolver.

        The origin goes through the proxy's own check of caller-chosen URLs
        (:meth:`heliport.proxy.targets.TargetResolver._checked_origin`): trusted origins pass as they are;
        any other must be https on the default port and not name a non-public address. Its provider-host
        allow-list does not apply to PostHog (self-hosted instances live anywhere), so the host itself is
        given as the allow-list. A path after the host (PostHog behind a reverse proxy) is kept.
        """
        if self._resolver is None:
            from heliport.proxy.targets import TargetResolver

            self._resolver = TargetResolver(self._settings)
        try:
            parts = urlsplit(host)
            name = (parts.hostname or "").lower()
        except ValueError:
            raise TargetRefusedError(f"{HOST_HEADER} is not a valid URL: {host!r}", param=HOST_HEADER) from None
        origin, guarded = self._resolver._checked_origin(host, HOST_HEADER, (name,))
        return origin + parts.path.rstrip("/"), guarded

    # --- outcome ------------------------------------------------------------------------------------------

    @staticmethod
    async def _record(groups: Sequence[_Group], deliveries: Sequence[Delivery], logdb: LogDb) -> None:
        """Merge each outcome into its rows' ``checks``; a failure here is logged, never raised."""
        merges = [
            logdb.merge_checks(org_id, request_id, {"posthog": delivery.as_check()})
            for group, delivery in zip(groups, deliveries, strict=True)
            for org_id, request_id in group.records
        ]
        results = await asyncio.gather(*merges, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            logger.error(
                "could not record the PostHog outcome on %d of %d rows: %r", len(failures), len(results), failures[0]
            )


async def _read_some(response: UpstreamResponse, limit: int = 4096) -> str:
    """The start of the answer's body (for the error message), the rest read and dropped."""
    kept = bytearray()
    async for chunk in response.chunks():
        if len(kept) < limit:
            kept += chunk[: limit - len(kept)]
    return kept.decode("utf-8", "replace").strip()


def _retry_after(headers: Sequence[tuple[bytes, bytes]]) -> float | None:
    """``Retry-After`` in seconds, when it is a number (an HTTP date is ignored: the backoff applies)."""
    for name, value in headers:
        if name.lower() == b"retry-after":
            try:
                seconds = float(value.decode("latin-1").strip())
            except ValueError:
                return None
            return seconds if seconds >= 0 else None
    return None

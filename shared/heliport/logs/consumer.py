"""The log consumer: LogRecords in, request rows and stored bodies out.

One code path serves both deployments: the SQS Lambda (``functions/logger``) calls
:func:`handle_sqs_batch`, and ``heliport serve`` runs :class:`LocalConsumer` over its SQLite queue.
Both hand records to :class:`LogWriter`, which for each record resolves the model, extracts usage,
prices it, writes the bodies to the blob store (small ones ride on the row instead) and then the rows,
one batch insert per call.

Writing is idempotent (a redelivered record leaves one row), so every failure can simply be retried:
a record that cannot be decoded fails alone (and ends in the DLQ after its retries); a database
outage fails the whole batch, whose messages come back once the queue's visibility timeout passes.
A record logged in parts (a realtime session, ``LogRecord.part``) is upserted instead: only a part at
least as high as the stored one replaces the row and its bodies, so an old part redelivered late
changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypedDict, TypeVar, runtime_checkable
from urllib.parse import urlsplit

import msgspec

from heliport.background import pause_point
from heliport.config import Settings
from heliport.logs.cost import compute_cost
from heliport.logs.posthog import PostHogExporter
from heliport.logs.previews import request_preview, response_preview
from heliport.logs.record import LogRecord
from heliport.logs.row import RequestRow
from heliport.logs.spool import load_bodies
from heliport.logs.stored_bodies import INLINE_BODY_BYTES, placed
from heliport.logs.usage import Usage, extract_usage, resolve_model
from heliport.store.blobs import BlobStore
from heliport.store.logdb import DeadLetter, LogDb, RowRejectedError, as_utc

if TYPE_CHECKING:
    from heliport.store.queue import Queued
    from heliport.webhooks.delivery import WebhookDispatcher
    from heliport.webhooks.fanout import WebhookFanOut

__all__ = [
    "MAX_ATTEMPTS",
    "LocalConsumer",
    "LogWriter",
    "PartLogDb",
    "WriteOutcome",
    "bare_row",
    "body_key",
    "build_row",
    "build_row_safely",
    "handle_sqs_batch",
]

logger = logging.getLogger("heliport.consumer")

_record_decoder = msgspec.json.Decoder(LogRecord)
_body_encoder = msgspec.json.Encoder()


def body_key(org_id: str, request_id: str) -> str:
    """Where a request's bodies live; Helicone's layout, so its tooling finds them."""
    return f"organizations/{org_id}/requests/{request_id}/raw_request_response_body"


def build_row(record: LogRecord, *, read_bodies: bool = True) -> tuple[RequestRow, bytes | None]:
    """The row for a record, and the gzip JSON of its bodies (None when both were omitted).

    With ``read_bodies=False`` the bodies are kept as they are but not read: no usage from them, no
    previews. That is the writer's fallback for a record whose bodies break the reading (see
    :func:`build_row_safely`).
    """
    # Async-log records carry a placeholder target ("custom-model-nopath"); their route names the format.
    is_url = record.target_url.startswith(("https://", "http://"))
    path = (urlsplit(record.target_url).path if is_url else "") or record.path
    if record.usage is not None or not read_bodies:
        usage = record.usage or Usage()
    else:
        usage = extract_usage(
            provider=record.provider,
            path=path,
            response_body=record.response_body,
            is_stream=record.is_stream,
            request_body=record.request_body,
        )
    model = resolve_model(
        model_override=record.model_override,
        response_model=usage.response_model,
        request_model=record.request_model,
        path=path,
    )
    if record.cache_hit:
        cost_amount: Decimal | None = Decimal(0)
        cost_source: str | None = "cache hit"
    else:
        cost = compute_cost(model=model, provider=record.provider, usage=usage, at=record.started_at)
        cost_amount, cost_source = cost.amount, cost.source
    status = record.status
    errors = list(record.errors)
    if usage.stream_error is not None and 200 <= status < 300:
        # The stream answered 200 and then failed (Anthropic's overloaded `event: error`).
        status = usage.stream_error_status or 500
        errors.append(f"stream error: {usage.stream_error}")
    request_body = None if record.omit_request else record.request_body
    response_body = None if record.omit_response else record.response_body
    blob: bytes | None = None
    key: str | None = None
    if request_body is not None or response_body is not None:
        key = body_key(record.org_id, record.request_id)
        bodies: dict[str, str | None] = {"request": request_body, "response": response_body}
        if record.native_request_body is not None or record.native_response_body is not None:
            # The AI gateway's translated calls: what the provider itself saw and said, beside the OpenAI shape.
            bodies["nativeRequest"] = None if record.omit_request else record.native_request_body
            bodies["nativeResponse"] = None if record.omit_response else record.native_response_body
        blob = gzip.compress(_body_encoder.encode(bodies), 5)
    row = RequestRow(
        request_id=record.request_id,
        org_id=record.org_id,
        key_id=record.key_id,
        created_at=record.started_at,
        response_created_at=record.started_at + timedelta(milliseconds=record.duration_ms),
        status=status,
        provider=record.provider,
        target_url=record.target_url,
        path=record.path,
        method=record.method,
        is_stream=record.is_stream,
        model=model,
        request_model=record.request_model,
        model_override=record.model_override,
        user_id=record.user_id,
        properties=record.properties,
        session_id=record.session_id,
        session_path=record.session_path,
        session_name=record.session_name,
        prompt_id=record.prompt_id,
        delay_ms=record.duration_ms,
        time_to_first_token=record.ttfb_ms if record.is_stream else None,
        **_usage_columns(usage),
        cost=cost_amount,
        cost_source=cost_source,
        cache_hit=record.cache_hit,
        cache_reference_id=record.cache_reference_id,
        cache_latency_saved_ms=record.cached_latency_ms,
        rate_limited=record.rate_limited,
        retry_count=record.retry_count,
        fallback_index=record.fallback_index,
        gateway_provider=record.gateway_provider,
        gateway_model=record.gateway_model,
        gateway_attempts=record.gateway_attempts,
        errors=errors,
        checks=record.facts,
        omit_request=record.omit_request,
        omit_response=record.omit_response,
        body_key=key,
        request_preview=request_preview(request_body) if read_bodies else None,
        response_preview=response_preview(response_body, record.is_stream) if read_bodies else None,
    )
    return row, blob


def build_row_safely(record: LogRecord) -> tuple[RequestRow, bytes | None]:
    """:func:`build_row`, or when reading the bodies fails (nesting deeper than a decoder goes, a
    shape no reader foresaw), the row without what the bodies would have told, the bodies kept
    unread in the blob and the reason in ``errors``. A record's content must never stop its own
    logging, let alone the records queued behind it."""
    try:
        return build_row(record)
    except Exception as exc:  # RecursionError included: it is a RuntimeError
        logger.warning("could not read the bodies of request %s: %r; storing it without", record.request_id, exc)
        note = f"logged without reading its bodies ({type(exc).__name__}: {str(exc)[:200]})"
        return build_row(msgspec.structs.replace(record, errors=[*record.errors, note]), read_bodies=False)


#: Properties and text columns of a bare row are cut to this many characters: PostgreSQL's B-tree
#: entries stop at ~2,700 bytes, and a character takes up to 4.
_BARE_TEXT = 500


def bare_row(row: RequestRow, reason: str) -> RequestRow:
    """The row with only what cannot be refused: identity, times, status and route, clipped text,
    no token counts or cost, and ``reason`` in its errors. Stored when the database refused the full
    row for its values, so the request still shows up (and its bodies stay reachable)."""

    def clip(text: str | None) -> str | None:
        return None if text is None else text[:_BARE_TEXT]

    return RequestRow(
        request_id=row.request_id,
        org_id=row.org_id,
        key_id=row.key_id,
        created_at=row.created_at,
        response_created_at=row.response_created_at,
        status=row.status,
        provider=row.provider[:_BARE_TEXT],
        target_url=row.target_url[:_BARE_TEXT],
        path=row.path[:_BARE_TEXT],
        method=row.method[:_BARE_TEXT],
        is_stream=row.is_stream,
        model=clip(row.model),
        user_id=clip(row.user_id),
        session_id=clip(row.session_id),
        delay_ms=row.delay_ms,
        cache_hit=row.cache_hit,
        rate_limited=row.rate_limited,
        retry_count=row.retry_count,
        errors=[e[:_BARE_TEXT] for e in row.errors[:20]] + [f"stored as a bare row: {reason[:_BARE_TEXT]}"],
        omit_request=row.omit_request,
        omit_response=row.omit_response,
        body_key=row.body_key,
        body_inline=row.body_inline,
    )


#: Where the writer's renamed ids come from (uuid5 of the organisation, the given id and the instant).
_REUSED_ID_NAMESPACE = uuid.UUID("5f1c7a2e-9b7d-4c0e-8a51-6c7f3f0e2d19")
#: The property that keeps a reused request id on the row stored under a fresh one.
REUSED_ID_PROPERTY = "helicone-reused-request-id"


def renamed(record: LogRecord) -> LogRecord:
    """The record under a fresh id, for a request id its organisation already used for another request.

    The fresh id is derived from the organisation, the given id and the request's start, so a
    redelivery of the same record gets the same one (and is ignored like any redelivery); the given
    id stays on the row as the ``helicone-reused-request-id`` property.
    """
    fresh = str(
        uuid.uuid5(_REUSED_ID_NAMESPACE, f"{record.org_id}/{record.request_id}/{record.started_at.isoformat()}")
    )
    return msgspec.structs.replace(
        record,
        request_id=fresh,
        properties={**record.properties, REUSED_ID_PROPERTY: record.request_id},
        errors=[
            *record.errors,
            f"request id {record.request_id} was already used by another request of this organisation;"
            f" stored as {fresh}",
        ],
    )


#: Usage fields that are also row columns, response_model included (Usage carries a few more, for pricing).
_USAGE_COLUMNS = tuple(f for f in Usage.__struct_fields__ if f in RequestRow.__struct_fields__ and f != "source")


def _usage_columns(usage: Usage) -> dict[str, Any]:
    return {**{f: getattr(usage, f) for f in _USAGE_COLUMNS}, "usage_source": usage.source}


@runtime_checkable
class PartLogDb(Protocol):
    """A log database that can also upsert the rows of requests logged in parts."""

    async def upsert_parts(self, parts: Sequence[tuple[RequestRow, int]]) -> list[tuple[str, str]]:
        """Store each (row, part) unless the stored part of that request is higher; return the
        (org_id, request_id) of each row written (a part equal to the stored one is written again, so a
        redelivery after a failed body write completes it)."""
        ...


@dataclass(frozen=True, slots=True)
class WriteOutcome:
    """What :meth:`LogWriter.write` did with a batch."""

    #: Rows newly stored (or, for parts, written).
    written: int = 0
    #: Position in the batch -> why that record could not be stored even as a bare row.
    failed: dict[int, str] = field(default_factory=dict)
    #: Each record now stored (or already stored: a redelivery) with the row built from it, for what
    #: follows storage (the PostHog export). A part that lost to a higher stored part is not here.
    stored: tuple[tuple[LogRecord, RequestRow], ...] = ()


class LogWriter:
    """Stores records: bodies to the blob store first, then all rows in one idempotent insert.

    Bodies whose gzip JSON is at most ``inline_bytes`` long are kept on the row instead
    (:mod:`heliport.logs.stored_bodies`): no blob-store PUT for them; 0 puts every one in the blob store.

    Records logged in parts take the other order: the row is upserted first and the bodies are
    written only when the part won, so an older part's bodies never overwrite a newer part's.

    One record never holds up the others. A record whose bodies cannot be read is stored without
    reading them (:func:`build_row_safely`); when the database refuses a batch for its values
    (:class:`RowRejectedError`), each row is tried alone, then as a :func:`bare_row`; what still fails
    is reported in :attr:`WriteOutcome.failed` for the caller to retry and, in the end, dead-letter.
    Any other error (the database or blob store unreachable) fails the whole batch: nothing is lost,
    the queue gives it back.
    """

    def __init__(self, logdb: LogDb, blobs: BlobStore, *, inline_bytes: int = INLINE_BODY_BYTES) -> None:
        self.logdb = logdb
        self.blobs = blobs
        self.inline_bytes = inline_bytes

    async def write(self, records: Sequence[LogRecord]) -> WriteOutcome:
        """Store every record it can; raise only when storage itself is unavailable."""
        records = await self._own_ids(records)
        positions = [i for i, r in enumerate(records) if r.part is not None]
        outcome = await self._write_parts([records[i] for i in positions], positions) if positions else WriteOutcome()
        whole = [i for i, r in enumerate(records) if r.part is None]
        if not whole:
            return outcome
        built = [self._built(await self._with_bodies(records[i])) for i in whole]
        await self._put_bodies(built)
        written, failed = await _isolated(self.logdb.insert_requests, [row for row, _ in built], whole, bare=bare_row)
        stored = tuple((records[i], row) for i, (row, _) in zip(whole, built, strict=True) if i not in failed)
        return WriteOutcome(outcome.written + written, {**outcome.failed, **failed}, outcome.stored + stored)

    async def _own_ids(self, records: Sequence[LogRecord]) -> Sequence[LogRecord]:
        """Rename each record whose id its organisation already used for another request (another
        instant; the same instant is a redelivery, which the insert ignores)."""
        whole = [(i, r) for i, r in enumerate(records) if r.part is None]
        if not whole:
            return records
        stored = await self.logdb.stored_times([(r.org_id, r.request_id) for _, r in whole])
        seen: dict[tuple[str, str], set[datetime]] = {}
        out = list(records)
        for i, record in whole:
            key, at = (record.org_id, record.request_id), as_utc(record.started_at)
            taken = stored.get(key, set()) | seen.get(key, set())
            if taken and at not in taken:
                out[i] = renamed(record)
            else:
                seen.setdefault(key, set()).add(at)
        return out

    async def _put_bodies(self, built: Sequence[tuple[RequestRow, bytes | None]]) -> None:
        await asyncio.gather(
            *(
                self.blobs.put(row.body_key, blob, content_type="application/json", content_encoding="gzip")
                for row, blob in built
                if blob is not None and row.body_key is not None
            )
        )

    async def _write_parts(self, records: Sequence[LogRecord], positions: Sequence[int]) -> WriteOutcome:
        if not isinstance(self.logdb, PartLogDb):
            raise TypeError(f"{type(self.logdb).__name__} cannot upsert records logged in parts")
        latest: dict[tuple[str, str], tuple[int, LogRecord]] = {}
        for position, record in zip(positions, records, strict=True):
            # a batch may hold several parts of one request: only the highest counts
            key = (record.org_id, record.request_id)
            seen = latest.get(key)
            if seen is None or (seen[1].part or 0) < (record.part or 0):
                latest[key] = (position, record)
        built = [(self._built(await self._with_bodies(r)), r.part or 0) for _, r in latest.values()]
        upsert = self.logdb.upsert_parts
        won: set[tuple[str, str]] = set()

        async def store(rows: Sequence[tuple[RequestRow, int]]) -> int:
            keys = await upsert(rows)
            won.update(keys)
            return len(keys)

        written, failed = await _isolated(
            store, [(row, part) for (row, _), part in built], [p for p, _ in latest.values()], bare=_bare_part
        )
        await self._put_bodies([(row, blob) for (row, blob), _ in built if (row.org_id, row.request_id) in won])
        stored = tuple(
            (record, row)
            for ((row, _), _), (_, record) in zip(built, latest.values(), strict=True)
            if (row.org_id, row.request_id) in won
        )
        return WriteOutcome(written, failed, stored)

    def _built(self, record: LogRecord) -> tuple[RequestRow, bytes | None]:
        """The row and the blob still to put: small bodies travel on the row."""
        row, blob = build_row_safely(record)
        built = placed(row, blob, self.inline_bytes)
        pause_point()  # in serve's pipeline process, the proxy's turn at the core (heliport.background)
        return built

    async def _with_bodies(self, record: LogRecord) -> LogRecord:
        return await load_bodies(record, self.blobs) if record.bodies_key else record


def _bare_part(item: tuple[RequestRow, int], reason: str) -> tuple[RequestRow, int]:
    return bare_row(item[0], reason), item[1]


_T = TypeVar("_T")


async def _isolated(
    store: Callable[[Sequence[_T]], Awaitable[int]],
    items: Sequence[_T],
    positions: Sequence[int],
    *,
    bare: Callable[[_T, str], _T],
) -> tuple[int, dict[int, str]]:
    """``store(items)``; when the database refuses them for their values, each alone, then each refused
    one in its bare form. Returns how many were stored and, by position, why the others were not."""
    try:
        return await store(items), {}
    except RowRejectedError as exc:
        logger.warning("the database refused a batch of %d rows (%s); storing them one by one", len(items), exc)
    written, failed = 0, {}
    for position, item in zip(positions, items, strict=True):
        try:
            written += await store([item])
            continue
        except RowRejectedError as exc:
            reason = str(exc)
        try:
            written += await store([bare(item, reason)])
        except RowRejectedError as exc:
            failed[position] = f"{reason}; as a bare row: {exc}"
    return written, failed


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class BatchResponse(TypedDict):
    batchItemFailures: list[BatchItemFailure]


#: How many times a record the database refuses is tried before it becomes a dead letter. Below the log
#: queue's maxReceiveCount (5, template.yaml), so the consumer sets it aside with its reason before SQS
#: would move it, reasonless, to the DLQ.
MAX_ATTEMPTS = 3


def dead_letter(
    record: LogRecord | None, raw: bytes, *, attempts: int, error: str, at: datetime | None = None
) -> DeadLetter:
    return DeadLetter(
        org_id=record.org_id if record else None,
        request_id=record.request_id if record else None,
        failed_at=at or datetime.now(UTC),
        attempts=attempts,
        error=error,
        record=raw,
    )


async def handle_sqs_batch(
    event: Mapping[str, Any],
    writer: LogWriter,
    *,
    max_attempts: int = MAX_ATTEMPTS,
    exporter: PostHogExporter | None = None,
    webhooks: WebhookFanOut | None = None,
) -> BatchResponse:
    """The SQS event source's batch, reporting only the messages that failed (ReportBatchItemFailures).

    A record refused for its values is given back until its ``max_attempts``-th receive, then kept as a
    dead letter in the log database (with the reason) and acknowledged; an undecodable message is a
    dead letter at once. If the dead letter cannot be stored either, the message is given back, and
    after maxReceiveCount receives SQS moves it to the DLQ: still never dropped.

    With an ``exporter``, the stored requests that asked for it are then sent to PostHog, last: the
    invocation waits for it (a frozen Lambda sends nothing), at most the exporter's deadline, and its
    outcome never changes the batch's answer, so SQS never redelivers a message for PostHog's sake.

    With ``webhooks``, the stored requests (not the parts of realtime sessions) are first handed to the
    organisations' webhooks: one delivery per (webhook, request) put on the outbox queue, which the
    delivery function sends. Nothing acknowledged may be lost, so when the hand-over fails (the webhooks
    unreadable, the outbox queue refusing) the messages of the organisations concerned are reported
    failed and SQS brings them back: storing them again changes nothing (rows are written
    idempotently, PostHog de-duplicates on the event's uuid, the sample is drawn the same way), and the
    hand-over is tried again; a receiver may then get a delivery twice, as SQS's at-least-once allows.
    From the ``max_attempts``-th receive on, a failed hand-over is logged and the message acknowledged:
    an outbox outage must never push stored log records to the log queue's DLQ.
    """
    messages = list(event.get("Records", []))
    decoded: list[tuple[dict[str, Any], LogRecord]] = []
    letters: list[tuple[str, DeadLetter]] = []
    failures: list[BatchItemFailure] = []
    for message in messages:
        body = message["body"]
        try:
            decoded.append((message, _record_decoder.decode(body)))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            logger.error("unreadable log record in message %s: %s", message["messageId"], exc)
            error = f"unreadable log record: {exc}"
            letters.append(
                (message["messageId"], dead_letter(None, body.encode(), attempts=_receives(message), error=error))
            )
    outcome = WriteOutcome()
    if decoded:
        try:
            outcome = await writer.write([record for _, record in decoded])
        except Exception:
            logger.exception("could not store a batch of %d records; they will be redelivered", len(decoded))
            failures.extend({"itemIdentifier": m["messageId"]} for m, _ in decoded)
            outcome = WriteOutcome()
        for position, reason in outcome.failed.items():
            message, record = decoded[position]
            if _receives(message) >= max_attempts:
                letter = dead_letter(record, message["body"].encode(), attempts=_receives(message), error=reason)
                letters.append((message["messageId"], letter))
            else:
                logger.error("request %s was refused (%s); it will be tried again", record.request_id, reason)
                failures.append({"itemIdentifier": message["messageId"]})
    if letters:
        try:
            await writer.logdb.add_dead_letters([letter for _, letter in letters])
            logger.error("kept %d log records as dead letters (heliport logs dead-letters list)", len(letters))
        except Exception:
            logger.exception("could not keep %d dead letters; SQS will redeliver them", len(letters))
            failures.extend({"itemIdentifier": message_id} for message_id, _ in letters)
    if webhooks is not None and outcome.stored:
        handed = await webhooks.hand_over(outcome.stored)  # never raises
        if handed.failed_orgs:
            failures.extend(_again_for_webhooks(decoded, failures, handed.failed_orgs, max_attempts))
    if exporter is not None and PostHogExporter.wanted(outcome.stored):
        await exporter.export(outcome.stored, writer.logdb)  # never raises; bounded by its deadline
    return {"batchItemFailures": failures}


def _again_for_webhooks(
    decoded: Sequence[tuple[Mapping[str, Any], LogRecord]],
    failures: Sequence[BatchItemFailure],
    orgs: frozenset[str],
    max_attempts: int,
) -> list[BatchItemFailure]:
    """The messages to bring back because their webhook deliveries could not be queued: the whole
    requests of ``orgs`` not already failed, while their receives are below ``max_attempts``."""
    already = {failure["itemIdentifier"] for failure in failures}
    again: list[BatchItemFailure] = []
    lost = 0
    for message, record in decoded:
        if record.org_id not in orgs or record.part is not None or message["messageId"] in already:
            continue
        if _receives(message) < max_attempts:
            again.append({"itemIdentifier": message["messageId"]})
        else:
            lost += 1
    if again:
        logger.error("webhook deliveries not queued; %d stored records will be redelivered for them", len(again))
    if lost:
        logger.error("webhook deliveries of %d stored requests given up after %d receives", lost, max_attempts)
    return again


def _receives(message: Mapping[str, Any]) -> int:
    """How many times SQS has delivered this message, this time included."""
    try:
        return int(message.get("attributes", {}).get("ApproximateReceiveCount", 1))
    except (TypeError, ValueError):
        return 1


#: Seconds ``heliport serve`` waits, when stopping, for webhook deliveries still in flight.
WEBHOOK_GRACE = 10.0


class LocalConsumer:
    """``heliport serve``'s consumer: drains the SQLite queue into the log database.

    Mirrors :func:`handle_sqs_batch`: a record refused ``max_attempts`` times, or one that cannot be
    decoded, becomes a dead letter and the queue moves on; an outage leaves the whole batch queued.

    With an ``exporter``, each batch's stored requests that asked for it are sent to PostHog by a task
    of their own once the batch is settled, so the next batch is stored meanwhile. At most
    ``max_exports`` batches' exports are in flight (each bounded by the exporter's deadline); beyond
    that a batch's export is skipped and its rows say so, rather than the consumer waiting on PostHog.
    """

    def __init__(
        self,
        queue: Any,
        writer: LogWriter,
        *,
        batch: int = 100,
        idle_seconds: float = 0.2,
        max_attempts: int = MAX_ATTEMPTS,
        exporter: PostHogExporter | None = None,
        max_exports: int = 16,
        webhooks: WebhookDispatcher | None = None,
    ) -> None:
        self._queue = queue
        self._writer = writer
        self._batch = batch
        self._idle = idle_seconds
        self._max_attempts = max_attempts
        self._task: asyncio.Task[None] | None = None
        self._exporter = exporter
        self._max_exports = max_exports
        self._exports: set[asyncio.Task[object]] = set()
        self._webhooks = webhooks

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="heliport-consumer")

    async def drain_once(self) -> int:
        """Store what is queued now; returns how many records were handled."""
        items: list[Queued] = await asyncio.to_thread(self._queue.receive, self._batch)
        if not items:
            return 0
        readable = [item for item in items if item.record is not None]
        outcome = await self._writer.write([item.record for item in readable if item.record is not None])
        letters: list[DeadLetter] = []
        again: list[int] = []
        settled = {item.seq for item in readable}
        for item in items:
            if item.record is None:
                error = f"unreadable log record: {item.error}"
                letters.append(dead_letter(None, item.body, attempts=item.attempts + 1, error=error))
                settled.add(item.seq)
        for position, reason in outcome.failed.items():
            item = readable[position]
            if item.attempts + 1 >= self._max_attempts:
                letters.append(dead_letter(item.record, item.body, attempts=item.attempts + 1, error=reason))
            else:
                logger.error("request %s was refused (%s); it will be tried again", item.request_id, reason)
                settled.discard(item.seq)
                again.append(item.seq)
        if letters:
            await self._writer.logdb.add_dead_letters(letters)
            logger.error("kept %d log records as dead letters (heliport logs dead-letters list)", len(letters))
        await asyncio.to_thread(self._queue.delete, sorted(settled))
        if again:
            await asyncio.to_thread(self._queue.retry_later, again)
        if self._exporter is not None:
            await self._export(self._exporter, PostHogExporter.wanted(outcome.stored))
        if self._webhooks is not None:
            self._deliver(self._webhooks, outcome.stored)
        return len(items)

    @staticmethod
    def _deliver(webhooks: WebhookDispatcher, stored: Sequence[tuple[LogRecord, RequestRow]]) -> None:
        """Hand the batch's stored requests to the webhooks, which deliver them in tasks of their own.

        Records logged in parts (realtime sessions) are left out: each part rewrites one row, and a
        receiver must get a request once, not once per part.
        """
        whole = [pair for pair in stored if pair[0].part is None]
        if not whole:
            return
        try:
            webhooks.submit(whole)
        except Exception:  # a webhook bug must never fail a batch whose rows are stored
            logger.exception("could not hand %d stored requests to the webhooks", len(whole))

    async def _export(self, exporter: PostHogExporter, wanted: Sequence[tuple[LogRecord, RequestRow]]) -> None:
        if not wanted:
            return
        if len(self._exports) >= self._max_exports:
            reason = f"skipped: {len(self._exports)} exports already in flight (PostHog is slow or unreachable)"
            await exporter.give_up(wanted, self._writer.logdb, reason)
            return
        task: asyncio.Task[object] = asyncio.create_task(
            exporter.export(wanted, self._writer.logdb), name="heliport-posthog-export"
        )
        self._exports.add(task)
        task.add_done_callback(self._exports.discard)

    async def settle_exports(self) -> None:
        """Wait for the exports in flight (each ends by its deadline), and the webhook deliveries."""
        while self._exports:
            await asyncio.gather(*self._exports, return_exceptions=True)
        if self._webhooks is not None:
            # A receiver may take minutes; stopping waits this long, then keeps the rest as dead letters.
            await self._webhooks.settle(grace=WEBHOOK_GRACE)

    async def _run(self) -> None:
        backoff = self._idle
        while True:
            try:
                handled = await self.drain_once()
                backoff = self._idle
            except Exception:
                logger.exception("log consumer failed; retrying in %.1f s", backoff)
                handled = 0
                backoff = min(backoff * 2, 30.0)
            if handled == 0:
                await asyncio.sleep(backoff)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class LocalPipeline:
    """Everything ``heliport serve`` runs beside the proxy to turn queued records into rows.

    It runs on its own thread with its own event loop: turning a batch into rows is CPU work
    (usage, cost, gzip; ~0.2 ms a record), and on the proxy's loop a batch of 100 would stall every
    request in flight for ~20 ms. On start it migrates the log database, makes sure this month's
    partitions exist, moves spooled records back into the queue, then consumes until stopped, and
    drains what is left on the way out, PostHog exports included.

    ``settings`` supply the PostHog exporter's address rules (``trusted_origins``) and timeouts;
    without them the defaults apply (public https hosts only). With them, stored requests are also
    delivered to their organisations' webhooks (:mod:`heliport.webhooks`), in tasks of their own.
    """

    def __init__(
        self,
        queue: Any,
        spooling_queue: Any,
        logdb: LogDb,
        blobs: BlobStore,
        *,
        settings: Settings | None = None,
        exporter: PostHogExporter | None = None,
        webhooks: WebhookDispatcher | None = None,
    ) -> None:
        self.logdb = logdb
        self.writer = LogWriter(logdb, blobs, inline_bytes=(settings or Settings()).inline_body_bytes)
        self.exporter = exporter or PostHogExporter(settings or Settings())
        # Webhooks need the settings (which log database, which origins are trusted); without them, none.
        self._owns_webhooks = webhooks is None and settings is not None
        self.webhooks = webhooks if webhooks is not None else (_local_webhooks(settings) if settings else None)
        self.consumer = LocalConsumer(queue, self.writer, exporter=self.exporter, webhooks=self.webhooks)
        self._spooling_queue = spooling_queue
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._failure: BaseException | None = None

    async def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="heliport-log-consumer", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._started.wait)
        if self._failure is not None:
            raise RuntimeError("the log pipeline could not start") from self._failure

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        try:
            await self.logdb.migrate()
            await self.logdb.ensure_partitions(datetime.now(UTC))
        except BaseException as exc:
            self._failure = exc
            self._started.set()
            return
        self._started.set()
        try:
            moved = await self._spooling_queue.respool()
            if moved:
                logger.warning("re-enqueued %d spooled log records", moved)
        except Exception:
            logger.exception("could not re-enqueue spooled log records; they stay spooled")
        self.consumer.start()
        try:
            await asyncio.to_thread(self._stopping.wait)
            await self.consumer.stop()
            while await self.consumer.drain_once():
                pass
            await self.consumer.settle_exports()
        finally:
            await self.exporter.aclose()
            if self.webhooks is not None:
                await self.webhooks.aclose()
                if self._owns_webhooks:
                    await self.webhooks.store.aclose()
            await self.logdb.aclose()

    async def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None


def _local_webhooks(settings: Settings) -> WebhookDispatcher:
    """The webhook deliveries of ``heliport serve``: the webhooks read through the query API's reader of
    the same log database (per organisation, as the API reads them), delivered in this process."""
    from heliport.webhooks.delivery import WebhookDispatcher
    from heliport.webhooks.factory import open_webhook_store

    return WebhookDispatcher(settings, open_webhook_store(settings))

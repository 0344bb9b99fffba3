"""The log consumer: LogRecords in, request rows and stored bodies out.

One code path serves both deployments: the SQS Lambda (``functions/logger``) calls
:func:`handle_sqs_batch`, and ``heliport serve`` runs :class:`LocalConsumer` over its SQLite queue.
Both hand records to :class:`LogWriter`, which for each record resolves the model, extracts usage,
prices it, writes the bodies to the blob store and then the rows, one batch insert per call.

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
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypedDict, runtime_checkable
from urllib.parse import urlsplit

import msgspec

from heliport.logs.cost import compute_cost
from heliport.logs.previews import request_preview, response_preview
from heliport.logs.record import LogRecord
from heliport.logs.row import RequestRow
from heliport.logs.spool import load_bodies
from heliport.logs.usage import Usage, extract_usage, resolve_model
from heliport.store.blobs import BlobStore
from heliport.store.logdb import LogDb

__all__ = ["LocalConsumer", "LogWriter", "PartLogDb", "body_key", "build_row", "handle_sqs_batch"]

logger = logging.getLogger("heliport.consumer")

_record_decoder = msgspec.json.Decoder(LogRecord)
_body_encoder = msgspec.json.Encoder()


def body_key(org_id: str, request_id: str) -> str:
    """Where a request's bodies live; Helicone's layout, so its tooling finds them."""
    return f"organizations/{org_id}/requests/{request_id}/raw_request_response_body"


def build_row(record: LogRecord) -> tuple[RequestRow, bytes | None]:
    """The row for a record, and the gzip JSON of its bodies (None when both were omitted)."""
    # Async-log records carry a placeholder target ("custom-model-nopath"); their route names the format.
    is_url = record.target_url.startswith(("https://", "http://"))
    path = (urlsplit(record.target_url).path if is_url else "") or record.path
    usage = record.usage or extract_usage(
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
        omit_request=record.omit_request,
        omit_response=record.omit_response,
        body_key=key,
        request_preview=request_preview(request_body),
        response_preview=response_preview(response_body, record.is_stream),
    )
    return row, blob


#: Usage fields that are also row columns, response_model included (Usage carries a few more, for pricing).
_USAGE_COLUMNS = tuple(f for f in Usage.__struct_fields__ if f in RequestRow.__struct_fields__ and f != "source")


def _usage_columns(usage: Usage) -> dict[str, Any]:
    return {**{f: getattr(usage, f) for f in _USAGE_COLUMNS}, "usage_source": usage.source}


@runtime_checkable
class PartLogDb(Protocol):
    """A log database that can also upsert the rows of requests logged in parts."""

    async def upsert_parts(self, parts: Sequence[tuple[RequestRow, int]]) -> list[str]:
        """Store each (row, part) unless the stored part of that request id is higher; return the
        request ids whose row was written (a part equal to the stored one is written again, so a
        redelivery after a failed body write completes it)."""
        ...


class LogWriter:
    """Stores records: bodies to the blob store first, then all rows in one idempotent insert.

    Records logged in parts take the other order: the row is upserted first and the bodies are
    written only when the part won, so an older part's bodies never overwrite a newer part's.
    """

    def __init__(self, logdb: LogDb, blobs: BlobStore) -> None:
        self.logdb = logdb
        self.blobs = blobs

    async def write(self, records: Sequence[LogRecord]) -> int:
        """Store every record or raise; returns how many rows were new (or, for parts, written)."""
        parts = [r for r in records if r.part is not None]
        written = await self._write_parts(parts) if parts else 0
        if len(parts) == len(records):
            return written
        built = [build_row(await self._with_bodies(r)) for r in records if r.part is None]
        await asyncio.gather(
            *(
                self.blobs.put(row.body_key, blob, content_type="application/json", content_encoding="gzip")
                for row, blob in built
                if blob is not None and row.body_key is not None
            )
        )
        return written + await self.logdb.insert_requests([row for row, _ in built])

    async def _write_parts(self, records: Sequence[LogRecord]) -> int:
        if not isinstance(self.logdb, PartLogDb):
            raise TypeError(f"{type(self.logdb).__name__} cannot upsert records logged in parts")
        latest: dict[str, LogRecord] = {}
        for record in records:  # a batch may hold several parts of one request: only the highest counts
            seen = latest.get(record.request_id)
            if seen is None or (seen.part or 0) < (record.part or 0):
                latest[record.request_id] = record
        built = [(build_row(await self._with_bodies(r)), r.part or 0) for r in latest.values()]
        won = set(await self.logdb.upsert_parts([(row, part) for (row, _), part in built]))
        await asyncio.gather(
            *(
                self.blobs.put(row.body_key, blob, content_type="application/json", content_encoding="gzip")
                for (row, blob), _ in built
                if row.request_id in won and blob is not None and row.body_key is not None
            )
        )
        return len(won)

    async def _with_bodies(self, record: LogRecord) -> LogRecord:
        return await load_bodies(record, self.blobs) if record.bodies_key else record


class BatchItemFailure(TypedDict):
    itemIdentifier: str


class BatchResponse(TypedDict):
    batchItemFailures: list[BatchItemFailure]


async def handle_sqs_batch(event: Mapping[str, Any], writer: LogWriter) -> BatchResponse:
    """The SQS event source's batch, reporting only the messages that failed (ReportBatchItemFailures)."""
    records: list[LogRecord] = []
    ids: list[str] = []
    failures: list[BatchItemFailure] = []
    for message in event.get("Records", []):
        message_id = message["messageId"]
        try:
            records.append(_record_decoder.decode(message["body"]))
            ids.append(message_id)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            logger.error("unreadable log record in message %s: %s", message_id, exc)
            failures.append({"itemIdentifier": message_id})
    if records:
        try:
            await writer.write(records)
        except Exception:
            logger.exception("could not store a batch of %d records; they will be redelivered", len(records))
            failures.extend({"itemIdentifier": i} for i in ids)
    return {"batchItemFailures": failures}


class LocalConsumer:
    """``heliport serve``'s consumer: drains the SQLite queue into the log database."""

    def __init__(self, queue: Any, writer: LogWriter, *, batch: int = 100, idle_seconds: float = 0.2) -> None:
        self._queue = queue
        self._writer = writer
        self._batch = batch
        self._idle = idle_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="heliport-consumer")

    async def drain_once(self) -> int:
        """Store what is queued now; returns how many records were handled."""
        items = await asyncio.to_thread(self._queue.receive, self._batch)
        if not items:
            return 0
        await self._writer.write([record for _, record in items])
        await asyncio.to_thread(self._queue.delete, [seq for seq, _ in items])
        return len(items)

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
    drains what is left on the way out.
    """

    def __init__(self, queue: Any, spooling_queue: Any, logdb: LogDb, blobs: BlobStore) -> None:
        self.logdb = logdb
        self.writer = LogWriter(logdb, blobs)
        self.consumer = LocalConsumer(queue, self.writer)
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
        finally:
            await self.logdb.aclose()

    async def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
            self._thread = None

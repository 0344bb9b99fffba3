"""Durability around the log queue: claim checks for records too big for it, a spool for when it is down.

The proxy sends one :class:`LogRecord` per request after the response, and the queue's contract is
"return once durably accepted, else raise". Two things break that with a bare SQS queue:

* **Size.** SQS takes at most 1 MiB per message, attributes included (aws-serverless §3.1), and a
  record carries both bodies. A record that would not fit has its bodies moved to the blob store
  first (the claim check, §3.5) under ``claims/<org_id>/<request_id>.json``; the message carries the
  key in ``LogRecord.bodies_key`` and the consumer restores the bodies with :func:`load_bodies`.
* **Availability.** When the queue refuses or cannot be reached, the whole record is written to the
  blob store under ``spool/<YYYY>/<MM>/<DD>/<request_id>.json`` instead, and :func:`respool` moves
  it back to the queue later. Only if that write fails too does ``send`` raise.

Object layout in the blob store::

    claims/<org_id>/<request_id>.json           gzip JSON {"request_body": ..., "response_body": ...}
    spool/<YYYY>/<MM>/<DD>/<request_id>.json    the record as msgspec JSON (dated by started_at, UTC)
    spool-dead/<YYYY>/<MM>/<DD>/<...>.json      spooled objects that no longer decode, for a person

A record may reach the consumer twice (a send that succeeded but looked failed is then spooled and
re-sent; two respools may race): the consumer is idempotent on ``request_id`` anyway, as SQS
delivers at least once.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from datetime import UTC
from urllib.parse import quote

import msgspec

from heliport.logs.record import LogRecord
from heliport.store.blobs import THREAD_THRESHOLD, BlobStore
from heliport.store.queue import LogQueue

__all__ = [
    "CLAIM_PREFIX",
    "DEAD_PREFIX",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "SPOOL_PREFIX",
    "ClaimNotFoundError",
    "SpoolingQueue",
    "claim_key",
    "load_bodies",
    "respool",
    "spool_key",
]

_log = logging.getLogger(__name__)

SPOOL_PREFIX = "spool/"
DEAD_PREFIX = "spool-dead/"
CLAIM_PREFIX = "claims/"

#: SQS's 1 MiB message limit, less room for the message attributes (``request_id``, ``v``) that
#: count towards it.
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024 - 8 * 1024

# Claims are compressed off the event loop: zlib releases the GIL, and a megabyte takes milliseconds.
_GZIP_LEVEL = 6

_encoder = msgspec.json.Encoder()
_record_decoder = msgspec.json.Decoder(LogRecord)


class _Bodies(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The claim object: exactly the body fields the message leaves empty."""

    request_body: str | None = None
    response_body: str | None = None
    native_request_body: str | None = None
    native_response_body: str | None = None


_EMPTIED = {"request_body": None, "response_body": None, "native_request_body": None, "native_response_body": None}


_bodies_decoder = msgspec.json.Decoder(_Bodies)


class ClaimNotFoundError(LookupError):
    """A record names a claim the blob store does not have (expired by a lifecycle rule, or deleted)."""


def _segment(value: str) -> str:
    """``value`` as one safe key segment: ids are UUIDs, but a key must never gain a ``/`` or ``..``."""
    segment = quote(value, safe="-_.~")
    if not segment or segment.startswith("."):
        segment = "%2E" + segment[1:] if segment else "%00"
    return segment


def claim_key(record: LogRecord) -> str:
    return f"{CLAIM_PREFIX}{_segment(record.org_id)}/{_segment(record.request_id)}.json"


def spool_key(record: LogRecord) -> str:
    """Dated by the request's start, not the spool time, so spooling one record twice writes one object."""
    started = record.started_at
    started = started.replace(tzinfo=UTC) if started.tzinfo is None else started.astimezone(UTC)
    return f"{SPOOL_PREFIX}{started:%Y/%m/%d}/{_segment(record.request_id)}.json"


class SpoolingQueue:
    """A :class:`LogQueue` that claim-checks oversized records and spools what the inner queue refuses.

    The happy path costs one encode (to measure the record) and the inner ``send``; the blob store is
    touched only for oversized records or a failing queue. ``aclose`` closes both the inner queue and
    the blob store: this wrapper owns them.
    """

    def __init__(
        self, inner: LogQueue, blobs: BlobStore, *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    ) -> None:
        self._inner = inner
        self._blobs = blobs
        self._max = max_message_bytes

    @property
    def inner(self) -> LogQueue:
        return self._inner

    @property
    def blobs(self) -> BlobStore:
        return self._blobs

    async def send(self, record: LogRecord) -> None:
        encoded = _encoder.encode(record)
        if len(encoded) > self._max:
            record = await self._claim(record)
            encoded = b""  # the slimmer record is encoded again only if it has to be spooled
        try:
            await self._inner.send(record)
            return
        except Exception as exc:
            error = exc
        key = spool_key(record)
        try:
            await self._blobs.put(key, encoded or _encoder.encode(record))
        except Exception as exc:
            _log.error("log queue refused request %s (%s) and spooling failed: %s", record.request_id, error, exc)
            raise exc from error
        _log.warning("log queue refused request %s (%s); spooled to %s", record.request_id, error, key)

    async def _claim(self, record: LogRecord) -> LogRecord:
        """The record with its bodies moved to the blob store.

        Should the blob store fail, the record is sent without its bodies (and says so in
        ``errors``) rather than lost: it would not fit the queue with them, and the row's other
        facts (status, timing, cost) are still worth keeping.
        """
        key = claim_key(record)
        bodies = _encoder.encode(
            _Bodies(
                request_body=record.request_body,
                response_body=record.response_body,
                native_request_body=record.native_request_body,
                native_response_body=record.native_response_body,
            )
        )
        try:
            data = await asyncio.to_thread(gzip.compress, bodies, _GZIP_LEVEL, mtime=0)
            await self._blobs.put(key, data, content_type="application/json", content_encoding="gzip")
        except Exception as exc:
            _log.error("could not store the bodies of request %s (%s); logging it without them", record.request_id, exc)
            return msgspec.structs.replace(
                record,
                **_EMPTIED,
                errors=[*record.errors, "logging: bodies dropped, blob store unavailable"],
            )
        _log.info("request %s is %d bytes; its bodies went to %s", record.request_id, len(bodies), key)
        return msgspec.structs.replace(record, **_EMPTIED, bodies_key=key)

    async def respool(self, *, limit: int = 1000) -> int:
        """:func:`respool` through this wrapper's inner queue and blob store."""
        return await respool(self._blobs, self._inner, limit=limit)

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            await self._blobs.aclose()


async def load_bodies(record: LogRecord, blobs: BlobStore) -> LogRecord:
    """The record with the bodies its claim holds, and ``bodies_key`` cleared: the record as it was sent.

    A record without a claim comes back unchanged. The claim object is left in place; deleting it
    once the bodies are stored for good (or a lifecycle rule on ``claims/``) is the consumer's call.
    Raises :class:`ClaimNotFoundError` if the claim is gone, so the message is retried and ends in
    the DLQ rather than being stored without its bodies.
    """
    if record.bodies_key is None:
        return record
    data = await blobs.get(record.bodies_key)
    if data is None:
        raise ClaimNotFoundError(f"claim {record.bodies_key!r} of request {record.request_id} not found")
    raw = await asyncio.to_thread(gzip.decompress, data) if len(data) >= THREAD_THRESHOLD else gzip.decompress(data)
    bodies = _bodies_decoder.decode(raw)
    return msgspec.structs.replace(
        record,
        request_body=bodies.request_body,
        response_body=bodies.response_body,
        native_request_body=bodies.native_request_body,
        native_response_body=bodies.native_response_body,
        bodies_key=None,
    )


async def respool(blobs: BlobStore, queue: LogQueue, *, limit: int = 1000) -> int:
    """Send up to ``limit`` spooled records (oldest day first) to ``queue``; return how many moved.

    ``queue`` is the inner queue, not a :class:`SpoolingQueue`: while it is still down its ``send``
    raises, and the record must stay where it is rather than be spooled again. Each object is
    deleted only after its send succeeded, so a crash midway re-sends at most one record.

    Stops at the first failed send: that almost always means the queue is down, and trying the
    rest would only spend each one's retries on the same answer. An object that no longer decodes
    is moved to ``spool-dead/`` (and logged) so it cannot block the ones behind it.
    """
    keys = await blobs.list(SPOOL_PREFIX, limit)
    moved = dead = 0
    for key in keys:
        data = await blobs.get(key)
        if data is None:
            continue  # another respool got there first
        try:
            record = _record_decoder.decode(data)
        except msgspec.DecodeError as exc:  # ValidationError included
            dead_key = DEAD_PREFIX + key.removeprefix(SPOOL_PREFIX)
            await blobs.put(dead_key, data)
            await blobs.delete(key)
            dead += 1
            _log.error("spooled log record %s does not decode (%s); moved to %s", key, exc, dead_key)
            continue
        try:
            await queue.send(record)
        except Exception as exc:
            _log.warning("log queue still refuses (%s); %s and the rest stay spooled", exc, key)
            break
        await blobs.delete(key)
        moved += 1
    if moved or dead:
        _log.info("respooled %d log records (%d undecodable moved to %s)", moved, dead, DEAD_PREFIX)
    return moved

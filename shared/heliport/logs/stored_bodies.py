"""Where a request's bodies are kept: on its row when small, in the blob store otherwise.

The log writer compresses a request's bodies into one gzip JSON object ``{request, response}`` (plus
``nativeRequest``/``nativeResponse`` for the AI gateway's translated calls). Every blob-store PUT costs
money (S3 bills $5 per million, more than the request's SQS message and DynamoDB writes together), and
most chat bodies compress to well under a kilobyte, so an object at most ``HELIPORT_INLINE_BODY_BYTES``
long is kept on the row (``RequestRow.body_inline``, migration 0014) and only larger ones are put under
``body_key``. The threshold and how it was chosen: :data:`INLINE_BODY_BYTES`.

Everything that reads bodies (the query API, signed body URLs, datasets, assets, webhook body links)
goes through :func:`stored_bodies`, so a row stored either way, or before inline bodies existed
(body_inline NULL, object in the blob store), reads the same.
"""

from __future__ import annotations

import gzip
from typing import Any, Final

import msgspec

from heliport.logs.row import RequestRow
from heliport.store.blobs import BlobStore

__all__ = ["INLINE_BODY_BYTES", "NOT_READ", "BodiesNotReadError", "decode_bodies", "placed", "stored_bodies"]

#: Largest gzip JSON kept on the row (bytes); larger bodies go to the blob store; 0 puts every one there.
#: Chosen from bench/consumer.py on PostgreSQL 15 (docs/benchmarks.md): a body on the row grows the row by
#: about 1.2x its compressed size (past ~2 KB it moves to TOAST), so 4 KB costs ~5 KB of database
#: storage, which at Aurora's $0.10 per GB-month undercuts the S3 PUT it saves ($5 per million) for a
#: year of retention; larger bodies cost more on the row than in S3 sooner. Short chat calls and
#: streams compress to 300-1,000 bytes and all skip the PUT; the consumer stores them 2-50x faster.
INLINE_BODY_BYTES: Final = 4096

#: ``body_inline`` of a row read for a list page (``api/requests.query_sql``): the bodies are on the row,
#: but were not read with it. A real gzip object is never empty.
NOT_READ: Final = b""

_decode = msgspec.json.Decoder(dict[str, Any]).decode


class BodiesNotReadError(RuntimeError):
    """The row came from a list page, which leaves bodies kept on the row unread: read the row alone."""


def placed(row: RequestRow, blob: bytes | None, limit: int) -> tuple[RequestRow, bytes | None]:
    """``row`` and the blob still to be put: small enough (at most ``limit`` bytes, ``limit`` > 0), the
    blob moves onto the row and nothing is left to put."""
    if blob is None or limit <= 0 or len(blob) > limit:
        return row, blob
    row.body_inline = blob
    return row, None


async def stored_bodies(row: RequestRow, blobs: BlobStore) -> bytes | None:
    """The row's gzip JSON bodies, from the row or the blob store; None without bodies (omitted, or
    the object is missing). A row from a list page whose bodies are on the row was read without them:
    :class:`BodiesNotReadError` (a caller's bug, never the data's)."""
    if row.body_inline is not None:
        if row.body_inline == NOT_READ:
            raise BodiesNotReadError(f"request {row.request_id} was read without its bodies (a list page)")
        return row.body_inline
    if row.body_key is None:
        return None
    return await blobs.get(row.body_key)


def decode_bodies(blob: bytes | None) -> dict[str, Any] | None:
    """The stored object (``{"request": text, "response": text, ...}``), or None when there is none or
    it is not a JSON object."""
    if blob is None:
        return None
    try:
        return _decode(gzip.decompress(blob))
    except (OSError, EOFError, msgspec.DecodeError, msgspec.ValidationError):
        return None

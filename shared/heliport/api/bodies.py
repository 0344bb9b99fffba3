"""Request and response bodies for the query API: inline for one request, a short-lived URL for lists.

A row's bodies are gzip JSON ``{request, response}`` (``logs/consumer.py``), kept on the row when small
and in the blob store otherwise (:mod:`heliport.logs.stored_bodies`, which every read here goes through).
For bodies in S3 the URL is an S3 presigned GET (``Content-Encoding: gzip`` is stored with the object,
so an HTTP client decompresses it). The local blob store has no HTTP face, and bodies on the row have
no object at all, so for those heliport signs its own URL,
``/v1/request/<id>/body?org=…&expires=…&signature=…``: an HMAC over the organisation, the request and
the expiry with a secret only the server knows, checked in constant time. Like a presigned URL it needs
no heliport key, so it can be handed to a browser or an export script, and it stops working after
:data:`URL_LIFETIME` seconds. With more than one API process (Lambda), they must share the secret
(``HELIPORT_BODY_URL_SECRET``; in AWS the generated secret ``HELIPORT_BODY_URL_SECRET_ARN`` names, read
at cold start by :mod:`heliport.api.body_secret`) for a URL made by one to be accepted by another.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any, Final
from urllib.parse import urlencode

import msgspec

from heliport.config import Settings
from heliport.errors import RouteNotFoundError, json_depth_exceeds
from heliport.logs.row import RequestRow
from heliport.logs.stored_bodies import decode_bodies, stored_bodies
from heliport.store.blobs import BlobStore, LocalBlobStore

__all__ = ["URL_LIFETIME", "BodyLinks"]

#: Seconds a body URL stays valid (Helicone's signed URLs are short-lived too).
URL_LIFETIME: Final = 1800


class BodyLinks:
    def __init__(self, blobs: BlobStore, *, secret: bytes | None = None, lifetime: int = URL_LIFETIME) -> None:
        self._blobs = blobs
        # A fresh secret per process is enough locally: URLs live minutes, and serve is one process.
        self._secret = secret or secrets.token_bytes(32)
        self._lifetime = lifetime
        self.storage_location = "local" if isinstance(blobs, LocalBlobStore) else "s3"

    async def read(self, row: RequestRow, *, max_depth: int = Settings.max_json_depth) -> tuple[Any, Any]:
        """The request and response bodies (None for an omitted or missing one); a body that is JSON
        nested more than ``max_depth`` deep comes back as its text (see :func:`_json`)."""
        bodies = decode_bodies(await stored_bodies(row, self._blobs))
        if bodies is None:
            return None, None
        return _json(bodies.get("request"), max_depth), _json(bodies.get("response"), max_depth)

    async def url(self, row: RequestRow, base_url: str) -> str | None:
        """A URL that reads this row's bodies without a key until it expires; None without bodies."""
        if row.body_key is None and row.body_inline is None:
            return None
        if self.storage_location == "s3" and row.body_inline is None and row.body_key is not None:
            return await self._blobs.presign_get(row.body_key, self._lifetime)
        # Bodies on the row (or a local blob store): heliport's own signed route serves them.
        expires = int(time.time()) + self._lifetime
        query = urlencode(
            {"org": row.org_id, "expires": expires, "signature": self._sign(row.org_id, row.request_id, expires)}
        )
        return f"{base_url.rstrip('/')}/v1/request/{row.request_id}/body?{query}"

    def verify(self, org_id: str, request_id: str, expires: str, signature: str) -> None:
        """Accept a signed URL's parameters, or raise a 404 (an expired or forged URL reveals nothing)."""
        try:
            deadline = int(expires)
        except ValueError:
            deadline = 0
        expected = self._sign(org_id, request_id, deadline).encode()
        good = hmac.compare_digest(expected, signature.encode("utf-8", "replace"))
        if not good or deadline < time.time():
            raise RouteNotFoundError("This body URL is invalid or has expired.")

    def _sign(self, org_id: str, request_id: str, expires: int) -> str:
        message = f"{org_id}\n{request_id}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


def _json(body: Any, max_depth: int) -> Any:
    """A body as stored is the text that went over the wire: JSON bodies come back as JSON values, as
    Helicone returns them; anything else (an SSE stream, plain text) as the text itself.

    So does JSON nested more than ``max_depth`` deep. The pass-through proxy logs bodies it never
    parsed, so a stored body may nest past where any decoder in Python gives up (RecursionError near
    1,000 levels), or decode and then be too deep to encode again inside the answer; as text it is
    still the whole body, and the answer is always writable.
    """
    if not isinstance(body, str):
        return body
    try:
        value = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):
        return body
    return body if json_depth_exceeds(value, max_depth) else value

"""``Helicone-Signature``: the lowercase hex HMAC-SHA256 of a delivery's exact body bytes.

The key is the webhook's ``hmac_key``, generated here when the webhook is made. A receiver verifies
by computing the same HMAC over the raw body it received (before any JSON parsing) and comparing in
constant time (:func:`verify`). The same key signs the delivery's ``request_response_url``, so that
link is checked by the query API without a secret shared between processes (:func:`link_signature`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["SIGNATURE_HEADER", "link_signature", "new_hmac_key", "sign", "verify"]

SIGNATURE_HEADER = "Helicone-Signature"


def new_hmac_key() -> str:
    """A fresh signing key: 256 random bits as hex."""
    return secrets.token_hex(32)


def sign(key: str, body: bytes) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def verify(key: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(key, body), signature.strip().lower())


def link_signature(key: str, org_id: str, webhook_id: str, request_id: str, expires: int) -> str:
    """The signature of a delivery's ``request_response_url`` (everything the link names, and its expiry)."""
    message = f"link\n{org_id}\n{webhook_id}\n{request_id}\n{expires}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()

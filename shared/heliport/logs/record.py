"""The message a proxy sends after each response: one :class:`LogRecord` per request.

Versioned (``v``) so a consumer can read records written by an older proxy during a deploy. Bodies
travel as text; the logging pipeline moves them to the blob store. Times are UTC datetimes for the
row and perf-counter durations in milliseconds for precision.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from heliport.logs.usage import Usage

__all__ = ["LOG_RECORD_VERSION", "SECRET_HEADERS", "LogRecord", "Status"]

#: Header names (lower case) whose values are credentials: never copied into a stored header set.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"})

LOG_RECORD_VERSION = 1


class Status:
    """Internal status codes for requests that never got a complete HTTP answer (Helicone's values)."""

    CLIENT_CANCELLED = -3
    TIMEOUT = -2
    STREAM_FAILED = -100


class LogRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    v: int = LOG_RECORD_VERSION
    request_id: str
    org_id: str
    key_id: str
    # When the proxy started handling the request, and how long each phase took.
    started_at: datetime
    ttfb_ms: float | None = None
    duration_ms: float
    # Where it went.
    method: str
    path: str
    provider: str
    target_url: str
    status: int
    is_stream: bool = False
    request_model: str | None = None
    # Who and what it was for.
    user_id: str | None = None
    properties: dict[str, str] = msgspec.field(default_factory=dict)
    session_id: str | None = None
    session_path: str | None = None
    session_name: str | None = None
    prompt_id: str | None = None
    model_override: str | None = None
    omit_request: bool = False
    omit_response: bool = False
    posthog_key: str | None = None
    posthog_host: str | None = None
    helicone_headers: dict[str, str] = msgspec.field(default_factory=dict)
    # Optional features' facts (filled as they land).
    cache_hit: bool = False
    cache_reference_id: str | None = None
    #: On a hit, the original request's duration: the latency the hit saved.
    cached_latency_ms: float | None = None
    rate_limited: bool = False
    retry_count: int = 0
    fallback_index: int | None = None
    gateway_provider: str | None = None
    gateway_model: str | None = None
    #: AI gateway: how many providers were tried, the serving one included.
    gateway_attempts: int | None = None
    #: Why an optional feature fell back to plain proxying, or why the stream ended early.
    errors: list[str] = msgspec.field(default_factory=list)
    #: What the checks found, by check name (``moderation``, ``llm_security``, ``token_limit``, ...):
    #: each a JSON object of its outcome; stored on the row as ``checks``. Empty without checks.
    facts: dict[str, Any] = msgspec.field(default_factory=dict)
    # Bodies: None when omitted; truncated when over the proxy's copy cap.
    request_body: str | None = None
    response_body: str | None = None
    #: AI gateway: the bodies as the provider saw them, when it speaks another format than the client.
    native_request_body: str | None = None
    native_response_body: str | None = None
    #: Claim check: when the record would exceed the queue's message limit, the bodies travel in the
    #: blob store under this key and the two fields above are empty (see logs/spool.py).
    bodies_key: str | None = None
    #: Usage the proxy extracted itself: set when the response body is omitted from the log, so the
    #: row still gets its tokens and cost (Helicone-Omit-Response keeps the body out, not the usage).
    usage: Usage | None = None
    response_body_truncated: bool = False
    response_headers: dict[str, str] = msgspec.field(default_factory=dict)
    #: Set on a request logged in parts (a realtime session: every interval and on close): the part's
    #: number, from 1. Each part is the whole request so far; the consumer upserts the row and keeps
    #: the highest part, so a redelivered older part never replaces a newer one. None: a normal record,
    #: inserted once.
    part: int | None = None

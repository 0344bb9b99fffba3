"""One stored request: the row the consumer writes and the query API reads.

Field names follow Helicone's documented ``HeliconeRequest`` where one exists, so the REST API can
return rows with little renaming. The row keeps bounded previews for text search; the bodies
themselves (gzip JSON) are on the row when they are small (``body_inline``, migration 0014) and in the
blob store under ``body_key`` otherwise. :mod:`heliport.logs.stored_bodies` reads either.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

__all__ = ["PREVIEW_CHARS", "RequestRow"]

#: Longest request/response preview kept on the row (the full bodies are in the blob store).
PREVIEW_CHARS = 2000


class RequestRow(msgspec.Struct, kw_only=True):
    request_id: str
    org_id: str
    key_id: str
    #: When the proxy started the request; the partitioning column.
    created_at: datetime
    response_created_at: datetime | None = None
    status: int
    provider: str
    target_url: str
    path: str
    method: str = "POST"
    is_stream: bool = False
    #: The model the row is billed and grouped by: override > response > request > path.
    model: str | None = None
    request_model: str | None = None
    response_model: str | None = None
    model_override: str | None = None
    user_id: str | None = None
    properties: dict[str, str] = msgspec.field(default_factory=dict)
    session_id: str | None = None
    session_path: str | None = None
    session_name: str | None = None
    prompt_id: str | None = None
    #: Whole request duration and time to first byte, in milliseconds.
    delay_ms: float | None = None
    time_to_first_token: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    prompt_cache_read_tokens: int | None = None
    prompt_cache_write_tokens: int | None = None
    prompt_cache_write_5m_tokens: int | None = None
    prompt_cache_write_1h_tokens: int | None = None
    reasoning_tokens: int | None = None
    prompt_audio_tokens: int | None = None
    completion_audio_tokens: int | None = None
    #: Where the token counts came from ("response", "stream", "manual", or "absent" when none were sent).
    usage_source: str = "absent"
    #: USD, exact. None when the model has no known price.
    cost: Decimal | None = None
    #: Which price table priced it ("genai-prices@<version>", "override"), or why it could not be priced.
    cost_source: str | None = None
    cache_hit: bool = False
    cache_reference_id: str | None = None
    rate_limited: bool = False
    retry_count: int = 0
    fallback_index: int | None = None
    gateway_provider: str | None = None
    gateway_model: str | None = None
    errors: list[str] = msgspec.field(default_factory=list)
    omit_request: bool = False
    omit_response: bool = False
    #: Blob-store key of the gzip JSON {request, response}; None when both bodies were omitted. Set for
    #: inline bodies too (it says the row has bodies and names where Helicone would keep them), but
    #: then nothing is stored under it.
    body_key: str | None = None
    request_preview: str | None = None
    response_preview: str | None = None
    scores: dict[str, float] = msgspec.field(default_factory=dict)
    feedback_rating: bool | None = None
    feedback_created_at: datetime | None = None
    #: On a cache hit: how long the original request took, i.e. the latency this hit saved.
    #: Appended by migration 0002 (the columns follow this field order).
    cache_latency_saved_ms: float | None = None
    #: AI gateway: how many providers were tried, the serving one included (migration 0003 appends it).
    gateway_attempts: int | None = None
    #: What the checks found (moderation, LLM security, token limits, PostHog delivery), by check name
    #: (migration 0008 appends it).
    checks: dict[str, Any] = msgspec.field(default_factory=dict)
    #: The gzip JSON of the bodies when it is at most ``HELIPORT_INLINE_BODY_BYTES`` (migration 0014):
    #: small bodies cost no blob-store PUT. None when the bodies are in the blob store (or omitted).
    body_inline: bytes | None = None

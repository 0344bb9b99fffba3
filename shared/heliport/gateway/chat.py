"""What every translation shares: OpenAI chat shapes, built one way, and the stream failure type.

Translations work on decoded JSON objects (``dict``): the shapes are wide and mostly passed
through, and a typed mirror of three providers' schemas would be larger than the mapping itself.
"""

from __future__ import annotations

import math
from typing import Any

from heliport.errors import InvalidBodyError

__all__ = ["JsonObj", "ProviderStreamError", "completion_chunk", "number_param", "usage_object"]

JsonObj = dict[str, Any]


class ProviderStreamError(Exception):
    """A provider ended a stream with an error event (HTTP 200 already sent, e.g. Anthropic overload).

    ``status`` is the HTTP status the same error would have had before the stream began, so the log
    and a failover decision can treat it like one.
    """

    def __init__(self, status: int, message: str, *, kind: str = "provider_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def usage_object(
    prompt_tokens: int,
    completion_tokens: int,
    *,
    cached_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    reasoning_tokens: int | None = None,
) -> JsonObj:
    """OpenAI's ``usage``: ``prompt_tokens`` counts every input token, cached ones included."""
    usage: JsonObj = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens is not None or cache_write_tokens is not None:
        details: JsonObj = {"cached_tokens": cached_tokens or 0}
        if cache_write_tokens is not None:
            details["cache_write_tokens"] = cache_write_tokens
        usage["prompt_tokens_details"] = details
    if reasoning_tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
    return usage


def completion_chunk(
    completion_id: str,
    created: int,
    model: str,
    delta: JsonObj | None,
    *,
    finish_reason: str | None = None,
    usage: JsonObj | None = None,
) -> JsonObj:
    """One ``chat.completion.chunk``; ``delta=None`` makes the final usage-only chunk (empty choices)."""
    chunk: JsonObj = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if usage is not None:
        chunk["usage"] = usage
    return chunk


def number_param(chat: JsonObj, field: str) -> float | None:
    """A finite number parameter of a chat request (temperature, top_p), for providers that need a float."""
    value = chat.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidBodyError(f"{field} must be a number.", param=field)
    try:
        number = float(value)
    except OverflowError:  # an integer literal beyond any float (10e400 written out)
        number = math.inf
    if not math.isfinite(number):
        raise InvalidBodyError(f"{field} must be a finite number.", param=field)
    return number

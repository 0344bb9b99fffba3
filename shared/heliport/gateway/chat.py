"""What every translation shares: OpenAI chat answers built one way, and the stream failure type.

Translations work on decoded JSON objects (``dict``): the shapes are wide and mostly passed
through, and a typed mirror of three providers' schemas would be larger than the mapping itself.
(The request side, OpenAI chat read into typed parts, is :mod:`.chat_request`.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

__all__ = [
    "JsonObj",
    "ProviderStreamError",
    "StreamTranslator",
    "chat_completion",
    "completion_chunk",
    "finish_reason",
    "tool_call",
    "usage_object",
]

JsonObj = dict[str, Any]

_encode = msgspec.json.encode


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


def finish_reason(stop_reason: object, reasons: Mapping[str, str]) -> str:
    """OpenAI's ``finish_reason`` for a provider's stop reason, by ``reasons``.

    A missing or unknown reason (one the provider adds later, a malformed-output one) still ends the
    turn, so it is ``stop``.
    """
    return reasons.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def tool_call(call_id: object, name: object, arguments: object) -> JsonObj:
    """One OpenAI tool call from a provider's: ``arguments`` is its decoded input object (None: none),
    which OpenAI carries as a JSON string."""
    encoded = _encode(arguments if arguments is not None else {}).decode()
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": encoded}}


def chat_completion(
    completion_id: str,
    created: int,
    model: str,
    *,
    content: str | None,
    reasoning: list[str],
    tool_calls: list[JsonObj],
    finish_reason: str,
    usage: JsonObj,
) -> JsonObj:
    """One ``chat.completion`` with a single choice: the assistant's message, how it ended, and ``usage``.

    ``reasoning`` pieces are joined into ``reasoning_content`` (the field DeepSeek and OpenRouter use),
    which is left out, like ``tool_calls``, when empty.
    """
    message: JsonObj = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage,
    }


class StreamTranslator:
    """What translating any provider's stream into OpenAI chunks keeps: the completion's identity,
    OpenAI's numbering of tool calls, and what the log reads at the end.

    ``usage`` holds the OpenAI usage once the provider has reported it, and ``finish_reason`` how the
    answer ended, whether or not the caller asked for the usage chunk (the log needs both).
    """

    def __init__(self, *, model: str, created: int, completion_id: str, include_usage: bool) -> None:
        self._model = model
        self._created = created
        self._id = completion_id
        self._include_usage = include_usage
        #: Provider content block index -> OpenAI tool_calls index (OpenAI counts tool calls, not blocks).
        self._tool_index: dict[int, int] = {}
        self.usage: JsonObj | None = None
        self.finish_reason: str | None = None

    def _chunk(
        self, delta: JsonObj | None, *, finish_reason: str | None = None, usage: JsonObj | None = None
    ) -> JsonObj:
        return completion_chunk(self._id, self._created, self._model, delta, finish_reason=finish_reason, usage=usage)

    def _tool_slot(self, block_index: int) -> int:
        """The OpenAI tool call index of the provider's content block ``block_index``, the next one if new."""
        return self._tool_index.setdefault(block_index, len(self._tool_index))

    def _tool_call_start(self, block_index: int, call_id: object, name: object) -> JsonObj:
        """The chunk that opens a tool call: its id and function name, the arguments to follow in pieces."""
        call = {
            "index": self._tool_slot(block_index),
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        return self._chunk({"tool_calls": [call]})

    def _arguments_chunk(self, index: int, arguments: str) -> JsonObj:
        """A piece of the JSON arguments of the tool call ``index``."""
        return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})

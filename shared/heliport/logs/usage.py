"""Token usage from a relayed response body, whatever the provider's wire format.

The consumer bills and charts from these numbers, so the rule is *report what the provider said and
never invent*: a body that carries no usage (a stream without ``include_usage``, a truncated or garbage
body) yields ``Usage(source="absent")`` with every count ``None``, not zeros.

Conventions (one for every provider, so rows are comparable and the cost step is simple):

* ``prompt_tokens`` is the *whole* input the provider processed: uncached input + cache reads + cache
  writes (+ audio). OpenAI, the Responses API and Gemini already count that way; Anthropic (and Bedrock
  Converse) do not, so their parts are added up here.
* ``completion_tokens`` is the whole billed output, reasoning/thinking and audio included. OpenAI and
  Anthropic count that way; Gemini reports thoughts beside the candidates, so they are added.
* ``reasoning_tokens``, ``prompt_cache_*`` and ``*_audio_tokens`` are *subsets* of the two totals above.
* ``total_tokens`` is the provider's figure when it sends one, else prompt + completion.

The format is detected from the content more than from the provider label: every OpenAI-compatible
provider speaks OpenAI's format, and Anthropic's format also arrives through Bedrock and Vertex.
Streams can be megabytes, so SSE bodies are scanned line by line from the end (usage comes last) and
only the few ``data:`` lines that can carry usage are JSON-decoded.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec

__all__ = ["Usage", "extract_usage", "resolve_model", "stream_error_status"]

JsonObj = dict[str, object]


class Usage(msgspec.Struct, kw_only=True, frozen=True):
    """Token counts of one request; see the module docstring for what each count includes."""

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
    #: Audio part of the cache reads, when the provider breaks the cache down by modality (Gemini's
    #: ``cacheTokensDetails``); 0 there means "known: none", None "not said". Not a row column: it only
    #: lets the cost step price cached audio instead of refusing an ambiguous split.
    prompt_cache_read_audio_tokens: int | None = None
    #: "response" (whole JSON body), "stream" (SSE), "manual" (async-log payload) or "absent".
    source: str = "absent"
    #: The model the provider says answered (body ``model``, Gemini ``modelVersion``, ...).
    response_model: str | None = None
    #: An error the provider sent inside a stream that had already answered HTTP 200.
    stream_error: str | None = None
    #: The HTTP status that error stands for, so the row shows the failure rather than 200.
    stream_error_status: int | None = None


_ABSENT = Usage()

#: Error ``type`` (Anthropic; OpenAI ``code``) -> the HTTP status the provider uses for it.
_ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "api_error": 500,
    "server_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def stream_error_status(error_type: str | None) -> int:
    """HTTP status for a provider error type; 500 for types we do not know (it is still a failure)."""
    return _ERROR_STATUS.get(error_type or "", 500)


# -- JSON boundary helpers ---------------------------------------------------------------------------


def _decode(text: str | bytes) -> object:
    """Decode JSON, or None for anything that is not valid JSON (bodies are untrusted)."""
    try:
        result: Any = msgspec.json.decode(text)
    except Exception:
        return None
    return result


def _obj(value: object) -> JsonObj | None:
    return value if isinstance(value, dict) else None


def _int(value: object) -> int | None:
    """A token count, or None when the value is missing or not a sane count (never guessed)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _add(*values: int | None) -> int | None:
    """Sum of the known parts; None only when every part is unknown."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


# -- usage objects -> counts ------------------------------------------------------------------------


class _Counts(msgspec.Struct, kw_only=True):
    prompt: int | None = None
    completion: int | None = None
    total: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    cache_write_5m: int | None = None
    cache_write_1h: int | None = None
    reasoning: int | None = None
    prompt_audio: int | None = None
    completion_audio: int | None = None
    cache_read_audio: int | None = None

    def empty(self) -> bool:
        return self.prompt is None and self.completion is None and self.total is None

    def to_usage(self, *, source: str, model: str | None, error: tuple[str, int] | None) -> Usage:
        total = self.total
        if total is None and self.prompt is not None and self.completion is not None:
            total = self.prompt + self.completion
        return Usage(
            prompt_tokens=self.prompt,
            completion_tokens=self.completion,
            total_tokens=total,
            prompt_cache_read_tokens=self.cache_read,
            prompt_cache_write_tokens=self.cache_write,
            prompt_cache_write_5m_tokens=self.cache_write_5m,
            prompt_cache_write_1h_tokens=self.cache_write_1h,
            reasoning_tokens=self.reasoning,
            prompt_audio_tokens=self.prompt_audio,
            completion_audio_tokens=self.completion_audio,
            prompt_cache_read_audio_tokens=self.cache_read_audio,
            source=source,
            response_model=model,
            stream_error=error[0] if error else None,
            stream_error_status=error[1] if error else None,
        )


def _openai_chat_counts(u: JsonObj) -> _Counts:
    """Chat Completions ``usage`` (also Groq's ``x_groq.usage`` and most OpenAI-compatible APIs)."""
    ptd = _obj(u.get("prompt_tokens_details")) or {}
    ctd = _obj(u.get("completion_tokens_details")) or {}
    cache_read = _int(ptd.get("cached_tokens"))
    if cache_read is None:  # DeepSeek reports its context cache this way; hits are part of prompt_tokens.
        cache_read = _int(u.get("prompt_cache_hit_tokens"))
    return _Counts(
        prompt=_int(u.get("prompt_tokens")),
        completion=_int(u.get("completion_tokens")),
        total=_int(u.get("total_tokens")),
        cache_read=cache_read,
        cache_write=_int(ptd.get("cache_write_tokens")),
        reasoning=_int(ctd.get("reasoning_tokens")),
        prompt_audio=_int(ptd.get("audio_tokens")),
        completion_audio=_int(ctd.get("audio_tokens")),
    )


def _responses_counts(u: JsonObj) -> _Counts:
    """Responses API ``usage``: ``input_tokens`` already includes the cached part."""
    itd = _obj(u.get("input_tokens_details")) or {}
    otd = _obj(u.get("output_tokens_details")) or {}
    return _Counts(
        prompt=_int(u.get("input_tokens")),
        completion=_int(u.get("output_tokens")),
        total=_int(u.get("total_tokens")),
        cache_read=_int(itd.get("cached_tokens")),
        cache_write=_int(itd.get("cache_write_tokens")),
        reasoning=_int(otd.get("reasoning_tokens")),
    )


def _anthropic_counts(u: JsonObj) -> _Counts:
    """Anthropic Messages ``usage``.

    Anthropic's ``input_tokens`` EXCLUDES cache reads and cache writes (they are reported beside it), so
    the total input is the sum of the three. ``output_tokens`` already includes thinking.
    """
    uncached = _int(u.get("input_tokens"))
    cache_read = _int(u.get("cache_read_input_tokens"))
    cache_write = _int(u.get("cache_creation_input_tokens"))
    creation = _obj(u.get("cache_creation")) or {}
    write_5m = _int(creation.get("ephemeral_5m_input_tokens"))
    write_1h = _int(creation.get("ephemeral_1h_input_tokens"))
    if cache_write is None:
        cache_write = _add(write_5m, write_1h)
    prompt = _add(uncached, cache_read, cache_write) if uncached is not None else None
    completion = _int(u.get("output_tokens"))
    details = _obj(u.get("output_tokens_details")) or {}
    return _Counts(
        prompt=prompt,
        completion=completion,
        total=prompt + completion if prompt is not None and completion is not None else None,
        cache_read=cache_read,
        cache_write=cache_write,
        cache_write_5m=write_5m,
        cache_write_1h=write_1h,
        reasoning=_int(details.get("thinking_tokens")),
    )


def _converse_counts(u: JsonObj) -> _Counts:
    """Bedrock Converse ``usage``: like Anthropic, ``inputTokens`` excludes cache reads and writes."""
    uncached = _int(u.get("inputTokens"))
    cache_read = _int(u.get("cacheReadInputTokens"))
    cache_write = _int(u.get("cacheWriteInputTokens"))
    ttl: dict[str, int | None] = {}
    details = u.get("cacheDetails")
    if isinstance(details, list):
        for item in details:
            entry = _obj(item) or {}
            ttl[str(entry.get("ttl"))] = _int(entry.get("inputTokens"))
    prompt = _add(uncached, cache_read, cache_write) if uncached is not None else None
    completion = _int(u.get("outputTokens"))
    return _Counts(
        prompt=prompt,
        completion=completion,
        cache_read=cache_read,
        cache_write=cache_write,
        cache_write_5m=ttl.get("5m"),
        cache_write_1h=ttl.get("1h"),
    )


def _modality(details: object, modality: str) -> int | None:
    """Gemini ``*TokensDetails``: a list of ``{modality, tokenCount}``."""
    if isinstance(details, list):
        for item in details:
            entry = _obj(item)
            if entry is not None and entry.get("modality") == modality:
                return _int(entry.get("tokenCount"))
    return None


def _gemini_counts(m: JsonObj) -> _Counts:
    """Gemini ``usageMetadata``.

    ``promptTokenCount`` already includes ``cachedContentTokenCount``; ``candidatesTokenCount`` does NOT
    include ``thoughtsTokenCount`` (thoughts are billed as output), so completion = candidates + thoughts.
    Tool-use prompt tokens are billed as input.
    """
    prompt = _int(m.get("promptTokenCount"))
    cache_details = m.get("cacheTokensDetails")
    cache_audio = _modality(cache_details, "AUDIO")
    if cache_audio is None and isinstance(cache_details, list):
        cache_audio = 0  # The cache is broken down by modality and audio is not in it.
    tool_prompt = _int(m.get("toolUsePromptTokenCount"))
    candidates = _int(m.get("candidatesTokenCount"))
    thoughts = _int(m.get("thoughtsTokenCount"))
    return _Counts(
        prompt=_add(prompt, tool_prompt) if prompt is not None else None,
        completion=_add(candidates, thoughts),
        total=_int(m.get("totalTokenCount")),
        cache_read=_int(m.get("cachedContentTokenCount")),
        reasoning=thoughts,
        prompt_audio=_modality(m.get("promptTokensDetails"), "AUDIO"),
        completion_audio=_modality(m.get("candidatesTokensDetails"), "AUDIO"),
        cache_read_audio=cache_audio,
    )


_ANTHROPIC_USAGE_KEYS = ("cache_read_input_tokens", "cache_creation_input_tokens", "cache_creation")


def _usage_counts(obj: JsonObj, provider: str, request_body: str | None) -> _Counts | None:
    """Counts from a whole (non-stream) response object, any supported format, or None."""
    metadata = _obj(obj.get("usageMetadata"))
    if metadata is not None:
        return _gemini_counts(metadata)
    u = _obj(obj.get("usage"))
    if u is not None:
        if "prompt_tokens" in u or "completion_tokens" in u:
            return _openai_chat_counts(u)
        if "inputTokens" in u or "outputTokens" in u:
            return _converse_counts(u)
        if "input_tokens" in u or "output_tokens" in u:
            # Same key names, different meaning of input_tokens: decide by the markers only one has.
            if obj.get("type") == "message" or any(k in u for k in _ANTHROPIC_USAGE_KEYS):
                return _anthropic_counts(u)
            if obj.get("object") == "response" or "input_tokens_details" in u or "total_tokens" in u:
                return _responses_counts(u)
            if provider.upper() == "ANTHROPIC" or (request_body is not None and "anthropic_version" in request_body):
                return _anthropic_counts(u)
            return _responses_counts(u)
    # Bedrock Meta Llama invoke bodies, and the manual logger's "alternative format".
    if "prompt_token_count" in obj or "generation_token_count" in obj:
        return _Counts(prompt=_int(obj.get("prompt_token_count")), completion=_int(obj.get("generation_token_count")))
    return None


def _model_of(obj: JsonObj) -> str | None:
    return _str(obj.get("model")) or _str(obj.get("modelVersion"))


# -- errors inside streams -------------------------------------------------------------------------


def _error(kind: str, message: str | None) -> tuple[str, int]:
    return (f"{kind}: {message}" if message else kind), stream_error_status(kind)


def _event_error(event: JsonObj) -> tuple[str, int] | None:
    """An error event: Anthropic ``{"type":"error","error":{...}}``, OpenAI ``{"error":{...}}``,
    Responses ``{"type":"error","code":...}`` or ``response.failed``."""
    etype = event.get("type")
    err = _obj(event.get("error"))
    if etype == "response.failed":
        err = _obj((_obj(event.get("response")) or {}).get("error")) or {}
        return _error(_str(err.get("code")) or "response.failed", _str(err.get("message")))
    if err is not None and etype in (None, "error"):
        return _error(_str(err.get("type")) or _str(err.get("code")) or "error", _str(err.get("message")))
    if etype == "error":
        return _error(_str(event.get("code")) or "error", _str(event.get("message")))
    return None


# -- stream event processors (events are decoded dicts, already filtered to those that matter) ----


class _Found(msgspec.Struct):
    counts: _Counts | None
    model: str | None
    error: tuple[str, int] | None = None
    #: True when the body was a manual-logger payload (the counts are then the logger's, not a relay's).
    manual: bool = False


def _chat_events(events: Iterable[JsonObj]) -> _Found:
    """OpenAI Chat chunks: the last chunk with a non-null ``usage`` (or Groq's ``x_groq.usage``)."""
    usage: JsonObj | None = None
    model: str | None = None
    error: tuple[str, int] | None = None
    for event in events:
        model = _str(event.get("model")) or model
        usage = _obj(event.get("usage")) or _obj((_obj(event.get("x_groq")) or {}).get("usage")) or usage
        error = _event_error(event) or error
    return _Found(_openai_chat_counts(usage) if usage is not None else None, model, error)


_RESPONSES_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def _responses_events(events: Iterable[JsonObj]) -> _Found:
    """Responses API events: the terminal event's ``response.usage``."""
    usage: JsonObj | None = None
    model: str | None = None
    error: tuple[str, int] | None = None
    for event in events:
        response = _obj(event.get("response")) or {}
        model = _str(response.get("model")) or model
        if event.get("type") in _RESPONSES_TERMINAL:
            usage = _obj(response.get("usage")) or usage
        error = _event_error(event) or error
    return _Found(_responses_counts(usage) if usage is not None else None, model, error)


def _anthropic_events(events: Iterable[JsonObj]) -> _Found:
    """Anthropic events: ``message_start.message.usage`` shallow-merged with each ``message_delta.usage``.

    Later values win (the delta's counts are cumulative), but an explicit null never erases a count
    the provider already gave.
    """
    merged: JsonObj | None = None
    model: str | None = None
    error: tuple[str, int] | None = None
    for event in events:
        etype = event.get("type")
        if etype == "message_start":
            message = _obj(event.get("message")) or {}
            model = _str(message.get("model")) or model
            merged = dict(_obj(message.get("usage")) or {})
        elif etype == "message_delta":
            delta = _obj(event.get("usage")) or {}
            merged = {**(merged or {}), **{k: v for k, v in delta.items() if v is not None}}
        elif etype == "error":
            error = _event_error(event)
    counts = _anthropic_counts(merged) if merged else None
    return _Found(counts, model, error)


def _gemini_events(events: Iterable[JsonObj]) -> _Found:
    """Gemini chunks: the last ``usageMetadata`` (each chunk carries the running totals)."""
    metadata: JsonObj | None = None
    model: str | None = None
    error: tuple[str, int] | None = None
    for event in events:
        model = _str(event.get("modelVersion")) or model
        metadata = _obj(event.get("usageMetadata")) or metadata
        error = _event_error(event) or error
    return _Found(_gemini_counts(metadata) if metadata is not None else None, model, error)


def _kind(event: JsonObj) -> str:
    """Which wire format a stream speaks, judged from one of its events."""
    etype = event.get("type")
    if isinstance(etype, str):
        if etype.startswith("response."):
            return "responses"
        if etype.startswith(("message_", "content_block_")) or etype == "ping":
            return "anthropic"
        if etype == "error":
            return "responses" if "code" in event or "sequence_number" in event else "anthropic"
    if "usageMetadata" in event or "candidates" in event:
        return "gemini"
    return "chat"


_PROCESSORS = {
    "chat": _chat_events,
    "responses": _responses_events,
    "anthropic": _anthropic_events,
    "gemini": _gemini_events,
}


def _from_events(events: list[JsonObj]) -> _Found:
    """A whole list of decoded events (manual ``streamed_data``, Bedrock, Gemini JSON-array streams)."""
    if not events:
        return _Found(None, None)
    return _PROCESSORS[_kind(events[0])](events)


# -- SSE scanning ----------------------------------------------------------------------------------


def _data_forward(body: str) -> Iterator[str]:
    """``data:`` payloads from the start (lazily: callers read only the first few)."""
    pos, n = 0, len(body)
    while pos < n:
        nl = body.find("\n", pos)
        if nl == -1:
            nl = n
        if body.startswith("data:", pos):
            payload = body[pos + 5 : nl].strip()
            if payload and payload != "[DONE]":
                yield payload
        pos = nl + 1


def _data_reverse(body: str) -> Iterator[str]:
    """``data:`` payloads from the end: usage is at the end of every stream format."""
    end = len(body)
    while end > 0:
        start = body.rfind("\n", 0, end) + 1
        if body.startswith("data:", start):
            payload = body[start + 5 : end].strip()
            if payload and payload != "[DONE]":
                yield payload
        end = start - 1


def _first_event(body: str) -> JsonObj | None:
    for i, payload in enumerate(_data_forward(body)):
        event = _obj(_decode(payload))
        if event is not None:
            return event
        if i >= 4:
            break
    return None


#: How many ``data:`` payloads from the end may hold the usage. Every format sends it in the last event
#: (OpenAI's ``include_usage`` chunk, Responses' terminal event, Gemini's final chunk) or, when a stream
#: was cut, nowhere; a few extra allow for trailing chunks (Azure content-filter results). Bounding the
#: scan keeps a multi-megabyte stream without usage as cheap as a small one.
_TAIL_EVENTS = 8


def _scan_chat(body: str, first: JsonObj) -> _Found:
    tail: list[JsonObj] = []
    for i, payload in enumerate(islice(_data_reverse(body), _TAIL_EVENTS)):
        # The final payload may be an error object; otherwise only a non-null usage matters.
        if not (i == 0 and '"error"' in payload):
            if '"usage"' not in payload:
                continue
            if ('"usage":null' in payload or '"usage": null' in payload) and '"x_groq"' not in payload:
                continue
        event = _obj(_decode(payload))
        if event is None:
            continue
        tail.append(event)
        if _obj(event.get("usage")) or _obj((_obj(event.get("x_groq")) or {}).get("usage")):
            break
    return _chat_events([first, *reversed(tail)])


#: Pre-filter so only terminal and error events are decoded.
_RESPONSES_WANTED = re.compile(r'"type"\s*:\s*"(?:response\.(?:completed|incomplete|failed)|error)"')


def _scan_responses(body: str, first: JsonObj) -> _Found:
    tail: list[JsonObj] = []
    for payload in islice(_data_reverse(body), _TAIL_EVENTS):
        if _RESPONSES_WANTED.search(payload) is None:
            continue
        event = _obj(_decode(payload))
        if event is None:
            continue
        etype = event.get("type")
        if etype in _RESPONSES_TERMINAL or etype == "error":
            tail.append(event)
            if etype in _RESPONSES_TERMINAL:
                break
    return _responses_events([first, *reversed(tail)])


def _scan_anthropic(body: str, first: JsonObj) -> _Found:
    tail: list[JsonObj] = []
    for payload in _data_reverse(body):
        event = _obj(_decode(payload))
        if event is None:
            continue
        etype = event.get("type")
        # message_delta and error come after the last content block: stop at the first block event.
        if not isinstance(etype, str) or etype.startswith("content_block_") or etype == "message_start":
            break
        if etype in ("message_delta", "error"):
            tail.append(event)
    return _anthropic_events([first, *reversed(tail)])


def _scan_gemini(body: str, first: JsonObj) -> _Found:
    tail: list[JsonObj] = []
    for payload in islice(_data_reverse(body), _TAIL_EVENTS):
        if '"usageMetadata"' not in payload and '"error"' not in payload:
            continue
        event = _obj(_decode(payload))
        if event is not None:
            tail.append(event)
            if "usageMetadata" in event:
                break
    return _gemini_events([first, *reversed(tail)])


_SCANNERS = {
    "chat": _scan_chat,
    "responses": _scan_responses,
    "anthropic": _scan_anthropic,
    "gemini": _scan_gemini,
}


def _from_sse(body: str) -> _Found:
    first = _first_event(body)
    if first is None:
        return _Found(None, None)
    return _SCANNERS[_kind(first)](body, first)


_BEDROCK_CHUNK = re.compile(r'"bytes"\s*:\s*"([A-Za-z0-9+/=]+)"')


def _from_bedrock_eventstream(body: str) -> _Found:
    """Bedrock ``invoke-with-response-stream``: binary event-stream frames whose JSON payloads carry the
    model's own events base64-encoded in ``bytes`` (Anthropic events for Claude)."""
    events: list[JsonObj] = []
    for match in _BEDROCK_CHUNK.finditer(body):
        try:
            raw = base64.b64decode(match.group(1), validate=True)
        except ValueError:
            continue
        event = _obj(_decode(raw))
        if event is not None:
            events.append(event)
    return _from_events(events)


_CONVERSE_USAGE = re.compile(r'"usage"\s*:\s*(\{[^{}]*\})')


def _from_converse_stream(body: str) -> _Found:
    """Bedrock ``converse-stream``: event-stream frames whose JSON payloads are Converse's own events;
    the ``metadata`` event's payload holds the usage (the frames' binary preludes are skipped by the scan)."""
    for match in _CONVERSE_USAGE.finditer(body):
        usage = _obj(_decode(match.group(1)))
        if usage is not None and "inputTokens" in usage:
            return _Found(_converse_counts(usage), None, None)
    return _Found(None, None)


# -- manual logger payloads ------------------------------------------------------------------------

_MANUAL_PATH = re.compile(
    r"(?:^|/)(?:custom|oai|anthropic|googleapis)/v1/log/?$|/v1/trace/custom(?:/v1)?/log(?:/typed)?/?$"
    r"|async-unknown-path"
)


def _is_manual_path(path: str) -> bool:
    return bool(path) and _MANUAL_PATH.search(urlsplit(path).path or path) is not None


def _from_provider_response(resp: JsonObj, provider: str, request_body: str | None) -> _Found:
    """The manual logger's ``providerResponse``: ``json`` (maybe with ``streamed_data``) or ``textBody``."""
    body = _obj(resp.get("json"))
    found = _Found(None, None)
    if body is not None:
        streamed = body.get("streamed_data")
        if isinstance(streamed, list):
            found = _from_events([e for e in streamed if isinstance(e, dict)])
        else:
            found = _Found(_usage_counts(body, provider, request_body), _model_of(body))
    if found.counts is None:
        text = _str(resp.get("textBody"))
        if text is not None:
            found = _from_text(text, provider, request_body)
    found.manual = True
    return found


# -- entry point -----------------------------------------------------------------------------------

_FIRST_CHAR = re.compile(r"\s*(\S)")


def _json_lines(body: str) -> list[JsonObj]:
    """One JSON object per non-blank line, or nothing at all when a line is anything else (a pretty-printed
    or truncated document fails on its first line, so the attempt costs little)."""
    events: list[JsonObj] = []
    for line in body.splitlines():
        if line.strip():
            event = _obj(_decode(line))
            if event is None:
                return []
            events.append(event)
    return events


def _from_text(body: str, provider: str, request_body: str | None) -> _Found:
    """Dispatch on what the body looks like: JSON document, SSE, Bedrock event stream."""
    first = _FIRST_CHAR.match(body)
    if first is None:
        return _Found(None, None)
    if first.group(1) in "{[":
        doc = _decode(body)
        obj = _obj(doc)
        if obj is not None:
            manual = _obj(obj.get("providerResponse"))
            if manual is not None:
                return _from_provider_response(manual, provider, request_body)
            streamed = obj.get("streamed_data")
            if isinstance(streamed, list):  # A manual-logger ``providerResponse.json`` holding a stream.
                found = _from_events([e for e in streamed if isinstance(e, dict)])
                found.manual = True
                return found
            return _Found(_usage_counts(obj, provider, request_body), _model_of(obj), None)
        if isinstance(doc, list):  # Gemini streamGenerateContent without alt=sse: a JSON array of chunks.
            return _from_events([e for e in doc if isinstance(e, dict)])
        if doc is None and "\n" in body:
            # JSON lines, one chunk per line: what helicone-helpers' log builder sends as a stream's textBody.
            return _from_events(_json_lines(body))
        return _Found(None, None)
    if "data:" in body:
        return _from_sse(body)
    if '"bytes"' in body:
        return _from_bedrock_eventstream(body)
    if '"usage"' in body and '"inputTokens"' in body:
        return _from_converse_stream(body)
    return _Found(None, None)


def extract_usage(
    *,
    provider: str,
    path: str,
    response_body: str | None,
    is_stream: bool,
    request_body: str | None = None,
) -> Usage:
    """Token usage of one response body; never raises (a body it cannot read gives ``source="absent"``).

    ``provider`` is Helicone's label (or a URL) and only breaks ties between formats that share key
    names; ``is_stream`` is a hint, the body's shape decides (an errored stream request answers JSON,
    and a manual-log payload may wrap a stream). ``request_body`` is only consulted for such ties.
    """
    if not response_body:
        return _ABSENT
    try:
        found = _from_text(response_body, provider or "", request_body)
        if found.counts is None or found.counts.empty():
            if found.error is None and found.model is None:
                return _ABSENT
            return Usage(
                response_model=found.model,
                stream_error=found.error[0] if found.error else None,
                stream_error_status=found.error[1] if found.error else None,
            )
        if found.manual or _is_manual_path(path):
            source = "manual"
        else:
            first = _FIRST_CHAR.match(response_body)
            source = "response" if first is not None and first.group(1) in "{[" else "stream"
        return found.counts.to_usage(source=source, model=found.model, error=found.error)
    except Exception:  # A bad body must never stop the pipeline; the row is still written, unbilled.
        return _ABSENT


# -- model -----------------------------------------------------------------------------------------

_PATH_MODEL = (
    re.compile(r"/models/([^/:?]+)"),  # Gemini / Vertex: /v1beta/models/<model>:generateContent
    re.compile(r"/deployments/([^/?]+)"),  # Azure OpenAI: /openai/deployments/<deployment>/...
    re.compile(r"/model/([^/?]+)"),  # Bedrock: /model/<id>/invoke, /converse
    re.compile(r"/engines/([^/?]+)"),  # legacy OpenAI
)


def _model_from_path(path: str) -> str | None:
    if not path:
        return None
    route = urlsplit(path).path or path
    for pattern in _PATH_MODEL:
        match = pattern.search(route)
        if match:
            model = unquote(match.group(1)).strip()
            if model:
                return model
    return None


def resolve_model(
    *,
    model_override: str | None,
    response_model: str | None,
    request_model: str | None,
    path: str,
) -> str | None:
    """The model a row is billed and grouped by: override > response > request > path (Helicone's order).

    The response model wins over the request's because providers answer with the exact version that ran
    (``gpt-4o-mini`` -> ``gpt-4o-mini-2024-07-18``), which is what prices are keyed by.
    """
    for candidate in (model_override, response_model, request_model):
        if candidate and candidate.strip():
            return candidate.strip()
    return _model_from_path(path)

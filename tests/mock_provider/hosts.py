"""The OpenAI-compatible hosts (Together, Fireworks, Cerebras, Perplexity, DeepInfra, Nebius, Novita,
Hyperbolic, NVIDIA NIM, Meta's Llama API), each where its wire format differs from OpenAI's.

All of them speak OpenAI Chat Completions, so the answers start from the OpenAI chat fixtures; what
differs per host is applied on top, as each host's API reference shows it:

* the chat **path** under the host's base URL (Fireworks ``/inference/v1``, DeepInfra
  ``/v1/openai``, Novita ``/openai/v1``, Perplexity ``/chat/completions``, Llama API ``/compat/v1``);
  a request at any other path gets the host's 404, as a wrong URL would;
* **usage**: Fireworks, Together, Cerebras and Perplexity put ``usage`` on the stream's last chunk
  (the one with ``finish_reason``) instead of a separate usage-only chunk, and report it whether
  or not ``stream_options`` asked; Perplexity adds ``citations``/``search_results`` and search fields
  to ``usage``; Cerebras adds ``time_info``; DeepInfra adds ``estimated_cost``;
* **error bodies**: Fireworks ``{"error": {"object": "error", ...}}``, Cerebras, Novita and Hyperbolic
  a top-level ``message``, Nebius FastAPI's ``{"detail": ...}``, NVIDIA an RFC 9457 problem.

Hosts are told apart by a path prefix: a test points ``HELIPORT_UPSTREAM_<SLUG>`` at
``<mock>/<slug>`` and the host sees the rest of the path. Extra knobs (hosts only, so a fallback to
another provider in the same request is unaffected):

* ``x-mock-host-status: <code>``  the host's own error body with that status
* ``x-mock-host-error: context_length``  with status 400: the host's context-window error
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.responses import Response, StreamingResponse

from .fixtures import encode

JsonObj = dict[str, Any]
JSON_TYPE = "application/json"

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}

#: The sources a Perplexity answer cites (its real answers carry the URLs it searched).
CITATIONS = ["https://example.org/hello", "https://example.org/greetings"]


def _kind(status: int) -> str:
    if status == 429:
        return "rate_limit_error"
    if status in (401, 403):
        return "authentication_error"
    return "server_error" if status >= 500 else "invalid_request_error"


def _message(host: str, status: int, context: bool) -> str:
    if context:
        return f"{host}: This model's maximum context length is 8192 tokens. Please reduce the length of the messages."
    return f"{host} mock error {status}: {_REASONS.get(status, 'Error')}"


# -- each host's error body ----------------------------------------------------------------------


def _openai_shape(host: str, status: int, message: str, context: bool) -> JsonObj:
    code = "context_length_exceeded" if context else None
    return {"error": {"message": message, "type": _kind(status), "param": None, "code": code}}


def _together(host: str, status: int, message: str, context: bool) -> JsonObj:
    body = _openai_shape(host, status, message, context)
    return {"id": "mock-together-error", **body}


def _fireworks(host: str, status: int, message: str, context: bool) -> JsonObj:
    return {"error": {"object": "error", "type": _kind(status), "code": _kind(status), "message": message}}


def _cerebras(host: str, status: int, message: str, context: bool) -> JsonObj:
    if context:  # Cerebras says it in the code; the message only asks to shorten the input.
        message = "cerebras: Please reduce the length of the messages or completion."
    code = "context_length_exceeded" if context else ("wrong_api_format" if status == 422 else str(status))
    return {"message": message, "type": _kind(status), "param": "messages" if context else None, "code": code}


def _perplexity(host: str, status: int, message: str, context: bool) -> JsonObj:
    return {"error": {"message": message, "type": _kind(status), "code": status}}


def _deepinfra(host: str, status: int, message: str, context: bool) -> JsonObj:
    return {"error": {"message": message}}


def _nebius(host: str, status: int, message: str, context: bool) -> JsonObj:
    return {"detail": message}


def _novita(host: str, status: int, message: str, context: bool) -> JsonObj:
    return {"code": status, "reason": _REASONS.get(status, "ERROR").upper().replace(" ", "_"), "message": message}


def _hyperbolic(host: str, status: int, message: str, context: bool) -> JsonObj:
    return {"object": "error", "message": message, "type": "BadRequestError", "param": None, "code": status}


def _nvidia(host: str, status: int, message: str, context: bool) -> JsonObj:
    return {"type": "about:blank", "status": status, "title": _REASONS.get(status, "Error"), "detail": message}


# -- each host's answers -----------------------------------------------------------------------------


def _usage_on_last_chunk(chunks: list[JsonObj]) -> list[JsonObj]:
    """Move a usage-only chunk's usage onto the chunk that carries ``finish_reason`` (always sent)."""
    usage = next((c["usage"] for c in chunks if c.get("usage")), None)
    kept = [c for c in chunks if c.get("choices")]
    for chunk in kept:
        chunk.pop("usage", None)
        if usage is not None and any(ch.get("finish_reason") for ch in chunk["choices"]):
            chunk["usage"] = usage
    return kept


def _perplexity_body(body: JsonObj) -> JsonObj:
    body["citations"] = CITATIONS
    body["search_results"] = [{"title": "Hello", "url": url, "date": "2025-01-01"} for url in CITATIONS]
    usage = body.get("usage")
    if isinstance(usage, dict):
        usage.update({"search_context_size": "low", "citation_tokens": 0, "num_search_queries": 1})
    return body


def _cerebras_body(body: JsonObj) -> JsonObj:
    usage = body.get("usage")
    if isinstance(usage, dict):  # the answer, or the stream's last chunk
        usage["prompt_tokens_details"] = {"cached_tokens": 0}
        body["time_info"] = {"queue_time": 0.0001, "prompt_time": 0.001, "completion_time": 0.002, "total_time": 0.004}
    return body


def _deepinfra_body(body: JsonObj) -> JsonObj:
    usage = body.get("usage")
    if isinstance(usage, dict):
        usage["estimated_cost"] = 0.0000123
    return body


def _same(body: JsonObj) -> JsonObj:
    return body


@dataclass(frozen=True, slots=True)
class Host:
    slug: str
    chat_path: str
    error: Callable[[str, int, str, bool], JsonObj] = _openai_shape
    #: Applied to the JSON answer and to every stream chunk.
    adapt: Callable[[JsonObj], JsonObj] = _same
    #: Usage rides on the finish chunk (and is sent even when ``stream_options`` did not ask).
    usage_on_last_chunk: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)

    def error_response(self, status: int, *, context: bool = False) -> Response:
        body = self.error(self.slug, status, _message(self.slug, status, context), context)
        media = "application/problem+json" if self.slug == "nvidia" else JSON_TYPE
        headers = {"retry-after": "0"} if status == 429 else {}
        return Response(encode(body), status_code=status, headers=headers, media_type=media)


HOSTS: dict[str, Host] = {
    host.slug: host
    for host in (
        Host("together", "/v1/chat/completions", _together, usage_on_last_chunk=True),
        Host("fireworks", "/inference/v1/chat/completions", _fireworks, usage_on_last_chunk=True),
        Host("cerebras", "/v1/chat/completions", _cerebras, _cerebras_body, usage_on_last_chunk=True),
        Host("perplexity", "/chat/completions", _perplexity, _perplexity_body, usage_on_last_chunk=True),
        Host("deepinfra", "/v1/openai/chat/completions", _deepinfra, _deepinfra_body),
        Host("nebius", "/v1/chat/completions", _nebius),
        Host("novita", "/openai/v1/chat/completions", _novita),
        Host("hyperbolic", "/v1/chat/completions", _hyperbolic),
        Host("nvidia", "/v1/chat/completions", _nvidia),
        Host("llama", "/compat/v1/chat/completions", _openai_shape),
    )
}


def host_for(path: str) -> tuple[Host, str] | None:
    """The host a ``/<slug>/...`` path is for, and the path the host itself sees."""
    slug, _, rest = path.lstrip("/").partition("/")
    host = HOSTS.get(slug)
    return None if host is None else (host, "/" + rest)


ChatHandler = Callable[[Mapping[str, Any], Mapping[str, str]], Awaitable[Response]]


async def chat(
    host: Host, path: str, chat_completions: ChatHandler, payload: Any, headers: Mapping[str, str]
) -> Response:
    """One host's chat endpoint: the OpenAI answer (``chat_completions``) in the host's dialect."""
    if path != host.chat_path:
        return host.error_response(404)
    raw_status = headers.get("x-mock-host-status", "").strip()
    if raw_status.isdigit() and int(raw_status) >= 400:
        return host.error_response(int(raw_status), context=headers.get("x-mock-host-error") == "context_length")
    if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
        return host.error_response(400)
    request = dict(payload)
    if host.usage_on_last_chunk and request.get("stream") is True:
        request["stream_options"] = {"include_usage": True}  # these hosts always report it
    response = await chat_completions(request, headers)
    if response.status_code != 200:
        return response
    if request.get("stream") is True:
        return _restream(host, response)
    body = msgspec.json.decode(bytes(response.body))
    return Response(encode(host.adapt(body)), headers=dict(host.headers), media_type=JSON_TYPE)


def _restream(host: Host, response: Response) -> Response:
    """Rewrite the OpenAI stream. A paced stream (``x-mock-chunk-delay-ms`` and friends) is rewritten
    event by event to keep its pacing, so there the usage stays on its own chunk."""
    events: list[bytes] | None = getattr(response, "events", None)
    if events is not None:
        return Response(b"".join(_rewrite(host, events)), media_type="text/event-stream")
    assert isinstance(response, StreamingResponse)
    source = response.body_iterator

    async def rewritten() -> AsyncIterator[bytes]:
        async for event in source:
            for out in _rewrite(host, [event if isinstance(event, bytes) else str(event).encode()]):
                yield out

    return StreamingResponse(rewritten(), media_type="text/event-stream")


def _rewrite(host: Host, events: list[bytes]) -> list[bytes]:
    chunks: list[JsonObj] = []
    done = False
    for event in events:
        for line in event.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                done = True
            elif data:
                chunks.append(msgspec.json.decode(data))
    if host.usage_on_last_chunk:
        chunks = _usage_on_last_chunk(chunks)
    out = [b"data: " + encode(host.adapt(chunk)) + b"\n\n" for chunk in chunks]
    if done:
        out.append(b"data: [DONE]\n\n")
    return out

"""The mock provider ASGI app: OpenAI Chat Completions, OpenAI Responses, Anthropic Messages (and
Bedrock Converse, Gemini's native generateContent for image models: :mod:`.bedrock`, :mod:`.gemini`).

It speaks the providers' real wire formats (bodies come from checked-in
fixtures) so a gateway under test cannot tell it from the real thing, and it
lets tests steer failures and pacing with ``x-mock-*`` request headers, which a
proxy forwards untouched:

* ``x-mock-status: <code>``       reply with that status and the provider's error body
* ``x-mock-delay-ms: N``          sleep before sending response headers
* ``x-mock-chunk-delay-ms: N``    sleep between stream events
* ``x-mock-fail-after: N``        drop the connection after N stream events
* ``x-mock-stream-error: overloaded``  (Anthropic) 200, message_start, then an ``error`` event
* ``x-mock-gate: <name>``         after the first stream event, wait for ``release(name)``
* ``x-mock-fail-first: N`` with ``x-mock-fail-key: <k>``  the first N requests carrying key k get
  ``x-mock-fail-status`` (default 503), later ones succeed: a provider that recovers, for retries
* ``x-mock-gate-timeout-ms: N``   how long a gate waits (default 10 s)

A credential (API key, or the access key id of a SigV4 signature) containing ``mock-status-<code>``
gets that error on every request: how gateway tests make one provider account fail and another
answer. OpenAI-compatible providers' chat paths (Azure deployments, Gemini's ``/v1beta/openai``,
Groq's ``/openai/v1``, OpenRouter's ``/api/v1``, DeepSeek's ``/chat/completions``) all reach the chat
endpoint, and every request's path and query are recorded, so tests see where it was sent.
Vertex AI (Google's OAuth2 token endpoint, Claude's rawPredict, the OpenAI-compatible endpoint) is
:mod:`.vertex`, reached before the routes above.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from . import bedrock as mock_bedrock
from . import gemini as mock_gemini
from . import guards as mock_guards
from . import hosts as mock_hosts
from . import moderation as mock_moderation
from . import vertex as mock_vertex
from .fixtures import Fixtures, Reply, ToolChoice, arguments_for_schema, encode, load_fixtures
from .recorder import RecordedRequest, Recorder

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream"
DEFAULT_GATE_TIMEOUT_S = 10.0

_ANTHROPIC_PREFIX = "/v1/messages"
_FORCED_STATUS = re.compile(r"mock-status-(\d{3})")


class MockStreamAbort(Exception):
    """Raised inside a stream body to make uvicorn drop the connection mid-response.

    There is no ASGI message for "abort"; an exception after the response has
    started is the only way to end the socket without the terminating chunk,
    which is what a real network failure looks like to the client.
    """


class _AbortLogFilter(logging.Filter):
    """Hide uvicorn's traceback for deliberate aborts so test output stays readable."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        seen: set[int] = set()
        while exc is not None and id(exc) not in seen:
            seen.add(id(exc))
            if isinstance(exc, MockStreamAbort):
                return False
            if isinstance(exc, BaseExceptionGroup) and any(
                isinstance(inner, MockStreamAbort) for inner in exc.exceptions
            ):
                return False
            exc = exc.__cause__ or exc.__context__
        return True


_LOG_FILTER = _AbortLogFilter()


def install_log_filter() -> None:
    """Attach the abort filter to uvicorn's error logger (idempotent)."""
    logger = logging.getLogger("uvicorn.error")
    if _LOG_FILTER not in logger.filters:
        logger.addFilter(_LOG_FILTER)


# -- scenario controls -------------------------------------------------------------


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return int(raw.strip())
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class StreamControls:
    """Per-request stream pacing and failure knobs read from ``x-mock-*`` headers."""

    chunk_delay_s: float = 0.0
    fail_after: int | None = None
    gate: str | None = None
    gate_timeout_s: float = DEFAULT_GATE_TIMEOUT_S

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> StreamControls:
        chunk_delay = _int_header(headers, "x-mock-chunk-delay-ms")
        gate_timeout = _int_header(headers, "x-mock-gate-timeout-ms")
        return cls(
            chunk_delay_s=max(chunk_delay or 0, 0) / 1000,
            fail_after=_int_header(headers, "x-mock-fail-after"),
            gate=headers.get("x-mock-gate") or None,
            gate_timeout_s=gate_timeout / 1000 if gate_timeout is not None else DEFAULT_GATE_TIMEOUT_S,
        )

    @property
    def plain(self) -> bool:
        """True when the stream can be sent without any per-event work."""
        return not self.chunk_delay_s and self.fail_after is None and self.gate is None


async def _paced(events: list[bytes], controls: StreamControls, recorder: Recorder) -> AsyncIterator[bytes]:
    """Yield events honouring delays, gates and mid-stream aborts."""
    for index, event in enumerate(events):
        if index > 0 and controls.chunk_delay_s:
            await asyncio.sleep(controls.chunk_delay_s)
        if controls.fail_after is not None and index >= controls.fail_after:
            raise MockStreamAbort(f"mock aborted the stream after {index} events")
        yield event
        if index == 0 and controls.gate is not None:
            await recorder.wait_gate(controls.gate, limit_s=controls.gate_timeout_s)


class EventsResponse(Response):
    """Sends precomputed SSE events back to back, one body message per event.

    Used when no pacing header is set. Skipping ``StreamingResponse``'s
    disconnect-listener task keeps per-request cost low for benchmarks; with
    every event already in memory there is nothing to cancel, and uvicorn drops
    sends after a disconnect anyway.
    """

    def __init__(self, events: list[bytes], headers: Mapping[str, str]) -> None:
        # Not calling Response.__init__: it would set a body and so a Content-Length.
        self.status_code = 200
        self.media_type = SSE_TYPE
        self.background = None
        self.init_headers(headers)
        self.events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        for event in self.events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


# -- provider flavoured errors and headers -------------------------------------------


def _request_id() -> str:
    return "req_" + os.urandom(12).hex()


def openai_headers() -> dict[str, str]:
    """Headers the real OpenAI API sends on every reply."""
    return {"x-request-id": _request_id(), "openai-processing-ms": "1", "openai-version": "2020-10-01"}


def anthropic_headers() -> dict[str, str]:
    """Headers the real Anthropic API sends on every reply."""
    return {"request-id": _request_id()}


_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "The request was rejected by the mock provider."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided (mock)."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Access to this resource is denied."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    409: ("invalid_request_error", None, "The request conflicts with another in-flight request (mock)."),
    422: ("invalid_request_error", None, "The request could not be processed (mock)."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests (mock). Please try again shortly."),
    500: ("server_error", None, "The mock server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway (mock)."),
    503: ("server_error", None, "The mock engine is currently overloaded, please try again later."),
    504: ("server_error", None, "The mock server timed out."),
}

_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "The request was rejected by the mock provider."),
    401: ("authentication_error", "invalid x-api-key (mock)"),
    402: ("billing_error", "Billing problem (mock)."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource (mock)."),
    404: ("not_found_error", "Not found (mock)."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes (mock)."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit (mock)."),
    500: ("api_error", "Internal server error (mock)."),
    504: ("timeout_error", "Request timed out (mock)."),
    529: ("overloaded_error", "Overloaded"),
}

STREAM_ERRORS: dict[str, tuple[str, str]] = {
    "overloaded": ("overloaded_error", "Overloaded"),
    "overloaded_error": ("overloaded_error", "Overloaded"),
    "api_error": ("api_error", "Internal server error"),
    "rate_limit": ("rate_limit_error", "Rate limited"),
    "rate_limit_error": ("rate_limit_error", "Rate limited"),
}


def openai_error(status: int, message: str | None = None) -> Response:
    """An error in OpenAI's ``{"error": {message, type, param, code}}`` shape."""
    kind, code, default = _OPENAI_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, f"Mock error {status}.")
    )
    body = {"error": {"message": message or default, "type": kind, "param": None, "code": code}}
    headers = openai_headers()
    if status == 429:
        headers["retry-after"] = "0"
        headers["x-ratelimit-remaining-requests"] = "0"
    return Response(encode(body), status_code=status, headers=headers, media_type=JSON_TYPE)


def anthropic_error(status: int, message: str | None = None) -> Response:
    """An error in Anthropic's ``{"type": "error", "error": {type, message}}`` shape."""
    kind, default = _ANTHROPIC_ERRORS.get(
        status, ("api_error" if status >= 500 else "invalid_request_error", f"Mock error {status}.")
    )
    headers = anthropic_headers()
    body = {
        "type": "error",
        "error": {"type": kind, "message": message or default},
        "request_id": headers["request-id"],
    }
    if status == 429:
        headers["retry-after"] = "0"
    return Response(encode(body), status_code=status, headers=headers, media_type=JSON_TYPE)


def _error_for(path: str, status: int, message: str | None = None) -> Response:
    hosted = mock_hosts.host_for(path)
    if hosted is not None:
        return hosted[0].error_response(status)
    if mock_gemini.route(path) is not None:
        return mock_gemini.gemini_error(status, message)
    if path.startswith(("/model/", "/guardrail/")):
        return mock_bedrock.bedrock_error(status, message)
    if path.startswith(_ANTHROPIC_PREFIX):
        return anthropic_error(status, message)
    return openai_error(status, message)


# -- tool selection ------------------------------------------------------------------


def _chat_tool(payload: Mapping[str, Any]) -> ToolChoice | None:
    """First function tool, unless a tool result already came back (then answer in text)."""
    messages = payload.get("messages")
    if isinstance(messages, list) and any(
        isinstance(m, dict) and m.get("role") in ("tool", "function") for m in messages
    ):
        return None
    for tool in payload.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type", "function") == "function":
            function = tool.get("function") or {}
            if isinstance(function, dict) and function.get("name"):
                return ToolChoice(str(function["name"]), arguments_for_schema(function.get("parameters")))
    return None


def _responses_tool(payload: Mapping[str, Any]) -> ToolChoice | None:
    """Same rule for the Responses API, whose tool results are ``function_call_output`` items."""
    items = payload.get("input")
    if isinstance(items, list) and any(isinstance(i, dict) and i.get("type") == "function_call_output" for i in items):
        return None
    for tool in payload.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function" and tool.get("name"):
            return ToolChoice(str(tool["name"]), arguments_for_schema(tool.get("parameters")))
    return None


def _anthropic_tool(payload: Mapping[str, Any]) -> ToolChoice | None:
    """Same rule for Anthropic, whose tool results are user ``tool_result`` blocks."""
    for message in payload.get("messages") or []:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
            return None
    for tool in payload.get("tools") or []:
        # Client tools carry an input_schema; server tools (web_search_...) do not.
        if isinstance(tool, dict) and tool.get("name") and "input_schema" in tool:
            return ToolChoice(str(tool["name"]), arguments_for_schema(tool.get("input_schema")))
    return None


def _model(payload: Mapping[str, Any]) -> str | None:
    model = payload.get("model")
    return model if isinstance(model, str) and model else None


# -- the app ------------------------------------------------------------------------------

Handler = Callable[[Mapping[str, Any], Mapping[str, str]], Awaitable[Response]]


class MockProviderApp:
    """Holds compiled fixtures and the recorder; one instance per Starlette app."""

    def __init__(self, recorder: Recorder, fixtures: Fixtures) -> None:
        self.recorder = recorder
        self.fixtures = fixtures
        #: x-mock-fail-key -> how many requests with that key were failed so far.
        self.failures: dict[str, int] = {}
        #: Vertex AI: its token endpoint and the service accounts it trusts (tests register them).
        self.vertex = mock_vertex.VertexMock(recorder)
        self.models_body = encode(
            {
                "object": "list",
                "data": [
                    {"id": "gpt-4o-mini", "object": "model", "created": 1721172741, "owned_by": "system"},
                    {"id": "gpt-4.1-mini", "object": "model", "created": 1744318173, "owned_by": "system"},
                    {"id": "claude-sonnet-4-6", "object": "model", "created": 1759104000, "owned_by": "anthropic"},
                ],
            }
        )
        self.routes: dict[tuple[str, str], Handler] = {
            ("POST", "/v1/chat/completions"): self.chat_completions,
            ("POST", "/v1/responses"): self.responses,
            ("POST", "/v1/messages"): self.messages,
            ("GET", "/v1/models"): self.models,
            ("POST", "/v1/moderations"): self.moderations,
        }

    async def dispatch(self, request: Request) -> Response:
        """Record, apply header-driven scenarios, then route. One entry point keeps recording uniform."""
        body = await request.body()
        headers: dict[str, str] = {}
        for raw_name, raw_value in request.scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        method = request.method
        path = request.url.path
        self.recorder.record(
            RecordedRequest(
                method=method,
                path=path,
                query=request.scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body=body,
            )
        )

        delay_ms = _int_header(headers, "x-mock-delay-ms")
        if delay_ms and delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)

        if mock_vertex.VertexMock.handles(method, path):  # Google's errors, OAuth2 bearer tokens, a form body
            return await self.vertex.dispatch(path, body, headers, messages=self.messages, chat=self.chat_completions)
        handler = self.routes.get((method, path))
        hosted = mock_hosts.host_for(path) if method == "POST" else None
        if hosted is not None:  # an OpenAI-compatible host at /<slug>/...: its own paths and dialect
            handler = partial(mock_hosts.chat, hosted[0], hosted[1], self.chat_completions)
        if handler is None and method == "POST" and path.endswith("/chat/completions"):
            handler = self.chat_completions
        bedrock_route = mock_bedrock.route(path) if handler is None and method == "POST" else None
        guardrail_route = mock_guards.guardrail_route(path) if handler is None and method == "POST" else None
        gemini_route = mock_gemini.route(path) if handler is None and method == "POST" else None
        if handler is None and bedrock_route is None and guardrail_route is None and gemini_route is None:
            return openai_error(404, f"Invalid URL ({method} {path})")

        credential = " ".join(
            headers.get(name, "") for name in ("authorization", "x-api-key", "api-key", "x-goog-api-key")
        )
        forced = _FORCED_STATUS.search(credential)
        if forced is not None:
            return _error_for(path, int(forced.group(1)))
        status = _int_header(headers, "x-mock-status")
        if status is not None and status >= 400:
            return _error_for(path, status)
        fail_first = _int_header(headers, "x-mock-fail-first")
        if fail_first:
            fail_key = headers.get("x-mock-fail-key", "")
            failed = self.failures.get(fail_key, 0)
            if failed < fail_first:
                self.failures[fail_key] = failed + 1
                return _error_for(path, _int_header(headers, "x-mock-fail-status") or 503)

        payload: Any = {}
        if body:
            try:
                payload = msgspec.json.decode(body)
            except msgspec.DecodeError:
                return _error_for(path, 400, "We could not parse the JSON body of your request.")
            if not isinstance(payload, dict):
                return _error_for(path, 400, "The request body must be a JSON object.")
        if guardrail_route is not None:
            return await mock_guards.apply_guardrail(guardrail_route, payload, headers)
        if gemini_route is not None:
            return await mock_gemini.generate_content(gemini_route[0], payload, gemini_route[1])
        if bedrock_route is not None:
            model_id, stream = bedrock_route
            if stream:
                return await mock_bedrock.converse_stream(model_id, payload, headers, recorder=self.recorder)
            return await mock_bedrock.converse(model_id, payload, headers)
        assert handler is not None
        return await handler(payload, headers)

    # -- endpoints -----------------------------------------------------------------------

    async def models(self, payload: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
        return Response(self.models_body, headers=openai_headers(), media_type=JSON_TYPE)

    async def moderations(self, payload: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
        return await mock_moderation.moderations(payload, headers)

    async def chat_completions(self, payload: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
        guarded = mock_guards.classifier_reply(payload)  # a Prompt Guard / Llama Guard model: its verdict
        if guarded is not None:
            return guarded
        tool = _chat_tool(payload)
        fx = self.fixtures
        if payload.get("stream") is True:
            options = payload.get("stream_options")
            include_usage = isinstance(options, dict) and options.get("include_usage") is True
            if tool is None:
                reply = fx.chat_stream if include_usage else fx.chat_stream_no_usage
            else:
                reply = fx.chat_stream_tool if include_usage else fx.chat_stream_tool_no_usage
            return self._stream(reply, payload, tool, headers, openai_headers())
        reply = fx.chat if tool is None else fx.chat_tool
        return self._json(reply, payload, tool, openai_headers())

    async def responses(self, payload: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
        tool = _responses_tool(payload)
        fx = self.fixtures
        if payload.get("stream") is True:
            reply = fx.responses_stream if tool is None else fx.responses_stream_tool
            return self._stream(reply, payload, tool, headers, openai_headers())
        reply = fx.responses if tool is None else fx.responses_tool
        return self._json(reply, payload, tool, openai_headers())

    async def messages(self, payload: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
        tool = _anthropic_tool(payload)
        fx = self.fixtures
        if payload.get("stream") is True:
            reply = fx.messages_stream if tool is None else fx.messages_stream_tool
            stream_error = headers.get("x-mock-stream-error")
            if stream_error:
                return self._anthropic_stream_error(reply, payload, tool, headers, stream_error)
            return self._stream(reply, payload, tool, headers, anthropic_headers())
        reply = fx.messages if tool is None else fx.messages_tool
        return self._json(reply, payload, tool, anthropic_headers())

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _json(reply: Reply, payload: Mapping[str, Any], tool: ToolChoice | None, headers: dict[str, str]) -> Response:
        body = reply.render_body(reply.values(_model(payload), tool))
        return Response(body, headers=headers, media_type=JSON_TYPE)

    def _stream_response(
        self, events: list[bytes], request_headers: Mapping[str, str], headers: dict[str, str]
    ) -> Response:
        controls = StreamControls.from_headers(request_headers)
        headers["cache-control"] = "no-cache"
        if controls.plain:
            return EventsResponse(events, headers)
        return StreamingResponse(_paced(events, controls, self.recorder), headers=headers, media_type=SSE_TYPE)

    def _stream(
        self,
        reply: Reply,
        payload: Mapping[str, Any],
        tool: ToolChoice | None,
        request_headers: Mapping[str, str],
        headers: dict[str, str],
    ) -> Response:
        events = reply.render_events(reply.values(_model(payload), tool))
        return self._stream_response(events, request_headers, headers)

    def _anthropic_stream_error(
        self,
        reply: Reply,
        payload: Mapping[str, Any],
        tool: ToolChoice | None,
        request_headers: Mapping[str, str],
        kind: str,
    ) -> Response:
        """Anthropic can fail after a 200: message_start, then an ``error`` event, then EOF."""
        error_type, message = STREAM_ERRORS.get(kind.strip().lower(), STREAM_ERRORS["overloaded"])
        first = reply.render_events(reply.values(_model(payload), tool))[0]
        error_event = (
            b"event: error\ndata: "
            + encode({"type": "error", "error": {"type": error_type, "message": message}})
            + b"\n\n"
        )
        return self._stream_response([first, error_event], request_headers, anthropic_headers())


def create_app(recorder: Recorder | None = None) -> Starlette:
    """Build the mock app; fixtures are read and compiled here, once, not per request."""
    state = MockProviderApp(recorder or Recorder(record_requests=False), load_fixtures())
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
    app = Starlette(routes=[Route("/{path:path}", state.dispatch, methods=methods)])
    app.state.mock = state
    return app

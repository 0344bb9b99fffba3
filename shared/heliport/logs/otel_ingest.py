"""OpenTelemetry ingest: ``POST /v1/trace/log`` (OTLP JSON) and ``POST /v1/trace/log-python`` (OTLP protobuf).

Helicone's async integration: the ``helicone-async`` package (OpenLLMetry, i.e. Traceloop's
instrumentations) exports each LLM call as an OpenTelemetry span to ``/v1/trace/log-python`` (OTLP
over HTTP, protobuf, ``Authorization: Bearer <key>``); ``/v1/trace/log`` takes the same traces as
OTLP JSON (the ``OTELTrace`` shape). Each LLM span becomes a :class:`LogRecord` and takes the queue ->
consumer path of a proxied request, as :mod:`heliport.logs.async_log` does for its JSON payload: same
key check, same body limits, same error shapes.

A span is an LLM call when it carries OpenLLMetry's ``gen_ai.*`` / ``llm.*`` attributes (system,
model, request type, prompts or completions); any other span (a workflow, an HTTP call) is skipped and
counted in the ``heliport-spans-skipped`` response header. From an LLM span:

* the bodies are rebuilt in OpenAI's shape from ``gen_ai.prompt.N.*`` and ``gen_ai.completion.N.*``
  (chat; ``completion`` and ``embedding`` request types get their own OpenAI shapes), as Helicone does;
* the tokens come from ``gen_ai.usage.*`` / ``llm.usage.total_tokens`` (the instrumentation's counts,
  usage source ``manual``), the model from ``gen_ai.request.model`` / ``gen_ai.response.model``, the
  provider from ``gen_ai.system``, the times from the span's start and end;
* association properties (``traceloop.association.properties.<name>``, what the logger's
  ``set_properties`` sets) whose name is a ``Helicone-*`` header act as that header, on top of the
  POST's own ``Helicone-*`` headers (the span wins on a clash): ``Helicone-User-Id``,
  ``Helicone-Session-Id``, ``Helicone-Property-*``, ``Helicone-Omit-Response``... Other association
  properties are not headers and are ignored, as Helicone does. ``Helicone-Auth`` is never taken from
  a span: the key is the request's.

The request id is derived from the organisation, trace id and span id (an exporter's retry of the same
batch lands on the same rows), unless the span's association properties name a ``Helicone-Request-Id``
(or the span has no ids: then a random one, as Helicone gives every span).
The protobuf classes (``opentelemetry-proto``) are imported on the first protobuf request only.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import msgspec

from heliport.asgi import Receive, Scope, Send, read_body, send_error
from heliport.auth import Authenticator
from heliport.config import Settings
from heliport.errors import (
    HeliportError,
    InvalidBodyError,
    InvalidHeaderError,
    JsonTooDeepError,
    deep_json_key,
    deep_json_path,
    json_depth_exceeds,
)
from heliport.headers import RequestOptions, bearer_token, parse_headers
from heliport.logs.record import LogRecord
from heliport.logs.usage import Usage
from heliport.store.queue import LogQueue

if TYPE_CHECKING:
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

__all__ = ["MAX_SPANS", "OTEL_ROUTES", "OtelIngestHandler", "Span", "span_record"]

#: path -> the encoding its body is read in when the Content-Type does not say (Helicone's two routes).
OTEL_ROUTES = {"/v1/trace/log": "json", "/v1/trace/log-python": "protobuf"}
#: Spans in one export: the OpenTelemetry SDK's own batch queue holds 2,048, so no SDK sends more.
MAX_SPANS = 2048
#: Records handed to the queue at once (each is one SQS request in AWS).
_SEND_CONCURRENCY = 16
#: The namespace of the request ids derived from (organisation, trace id, span id).
_REQUEST_ID_NAMESPACE = uuid.UUID("6f1c2b1e-3d4a-5b6c-8d7e-9f0a1b2c3d4e")
_ASSOCIATION_PREFIX = "traceloop.association.properties."
#: A span with any of these attributes (or a prompt/completion attribute) is an LLM call.
_LLM_MARKERS = ("gen_ai.system", "gen_ai.request.model", "gen_ai.response.model", "llm.request.type")
_SPAN_STATUS_ERROR = 2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: ``gen_ai.system`` (lower case) -> Helicone's provider label; any other system is upper-cased, as
#: Helicone does, so a label the cost table knows prices the row.
_PROVIDERS = {
    "openai": "OPENAI",
    "azure": "AZURE",
    "az.ai.openai": "AZURE",
    "anthropic": "ANTHROPIC",
    "cohere": "COHERE",
    "bedrock": "BEDROCK",
    "aws": "BEDROCK",
    "aws.bedrock": "BEDROCK",
    "gemini": "GOOGLE",
    "google": "GOOGLE",
    "gcp.gemini": "GOOGLE",
    "vertexai": "VERTEX",
    "vertex_ai": "VERTEX",
    "gcp.vertex_ai": "VERTEX",
    "groq": "GROQ",
    "mistralai": "MISTRAL",
    "mistral_ai": "MISTRAL",
    "togetherai": "TOGETHER",
    "deepseek": "DEEPSEEK",
    "xai": "X",
    "x_ai": "X",
    "perplexity": "PERPLEXITY",
}
#: The OpenAI endpoint of each request type, appended to ``gen_ai.openai.api_base`` for the target URL.
_ENDPOINTS = {"chat": "chat/completions", "completion": "completions", "embedding": "embeddings"}


@dataclass(frozen=True, slots=True)
class Span:
    """One span, whichever encoding it came in; ``where`` locates it in the body for error messages."""

    trace_id: str
    span_id: str
    name: str
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    where: str


# -- OTLP JSON -------------------------------------------------------------------------------------
# The OTLP/JSON mapping (lowerCamelCase names, 64-bit integers as strings or numbers, ids in hex);
# unknown fields are ignored, as OTLP receivers must. Helicone's OTELTrace schema types the numbers
# as doubles, so integer fields also take a float.


class _JsonAnyValue(msgspec.Struct):
    stringValue: str | None = None
    boolValue: bool | None = None
    intValue: int | float | str | None = None
    doubleValue: float | str | None = None
    bytesValue: str | None = None
    arrayValue: _JsonArrayValue | None = None
    kvlistValue: _JsonKvList | None = None


class _JsonKeyValue(msgspec.Struct):
    key: str
    value: _JsonAnyValue | None = None


class _JsonArrayValue(msgspec.Struct):
    values: list[_JsonAnyValue] = []


class _JsonKvList(msgspec.Struct):
    values: list[_JsonKeyValue] = []


class _JsonStatus(msgspec.Struct):
    code: int | float = 0
    message: str = ""


class _JsonSpan(msgspec.Struct):
    startTimeUnixNano: int | float | str
    endTimeUnixNano: int | float | str
    traceId: str = ""
    spanId: str = ""
    name: str = ""
    attributes: list[_JsonKeyValue] = []
    status: _JsonStatus | None = None


class _JsonScopeSpans(msgspec.Struct):
    spans: list[_JsonSpan] = []


class _JsonResourceSpans(msgspec.Struct):
    scopeSpans: list[_JsonScopeSpans] = []


class OtelTrace(msgspec.Struct):
    """Helicone's ``OTELTrace``: OTLP's ``ExportTraceServiceRequest`` in JSON."""

    resourceSpans: list[_JsonResourceSpans]


def _nanos(value: int | float | str, param: str) -> int:
    try:
        nanos = int(value) if not isinstance(value, float) or value.is_integer() else -1
    except ValueError:
        nanos = -1
    if nanos <= 0:
        raise InvalidBodyError(f"{param} is not a positive count of nanoseconds since the epoch", param=param)
    return nanos


def _status_code(code: int | float) -> int:
    """OTLP's ``Status.code`` (0 unset, 1 ok, 2 error); anything else reads as unset."""
    return int(code) if isinstance(code, int) or code.is_integer() else 0


def _json_value(value: _JsonAnyValue | None, param: str) -> Any:
    if value is None:
        return None
    if value.stringValue is not None:
        return value.stringValue
    if value.boolValue is not None:
        return value.boolValue
    if value.intValue is not None:
        number = value.intValue
        try:
            return int(number) if not isinstance(number, float) or number.is_integer() else number
        except ValueError:
            raise InvalidBodyError(f"{param}.intValue is not an integer", param=f"{param}.intValue") from None
    if value.doubleValue is not None:
        try:
            return float(value.doubleValue)
        except ValueError:
            raise InvalidBodyError(f"{param}.doubleValue is not a number", param=f"{param}.doubleValue") from None
    if value.bytesValue is not None:
        return value.bytesValue  # base64 text, as OTLP/JSON sends bytes
    if value.arrayValue is not None:
        return [_json_value(item, f"{param}.arrayValue.values[{i}]") for i, item in enumerate(value.arrayValue.values)]
    if value.kvlistValue is not None:
        return {kv.key: _json_value(kv.value, f"{param}.kvlistValue") for kv in value.kvlistValue.values}
    return None


def spans_from_json(body: bytes, max_depth: int) -> list[Span]:
    """The spans of an OTLP JSON body; :class:`InvalidBodyError` naming what is wrong."""
    try:
        raw = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidBodyError(f"Invalid OTLP JSON: {exc}") from None
    except RecursionError:  # msgspec gives up near the interpreter's recursion limit, far past the setting
        where = deep_json_key(body, max_depth)
        raise JsonTooDeepError(max_depth, param=f"$.{where}" if where else None) from None
    if json_depth_exceeds(raw, max_depth):
        where = deep_json_path(raw, max_depth)
        raise JsonTooDeepError(max_depth, param=f"$.{where}" if where else None)
    try:
        trace = msgspec.convert(raw, OtelTrace)
    except msgspec.ValidationError as exc:
        message = str(exc)
        # msgspec says "... - at `$.resourceSpans[0].scopeSpans`"; surface the path as the param.
        param = message.rsplit("at `", 1)[1].rstrip("`") if "at `$" in message else None
        raise InvalidBodyError(f"Invalid OTLP trace: {message}", param=param) from None
    spans: list[Span] = []
    for r, resource in enumerate(trace.resourceSpans):
        for s, scope in enumerate(resource.scopeSpans):
            for n, span in enumerate(scope.spans):
                where = f"$.resourceSpans[{r}].scopeSpans[{s}].spans[{n}]"
                _check_count(len(spans))
                status = span.status or _JsonStatus()
                spans.append(
                    Span(
                        trace_id=span.traceId,
                        span_id=span.spanId,
                        name=span.name,
                        start_ns=_nanos(span.startTimeUnixNano, f"{where}.startTimeUnixNano"),
                        end_ns=_nanos(span.endTimeUnixNano, f"{where}.endTimeUnixNano"),
                        status_code=_status_code(status.code),
                        status_message=status.message,
                        attributes={
                            kv.key: _json_value(kv.value, f"{where}.attributes[{i}].value")
                            for i, kv in enumerate(span.attributes)
                        },
                        where=where,
                    )
                )
    return spans


# -- OTLP protobuf ---------------------------------------------------------------------------------


def _proto_value(value: AnyValue, param: str, depth: int, max_depth: int) -> Any:
    kind = value.WhichOneof("value")
    if kind in ("array_value", "kvlist_value"):
        if depth >= max_depth:
            raise InvalidBodyError(
                f"{param} nests arrays and key-value lists more than {max_depth} levels deep (HELIPORT_MAX_JSON_DEPTH)",
                param=param,
            )
        if kind == "array_value":
            return [_proto_value(item, param, depth + 1, max_depth) for item in value.array_value.values]
        return {kv.key: _proto_value(kv.value, param, depth + 1, max_depth) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None if kind is None else getattr(value, kind)


def spans_from_protobuf(body: bytes, max_depth: int) -> list[Span]:
    """The spans of an OTLP protobuf body (``ExportTraceServiceRequest``, the same fields as Helicone's
    ``TracesData``), decoded by the maintained ``opentelemetry-proto`` classes."""
    from google.protobuf.message import DecodeError
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as exc:
        raise InvalidBodyError(f"Invalid OTLP protobuf: {exc} (an ExportTraceServiceRequest was expected)") from None
    spans: list[Span] = []
    for r, resource in enumerate(request.resource_spans):
        for s, scope in enumerate(resource.scope_spans):
            for n, span in enumerate(scope.spans):
                where = f"resource_spans[{r}].scope_spans[{s}].spans[{n}]"
                _check_count(len(spans))
                for field in ("start_time_unix_nano", "end_time_unix_nano"):
                    if getattr(span, field) <= 0:
                        raise InvalidBodyError(f"{where}.{field} is missing", param=f"{where}.{field}")
                spans.append(
                    Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        name=span.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        status_code=span.status.code,
                        status_message=span.status.message,
                        attributes={
                            kv.key: _proto_value(kv.value, f"{where}.attributes[{kv.key}]", 0, max_depth)
                            for kv in span.attributes
                        },
                        where=where,
                    )
                )
    return spans


def _check_count(seen: int) -> None:
    if seen >= MAX_SPANS:
        raise InvalidBodyError(f"An export holds at most {MAX_SPANS} spans; send them in smaller batches")


# -- span -> log record ----------------------------------------------------------------------------


def is_llm_span(attributes: dict[str, Any]) -> bool:
    return any(marker in attributes for marker in _LLM_MARKERS) or any(
        key.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for key in attributes
    )


def _is_count(text: str) -> bool:
    """ASCII digits, short enough for ``int`` (which refuses superscripts and numbers of 4,300+ digits)."""
    return 0 < len(text) <= 18 and text.isascii() and text.isdigit()


def _indexed(attributes: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``prefix.N.rest`` attributes grouped by N, in N's order: ``[{rest: value, ...}, ...]``."""
    groups: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        if not key.startswith(prefix):
            continue
        index, _, rest = key[len(prefix) :].partition(".")
        if _is_count(index) and rest:
            groups.setdefault(int(index), {})[rest] = value
    return [groups[i] for i in sorted(groups)]


def _tool_calls(fields: dict[str, Any]) -> list[dict[str, Any]]:
    calls = _indexed(fields, "tool_calls.")
    return [
        {
            **({"id": call["id"]} if "id" in call else {}),
            "type": "function",
            "function": {"name": call.get("name"), "arguments": call.get("arguments", "")},
        }
        for call in calls
    ]


def _message(fields: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": fields.get("role", "user"), "content": fields.get("content")}
    for name in ("name", "tool_call_id", "refusal"):
        if name in fields:
            message[name] = fields[name]
    if tool_calls := _tool_calls(fields):
        message["tool_calls"] = tool_calls
    return message


def _int(attributes: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _is_count(value):
            return int(value)
    return None


def _text(attributes: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _usage(attributes: dict[str, Any], response_model: str | None) -> Usage:
    prompt = _int(attributes, "gen_ai.usage.prompt_tokens", "gen_ai.usage.input_tokens")
    completion = _int(attributes, "gen_ai.usage.completion_tokens", "gen_ai.usage.output_tokens")
    total = _int(attributes, "llm.usage.total_tokens", "gen_ai.usage.total_tokens")
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    usage = Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        prompt_cache_read_tokens=_int(attributes, "gen_ai.usage.cache_read_input_tokens"),
        prompt_cache_write_tokens=_int(attributes, "gen_ai.usage.cache_creation_input_tokens"),
        reasoning_tokens=_int(attributes, "gen_ai.usage.reasoning_tokens"),
        source="manual",
        response_model=response_model,
    )
    counts = (getattr(usage, name) for name in ("prompt_tokens", "completion_tokens", "total_tokens"))
    if any(count is not None for count in counts):
        return usage
    return Usage(response_model=response_model)  # source "absent": the span said nothing of tokens


def _provider(attributes: dict[str, Any]) -> str:
    system = (_text(attributes, "gen_ai.system", "gen_ai.provider.name") or "").strip()
    if system.lower() == "openai" and str(attributes.get("gen_ai.openai.api_type", "")).lower() == "azure":
        return "AZURE"
    return _PROVIDERS.get(system.lower(), system.upper() or "CUSTOM")


def _bodies(span: Span, request_type: str, model: str | None, usage: Usage) -> tuple[dict[str, Any], dict[str, Any]]:
    """The request and response bodies, in the OpenAI shape of ``request_type``."""
    attributes = span.attributes
    prompts = _indexed(attributes, "gen_ai.prompt.")
    completions = _indexed(attributes, "gen_ai.completion.")
    usage_body = {
        name: value
        for name, value in (
            ("prompt_tokens", usage.prompt_tokens),
            ("completion_tokens", usage.completion_tokens),
            ("total_tokens", usage.total_tokens),
        )
        if value is not None
    }
    created = span.start_ns // 1_000_000_000
    response_id = _text(attributes, "gen_ai.response.id") or f"otel-{span.trace_id}-{span.span_id}"
    request: dict[str, Any] = {"model": model}
    response: dict[str, Any] = {"id": response_id, "created": created, "model": model}
    if request_type == "embedding":
        request["input"] = [fields.get("content") for fields in prompts]
        response |= {"object": "list", "data": []}
    elif request_type == "completion":
        request["prompt"] = next((f.get("user", f.get("content")) for f in prompts), None)
        choices = [
            {"index": i, "text": fields.get("content"), "finish_reason": fields.get("finish_reason")}
            for i, fields in enumerate(completions)
        ]
        response |= {"object": "text_completion", "choices": choices}
    else:
        request["messages"] = [_message(fields) for fields in prompts]
        choices = [
            {
                "index": i,
                "message": _message({"role": "assistant", **fields}),
                "finish_reason": fields.get("finish_reason"),
            }
            for i, fields in enumerate(completions)
        ]
        response |= {"object": "chat.completion", "choices": choices}
    for attribute, name in (
        ("gen_ai.request.max_tokens", "max_tokens"),
        ("gen_ai.request.temperature", "temperature"),
        ("gen_ai.request.top_p", "top_p"),
    ):
        if isinstance(attributes.get(attribute), int | float):
            request[name] = attributes[attribute]
    if attributes.get("llm.is_streaming") is True:
        request["stream"] = True
    if usage_body:
        response["usage"] = usage_body
    return request, response


def _association_headers(span: Span) -> Iterator[tuple[bytes, bytes, str]]:
    """(header name, value, attribute key) of each association property named like a Helicone header."""
    for key, value in span.attributes.items():
        if not key.startswith(_ASSOCIATION_PREFIX) or value is None:
            continue
        name = key[len(_ASSOCIATION_PREFIX) :].lower()
        if name.startswith("helicone-") and name != "helicone-auth":
            text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
            yield name.encode("latin-1", "replace"), text.encode(), key


def _span_options(span: Span, request_headers: list[tuple[bytes, bytes]]) -> tuple[RequestOptions, bool]:
    """The span's Helicone options (request headers, then its association properties), and whether it
    named its own request id."""
    own = list(_association_headers(span))
    try:
        options, _ = parse_headers([*request_headers, *((name, value) for name, value, _ in own)])
    except InvalidHeaderError as err:
        attribute = next((key for name, _, key in own if name.decode() == (err.param or "").lower()), None)
        if attribute is None:
            raise
        param = f"{span.where}.attributes[{attribute}]"
        raise InvalidBodyError(f"{err.message} (from the span attribute {attribute})", param=param) from None
    return options, any(name == b"helicone-request-id" for name, _, _ in own)


def _instant(nanos: int, param: str) -> datetime:
    try:
        return _EPOCH + timedelta(microseconds=nanos // 1000)
    except OverflowError:
        raise InvalidBodyError(f"{param} is not a time heliport can store", param=param) from None


def span_record(
    span: Span, *, org_id: str, key_id: str, path: str, request_headers: list[tuple[bytes, bytes]]
) -> LogRecord:
    """The log record of one LLM span (see the module docstring for what maps where)."""
    attributes = span.attributes
    if span.end_ns < span.start_ns:
        raise InvalidBodyError(f"{span.where} ends before it starts", param=f"{span.where}.endTimeUnixNano")
    started = _instant(span.start_ns, f"{span.where}.startTimeUnixNano")
    _instant(span.end_ns, f"{span.where}.endTimeUnixNano")  # the row's response time must be storable too
    options, named_id = _span_options(span, request_headers)
    request_id = options.request_id  # the span's own Helicone-Request-Id, else a random one
    if not named_id and span.trace_id and span.span_id:
        request_id = str(uuid.uuid5(_REQUEST_ID_NAMESPACE, f"{org_id}/{span.trace_id}/{span.span_id}"))
    request_model = _text(attributes, "gen_ai.request.model")
    response_model = _text(attributes, "gen_ai.response.model")
    request_type = _text(attributes, "llm.request.type", "gen_ai.operation.name") or "chat"
    request_type = {"text_completion": "completion", "embeddings": "embedding"}.get(request_type, request_type)
    usage = _usage(attributes, response_model)
    request_body, response_body = _bodies(span, request_type, response_model or request_model, usage)
    api_base = _text(attributes, "gen_ai.openai.api_base") or ""
    target_url = (
        api_base.rstrip("/") + "/" + _ENDPOINTS.get(request_type, "")
        if api_base.startswith(("https://", "http://"))
        else ""
    )
    failed = span.status_code == _SPAN_STATUS_ERROR
    encode = msgspec.json.encode
    return LogRecord(
        request_id=request_id,
        org_id=org_id,
        key_id=key_id,
        started_at=started,
        duration_ms=(span.end_ns - span.start_ns) / 1_000_000,
        method="POST",
        path=path,
        provider=_provider(attributes),
        target_url=target_url,
        # OpenTelemetry says only OK or ERROR; an errored call's HTTP status is not in the span.
        status=500 if failed else 200,
        errors=[f"span status ERROR: {span.status_message or 'no message'}"] if failed else [],
        request_model=request_model,
        **options.log_fields(body_user=_text(attributes, "llm.user")),
        request_body=None if options.omit_request else encode(request_body).decode(),
        response_body=None if options.omit_response else encode(response_body).decode(),
        usage=usage,
    )


# -- the handler -----------------------------------------------------------------------------------


def _request_headers(raw: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The POST's ``Helicone-*`` headers (the Authorization bearer as ``Helicone-Auth``), less a
    ``Helicone-Request-Id``: one export holds many calls, which cannot share an id."""
    headers: list[tuple[bytes, bytes]] = []
    token: str | None = None
    for name, value in raw:
        lower = name.lower()
        if lower == b"authorization":
            token = bearer_token(value.decode("latin-1")) or token
        elif lower.startswith(b"helicone-") and lower != b"helicone-request-id":
            headers.append((lower, value))
    if token and not any(name == b"helicone-auth" for name, _ in headers):
        headers.append((b"helicone-auth", b"Bearer " + token.encode()))
    return headers


def _header(raw: Iterable[tuple[bytes, bytes]], wanted: bytes) -> str:
    return next((value.decode("latin-1") for name, value in raw if name.lower() == wanted), "")


def _inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """The body without its ``Content-Encoding`` (gzip or deflate, as OTLP exporters may send), refusing
    more than ``limit`` bytes once inflated."""
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise InvalidBodyError(f"Unsupported Content-Encoding {encoding!r}; use gzip, deflate or none", status=415)
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidBodyError(f"The {encoding} body does not inflate: {exc}") from None
    if len(data) > limit:
        raise InvalidBodyError(f"Request body is larger than {limit} bytes once inflated", status=413)
    return data


class OtelIngestHandler:
    def __init__(self, settings: Settings, *, authenticator: Authenticator, queue: LogQueue) -> None:
        self._settings = settings
        self._auth = authenticator
        self._queue = queue

    async def __call__(self, scope: Scope, receive: Receive, send: Send, encoding: str) -> None:
        try:
            records, skipped, answer_json = await self._records(scope, receive, encoding)
        except HeliportError as err:
            await send_error(send, err)
            return
        try:
            await self._enqueue(records)
        except HeliportError as err:  # the queue and its spool both refused: the exporter may retry
            await send_error(send, err)
            return
        counts = [
            (b"heliport-spans-logged", str(len(records)).encode()),
            (b"heliport-spans-skipped", str(skipped).encode()),
        ]
        if encoding == "json":  # /v1/trace/log: Helicone's documented answer is 204, no content
            status, body, kind = 204, b"", None
        elif answer_json:  # OTLP/HTTP answers in the request's encoding: an empty ExportTraceServiceResponse
            status, body, kind = 200, b"{}", b"application/json"
        else:
            status, body, kind = 200, b"", b"application/x-protobuf"
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())] if kind else []
        await send({"type": "http.response.start", "status": status, "headers": [*headers, *counts]})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _enqueue(self, records: list[LogRecord]) -> None:
        """Hand the records to the queue, a few at a time: one export may hold hundreds of calls, and
        one SQS round trip each, one after another, would hold the exporter for seconds."""
        for start in range(0, len(records), _SEND_CONCURRENCY):
            batch = records[start : start + _SEND_CONCURRENCY]
            outcomes = await asyncio.gather(*(self._queue.send(r) for r in batch), return_exceptions=True)
            # Every send of the batch has finished (none left running); the first failure is the answer.
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome

    async def _records(self, scope: Scope, receive: Receive, encoding: str) -> tuple[list[LogRecord], int, bool]:
        if scope["method"] != "POST":
            raise InvalidBodyError("Use POST to send traces", status=405)
        raw_headers: list[tuple[bytes, bytes]] = scope["headers"]
        request_headers = _request_headers(raw_headers)
        options, _ = parse_headers(request_headers)
        key = await self._auth.authenticate(options.auth_token)
        limit = self._settings.max_request_bytes
        body = await read_body(receive, limit)
        body = _inflate(body, _header(raw_headers, b"content-encoding").strip().lower(), limit)
        content_type = _header(raw_headers, b"content-type").split(";", 1)[0].strip().lower()
        as_json = content_type == "application/json" or (encoding == "json" and "protobuf" not in content_type)
        depth = self._settings.max_json_depth
        spans = spans_from_json(body, depth) if as_json else spans_from_protobuf(body, depth)
        records = [
            span_record(span, org_id=key.org_id, key_id=key.id, path=scope["path"], request_headers=request_headers)
            for span in spans
            if is_llm_span(span.attributes)
        ]
        return records, len(spans) - len(records), as_json

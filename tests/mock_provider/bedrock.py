"""AWS Bedrock Converse and ConverseStream for the mock provider.

Replies come from the Bedrock fixtures the gateway's translation tests use
(``tests/gateway/fixtures/bedrock``), so the mock and those tests agree on one real wire shape:
a JSON body for ``/model/{modelId}/converse``, and for ``/converse-stream`` the same answer as
``application/vnd.amazon.eventstream`` frames (see :mod:`.eventstream`). Requests are not
signature-checked: the mock only needs to look like Bedrock to the client that called it.

Controls, as for the other providers (``x-mock-*`` headers):

* ``x-mock-status: <code>``  Bedrock's error body ``{"message": ...}`` with ``x-amzn-ErrorType``
* ``x-mock-chunk-delay-ms``, ``x-mock-fail-after``, ``x-mock-gate`` (with a recorder): stream pacing
* ``x-mock-stream-error: throttling|model_stream_error|internal|service_unavailable|validation|overloaded``
  200, ``messageStart``, then an exception frame: how Bedrock fails after the stream has begun
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import functools
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from starlette.responses import Response, StreamingResponse

from .eventstream import event_message, exception_message
from .fixtures import ToolChoice, arguments_for_schema, encode, split_evenly
from .recorder import Recorder

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "gateway" / "fixtures" / "bedrock"
EVENTSTREAM_TYPE = "application/vnd.amazon.eventstream"
JSON_TYPE = "application/json"
_ROUTE_PREFIX = "/model/"
_ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("ValidationException", "Malformed input request, please reformat your input and try again."),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier."),
    408: ("ModelTimeoutException", "Model has timed out in processing the request. Try your request again."),
    424: ("ModelErrorException", "The model returned an error (mock)."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: (
        "InternalServerException",
        "The system encountered an unexpected error during processing. Try your request again.",
    ),
    503: ("ServiceUnavailableException", "Bedrock is unable to process your request."),
}

_INTERNAL = "The system encountered an unexpected error during processing. Try your request again."
STREAM_EXCEPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "throttling": ("throttlingException", {"message": "Too many requests, please wait before trying again."}),
    "model_stream_error": ("modelStreamErrorException", {"message": _INTERNAL}),
    "internal": ("internalServerException", {"message": _INTERNAL}),
    "service_unavailable": ("serviceUnavailableException", {"message": "Bedrock is unable to process your request."}),
    "validation": ("validationException", {"message": "Input is too long for requested model."}),
    # What an overloaded Claude looks like through Bedrock: the model's own status rides along.
    "overloaded": (
        "modelStreamErrorException",
        {"message": _INTERNAL, "originalStatusCode": 529, "originalMessage": "Overloaded"},
    ),
}


#: The usage a non-streamed answer reports when the request carried cache points (read 8, wrote 4).
CACHED_USAGE = {"cacheReadInputTokens": 8, "cacheWriteInputTokens": 4, "totalTokens": 36}


# -- fixtures ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BedrockFixtures:
    text: bytes
    tool: dict[str, Any]
    text_frames: tuple[bytes, ...]
    tool_events: tuple[tuple[str, dict[str, Any]], ...]


def _stream_events(name: str) -> tuple[tuple[str, dict[str, Any]], ...]:
    events = []
    for line in (FIXTURES_DIR / name).read_text(encoding="utf-8").splitlines():
        if line.strip():
            ((event_type, payload),) = json.loads(line).items()
            events.append((event_type, payload))
    return tuple(events)


@functools.cache
def load_bedrock_fixtures() -> BedrockFixtures:
    """Read once; the text replies are fully encoded ahead, as nothing in them varies per request."""
    text = json.loads((FIXTURES_DIR / "converse_text.json").read_text(encoding="utf-8"))
    tool = json.loads((FIXTURES_DIR / "converse_tool_use.json").read_text(encoding="utf-8"))
    return BedrockFixtures(
        text=encode(text),
        tool=tool,
        text_frames=tuple(event_message(t, p) for t, p in _stream_events("converse_stream_text.jsonl")),
        tool_events=_stream_events("converse_stream_tool_use.jsonl"),
    )


# -- routing and errors ----------------------------------------------------------------------


def route(path: str) -> tuple[str, bool] | None:
    """``(model id, stream?)`` for a Converse path, else None.

    Starlette hands over the path percent-decoded, and ARN model ids contain ``/``, so the
    operation is whatever follows the last slash.
    """
    if not path.startswith(_ROUTE_PREFIX):
        return None
    model_id, _, operation = unquote(path[len(_ROUTE_PREFIX) :]).rpartition("/")
    if not model_id or operation not in ("converse", "converse-stream"):
        return None
    return model_id, operation == "converse-stream"


def bedrock_headers() -> dict[str, str]:
    """Headers the real Bedrock runtime sends on every reply."""
    return {"x-amzn-RequestId": str(uuid.uuid4())}


def bedrock_error(status: int, message: str | None = None) -> Response:
    """An error as Bedrock sends it: ``{"message": ...}`` and the type in ``x-amzn-ErrorType``."""
    kind, default = _ERRORS.get(
        status, ("InternalServerException" if status >= 500 else "ValidationException", f"Mock error {status}.")
    )
    headers = bedrock_headers()
    headers["x-amzn-ErrorType"] = kind + _ERROR_TYPE_SUFFIX
    return Response(encode({"message": message or default}), status_code=status, headers=headers, media_type=JSON_TYPE)


def _status(headers: Mapping[str, str]) -> int | None:
    try:
        status = int(headers.get("x-mock-status", "").strip())
    except ValueError:
        return None
    return status if status >= 400 else None


# -- tool selection ----------------------------------------------------------------------------


def tool_for(payload: Mapping[str, Any]) -> ToolChoice | None:
    """The tool to call: the named one or the first, unless the last message already answers a call."""
    messages = payload.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        content = messages[-1].get("content")
        if isinstance(content, list) and any(isinstance(b, dict) and "toolResult" in b for b in content):
            return None
    config = payload.get("toolConfig")
    tools = config.get("tools") if isinstance(config, dict) else None
    if not isinstance(tools, list):
        return None
    specs = [t["toolSpec"] for t in tools if isinstance(t, dict) and isinstance(t.get("toolSpec"), dict)]
    choice = config.get("toolChoice") if isinstance(config, dict) else None
    named = (choice.get("tool") or {}).get("name") if isinstance(choice, dict) else None
    for spec in specs:
        if spec.get("name") and (named is None or spec["name"] == named):
            schema = spec.get("inputSchema")
            return ToolChoice(str(spec["name"]), arguments_for_schema(schema.get("json") if schema else None))
    return None


def _tool_use_id() -> str:
    # Bedrock's ids: "tooluse_" and 22 url-safe base64 characters.
    return "tooluse_" + base64.urlsafe_b64encode(os.urandom(16)).decode()[:22]


# -- endpoints ---------------------------------------------------------------------------------


async def converse(model_id: str, payload: Mapping[str, Any], headers: Mapping[str, str]) -> Response:
    """``POST /model/{modelId}/converse``: a text answer, or a toolUse when tools are on offer."""
    status = _status(headers)
    if status is not None:
        return bedrock_error(status)
    fx = load_bedrock_fixtures()
    tool = tool_for(payload)
    if tool is None and b'"cachePoint"' in encode(payload):
        # A prompt with cache points: Bedrock reports the cached prefix apart from the uncached input.
        cached = json.loads(fx.text)
        cached["usage"].update(CACHED_USAGE)
        return Response(encode(cached), headers=bedrock_headers(), media_type=JSON_TYPE)
    if tool is None:
        return Response(fx.text, headers=bedrock_headers(), media_type=JSON_TYPE)
    body = copy.deepcopy(fx.tool)
    for block in body["output"]["message"]["content"]:
        if "toolUse" in block:
            block["toolUse"] = {"input": tool.arguments, "name": tool.name, "toolUseId": _tool_use_id()}
    return Response(encode(body), headers=bedrock_headers(), media_type=JSON_TYPE)


def _tool_frames(events: tuple[tuple[str, dict[str, Any]], ...], tool: ToolChoice) -> list[bytes]:
    events_copy = [(t, copy.deepcopy(p)) for t, p in events]
    fragment_slots = [
        p["delta"]["toolUse"]
        for t, p in events_copy
        if t == "contentBlockDelta" and "toolUse" in p["delta"] and p["delta"]["toolUse"]["input"]
    ]
    fragments = split_evenly(encode(tool.arguments).decode(), len(fragment_slots))
    for slot, fragment in zip(fragment_slots, fragments, strict=True):
        slot["input"] = fragment
    tool_id = _tool_use_id()
    for event_type, payload in events_copy:
        if event_type == "contentBlockStart" and "toolUse" in payload["start"]:
            payload["start"]["toolUse"] = {"name": tool.name, "toolUseId": tool_id}
    return [event_message(t, p) for t, p in events_copy]


async def converse_stream(
    model_id: str, payload: Mapping[str, Any], headers: Mapping[str, str], *, recorder: Recorder | None = None
) -> Response:
    """``POST /model/{modelId}/converse-stream``: the same answers as event-stream frames."""
    status = _status(headers)
    if status is not None:
        return bedrock_error(status)
    fx = load_bedrock_fixtures()
    tool = tool_for(payload)
    frames = list(fx.text_frames) if tool is None else _tool_frames(fx.tool_events, tool)
    stream_error = headers.get("x-mock-stream-error")
    if stream_error:
        kind, body = STREAM_EXCEPTIONS.get(stream_error.strip().lower(), STREAM_EXCEPTIONS["model_stream_error"])
        frames = [frames[0], exception_message(kind, body)]
    return _frames_response(frames, headers, recorder)


def _frames_response(frames: list[bytes], request_headers: Mapping[str, str], recorder: Recorder | None) -> Response:
    # Imported here: app.py imports this module to route to it.
    from .app import EventsResponse, StreamControls, _paced

    headers = {**bedrock_headers(), "content-type": EVENTSTREAM_TYPE}
    controls = StreamControls.from_headers(request_headers)
    if recorder is None:
        controls = dataclasses.replace(controls, gate=None)
    if controls.plain:
        return EventsResponse(frames, headers)
    return StreamingResponse(_paced(frames, controls, recorder or Recorder(record_requests=False)), headers=headers)

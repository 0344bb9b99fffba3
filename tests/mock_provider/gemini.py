"""Gemini's native ``generateContent`` / ``streamGenerateContent?alt=sse``, as an image model answers them.

Gemini's image models (``gemini-3-pro-image-preview``) answer a prompt with a thought (a part marked
``thought: true``), a line of text and the picture as an ``inlineData`` part (base64 PNG), the way
Google AI Studio's REST API does: ``candidates[0].content.parts``, ``finishReason``,
``usageMetadata`` (``thoughtsTokenCount`` apart from ``candidatesTokenCount``), ``modelVersion`` and
``responseId``. The stream sends the same parts over three ``data:`` events (SSE, no event names, no
terminator), the last carrying ``finishReason`` and the final usage. Errors use Google's shape,
``{"error": {"code", "message", "status"}}``. The picture is a real 1x1 PNG.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.responses import Response

__all__ = ["PNG_BASE64", "TEXT", "THOUGHT", "USAGE", "gemini_error", "generate_content", "route"]

_ROUTE = re.compile(r"/v1beta/models/([^/:]+):(generateContent|streamGenerateContent)")
#: A 1x1 transparent PNG.
PNG_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
THOUGHT = "Composing a warm sunset over layered mountain ridges."
TEXT = "Here's the image you requested:"
USAGE = {
    "promptTokenCount": 12,
    "candidatesTokenCount": 1290,
    "totalTokenCount": 1402,
    "thoughtsTokenCount": 100,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 12}],
}
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}


def route(path: str) -> tuple[str, bool] | None:
    """``(model, stream)`` for a native Gemini generate path, else None."""
    match = _ROUTE.fullmatch(path)
    return (match.group(1), match.group(2) == "streamGenerateContent") if match else None


def gemini_error(status: int, message: str | None = None) -> Response:
    body = {
        "error": {
            "code": status,
            "message": message or f"Mock Gemini error {status}",
            "status": _STATUS_NAMES.get(status, "UNKNOWN"),
        }
    }
    return Response(msgspec.json.encode(body), status_code=status, media_type="application/json")


def _parts() -> list[dict[str, Any]]:
    return [
        {"text": THOUGHT, "thought": True},
        {"text": TEXT},
        {"inlineData": {"mimeType": "image/png", "data": PNG_BASE64}, "thoughtSignature": "c2lnbmF0dXJl"},
    ]


def _response(model: str, parts: list[dict[str, Any]], *, finish: bool, usage: Mapping[str, Any]) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = "STOP"
    return {
        "candidates": [candidate],
        "usageMetadata": dict(usage),
        "modelVersion": model,
        "responseId": "mockGemini01",
    }


async def generate_content(model: str, payload: Mapping[str, Any], stream: bool) -> Response:
    """The answer to a well-formed request; a request without ``contents`` gets Gemini's 400."""
    contents = payload.get("contents")
    if not isinstance(contents, list) or not contents:
        return gemini_error(400, "* GenerateContentRequest.contents: contents is not specified")
    if not stream:
        body = msgspec.json.encode(_response(model, _parts(), finish=True, usage=USAGE))
        return Response(body, media_type="application/json")
    partial = {"promptTokenCount": 12, "totalTokenCount": 12}
    thought, text, image = _parts()
    events = [
        _response(model, [thought], finish=False, usage=partial),
        _response(model, [text], finish=False, usage=partial),
        _response(model, [image], finish=True, usage=USAGE),
    ]
    sse = b"".join(b"data: " + msgspec.json.encode(event) + b"\r\n\r\n" for event in events)
    return Response(sse, media_type="text/event-stream")

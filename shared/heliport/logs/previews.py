"""Short text previews of a request and its response, kept on the row for search and lists.

Best effort by design: a preview is a convenience, the full bodies are in the blob store. Known
shapes (OpenAI chat and Responses, Anthropic messages, their streams) give the human text; anything
else gives the raw body's first characters. Never raises.
"""

from __future__ import annotations

from typing import Any

import msgspec

from heliport.logs.row import PREVIEW_CHARS

__all__ = ["request_preview", "response_preview"]


def _clip(text: str | None) -> str | None:
    if text is None:
        return None
    return text[:PREVIEW_CHARS]


def _text_of(content: Any) -> str | None:
    """Text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "\n".join(parts) if parts else None
    return None


def request_preview(body: str | None) -> str | None:
    if not body:
        return None
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested deeper than msgspec goes
        return _clip(body)
    if isinstance(data, dict):
        messages = data.get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
            text = _text_of(messages[-1].get("content"))
            if text is not None:
                return _clip(text)
        given = data.get("input", data.get("prompt"))
        if isinstance(given, str):
            return _clip(given)
        if isinstance(given, list) and given and isinstance(given[-1], dict):
            text = _text_of(given[-1].get("content"))
            if text is not None:
                return _clip(text)
    return _clip(body)


def response_preview(body: str | None, is_stream: bool) -> str | None:
    if not body:
        return None
    if is_stream or body.lstrip().startswith(("data:", "event:")):
        return _clip(_stream_text(body))
    try:
        data = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: nested deeper than msgspec goes
        return _clip(body)
    if isinstance(data, dict):
        choices = data.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            message = choices[0].get("message") or {}
            text = _text_of(message.get("content")) if isinstance(message, dict) else None
            if text is None and isinstance(choices[0].get("text"), str):
                text = choices[0]["text"]
            if text is not None:
                return _clip(text)
        if isinstance(data.get("output"), list):  # Responses API
            texts = [
                _text_of(item.get("content"))
                for item in data["output"]
                if isinstance(item, dict) and item.get("content")
            ]
            joined = "\n".join(t for t in texts if t)
            if joined:
                return _clip(joined)
        text = _text_of(data.get("content"))  # Anthropic
        if text is not None:
            return _clip(text)
    return _clip(body)


def _stream_text(body: str) -> str:
    """Concatenate the text deltas of an OpenAI chat, Responses or Anthropic stream."""
    pieces: list[str] = []
    size = 0
    for line in body.splitlines():
        if not line.startswith("data:") or size > PREVIEW_CHARS:
            continue
        payload = line[5:].strip()
        if not payload or payload == "[DONE]":
            continue
        try:
            event = msgspec.json.decode(payload)
        except (msgspec.DecodeError, RecursionError):  # RecursionError: nested deeper than msgspec goes
            continue
        if not isinstance(event, dict):
            continue
        text: Any = None
        choices = event.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            delta = choices[0].get("delta")
            text = delta.get("content") if isinstance(delta, dict) else None
        elif event.get("type") == "response.output_text.delta":
            text = event.get("delta")
        elif event.get("type") == "content_block_delta":
            delta = event.get("delta")
            text = delta.get("text") if isinstance(delta, dict) else None
        if isinstance(text, str):
            pieces.append(text)
            size += len(text)
    return "".join(pieces)

"""A logged exchange as OpenAI chat messages: the request's messages, then the assistant's answer.

This is the ``messages`` of one line of OpenAI's fine-tuning JSONL (``{"messages": [...]}``). The
stored bodies are the text that went over the wire (``api/bodies.py``), in whichever format the client
spoke; each known format is converted, anything else is refused with a reason the export reports:

* OpenAI chat completions: the request's ``messages`` as sent (only the keys fine-tuning reads, and
  ``developer`` as ``system``), the answer from ``choices[0].message`` or, for a stream, assembled from
  the deltas (text and tool-call fragments).
* OpenAI legacy completions (``prompt`` -> ``choices[0].text``) and the Responses API (``instructions``
  and ``input`` -> ``output``): their text as user and assistant messages.
* Anthropic messages: ``system`` becomes a system message; text blocks text, base64 and URL images
  ``image_url`` parts (a data: URL), ``tool_use`` blocks the assistant's ``tool_calls`` (``input`` as
  JSON ``arguments``), ``tool_result`` blocks ``tool`` messages; thinking blocks are dropped. Streams
  are assembled from ``content_block_*`` events.

A request whose answer is missing (omitted from the log, or not stored), empty, or in another shape
(embeddings, images, audio) has no example: :class:`NotConvertibleError` says why.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

__all__ = ["NotConvertibleError", "answer_text", "finetune_messages", "last_user_text"]

#: The keys of a chat message that OpenAI's fine-tuning format reads.
_MESSAGE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id", "function_call", "weight")


class NotConvertibleError(Exception):
    """The exchange has no fine-tuning example; the message is the reason, shown in the export."""


def finetune_messages(request: Any, response: Any) -> list[dict[str, Any]]:
    """The request's messages followed by the assistant's answer, as OpenAI chat messages."""
    if not isinstance(request, dict):
        raise NotConvertibleError("the request body was not logged or is not JSON")
    if response is None:
        raise NotConvertibleError("the response body was not logged")
    if _is_anthropic(request, response):
        messages = _anthropic_request(request)
        answer = _anthropic_answer(response)
    elif isinstance(request.get("messages"), list):
        messages = [_openai_message(m) for m in request["messages"] if isinstance(m, dict)]
        answer = _openai_answer(response)
    elif isinstance(request.get("prompt"), str):
        messages = [{"role": "user", "content": request["prompt"]}]
        answer = _completion_answer(response)
    elif "input" in request:
        messages = _responses_request(request)
        answer = _responses_answer(response)
    else:
        raise NotConvertibleError("the request is not a chat: it has no messages, prompt or input")
    if not messages:
        raise NotConvertibleError("the request has no messages")
    if not answer.get("content") and not answer.get("tool_calls"):
        raise NotConvertibleError("the assistant's answer is empty or not in a known format")
    return [*messages, answer]


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """The text of the last user message (the CSV's ``user_message``)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def answer_text(messages: list[dict[str, Any]]) -> str:
    """The text of the answer (the last message); its tool calls as JSON when it has no text."""
    answer = messages[-1]
    text = _text(answer.get("content"))
    if not text and answer.get("tool_calls"):
        return json.dumps(answer["tool_calls"], ensure_ascii=False)
    return text


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


# --- OpenAI ----------------------------------------------------------------------------------------


def _openai_message(message: dict[str, Any]) -> dict[str, Any]:
    kept = {key: message[key] for key in _MESSAGE_KEYS if key in message and message[key] is not None}
    if kept.get("role") == "developer":
        kept["role"] = "system"  # the fine-tuning format knows system, user, assistant and tool
    return kept


def _openai_answer(response: Any) -> dict[str, Any]:
    if isinstance(response, str):
        return _openai_stream(response)
    choices = response.get("choices") if isinstance(response, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise NotConvertibleError("the response has no choices (an error, or not a chat completion)")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise NotConvertibleError("the response's first choice has no message")
    answer = _openai_message(message)
    answer["role"] = "assistant"
    return answer


def _events(stream: str) -> list[dict[str, Any]]:
    """The JSON objects of a server-sent event stream's ``data:`` lines."""
    events: list[dict[str, Any]] = []
    for line in stream.splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if not payload or payload == "[DONE]":
            continue
        try:
            event = msgspec.json.decode(payload)
        except (msgspec.DecodeError, RecursionError):
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _openai_stream(stream: str) -> dict[str, Any]:
    text: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    for event in _events(stream):
        choices = event.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            continue
        delta = choices[0].get("delta")
        if not isinstance(delta, dict):
            continue
        if isinstance(delta.get("content"), str):
            text.append(delta["content"])
        for fragment in delta.get("tool_calls") or []:
            if not isinstance(fragment, dict):
                continue
            call = calls.setdefault(
                int(fragment.get("index", 0)), {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
            )
            if isinstance(fragment.get("id"), str):
                call["id"] = fragment["id"]
            function = fragment.get("function")
            if isinstance(function, dict):
                if isinstance(function.get("name"), str):
                    call["function"]["name"] += function["name"]
                if isinstance(function.get("arguments"), str):
                    call["function"]["arguments"] += function["arguments"]
    answer: dict[str, Any] = {"role": "assistant", "content": "".join(text) or None}
    if calls:
        answer["tool_calls"] = [calls[index] for index in sorted(calls)]
    return answer


def _completion_answer(response: Any) -> dict[str, Any]:
    if isinstance(response, str):
        pieces = [_choice_text(event) for event in _events(response)]
        return {"role": "assistant", "content": "".join(piece for piece in pieces if piece)}
    text = _choice_text(response) if isinstance(response, dict) else None
    if text is None:
        raise NotConvertibleError("the response has no completion text")
    return {"role": "assistant", "content": text}


def _choice_text(event: dict[str, Any]) -> str | None:
    """``choices[0].text`` of a legacy completion (or one of its stream's events)."""
    choices = event.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        text = choices[0].get("text")
        return text if isinstance(text, str) else None
    return None


def _responses_request(request: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if isinstance(request.get("instructions"), str):
        messages.append({"role": "system", "content": request["instructions"]})
    given = request.get("input")
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif isinstance(given, list):
        for item in given:
            if isinstance(item, dict) and isinstance(item.get("role"), str):
                role = "system" if item["role"] == "developer" else item["role"]
                messages.append({"role": role, "content": _text(item.get("content")) or item.get("content")})
    return messages


def _responses_answer(response: Any) -> dict[str, Any]:
    if isinstance(response, str):
        deltas = [e["delta"] for e in _events(response) if e.get("type") == "response.output_text.delta"]
        return {"role": "assistant", "content": "".join(d for d in deltas if isinstance(d, str))}
    output = response.get("output") if isinstance(response, dict) else None
    if not isinstance(output, list):
        raise NotConvertibleError("the response has no output")
    texts = [_text(item.get("content")) for item in output if isinstance(item, dict) and item.get("type") == "message"]
    return {"role": "assistant", "content": "\n".join(t for t in texts if t)}


# --- Anthropic -------------------------------------------------------------------------------------


def _is_anthropic(request: dict[str, Any], response: Any) -> bool:
    if isinstance(response, dict):
        return response.get("type") == "message" or (
            isinstance(response.get("content"), list) and "choices" not in response
        )
    if isinstance(response, str):
        return "message_start" in response or "content_block_delta" in response
    return False


def _anthropic_request(request: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    system = _text(request.get("system"))
    if system:
        messages.append({"role": "system", "content": system})
    for message in request.get("messages") or []:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            continue
        content = message.get("content")
        if isinstance(content, str):
            messages.append({"role": message["role"], "content": content})
        elif isinstance(content, list):
            messages.extend(_anthropic_blocks(message["role"], content))
    return messages


def _anthropic_blocks(role: str, blocks: list[Any]) -> list[dict[str, Any]]:
    """One Anthropic message's blocks as OpenAI messages: tool results first (each its own ``tool``
    message, answering the previous assistant's calls), then the message's text, images and calls."""
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            url = _image_url(block.get("source"))
            if url is not None:
                parts.append({"type": "image_url", "image_url": {"url": url}})
        elif kind == "tool_use":
            calls.append(_tool_call(block.get("id"), block.get("name"), block.get("input")))
        elif kind == "tool_result":
            results.append({"role": "tool", "tool_call_id": str(block.get("tool_use_id", "")),
                            "content": _text(block.get("content"))})  # fmt: skip
    message: dict[str, Any] = {"role": role}
    if parts:
        only_text = all(p["type"] == "text" for p in parts)
        message["content"] = "\n".join(p["text"] for p in parts) if only_text else parts
    if calls:
        message["tool_calls"] = calls
        message.setdefault("content", None)
    return results + ([message] if parts or calls else [])


def _image_url(source: Any) -> str | None:
    if not isinstance(source, dict):
        return None
    if source.get("type") == "base64" and isinstance(source.get("data"), str):
        return f"data:{source.get('media_type', 'image/png')};base64,{source['data']}"
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        return str(source["url"])
    return None


def _tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments or {}, ensure_ascii=False)
    return {"id": str(call_id or ""), "type": "function", "function": {"name": str(name or ""), "arguments": text}}


def _anthropic_answer(response: Any) -> dict[str, Any]:
    if isinstance(response, str):
        return _anthropic_stream(response)
    blocks = response.get("content") if isinstance(response, dict) else None
    if not isinstance(blocks, list):
        raise NotConvertibleError("the response has no content (an error, or not a message)")
    answer = _anthropic_blocks("assistant", blocks)
    return answer[-1] if answer and answer[-1]["role"] == "assistant" else {"role": "assistant", "content": None}


def _anthropic_stream(stream: str) -> dict[str, Any]:
    """The answer's blocks rebuilt from ``content_block_start`` and ``content_block_delta`` events."""
    blocks: dict[int, dict[str, Any]] = {}
    for event in _events(stream):
        index = event.get("index")
        if not isinstance(index, int):
            continue
        if event.get("type") == "content_block_start" and isinstance(event.get("content_block"), dict):
            block = dict(event["content_block"])
            if block.get("type") == "tool_use":
                block["input"] = ""  # the arguments arrive as input_json_delta fragments
            blocks[index] = block
        elif event.get("type") == "content_block_delta" and isinstance(event.get("delta"), dict):
            delta = event["delta"]
            block = blocks.setdefault(index, {"type": "text", "text": ""})
            if delta.get("type") == "text_delta" and isinstance(delta.get("text"), str):
                block["text"] = str(block.get("text", "")) + delta["text"]
            elif delta.get("type") == "input_json_delta" and isinstance(delta.get("partial_json"), str):
                block["input"] = str(block.get("input", "")) + delta["partial_json"]
    for block in blocks.values():
        if block.get("type") == "tool_use" and block.get("input") == "":
            block["input"] = "{}"
    return _anthropic_answer({"content": [blocks[index] for index in sorted(blocks)]})

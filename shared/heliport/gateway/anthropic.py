"""OpenAI Chat Completions <-> Anthropic Messages (``POST /v1/messages``), both ways, streams included.

Pure translation: the handler sends the body and feeds the answer back here. Requests that
Anthropic could not express raise :class:`InvalidBodyError` naming the offending field, so the
caller gets a 400 it can act on instead of a provider error about a body it never wrote.

Mapping decisions where the two formats do not line up one to one:

* ``system`` and ``developer`` messages are hoisted, in order, into the top-level ``system``: a plain
  string for one text, text blocks when there are several or when a part (or the message) carries
  ``cache_control``, which is kept on its block so prompt caching works through the gateway.
* Anthropic wants alternating user/assistant turns: ``tool`` messages become ``tool_result`` blocks
  in a user turn, and consecutive same-role messages are merged into one turn (tool results first,
  as Anthropic requires, since they always precede the user's next words). Empty messages are
  skipped (Anthropic rejects empty text blocks); a turn of one plain text block is sent as a string.
* Images: ``data:`` URLs become base64 sources (png, jpeg, gif, webp); ``http(s)`` URLs become
  ``url`` sources that Anthropic fetches. ``detail`` has no counterpart and is dropped. ``file``
  parts with an inline PDF or plain-text ``file_data`` become ``document`` blocks; ``file_id`` is a
  400 (an OpenAI file id means nothing to Anthropic).
* Tool call ids are reduced to Anthropic's ``[a-zA-Z0-9_-]`` the same way on ``tool_use`` and
  ``tool_result``, so ids minted by other providers still pair up. History with tool blocks but no
  ``tools`` (Anthropic refuses that) gets stub tools for the names it uses and ``tool_choice: none``,
  since a caller that sent no tools cannot run one.
* ``tool_choice``: auto/none/required/named function -> auto/none/any/tool; ``parallel_tool_calls:
  false`` -> ``disable_parallel_tool_use``. A forcing choice without tools is a 400. Function
  ``strict`` is dropped (Anthropic's strict tools need a beta header this path does not send).
* ``max_completion_tokens`` (or ``max_tokens``) -> ``max_tokens``, ``default_max_tokens`` when absent
  (Anthropic requires it). ``temperature`` is clamped to Anthropic's 0..1.
* Reasoning: ``reasoning_effort`` minimal/low/medium/high -> ``thinking`` with a 1024/1024/4096/16384
  budget; a caller's own ``thinking`` object wins and is passed through as is. When the budget does
  not fit under ``max_tokens`` the budget is added on top (OpenAI counts reasoning inside the limit,
  Anthropic needs ``max_tokens`` > budget; the caller's number then bounds the visible answer). Since
  thinking accepts no sampling changes, ``temperature`` is dropped and ``top_p`` kept only >= 0.95
  while it is on. An effort (a preference, unlike an explicit ``thinking``) is ignored when the
  ``tool_choice`` forces a tool or a tool loop is pending: Anthropic rejects thinking with forced
  tools, and mid-loop it demands the earlier signed thinking blocks, which OpenAI messages cannot
  carry back. For the same reason ``reasoning_content`` in assistant history is dropped.
* ``user`` (else ``safety_identifier``) -> ``metadata.user_id``.
* 400s, because dropping them would silently break what the caller relies on: ``n`` > 1,
  ``logprobs``/``top_logprobs``, ``response_format`` other than ``text`` (no JSON mode without a beta
  header), a non-empty ``logit_bias`` (OpenAI token ids), audio ``modalities``/``audio``, the legacy
  ``functions``/``function_call``, ``web_search_options``.
* Dropped quietly, as harmless hints or OpenAI-side bookkeeping: ``seed``, ``frequency_penalty``,
  ``presence_penalty``, ``store``, ``metadata``, ``service_tier``, ``prompt_cache_key``,
  ``prediction``, ``verbosity``, ``stream_options`` (the handler asks for usage itself) and message
  ``name``.

Response side: text blocks are joined into ``content`` (null when there is none but tool calls),
``tool_use`` -> ``tool_calls``, ``thinking`` -> ``reasoning_content`` (``redacted_thinking`` is
encrypted and has no OpenAI field), stop reasons map to finish reasons, and ``prompt_tokens`` counts
cached input too, as OpenAI's does. The completion id is ``chatcmpl-`` + the Anthropic message id.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

import msgspec

from heliport.errors import InvalidBodyError, UpstreamError
from heliport.gateway.chat import JsonObj, ProviderStreamError, completion_chunk, number_param, usage_object

__all__ = ["MessagesStreamTranslator", "chat_to_messages", "error_message", "messages_to_chat"]

_decode = msgspec.json.decode
_encode = msgspec.json.encode

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

#: The HTTP status each Anthropic error type has outside a stream (Anthropic's error reference).
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

_IMAGE_TYPES = {
    "image/png": "image/png",
    "image/jpeg": "image/jpeg",
    "image/jpg": "image/jpeg",
    "image/gif": "image/gif",
    "image/webp": "image/webp",
}
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)(?:;[^,;]*)*;base64,(.*)", re.DOTALL)
_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")

#: Thinking budget per OpenAI effort. 1024 is Anthropic's floor; "high" stays well under the 32k
#: beyond which Anthropic notes larger budgets rarely pay off.
_THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
#: While thinking is on Anthropic accepts top_p only in [0.95, 1].
_THINKING_MIN_TOP_P = 0.95


# -- request: OpenAI chat -> Messages --------------------------------------------------------------


def chat_to_messages(chat: JsonObj, *, model: str, default_max_tokens: int = 4096) -> JsonObj:
    """An OpenAI chat request as an Anthropic ``/v1/messages`` body for ``model``.

    Raises :class:`InvalidBodyError` naming the field for anything Anthropic cannot express.
    """
    if not isinstance(chat, dict):
        raise InvalidBodyError("The request body must be a JSON object.")
    _reject_unsupported(chat)
    raw_messages = chat.get("messages")
    system, messages, history_tools = _messages(raw_messages)

    body: JsonObj = {"model": model}
    if system is not None:
        body["system"] = system
    body["messages"] = messages

    tools = _tools(chat.get("tools"))
    tool_choice = _tool_choice(chat.get("tool_choice"), chat.get("parallel_tool_calls"), has_tools=bool(tools))
    if not tools and history_tools:
        tools = [{"name": name, "input_schema": {"type": "object"}} for name in dict.fromkeys(history_tools)]
        tool_choice = {"type": "none"}
    if tools:
        body["tools"] = tools
        if tool_choice is not None:
            body["tool_choice"] = tool_choice

    max_tokens = _max_tokens(chat)
    limit = max_tokens if max_tokens is not None else default_max_tokens
    thinking = _thinking(chat, tool_choice if tools else None, raw_messages)
    if thinking is not None:
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool) and limit <= budget:
            limit += budget
        body["thinking"] = thinking
    body["max_tokens"] = limit
    thinking_on = thinking is not None and thinking.get("type") != "disabled"

    temperature = number_param(chat, "temperature")
    if temperature is not None and not thinking_on:
        body["temperature"] = min(max(temperature, 0.0), 1.0)
    top_p = number_param(chat, "top_p")
    if top_p is not None and (not thinking_on or top_p >= _THINKING_MIN_TOP_P):
        body["top_p"] = top_p
    stop = _stop_sequences(chat.get("stop"))
    if stop:
        body["stop_sequences"] = stop
    user_id = _user_id(chat)
    if user_id is not None:
        body["metadata"] = {"user_id": user_id}
    if chat.get("stream") is True:
        body["stream"] = True
    return body


def _reject_unsupported(chat: JsonObj) -> None:
    n = chat.get("n")
    if n is not None and n != 1:
        raise InvalidBodyError("Anthropic returns one choice per request; n must be 1.", param="n")
    for field in ("logprobs", "top_logprobs"):
        if chat.get(field):
            raise InvalidBodyError(f"Anthropic does not return token log probabilities ({field}).", param=field)
    response_format = chat.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind != "text":
            raise InvalidBodyError(
                'Anthropic has no JSON output mode here; only response_format {"type": "text"} is supported '
                "(describe the JSON in the prompt, or use a tool with an input schema).",
                param="response_format.type" if isinstance(response_format, dict) else "response_format",
            )
    if chat.get("logit_bias"):
        raise InvalidBodyError("logit_bias uses OpenAI token ids, which Claude does not share.", param="logit_bias")
    modalities = chat.get("modalities")
    if modalities is not None and (not isinstance(modalities, list) or any(m != "text" for m in modalities)):
        raise InvalidBodyError('Anthropic answers in text only; modalities must be ["text"].', param="modalities")
    for field, hint in (
        ("audio", "Anthropic has no audio output."),
        ("functions", "Use tools instead of the deprecated functions."),
        ("function_call", "Use tool_choice instead of the deprecated function_call."),
        ("web_search_options", "Web search is not available through this translation."),
    ):
        if chat.get(field) is not None:
            raise InvalidBodyError(f"{field} is not supported for Anthropic models. {hint}", param=field)


def _max_tokens(chat: JsonObj) -> int | None:
    for field in ("max_completion_tokens", "max_tokens"):
        value = chat.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidBodyError(f"{field} must be a positive integer.", param=field)
        return value
    return None


def _stop_sequences(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item for item in value if item]
    raise InvalidBodyError("stop must be a string or a list of strings.", param="stop")


def _user_id(chat: JsonObj) -> str | None:
    for field in ("user", "safety_identifier"):
        value = chat.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidBodyError(f"{field} must be a string.", param=field)
        if value:
            return value
    return None


def _thinking(chat: JsonObj, tool_choice: JsonObj | None, messages: Any) -> JsonObj | None:
    explicit = chat.get("thinking")
    if explicit is not None:
        if not isinstance(explicit, dict) or not isinstance(explicit.get("type"), str):
            raise InvalidBodyError('thinking must be an object with a "type".', param="thinking")
        return explicit
    effort = chat.get("reasoning_effort")
    if effort is None or effort == "none":
        return None
    if not isinstance(effort, str) or effort not in _THINKING_BUDGETS:
        raise InvalidBodyError(
            "reasoning_effort must be one of none, minimal, low, medium, high.", param="reasoning_effort"
        )
    if tool_choice is not None and tool_choice.get("type") in ("any", "tool"):
        return None
    if _tool_loop_pending(messages):
        return None
    return {"type": "enabled", "budget_tokens": _THINKING_BUDGETS[effort]}


def _tool_loop_pending(messages: Any) -> bool:
    """True when the conversation ends in tool results answering an assistant's tool calls."""
    if not isinstance(messages, list):
        return False
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") == "tool":
            continue
        return message.get("role") == "assistant" and bool(message.get("tool_calls"))
    return False


def _tool_id(value: str) -> str:
    return _ID_UNSAFE.sub("_", value)


def _messages(raw: Any) -> tuple[str | list[JsonObj] | None, list[JsonObj], list[str]]:
    """(top-level system, merged Anthropic messages, tool names the history uses)."""
    if not isinstance(raw, list) or not raw:
        raise InvalidBodyError("messages must be a non-empty array.", param="messages")
    system: list[JsonObj] = []
    turns: list[JsonObj] = []
    tool_names: list[str] = []
    for i, message in enumerate(raw):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidBodyError("Each message must be an object.", param=path)
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.extend(_text_blocks(content, f"{path}.content", message.get("cache_control")))
            continue
        if role == "user":
            blocks = _user_blocks(content, f"{path}.content", message.get("cache_control"))
            anthropic_role = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(message, path)
            tool_names.extend(block["name"] for block in blocks if block["type"] == "tool_use")
            anthropic_role = "assistant"
        elif role == "tool":
            blocks = [_tool_result(message, path)]
            anthropic_role = "user"
        else:
            raise InvalidBodyError(
                f"Unsupported message role {role!r} for Anthropic (use system, developer, user, assistant or tool).",
                param=f"{path}.role",
            )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == anthropic_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": anthropic_role, "content": blocks})
    if not turns:
        raise InvalidBodyError("messages needs at least one user or assistant message.", param="messages")
    for turn in turns:
        content = turn["content"]
        if len(content) == 1 and content[0].keys() == {"type", "text"}:
            turn["content"] = content[0]["text"]
    if not system:
        return None, turns, tool_names
    if len(system) == 1 and system[0].keys() == {"type", "text"}:
        return system[0]["text"], turns, tool_names
    return system, turns, tool_names


def _text_block(text: str, cache_control: Any) -> JsonObj:
    block: JsonObj = {"type": "text", "text": text}
    if cache_control is not None:
        block["cache_control"] = cache_control
    return block


def _with_cache_control(blocks: list[JsonObj], cache_control: Any) -> list[JsonObj]:
    # A message-level cache_control marks the end of that message, i.e. its last block.
    if cache_control is not None and blocks:
        blocks[-1]["cache_control"] = cache_control
    return blocks


def _text_blocks(content: Any, path: str, cache_control: Any = None) -> list[JsonObj]:
    """Text blocks of a system, developer or tool message: a string or an array of text parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return _with_cache_control([_text_block(content, None)] if content else [], cache_control)
    if not isinstance(content, list):
        raise InvalidBodyError("content must be a string or an array of content parts.", param=path)
    blocks: list[JsonObj] = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise InvalidBodyError("Only text parts are supported here.", param=f"{path}[{j}].type")
        if part["text"]:
            blocks.append(_text_block(part["text"], part.get("cache_control")))
    return _with_cache_control(blocks, cache_control)


def _user_blocks(content: Any, path: str, cache_control: Any) -> list[JsonObj]:
    if content is None:
        return []
    if isinstance(content, str):
        return _with_cache_control([_text_block(content, None)] if content else [], cache_control)
    if not isinstance(content, list):
        raise InvalidBodyError("content must be a string or an array of content parts.", param=path)
    blocks: list[JsonObj] = []
    for j, part in enumerate(content):
        part_path = f"{path}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            if not part["text"]:
                continue
            block = _text_block(part["text"], None)
        elif kind == "image_url":
            block = _image_block(part.get("image_url"), f"{part_path}.image_url")
        elif kind == "file":
            block = _document_block(part.get("file"), f"{part_path}.file")
        else:
            raise InvalidBodyError(
                f"Unsupported content part type {kind!r} for Anthropic (text, image_url and file are supported).",
                param=f"{part_path}.type",
            )
        if part.get("cache_control") is not None:
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return _with_cache_control(blocks, cache_control)


def _image_block(image: Any, path: str) -> JsonObj:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidBodyError("image_url.url is required.", param=f"{path}.url")
    if url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise InvalidBodyError("An image must be an http(s) URL or a base64 data: URL.", param=f"{path}.url")
    media_type = _IMAGE_TYPES.get(match.group(1).lower())
    if media_type is None:
        raise InvalidBodyError(
            f"Unsupported image type {match.group(1)} (png, jpeg, gif and webp are).", param=f"{path}.url"
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": match.group(2)}}


def _document_block(file: Any, path: str) -> JsonObj:
    if not isinstance(file, dict):
        raise InvalidBodyError("file must be an object.", param=path)
    data_url = file.get("file_data")
    if not isinstance(data_url, str):
        raise InvalidBodyError(
            "Anthropic needs the document inline as file_data (a base64 data: URL); file_id is not supported.",
            param=f"{path}.file_data",
        )
    match = _DATA_URL.fullmatch(data_url)
    media_type = match.group(1).lower() if match else None
    if match is None or media_type not in ("application/pdf", "text/plain"):
        raise InvalidBodyError(
            "file_data must be a base64 data: URL of a PDF or plain text.", param=f"{path}.file_data"
        )
    if media_type == "application/pdf":
        source: JsonObj = {"type": "base64", "media_type": media_type, "data": match.group(2)}
    else:
        # Anthropic takes plain-text documents as text, not base64.
        try:
            text = base64.b64decode(match.group(2), validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise InvalidBodyError("file_data does not hold base64 UTF-8 text.", param=f"{path}.file_data") from exc
        source = {"type": "text", "media_type": "text/plain", "data": text}
    block: JsonObj = {"type": "document", "source": source}
    if isinstance(file.get("filename"), str) and file["filename"]:
        block["title"] = file["filename"]
    return block


def _assistant_blocks(message: JsonObj, path: str) -> list[JsonObj]:
    blocks: list[JsonObj] = []
    content = message.get("content")
    if isinstance(content, str):
        if content:
            blocks.append(_text_block(content, None))
    elif isinstance(content, list):
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            text = part.get(kind) if kind in ("text", "refusal") else None
            if not isinstance(text, str):
                raise InvalidBodyError(
                    "Assistant content parts must be text or refusal.", param=f"{path}.content[{j}].type"
                )
            if text:
                blocks.append(_text_block(text, part.get("cache_control")))
    elif content is not None:
        raise InvalidBodyError("content must be a string or an array of content parts.", param=f"{path}.content")
    calls = message.get("tool_calls")
    if calls is None:
        return _with_cache_control(blocks, message.get("cache_control"))
    if not isinstance(calls, list):
        raise InvalidBodyError("tool_calls must be an array.", param=f"{path}.tool_calls")
    for j, call in enumerate(calls):
        call_path = f"{path}.tool_calls[{j}]"
        if not isinstance(call, dict):
            raise InvalidBodyError("A tool call must be an object.", param=call_path)
        if call.get("type", "function") != "function":
            raise InvalidBodyError("Only function tool calls are supported.", param=f"{call_path}.type")
        function = call.get("function")
        if not isinstance(function, dict):
            raise InvalidBodyError("A tool call needs a function object.", param=f"{call_path}.function")
        call_id, name = call.get("id"), function.get("name")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidBodyError("A tool call needs an id.", param=f"{call_path}.id")
        if not isinstance(name, str) or not name:
            raise InvalidBodyError("A tool call needs a function name.", param=f"{call_path}.function.name")
        arguments = _arguments(function.get("arguments"), f"{call_path}.function.arguments")
        blocks.append({"type": "tool_use", "id": _tool_id(call_id), "name": name, "input": arguments})
    return _with_cache_control(blocks, message.get("cache_control"))


def _arguments(raw: Any, path: str) -> JsonObj:
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, str):
        raise InvalidBodyError("function.arguments must be a JSON string.", param=path)
    try:
        value = _decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidBodyError(f"function.arguments is not valid JSON: {exc}", param=path) from exc
    except RecursionError:  # msgspec gives up near the interpreter's recursion limit
        raise InvalidBodyError("function.arguments is JSON nested too deep to read.", param=path) from None
    if not isinstance(value, dict):
        raise InvalidBodyError("function.arguments must encode a JSON object.", param=path)
    return value


def _tool_result(message: JsonObj, path: str) -> JsonObj:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidBodyError("A tool message needs its tool_call_id.", param=f"{path}.tool_call_id")
    result: JsonObj = {"type": "tool_result", "tool_use_id": _tool_id(call_id)}
    content = message.get("content")
    if isinstance(content, str):
        if content:
            result["content"] = content
    else:
        blocks = _text_blocks(content, f"{path}.content")
        if blocks:
            result["content"] = blocks
    if message.get("cache_control") is not None:
        result["cache_control"] = message["cache_control"]
    return result


def _tools(tools: Any) -> list[JsonObj]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidBodyError("tools must be an array.", param="tools")
    specs: list[JsonObj] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise InvalidBodyError("Anthropic supports only function tools here.", param=f"tools[{i}].type")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise InvalidBodyError("A function tool needs a function object.", param=f"tools[{i}].function")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidBodyError("A function tool needs a name.", param=f"tools[{i}].function.name")
        parameters = function.get("parameters")
        if parameters is None:
            parameters = {"type": "object", "properties": {}}
        elif not isinstance(parameters, dict):
            raise InvalidBodyError("parameters must be a JSON schema object.", param=f"tools[{i}].function.parameters")
        spec: JsonObj = {"name": name}
        description = function.get("description")
        if isinstance(description, str) and description:
            spec["description"] = description
        spec["input_schema"] = parameters
        if tool.get("cache_control") is not None:
            spec["cache_control"] = tool["cache_control"]
        specs.append(spec)
    return specs


def _tool_choice(choice: Any, parallel: Any, *, has_tools: bool) -> JsonObj | None:
    if parallel is not None and not isinstance(parallel, bool):
        raise InvalidBodyError("parallel_tool_calls must be a boolean.", param="parallel_tool_calls")
    if choice is None or choice == "auto":
        result: JsonObj | None = {"type": "auto"} if choice == "auto" or parallel is False else None
    elif choice == "none":
        # Anthropic's "none" takes no disable_parallel_tool_use: no tool is called at all.
        return {"type": "none"} if has_tools else None
    elif choice == "required":
        result = {"type": "any"}
    elif isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidBodyError("tool_choice.function.name is required.", param="tool_choice.function.name")
        result = {"type": "tool", "name": name}
    else:
        raise InvalidBodyError(
            'tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}.',
            param="tool_choice",
        )
    if not has_tools:
        if result is not None and result["type"] in ("any", "tool"):
            raise InvalidBodyError("tool_choice forces a tool call, but no tools were given.", param="tool_choice")
        return None
    if result is not None and parallel is False:
        result["disable_parallel_tool_use"] = True
    return result


# -- response: Message -> OpenAI chat ----------------------------------------------------------------


def _finish_reason(stop_reason: Any) -> str:
    return _FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(usage: Any) -> JsonObj:
    if not isinstance(usage, dict):
        return usage_object(0, 0)
    read = _count(usage.get("cache_read_input_tokens"))
    write = _count(usage.get("cache_creation_input_tokens"))
    # Anthropic's input_tokens excludes cached input; OpenAI's prompt_tokens counts all of it.
    prompt = (_count(usage.get("input_tokens")) or 0) + (read or 0) + (write or 0)
    completion = _count(usage.get("output_tokens")) or 0
    return usage_object(prompt, completion, cached_tokens=read, cache_write_tokens=write)


def _completion_id(message_id: Any) -> str:
    return f"chatcmpl-{message_id}" if isinstance(message_id, str) and message_id else "chatcmpl-anthropic"


def messages_to_chat(message: JsonObj, *, model: str, created: int) -> JsonObj:
    """An Anthropic Message as an OpenAI ``chat.completion``."""
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        raise UpstreamError("Anthropic returned a message without a content array.")
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[JsonObj] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            arguments = _encode(block.get("input") if block.get("input") is not None else {}).decode()
            function = {"name": block.get("name"), "arguments": arguments}
            calls.append({"id": block.get("id"), "type": "function", "function": function})
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            reasoning.append(block["thinking"])
    text = "".join(texts)
    chat_message: JsonObj = {
        "role": "assistant",
        "content": None if not text and calls else text,
        "refusal": None,
        "annotations": [],
    }
    if reasoning:
        chat_message["reasoning_content"] = "".join(reasoning)
    if calls:
        chat_message["tool_calls"] = calls
    return {
        "id": _completion_id(message.get("id")),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": chat_message,
                "logprobs": None,
                "finish_reason": _finish_reason(message.get("stop_reason")),
            }
        ],
        "usage": _usage(message.get("usage")),
    }


def error_message(body: JsonObj) -> str:
    """The human part of an Anthropic error body (``{"type": "error", "error": {"type", "message"}}``)."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = error.get("message")
        if isinstance(message, str) and message:
            return message
        if isinstance(error.get("type"), str):
            return str(error["type"])
    if isinstance(error, str) and error:
        return error
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"]:
        return str(body["message"])
    return str(body)[:500]


# -- stream: Messages SSE events -> OpenAI chunks ----------------------------------------------------


class MessagesStreamTranslator:
    """Anthropic stream events, one at a time, as OpenAI ``chat.completion.chunk`` objects.

    ``usage`` holds the OpenAI usage once ``message_delta`` has arrived (for the log), whether or
    not the caller asked for the usage chunk; ``finish_reason`` likewise.
    """

    def __init__(self, *, model: str, created: int, include_usage: bool) -> None:
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._id = _completion_id(None)
        #: Anthropic usage merged over message_start and message_delta (the latter's counts are cumulative).
        self._raw_usage: JsonObj = {}
        #: content block index -> OpenAI tool_calls index (OpenAI counts tool calls, not blocks).
        self._tool_index: dict[int, int] = {}
        self._stop_reason: Any = None
        self.usage: JsonObj | None = None
        self.finish_reason: str | None = None

    def _chunk(self, delta: JsonObj | None, **extra: Any) -> JsonObj:
        return completion_chunk(self._id, self._created, self._model, delta, **extra)

    def feed(self, event: str, data: JsonObj) -> list[JsonObj]:
        """The chunks one event produces (often none). ``event: error`` raises ProviderStreamError."""
        kind = data.get("type") if isinstance(data.get("type"), str) else event
        if kind == "content_block_delta":
            return self._delta(data)
        if kind == "message_start":
            message = data.get("message")
            if isinstance(message, dict):
                self._id = _completion_id(message.get("id"))
                self._merge_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason") is not None:
                self._stop_reason = delta["stop_reason"]
            self._merge_usage(data.get("usage"))
            self.usage = _usage(self._raw_usage)
            return []
        if kind == "message_stop":
            self.finish_reason = _finish_reason(self._stop_reason)
            self.usage = _usage(self._raw_usage)
            chunks = [self._chunk({}, finish_reason=self.finish_reason)]
            if self._include_usage:
                chunks.append(self._chunk(None, usage=self.usage))
            return chunks
        if kind == "error":
            error = data.get("error") if isinstance(data.get("error"), dict) else {}
            error_type = str(error.get("type") or "api_error")
            raise ProviderStreamError(_ERROR_STATUS.get(error_type, 500), error_message(data), kind=error_type)
        # ping, content_block_stop, and event types Anthropic may add later carry nothing to relay.
        return []

    def _merge_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            self._raw_usage.update({key: value for key, value in usage.items() if value is not None})

    def _block_start(self, data: JsonObj) -> list[JsonObj]:
        block = data.get("content_block")
        if not isinstance(block, dict):
            return []
        if block.get("type") == "tool_use":
            index = self._tool_index.setdefault(_count(data.get("index")) or 0, len(self._tool_index))
            call = {
                "index": index,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        # Text and thinking blocks start empty; anything else (server tools, redacted thinking) has
        # no OpenAI chunk field.
        if block.get("type") == "text" and isinstance(block.get("text"), str) and block["text"]:
            return [self._chunk({"content": block["text"]})]
        return []

    def _delta(self, data: JsonObj) -> list[JsonObj]:
        delta = data.get("delta")
        if not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return [self._chunk({"content": text})] if isinstance(text, str) and text else []
        if kind == "input_json_delta":
            index = self._tool_index.get(_count(data.get("index")) or 0)
            partial = delta.get("partial_json")
            # Deltas of blocks that were not tool_use (server tools) have no OpenAI tool call to extend.
            if index is None or not isinstance(partial, str) or not partial:
                return []
            return [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": partial}}]})]
        if kind == "thinking_delta":
            thinking = delta.get("thinking")
            return [self._chunk({"reasoning_content": thinking})] if isinstance(thinking, str) and thinking else []
        # signature_delta and citations_delta have no OpenAI chunk field.
        return []

"""OpenAI Chat Completions <-> AWS Bedrock Converse / ConverseStream, plus the AWS plumbing Bedrock needs.

Bedrock is the one provider that does not take an API key: requests are SigV4-signed with the
function's own IAM role, and streams come back in AWS's binary event-stream framing rather than SSE.
This module stays pure (no network I/O): it translates bodies, decodes stream bytes the caller has
read, builds the URL and signs headers; the gateway handler does the sending.

Mapping decisions where the two formats do not line up one to one:

* ``system``/``developer`` messages are hoisted, in order, into Converse's top-level ``system``.
* Converse wants strictly alternating user/assistant turns: tool results become user ``toolResult``
  blocks and consecutive same-role messages are merged into one turn.
* Images must be inline bytes (``data:`` URLs) or ``s3://`` objects; an ``https`` URL is a 400 that
  names the field, since Converse cannot fetch it. ``file`` parts with inline data become
  ``document`` blocks.
* ``tool_choice: "none"`` has no Converse counterpart. Without tool history the ``toolConfig`` is
  left out, so the model cannot call a tool; with tool history Converse insists on a ``toolConfig``,
  so the tools are sent without a ``toolChoice`` (best effort: the model is free to call one).
  History with tool blocks but no ``tools`` at all gets stub specs for the names it uses.
* Tool call ids are reduced to Converse's ``[a-zA-Z0-9_-]{1,64}`` the same way on both sides, so
  ids minted by other providers still pair a ``toolUse`` with its ``toolResult``.
* ``reasoning_effort`` becomes Claude's ``thinking`` budget in ``additionalModelRequestFields`` for
  Claude models (other Bedrock models have no common switch, so it is dropped). Thinking is left
  off while a tool loop is pending, because Claude then requires the earlier signed thinking
  blocks, which OpenAI's message format cannot carry back.
* ``temperature`` is clamped to Converse's 0..1; ``response_format`` other than ``text`` is a 400
  (Converse has no JSON mode); ``n`` > 1 is a 400. Sampling knobs without a Converse field
  (``seed``, penalties, ``logit_bias``, ``parallel_tool_calls``, ``user``...) are dropped.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

from heliport.config import ConfigError
from heliport.errors import InvalidBodyError, UpstreamError
from heliport.gateway.chat import JsonObj, ProviderStreamError, completion_chunk, number_param, usage_object

if TYPE_CHECKING:
    from botocore.credentials import Credentials

__all__ = [
    "ConverseStreamTranslator",
    "EventStreamDecoder",
    "chat_to_converse",
    "converse_to_chat",
    "converse_url",
    "error_message",
    "role_credentials",
    "sign",
]

_decode = msgspec.json.decode
_encode = msgspec.json.encode

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}

_IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
_IMAGE_EXTENSIONS = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "gif": "gif", "webp": "webp"}
_DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)(?:;[^,;]*)*;base64,(.*)", re.DOTALL)
_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9\s\-()\[\]]")

#: Claude's thinking budget per OpenAI effort. Anthropic's floor is 1024 tokens; "high" stays well
#: under the 32k where Anthropic notes larger budgets stop paying off.
_THINKING_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
_MIN_THINKING_BUDGET = 1024

#: Status a stream exception would have had as an HTTP error. AWS documents
#: modelStreamErrorException as 424, but it is the model failing mid-answer and "retry" is AWS's own
#: advice, so it counts as a server error for logging and failover.
_EXCEPTION_STATUS = {
    "validationException": 400,
    "accessDeniedException": 403,
    "resourceNotFoundException": 404,
    "modelTimeoutException": 408,
    "throttlingException": 429,
    "modelNotReadyException": 429,
    "serviceQuotaExceededException": 429,
    "modelStreamErrorException": 500,
    "internalServerException": 500,
    "serviceUnavailableException": 503,
}
_INVALID = "invalid_stream"


# -- request: OpenAI chat -> Converse ------------------------------------------------------------


def chat_to_converse(chat: JsonObj, *, default_max_tokens: int = 4096, model_id: str | None = None) -> JsonObj:
    """An OpenAI chat request as a Converse request body (the model id goes in the URL, not here).

    ``model_id`` is the Bedrock model the body is for; it decides model-specific fields (Claude's
    thinking, ``toolResult.status``). Without it ``chat["model"]`` is used for that decision.
    Raises :class:`InvalidBodyError` naming the field for anything Converse cannot express.
    """
    if not isinstance(chat, dict):
        raise InvalidBodyError("The request body must be a JSON object.")
    model = model_id if model_id is not None else str(chat.get("model") or "")
    n = chat.get("n")
    if n is not None and n != 1:
        raise InvalidBodyError("Bedrock returns one choice per request; n must be 1.", param="n")
    _check_response_format(chat.get("response_format"))

    system, messages, has_tool_blocks, tool_names = _messages(chat.get("messages"), model)
    body: JsonObj = {"messages": messages}
    if system:
        body["system"] = system

    max_field, max_tokens = _max_tokens(chat)
    inference: JsonObj = {"maxTokens": max_tokens if max_tokens is not None else default_max_tokens}
    temperature = number_param(chat, "temperature")
    if temperature is not None:
        inference["temperature"] = min(max(temperature, 0.0), 1.0)
    top_p = number_param(chat, "top_p")
    if top_p is not None:
        inference["topP"] = top_p
    stop = _stop_sequences(chat.get("stop"))
    if stop:
        inference["stopSequences"] = stop

    tool_config = _tool_config(chat.get("tools"), chat.get("tool_choice"), has_tool_blocks, tool_names)
    if tool_config is not None:
        body["toolConfig"] = tool_config

    budget = _thinking_budget(chat.get("reasoning_effort"), model, chat.get("messages"))
    if budget is not None:
        if max_tokens is None:
            # OpenAI's limit counts reasoning tokens; with no limit given, keep the default room for
            # the visible answer on top of the thinking budget.
            inference["maxTokens"] = default_max_tokens + budget
        else:
            budget = min(budget, max_tokens - 1)
            if budget < _MIN_THINKING_BUDGET:
                raise InvalidBodyError(
                    f"{max_field} must be more than {_MIN_THINKING_BUDGET} when reasoning_effort is set for a "
                    "Claude model on Bedrock (thinking needs a budget of at least 1024 tokens).",
                    param=max_field,
                )
        body["additionalModelRequestFields"] = {"thinking": {"type": "enabled", "budget_tokens": budget}}
    body["inferenceConfig"] = inference
    return body


def _check_response_format(value: Any) -> None:
    if value is None:
        return
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return
    raise InvalidBodyError(
        'Bedrock Converse has no JSON output mode; only response_format {"type": "text"} is supported.',
        param="response_format.type" if isinstance(value, dict) else "response_format",
    )


def _max_tokens(chat: JsonObj) -> tuple[str, int | None]:
    for field in ("max_completion_tokens", "max_tokens"):
        value = chat.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidBodyError(f"{field} must be a positive integer.", param=field)
        return field, value
    return "max_completion_tokens", None


def _stop_sequences(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item for item in value if item]
    raise InvalidBodyError("stop must be a string or a list of strings.", param="stop")


def _thinking_budget(effort: Any, model: str, messages: Any) -> int | None:
    if effort is None or effort == "none":
        return None
    if not isinstance(effort, str) or effort not in _THINKING_BUDGETS:
        raise InvalidBodyError(
            "reasoning_effort must be one of none, minimal, low, medium, high.", param="reasoning_effort"
        )
    if "claude" not in model.lower():
        return None
    if _tool_loop_pending(messages):
        return None
    return _THINKING_BUDGETS[effort]


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
    return _ID_UNSAFE.sub("_", value)[:64]


def _messages(raw: Any, model: str) -> tuple[list[JsonObj], list[JsonObj], bool, list[str]]:
    """(system blocks, merged Converse messages, whether tool blocks occur, tool names used)."""
    if not isinstance(raw, list) or not raw:
        raise InvalidBodyError("messages must be a non-empty array.", param="messages")
    tool_status = "claude" in model.lower() or "nova" in model.lower()
    system: list[JsonObj] = []
    turns: list[JsonObj] = []
    has_tool_blocks = False
    tool_names: list[str] = []
    for i, message in enumerate(raw):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidBodyError("Each message must be an object.", param=path)
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            text = _plain_text(content, f"{path}.content")
            if text:
                system.append({"text": text})
            continue
        if role == "user":
            blocks = _user_blocks(content, f"{path}.content")
            converse_role = "user"
        elif role == "assistant":
            blocks = _assistant_blocks(message, path)
            converse_role = "assistant"
            for block in blocks:
                if "toolUse" in block:
                    has_tool_blocks = True
                    tool_names.append(block["toolUse"]["name"])
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise InvalidBodyError("A tool message needs its tool_call_id.", param=f"{path}.tool_call_id")
            text = _plain_text(content, f"{path}.content")
            result: JsonObj = {"toolUseId": _tool_id(call_id), "content": [{"text": text}] if text else []}
            if tool_status:
                # Only Claude and Nova accept toolResult.status; OpenAI has no error flag to carry.
                result["status"] = "success"
            blocks = [{"toolResult": result}]
            converse_role = "user"
            has_tool_blocks = True
        else:
            raise InvalidBodyError(
                f"Unsupported message role {role!r} for Bedrock (use system, developer, user, assistant or tool).",
                param=f"{path}.role",
            )
        if not blocks:
            # Converse rejects empty turns; an empty message carries nothing to the model anyway.
            continue
        if turns and turns[-1]["role"] == converse_role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": converse_role, "content": blocks})
    return system, turns, has_tool_blocks, tool_names


def _plain_text(content: Any, path: str) -> str:
    """Text of a system or tool message: a string or an array of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise InvalidBodyError("Only text parts are supported here.", param=f"{path}[{j}]")
            parts.append(part["text"])
        return "".join(parts)
    raise InvalidBodyError("content must be a string or an array of content parts.", param=path)


def _user_blocks(content: Any, path: str) -> list[JsonObj]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidBodyError("content must be a string or an array of content parts.", param=path)
    blocks: list[JsonObj] = []
    for j, part in enumerate(content):
        part_path = f"{path}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                blocks.append({"text": part["text"]})
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url"), f"{part_path}.image_url"))
        elif kind == "file":
            blocks.append(_document_block(part.get("file"), f"{part_path}.file", f"document-{j + 1}"))
        else:
            raise InvalidBodyError(
                f"Unsupported content part type {kind!r} for Bedrock (text, image_url and file are supported).",
                param=f"{part_path}.type",
            )
    return blocks


def _image_block(image: Any, path: str) -> JsonObj:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidBodyError("image_url.url is required.", param=f"{path}.url")
    if url.startswith("s3://"):
        extension = url.rsplit(".", 1)[-1].lower() if "." in url.rsplit("/", 1)[-1] else ""
        fmt = _IMAGE_EXTENSIONS.get(extension)
        if fmt is None:
            raise InvalidBodyError(
                "An s3:// image needs a .png, .jpg, .jpeg, .gif or .webp name so its format is known.",
                param=f"{path}.url",
            )
        return {"image": {"format": fmt, "source": {"s3Location": {"uri": url}}}}
    match = _DATA_URL.fullmatch(url)
    if match is None:
        raise InvalidBodyError(
            "Bedrock Converse takes images only as inline bytes or from S3: send a base64 data: URL "
            "(or an s3:// URI), not a link it would have to fetch.",
            param=f"{path}.url",
        )
    mime, data = match.group(1).lower(), match.group(2)
    fmt = _IMAGE_FORMATS.get(mime)
    if fmt is None:
        raise InvalidBodyError(f"Unsupported image type {mime} (png, jpeg, gif and webp are).", param=f"{path}.url")
    # The JSON API takes blobs as base64 text, so the caller's string goes through as is.
    return {"image": {"format": fmt, "source": {"bytes": _checked_base64(data, f"{path}.url")}}}


def _document_block(file: Any, path: str, fallback_name: str) -> JsonObj:
    if not isinstance(file, dict):
        raise InvalidBodyError("file must be an object.", param=path)
    data_url = file.get("file_data")
    if not isinstance(data_url, str):
        raise InvalidBodyError(
            "Bedrock needs the document inline as file_data (a base64 data: URL); file_id is not supported.",
            param=f"{path}.file_data",
        )
    match = _DATA_URL.fullmatch(data_url)
    fmt = _DOCUMENT_FORMATS.get(match.group(1).lower()) if match else None
    if match is None or fmt is None:
        raise InvalidBodyError(
            "file_data must be a base64 data: URL of a pdf, csv, doc, docx, xls, xlsx, html, txt or md document.",
            param=f"{path}.file_data",
        )
    filename = file.get("filename")
    stem = filename.rsplit(".", 1)[0] if isinstance(filename, str) else ""
    # Converse document names allow only letters, digits, single spaces, hyphens and brackets.
    name = " ".join(_NAME_UNSAFE.sub(" ", stem).split())[:200] or fallback_name
    data = _checked_base64(match.group(2), f"{path}.file_data")
    return {"document": {"format": fmt, "name": name, "source": {"bytes": data}}}


def _checked_base64(data: str, path: str) -> str:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBodyError("The data: URL does not hold valid base64.", param=path) from exc
    return data


def _assistant_blocks(message: JsonObj, path: str) -> list[JsonObj]:
    blocks: list[JsonObj] = []
    content = message.get("content")
    if isinstance(content, str):
        if content:
            blocks.append({"text": content})
    elif isinstance(content, list):
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            text = part.get(kind) if kind in ("text", "refusal") else None
            if not isinstance(text, str):
                raise InvalidBodyError("Assistant content parts must be text or refusal.", param=f"{path}.content[{j}]")
            if text:
                blocks.append({"text": text})
    elif content is not None:
        raise InvalidBodyError("content must be a string or an array of content parts.", param=f"{path}.content")
    calls = message.get("tool_calls")
    if calls is None:
        return blocks
    if not isinstance(calls, list):
        raise InvalidBodyError("tool_calls must be an array.", param=f"{path}.tool_calls")
    for j, call in enumerate(calls):
        call_path = f"{path}.tool_calls[{j}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise InvalidBodyError("A tool call needs a function object.", param=f"{call_path}.function")
        call_id, name = call.get("id"), function.get("name")
        if not isinstance(call_id, str) or not call_id:
            raise InvalidBodyError("A tool call needs an id.", param=f"{call_path}.id")
        if not isinstance(name, str) or not name:
            raise InvalidBodyError("A tool call needs a function name.", param=f"{call_path}.function.name")
        blocks.append(
            {
                "toolUse": {
                    "toolUseId": _tool_id(call_id),
                    "name": name,
                    "input": _arguments(function.get("arguments"), f"{call_path}.function.arguments"),
                }
            }
        )
    return blocks


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


def _tool_config(tools: Any, choice: Any, has_tool_blocks: bool, history_names: list[str]) -> JsonObj | None:
    specs = _tool_specs(tools)
    if not specs:
        if not has_tool_blocks:
            return None
        # Converse refuses toolUse/toolResult history without a toolConfig; declare what it used.
        names = list(dict.fromkeys(history_names)) or ["tool"]
        return {"tools": [{"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}} for name in names]}
    config: JsonObj = {"tools": specs}
    if choice is None or choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "none":
        if not has_tool_blocks:
            return None
    elif isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidBodyError("tool_choice.function.name is required.", param="tool_choice.function.name")
        config["toolChoice"] = {"tool": {"name": name}}
    else:
        raise InvalidBodyError(
            'tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}.',
            param="tool_choice",
        )
    return config


def _tool_specs(tools: Any) -> list[JsonObj]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidBodyError("tools must be an array.", param="tools")
    specs: list[JsonObj] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise InvalidBodyError("Bedrock supports only function tools.", param=f"tools[{i}].type")
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
        spec["inputSchema"] = {"json": parameters}
        specs.append({"toolSpec": spec})
    return specs


# -- response: Converse -> OpenAI chat -----------------------------------------------------------


def _finish_reason(stop_reason: Any) -> str:
    # malformed_model_output / malformed_tool_use and any future reason: the turn is over.
    return _FINISH_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _usage(usage: Any) -> JsonObj:
    if not isinstance(usage, dict):
        return usage_object(0, 0)
    read = usage.get("cacheReadInputTokens")
    write = usage.get("cacheWriteInputTokens")
    # Converse's inputTokens excludes cached input; OpenAI's prompt_tokens counts all of it.
    prompt = int(usage.get("inputTokens") or 0) + int(read or 0) + int(write or 0)
    return usage_object(prompt, int(usage.get("outputTokens") or 0), cached_tokens=read, cache_write_tokens=write)


def converse_to_chat(response: JsonObj, *, model: str, created: int, completion_id: str) -> JsonObj:
    """A Converse response as an OpenAI ``chat.completion``."""
    output = response.get("output") if isinstance(response, dict) else None
    message = output.get("message") if isinstance(output, dict) else None
    if not isinstance(message, dict):
        raise UpstreamError("Bedrock returned a Converse response without output.message.")
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[JsonObj] = []
    for block in message.get("content") or []:
        if not isinstance(block, dict):
            continue
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            arguments = _encode(use.get("input") if use.get("input") is not None else {}).decode()
            function = {"name": use.get("name"), "arguments": arguments}
            calls.append({"id": use.get("toolUseId"), "type": "function", "function": function})
        elif isinstance(block.get("reasoningContent"), dict):
            text = (block["reasoningContent"].get("reasoningText") or {}).get("text")
            if isinstance(text, str):
                reasoning.append(text)
    chat_message: JsonObj = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
        "annotations": [],
    }
    if reasoning:
        chat_message["reasoning_content"] = "".join(reasoning)
    if calls:
        chat_message["tool_calls"] = calls
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": chat_message,
                "logprobs": None,
                "finish_reason": _finish_reason(response.get("stopReason")),
            }
        ],
        "usage": _usage(response.get("usage")),
    }


# -- stream: ConverseStream events -> OpenAI chunks ------------------------------------------------


class ConverseStreamTranslator:
    """ConverseStream events, one at a time, as OpenAI ``chat.completion.chunk`` objects.

    ``usage`` holds the OpenAI usage once the ``metadata`` event has arrived (for the log), whether
    or not the caller asked for the usage chunk.
    """

    def __init__(self, *, model: str, created: int, completion_id: str, include_usage: bool) -> None:
        self._model = model
        self._created = created
        self._id = completion_id
        self._include_usage = include_usage
        #: contentBlockIndex -> OpenAI tool_calls index (OpenAI counts tool calls, not blocks).
        self._tool_index: dict[int, int] = {}
        self.usage: JsonObj | None = None
        self.finish_reason: str | None = None

    def _chunk(self, delta: JsonObj | None, **extra: Any) -> JsonObj:
        return completion_chunk(self._id, self._created, self._model, delta, **extra)

    def _tool_slot(self, block_index: int) -> int:
        if block_index not in self._tool_index:
            self._tool_index[block_index] = len(self._tool_index)
        return self._tool_index[block_index]

    def feed(self, event_type: str, payload: JsonObj) -> list[JsonObj]:
        """The chunks one event produces (often none)."""
        if event_type == "messageStart":
            return [self._chunk({"role": "assistant", "content": ""})]
        if event_type == "contentBlockStart":
            start = payload.get("start")
            use = start.get("toolUse") if isinstance(start, dict) else None
            if not isinstance(use, dict):
                return []
            index = self._tool_slot(int(payload.get("contentBlockIndex") or 0))
            call = {
                "index": index,
                "id": use.get("toolUseId"),
                "type": "function",
                "function": {"name": use.get("name"), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [call]})]
        if event_type == "contentBlockDelta":
            return self._delta(payload)
        if event_type == "messageStop":
            self.finish_reason = _finish_reason(payload.get("stopReason"))
            return [self._chunk({}, finish_reason=self.finish_reason)]
        if event_type == "metadata":
            self.usage = _usage(payload.get("usage"))
            return [self._chunk(None, usage=self.usage)] if self._include_usage else []
        return []

    def _delta(self, payload: JsonObj) -> list[JsonObj]:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return []
        if isinstance(delta.get("text"), str):
            return [self._chunk({"content": delta["text"]})] if delta["text"] else []
        use = delta.get("toolUse")
        if isinstance(use, dict) and isinstance(use.get("input"), str):
            if not use["input"]:
                return []
            index = self._tool_slot(int(payload.get("contentBlockIndex") or 0))
            return [self._chunk({"tool_calls": [{"index": index, "function": {"arguments": use["input"]}}]})]
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str) and reasoning["text"]:
            return [self._chunk({"reasoning_content": reasoning["text"]})]
        # Signatures, redacted reasoning and citations have no OpenAI chunk field.
        return []


class EventStreamDecoder:
    """Bytes of an ``application/vnd.amazon.eventstream`` body, in any pieces, as ``(event type, JSON)``.

    Framing and CRC checks are botocore's (:class:`botocore.eventstream.EventStreamBuffer`). An
    ``exception`` or ``error`` frame raises :class:`ProviderStreamError` with the status the same
    failure has as an HTTP error; events decoded earlier in the same ``feed`` call are dropped with
    it, since the answer is failing anyway.
    """

    def __init__(self) -> None:
        from botocore.eventstream import EventStreamBuffer, ParserError

        self._buffer = EventStreamBuffer()
        self._parser_error = ParserError

    def feed(self, data: bytes) -> list[tuple[str, JsonObj]]:
        self._buffer.add_data(data)
        events: list[tuple[str, JsonObj]] = []
        try:
            for message in self._buffer:
                event = _frame_event(message.headers, message.payload)
                if event is not None:
                    events.append(event)
        except self._parser_error as exc:
            raise ProviderStreamError(502, f"Bedrock sent a malformed event stream: {exc}", kind=_INVALID) from exc
        return events


def _frame_event(headers: dict[str, Any], payload: bytes) -> tuple[str, JsonObj] | None:
    message_type = headers.get(":message-type")
    if message_type == "error":
        code = str(headers.get(":error-code") or "error")
        raise ProviderStreamError(500, str(headers.get(":error-message") or code), kind=code)
    body = _payload(payload)
    if message_type == "exception":
        kind = str(headers.get(":exception-type") or "exception")
        message = body.get("message") or body.get("Message") or kind
        raise ProviderStreamError(_EXCEPTION_STATUS.get(kind, 500), str(message), kind=kind)
    if message_type != "event":
        return None
    return str(headers.get(":event-type") or ""), body


def _payload(payload: bytes) -> JsonObj:
    if not payload:
        return {}
    try:
        value = _decode(payload)
    except msgspec.DecodeError as exc:
        raise ProviderStreamError(502, "Bedrock sent an event whose payload is not JSON.", kind=_INVALID) from exc
    if not isinstance(value, dict):
        raise ProviderStreamError(502, "Bedrock sent an event whose payload is not an object.", kind=_INVALID)
    return value


# -- transport helpers: URL, SigV4, credentials, errors -------------------------------------------

_REGION = re.compile(r"[a-z0-9-]+")


def converse_url(region: str, model_id: str, *, stream: bool, endpoint: str | None = None) -> str:
    """The Converse (or ConverseStream) URL; ``endpoint`` replaces the regional base (tests, VPC endpoints).

    The model id is one path segment, so ``:`` and the ``/`` of ARNs are percent-encoded, as the
    AWS SDKs do (the signature is computed over that encoded path).
    """
    if endpoint:
        base = endpoint.rstrip("/")
    else:
        if not _REGION.fullmatch(region or ""):
            raise ConfigError(f"Bedrock needs an AWS region such as us-east-1, got {region!r}.")
        base = f"https://bedrock-runtime.{region}.amazonaws.com"
    operation = "converse-stream" if stream else "converse"
    return f"{base}/model/{quote(model_id, safe='')}/{operation}"


def sign(
    method: str, url: str, headers: dict[str, str], body: bytes, *, region: str, credentials: Credentials
) -> dict[str, str]:
    """The headers to send: ``headers`` plus SigV4's (``Authorization``, ``X-Amz-Date`` and, for
    temporary credentials, ``X-Amz-Security-Token``) for service ``bedrock``.

    Every header given here is signed, so pass the ones that must not change in transit and add
    hop-specific ones (``content-length``, ``user-agent``) afterwards.
    """
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    if credentials is None:
        raise ConfigError("Bedrock requests need AWS credentials (none were found for this function).")
    # One consistent key/secret/token triple even if a refresh happens while signing.
    frozen = credentials.get_frozen_credentials() if hasattr(credentials, "get_frozen_credentials") else credentials
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(frozen, "bedrock", region).add_auth(request)
    return {name: value.decode() if isinstance(value, bytes) else value for name, value in request.headers.items()}


def role_credentials() -> Credentials:
    """The credentials of the function's IAM role (or the environment / profile when run locally).

    botocore's default chain, so temporary role credentials refresh themselves before expiry.
    Blocking (it may call the instance metadata service): run it off the event loop.
    """
    import botocore.session

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise ConfigError("No AWS credentials found for Bedrock (IAM role, environment or profile).")
    return credentials


def error_message(body: JsonObj) -> str:
    """The human part of a Bedrock error body (``{"message": ...}``; some AWS front ends say ``Message``)."""
    for key in ("message", "Message"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    error = body.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return str(body)[:500]

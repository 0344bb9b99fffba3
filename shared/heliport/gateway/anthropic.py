"""OpenAI Chat Completions <-> Anthropic Messages (``POST /v1/messages``), both ways, streams included.

Pure translation: the handler sends the body and feeds the answer back here. The OpenAI request is
read by :mod:`.chat_request`, which refuses malformed input; this module renders what it read, and
what Anthropic could not express raises :class:`InvalidBodyError` naming the offending field, so the
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
* ``prompt_cache_key`` (else ``safety_identifier``, else ``user``) -> ``metadata.user_id``, which
  Anthropic uses as a cache key (Helicone's prompt-caching doc; the explicit cache key wins).
* ``context_editing`` (Helicone's) -> ``context_management`` (:mod:`.context_editing`); the
  ``anthropic-beta`` flag it needs is the transport's business (a header here, a body field on Vertex).
* 400s, because dropping them would silently break what the caller relies on: ``n`` > 1,
  ``logprobs``/``top_logprobs``, ``response_format`` other than ``text`` (no JSON mode without a beta
  header), a non-empty ``logit_bias`` (OpenAI token ids), audio ``modalities``/``audio``, the legacy
  ``functions``/``function_call``, ``web_search_options``.
* Dropped quietly, as harmless hints or OpenAI-side bookkeeping: ``seed``, ``frequency_penalty``,
  ``presence_penalty``, ``store``, ``metadata``, ``service_tier``,
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

from heliport.errors import InvalidBodyError, UpstreamError
from heliport.gateway.chat import (
    JsonObj,
    ProviderStreamError,
    StreamTranslator,
    chat_completion,
    finish_reason,
    tool_call,
    usage_object,
)
from heliport.gateway.chat_request import (
    ANTHROPIC,
    THINKING_BUDGETS,
    ChatRequest,
    FilePart,
    ImagePart,
    Part,
    TextPart,
    Tool,
    ToolCallPart,
    ToolResultPart,
    Turn,
    data_url,
    safe_tool_id,
)
from heliport.gateway.context_editing import anthropic_context_management, read_context_editing
from heliport.gateway.images import refuse_image_generation

__all__ = ["MessagesStreamTranslator", "chat_to_messages", "error_message", "messages_to_chat"]

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

#: While thinking is on Anthropic accepts top_p only in [0.95, 1].
_THINKING_MIN_TOP_P = 0.95


# -- request: OpenAI chat -> Messages --------------------------------------------------------------


def chat_to_messages(chat: JsonObj, *, model: str, default_max_tokens: int = 4096) -> JsonObj:
    """An OpenAI chat request as an Anthropic ``/v1/messages`` body for ``model``.

    Raises :class:`InvalidBodyError` naming the field for anything malformed or that Anthropic cannot express.
    """
    if not isinstance(chat, dict):
        raise InvalidBodyError("The request body must be a JSON object.")
    _reject_unsupported(chat)
    refuse_image_generation(chat, "Anthropic", model)
    request = ChatRequest(chat, ANTHROPIC)
    if not request.turns:
        raise InvalidBodyError("messages needs at least one user or assistant message.", param="messages")

    body: JsonObj = {"model": model}
    system = _system(request.system)
    if system is not None:
        body["system"] = system
    body["messages"] = [_message(turn) for turn in request.turns]

    tools = [_tool(tool) for tool in request.tools]
    tool_choice = _tool_choice(request, chat.get("parallel_tool_calls"), has_tools=bool(tools))
    history_tools = request.tool_names
    if not tools and history_tools:
        # Anthropic refuses tool blocks without tools; a caller that sent none cannot run one either.
        tools = [{"name": name, "input_schema": {"type": "object"}} for name in dict.fromkeys(history_tools)]
        tool_choice = {"type": "none"}
    if tools:
        body["tools"] = tools
        if tool_choice is not None:
            body["tool_choice"] = tool_choice

    limit = request.max_tokens if request.max_tokens is not None else default_max_tokens
    thinking = _thinking(chat, request, tool_choice if tools else None)
    if thinking is not None:
        budget = thinking.get("budget_tokens")
        if isinstance(budget, int) and not isinstance(budget, bool) and limit <= budget:
            limit += budget
        body["thinking"] = thinking
    body["max_tokens"] = limit
    thinking_on = thinking is not None and thinking.get("type") != "disabled"

    if request.temperature is not None and not thinking_on:
        body["temperature"] = min(max(request.temperature, 0.0), 1.0)
    if request.top_p is not None and (not thinking_on or request.top_p >= _THINKING_MIN_TOP_P):
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = request.stop
    user_id = _user_id(chat)
    if user_id is not None:
        body["metadata"] = {"user_id": user_id}
    editing = read_context_editing(chat)
    if editing is not None:
        body["context_management"] = anthropic_context_management(editing)
    if request.stream:
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


def _user_id(chat: JsonObj) -> str | None:
    # The explicit cache key wins: Anthropic keys its prompt cache on metadata.user_id.
    for field in ("prompt_cache_key", "safety_identifier", "user"):
        value = chat.get(field)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidBodyError(f"{field} must be a string.", param=field)
        if value:
            return value
    return None


def _thinking(chat: JsonObj, request: ChatRequest, tool_choice: JsonObj | None) -> JsonObj | None:
    explicit = chat.get("thinking")
    if explicit is not None:
        if not isinstance(explicit, dict) or not isinstance(explicit.get("type"), str):
            raise InvalidBodyError('thinking must be an object with a "type".', param="thinking")
        return explicit
    effort = request.reasoning_effort
    if effort is None:
        return None
    if tool_choice is not None and tool_choice.get("type") in ("any", "tool"):
        return None
    if request.tool_loop_pending:
        return None
    return {"type": "enabled", "budget_tokens": THINKING_BUDGETS[effort]}


def _system(system: list[list[TextPart]]) -> str | list[JsonObj] | None:
    """The top-level ``system``: a plain string for one text without ``cache_control``, else text blocks."""
    parts = [part for message in system for part in message]
    if not parts:
        return None
    if len(parts) == 1 and parts[0].cache_control is None:
        return parts[0].text
    return [_block(part) for part in parts]


def _message(turn: Turn) -> JsonObj:
    # A turn of one plain text block is sent as a string, the form Anthropic's own examples use.
    if len(turn.parts) == 1 and isinstance(turn.parts[0], TextPart) and turn.parts[0].cache_control is None:
        return {"role": turn.role, "content": turn.parts[0].text}
    return {"role": turn.role, "content": [_block(part) for part in turn.parts]}


def _block(part: Part) -> JsonObj:
    block = _content_block(part)
    if part.cache_control is not None:
        block["cache_control"] = part.cache_control
    return block


def _content_block(part: Part) -> JsonObj:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        return _image_block(part)
    if isinstance(part, FilePart):
        return _document_block(part)
    if isinstance(part, ToolCallPart):
        return {"type": "tool_use", "id": safe_tool_id(part.call_id), "name": part.name, "input": part.arguments}
    return _tool_result_block(part)


def _image_block(image: ImagePart) -> JsonObj:
    if image.url.startswith(("https://", "http://")):
        return {"type": "image", "source": {"type": "url", "url": image.url}}
    parsed = data_url(image.url)
    if parsed is None:
        raise InvalidBodyError("An image must be an http(s) URL or a base64 data: URL.", param=image.param)
    media_type = _IMAGE_TYPES.get(parsed.media_type.lower())
    if media_type is None:
        raise InvalidBodyError(
            f"Unsupported image type {parsed.media_type} (png, jpeg, gif and webp are).", param=image.param
        )
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": parsed.data}}


def _document_block(file: FilePart) -> JsonObj:
    parsed = data_url(file.file_data)
    media_type = parsed.media_type.lower() if parsed else None
    if parsed is None or media_type not in ("application/pdf", "text/plain"):
        raise InvalidBodyError("file_data must be a base64 data: URL of a PDF or plain text.", param=file.param)
    if media_type == "application/pdf":
        source: JsonObj = {"type": "base64", "media_type": media_type, "data": parsed.data}
    else:
        # Anthropic takes plain-text documents as text, not base64.
        try:
            text = base64.b64decode(parsed.data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise InvalidBodyError("file_data does not hold base64 UTF-8 text.", param=file.param) from exc
        source = {"type": "text", "media_type": "text/plain", "data": text}
    block: JsonObj = {"type": "document", "source": source}
    if file.filename:
        block["title"] = file.filename
    return block


def _tool_result_block(result: ToolResultPart) -> JsonObj:
    block: JsonObj = {"type": "tool_result", "tool_use_id": safe_tool_id(result.call_id)}
    if isinstance(result.content, str):
        if result.content:
            block["content"] = result.content
    elif result.content:
        block["content"] = [_block(part) for part in result.content]
    return block


def _tool(tool: Tool) -> JsonObj:
    spec: JsonObj = {"name": tool.name}
    if tool.description is not None:
        spec["description"] = tool.description
    spec["input_schema"] = tool.parameters
    if tool.cache_control is not None:
        spec["cache_control"] = tool.cache_control
    return spec


def _tool_choice(request: ChatRequest, parallel: object, *, has_tools: bool) -> JsonObj | None:
    if parallel is not None and not isinstance(parallel, bool):
        raise InvalidBodyError("parallel_tool_calls must be a boolean.", param="parallel_tool_calls")
    choice = request.tool_choice
    result: JsonObj | None
    if choice is None or choice == "auto":
        result = {"type": "auto"} if choice == "auto" or parallel is False else None
    elif choice == "none":
        # Anthropic's "none" takes no disable_parallel_tool_use: no tool is called at all.
        return {"type": "none"} if has_tools else None
    elif choice == "required":
        result = {"type": "any"}
    else:
        result = {"type": "tool", "name": choice.name}
    if not has_tools:
        if result is not None and result["type"] in ("any", "tool"):
            raise InvalidBodyError("tool_choice forces a tool call, but no tools were given.", param="tool_choice")
        return None
    if result is not None and parallel is False:
        result["disable_parallel_tool_use"] = True
    return result


# -- response: Message -> OpenAI chat ----------------------------------------------------------------


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _usage(usage: object) -> JsonObj:
    if not isinstance(usage, dict):
        return usage_object(0, 0)
    read = _count(usage.get("cache_read_input_tokens"))
    write = _count(usage.get("cache_creation_input_tokens"))
    # Anthropic's input_tokens excludes cached input; OpenAI's prompt_tokens counts all of it.
    prompt = (_count(usage.get("input_tokens")) or 0) + (read or 0) + (write or 0)
    completion = _count(usage.get("output_tokens")) or 0
    return usage_object(prompt, completion, cached_tokens=read, cache_write_tokens=write)


def _completion_id(message_id: object) -> str:
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
            calls.append(tool_call(block.get("id"), block.get("name"), block.get("input")))
        elif kind == "thinking" and isinstance(block.get("thinking"), str):
            reasoning.append(block["thinking"])
    text = "".join(texts)
    return chat_completion(
        _completion_id(message.get("id")),
        created,
        model,
        content=None if not text and calls else text,
        reasoning=reasoning,
        tool_calls=calls,
        finish_reason=finish_reason(message.get("stop_reason"), _FINISH_REASONS),
        usage=_usage(message.get("usage")),
    )


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


class MessagesStreamTranslator(StreamTranslator):
    """Anthropic stream events, one at a time, as OpenAI ``chat.completion.chunk`` objects.

    ``usage`` holds the OpenAI usage once ``message_delta`` has arrived (for the log), whether or
    not the caller asked for the usage chunk; ``finish_reason`` likewise.
    """

    def __init__(self, *, model: str, created: int, include_usage: bool) -> None:
        # The id is the message's, known from message_start on.
        super().__init__(model=model, created=created, completion_id=_completion_id(None), include_usage=include_usage)
        #: Anthropic usage merged over message_start and message_delta (the latter's counts are cumulative).
        self._raw_usage: JsonObj = {}
        self._stop_reason: object = None

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
            self.finish_reason = finish_reason(self._stop_reason, _FINISH_REASONS)
            self.usage = _usage(self._raw_usage)
            chunks = [self._chunk({}, finish_reason=self.finish_reason)]
            if self._include_usage:
                chunks.append(self._chunk(None, usage=self.usage))
            return chunks
        if kind == "error":
            raw_error = data.get("error")
            error: JsonObj = raw_error if isinstance(raw_error, dict) else {}
            error_type = str(error.get("type") or "api_error")
            raise ProviderStreamError(_ERROR_STATUS.get(error_type, 500), error_message(data), kind=error_type)
        # ping, content_block_stop, and event types Anthropic may add later carry nothing to relay.
        return []

    def _merge_usage(self, usage: object) -> None:
        if isinstance(usage, dict):
            self._raw_usage.update({key: value for key, value in usage.items() if value is not None})

    def _block_start(self, data: JsonObj) -> list[JsonObj]:
        block = data.get("content_block")
        if not isinstance(block, dict):
            return []
        if block.get("type") == "tool_use":
            return [self._tool_call_start(_count(data.get("index")) or 0, block.get("id"), block.get("name"))]
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
            return [self._arguments_chunk(index, partial)]
        if kind == "thinking_delta":
            thinking = delta.get("thinking")
            return [self._chunk({"reasoning_content": thinking})] if isinstance(thinking, str) and thinking else []
        # signature_delta and citations_delta have no OpenAI chunk field.
        return []

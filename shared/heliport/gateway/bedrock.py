"""OpenAI Chat Completions <-> AWS Bedrock Converse / ConverseStream, both ways, streams included.

Pure translation: the OpenAI request is read by :mod:`.chat_request`, which refuses malformed
input; this module renders what it read as a Converse body, and answers (whole, or stream events
that :mod:`.bedrock_wire` has decoded) back as OpenAI chat. The URL, SigV4 signing and the binary
event-stream framing are :mod:`.bedrock_wire`'s; the gateway handler does the sending.

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
* Prompt caching: a ``cache_control`` breakpoint (on a message, a content part or a tool) becomes
  Converse's own ``cachePoint`` block right after what it marks (after the system text, the content
  block, or the tool spec), for the models Bedrock caches for (Claude, Nova); Bedrock caches for
  five minutes only, so a ``ttl`` has no counterpart. Other models get no cache points (a hint).
* ``context_editing`` -> Claude's ``context_management`` plus the ``anthropic_beta`` flag it needs,
  both in ``additionalModelRequestFields`` (:mod:`.context_editing`); a 400 for other models.
* ``temperature`` is clamped to Converse's 0..1; ``response_format`` other than ``text`` is a 400
  (Converse has no JSON mode); ``n`` > 1 is a 400. Sampling knobs without a Converse field
  (``seed``, penalties, ``logit_bias``, ``parallel_tool_calls``, ``user``...) are dropped.
"""

from __future__ import annotations

import base64
import binascii
import re

from heliport.errors import InvalidBodyError, UpstreamError
from heliport.gateway.chat import JsonObj, StreamTranslator, chat_completion, finish_reason, tool_call, usage_object
from heliport.gateway.chat_request import (
    BEDROCK,
    THINKING_BUDGETS,
    ChatRequest,
    FilePart,
    ImagePart,
    Part,
    TextPart,
    Tool,
    ToolCallPart,
    Turn,
    data_url,
    safe_tool_id,
)
from heliport.gateway.context_editing import bedrock_fields, read_context_editing, refuse_context_editing
from heliport.gateway.images import refuse_image_generation

__all__ = ["ConverseStreamTranslator", "chat_to_converse", "converse_to_chat"]

#: Converse stop reasons as OpenAI finish reasons; any other (malformed_model_output,
#: malformed_tool_use, one added later) also ends the turn: "stop".
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
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9\s\-()\[\]]")
#: Converse's toolUseId is at most 64 characters.
_TOOL_ID_LENGTH = 64
#: Anthropic's floor for a thinking budget.
_MIN_THINKING_BUDGET = 1024
#: Converse's prompt-cache breakpoint: everything before it is cached (Bedrock's TTL is fixed at 5 minutes).
_CACHE_POINT: JsonObj = {"cachePoint": {"type": "default"}}


# -- request: OpenAI chat -> Converse ------------------------------------------------------------


def chat_to_converse(chat: JsonObj, *, default_max_tokens: int = 4096, model_id: str | None = None) -> JsonObj:
    """An OpenAI chat request as a Converse request body (the model id goes in the URL, not here).

    ``model_id`` is the Bedrock model the body is for; it decides model-specific fields (Claude's
    thinking, ``toolResult.status``). Without it ``chat["model"]`` is used for that decision.
    Raises :class:`InvalidBodyError` naming the field for anything malformed or that Converse cannot express.
    """
    if not isinstance(chat, dict):
        raise InvalidBodyError("The request body must be a JSON object.")
    model = model_id if model_id is not None else str(chat.get("model") or "")
    n = chat.get("n")
    if n is not None and n != 1:
        raise InvalidBodyError("Bedrock returns one choice per request; n must be 1.", param="n")
    _check_response_format(chat.get("response_format"))
    refuse_image_generation(chat, "Bedrock", model)
    request = ChatRequest(chat, BEDROCK)
    claude = "claude" in model.lower()
    editing = read_context_editing(chat)
    if editing is not None and not claude:
        refuse_context_editing(chat, f"Bedrock model {model}")
    caches = claude or "nova" in model.lower()

    body: JsonObj = {"messages": _messages(request.turns, model, caches=caches)}
    system: list[JsonObj] = []
    for message in request.system:
        system.append({"text": "".join(part.text for part in message)})
        if caches and any(part.cache_control is not None for part in message):
            system.append(_CACHE_POINT)
    if system:
        body["system"] = system

    max_tokens = request.max_tokens
    inference: JsonObj = {"maxTokens": max_tokens if max_tokens is not None else default_max_tokens}
    if request.temperature is not None:
        inference["temperature"] = min(max(request.temperature, 0.0), 1.0)
    if request.top_p is not None:
        inference["topP"] = request.top_p
    if request.stop:
        inference["stopSequences"] = request.stop

    tool_config = _tool_config(request, caches=caches)
    if tool_config is not None:
        body["toolConfig"] = tool_config

    budget = _thinking_budget(request, model)
    if budget is not None:
        if max_tokens is None:
            # OpenAI's limit counts reasoning tokens; with no limit given, keep the default room for
            # the visible answer on top of the thinking budget.
            inference["maxTokens"] = default_max_tokens + budget
        else:
            budget = min(budget, max_tokens - 1)
            if budget < _MIN_THINKING_BUDGET:
                raise InvalidBodyError(
                    f"{request.max_tokens_field} must be more than {_MIN_THINKING_BUDGET} when reasoning_effort "
                    "is set for a Claude model on Bedrock (thinking needs a budget of at least 1024 tokens).",
                    param=request.max_tokens_field,
                )
        body["additionalModelRequestFields"] = {"thinking": {"type": "enabled", "budget_tokens": budget}}
    if editing is not None:
        extra = body.get("additionalModelRequestFields", {})
        body["additionalModelRequestFields"] = {**extra, **bedrock_fields(editing)}
    body["inferenceConfig"] = inference
    return body


def _check_response_format(value: object) -> None:
    if value is None:
        return
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return
    raise InvalidBodyError(
        'Bedrock Converse has no JSON output mode; only response_format {"type": "text"} is supported.',
        param="response_format.type" if isinstance(value, dict) else "response_format",
    )


def _thinking_budget(request: ChatRequest, model: str) -> int | None:
    effort = request.reasoning_effort
    if effort is None or "claude" not in model.lower():
        return None
    if request.tool_loop_pending:
        return None
    return THINKING_BUDGETS[effort]


def _tool_id(call_id: str) -> str:
    return safe_tool_id(call_id)[:_TOOL_ID_LENGTH]


def _messages(turns: list[Turn], model: str, *, caches: bool) -> list[JsonObj]:
    # Only Claude and Nova accept toolResult.status; OpenAI has no error flag to carry.
    tool_status = "claude" in model.lower() or "nova" in model.lower()
    messages: list[JsonObj] = []
    for turn in turns:
        content: list[JsonObj] = []
        for part in turn.parts:
            content.append(_block(part, tool_status))
            if caches and part.cache_control is not None:
                content.append(_CACHE_POINT)
        messages.append({"role": turn.role, "content": content})
    return messages


def _block(part: Part, tool_status: bool) -> JsonObj:
    if isinstance(part, TextPart):
        return {"text": part.text}
    if isinstance(part, ImagePart):
        return _image_block(part)
    if isinstance(part, FilePart):
        return _document_block(part)
    if isinstance(part, ToolCallPart):
        return {"toolUse": {"toolUseId": _tool_id(part.call_id), "name": part.name, "input": part.arguments}}
    text = part.content if isinstance(part.content, str) else "".join(piece.text for piece in part.content)
    result: JsonObj = {"toolUseId": _tool_id(part.call_id), "content": [{"text": text}] if text else []}
    if tool_status:
        result["status"] = "success"
    return {"toolResult": result}


def _image_block(image: ImagePart) -> JsonObj:
    url = image.url
    if url.startswith("s3://"):
        extension = url.rsplit(".", 1)[-1].lower() if "." in url.rsplit("/", 1)[-1] else ""
        fmt = _IMAGE_EXTENSIONS.get(extension)
        if fmt is None:
            raise InvalidBodyError(
                "An s3:// image needs a .png, .jpg, .jpeg, .gif or .webp name so its format is known.",
                param=image.param,
            )
        return {"image": {"format": fmt, "source": {"s3Location": {"uri": url}}}}
    parsed = data_url(url)
    if parsed is None:
        raise InvalidBodyError(
            "Bedrock Converse takes images only as inline bytes or from S3: send a base64 data: URL "
            "(or an s3:// URI), not a link it would have to fetch.",
            param=image.param,
        )
    mime = parsed.media_type.lower()
    fmt = _IMAGE_FORMATS.get(mime)
    if fmt is None:
        raise InvalidBodyError(f"Unsupported image type {mime} (png, jpeg, gif and webp are).", param=image.param)
    # The JSON API takes blobs as base64 text, so the caller's string goes through as is.
    return {"image": {"format": fmt, "source": {"bytes": _checked_base64(parsed.data, image.param)}}}


def _document_block(file: FilePart) -> JsonObj:
    parsed = data_url(file.file_data)
    fmt = _DOCUMENT_FORMATS.get(parsed.media_type.lower()) if parsed else None
    if parsed is None or fmt is None:
        raise InvalidBodyError(
            "file_data must be a base64 data: URL of a pdf, csv, doc, docx, xls, xlsx, html, txt or md document.",
            param=file.param,
        )
    stem = file.filename.rsplit(".", 1)[0] if file.filename is not None else ""
    # Converse document names allow only letters, digits, single spaces, hyphens and brackets.
    name = " ".join(_NAME_UNSAFE.sub(" ", stem).split())[:200] or f"document-{file.index + 1}"
    return {"document": {"format": fmt, "name": name, "source": {"bytes": _checked_base64(parsed.data, file.param)}}}


def _checked_base64(data: str, param: str) -> str:
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidBodyError("The data: URL does not hold valid base64.", param=param) from exc
    return data


def _tool_config(request: ChatRequest, *, caches: bool) -> JsonObj | None:
    specs: list[JsonObj] = []
    for tool in request.tools:
        specs.append(_tool_spec(tool))
        if caches and tool.cache_control is not None:
            specs.append(_CACHE_POINT)
    has_tool_blocks = request.has_tool_history
    if not specs:
        if not has_tool_blocks:
            return None
        # Converse refuses toolUse/toolResult history without a toolConfig; declare what it used.
        names = list(dict.fromkeys(request.tool_names)) or ["tool"]
        return {"tools": [{"toolSpec": {"name": name, "inputSchema": {"json": {"type": "object"}}}} for name in names]}
    config: JsonObj = {"tools": specs}
    choice = request.tool_choice
    if choice is None or choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "none":
        if not has_tool_blocks:
            return None
    else:
        config["toolChoice"] = {"tool": {"name": choice.name}}
    return config


def _tool_spec(tool: Tool) -> JsonObj:
    spec: JsonObj = {"name": tool.name}
    if tool.description is not None:
        spec["description"] = tool.description
    spec["inputSchema"] = {"json": tool.parameters}
    return {"toolSpec": spec}


# -- response: Converse -> OpenAI chat -----------------------------------------------------------


def _usage(usage: object) -> JsonObj:
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
            calls.append(tool_call(use.get("toolUseId"), use.get("name"), use.get("input")))
        elif isinstance(block.get("reasoningContent"), dict):
            text = (block["reasoningContent"].get("reasoningText") or {}).get("text")
            if isinstance(text, str):
                reasoning.append(text)
    return chat_completion(
        completion_id,
        created,
        model,
        content="".join(texts) if texts else None,
        reasoning=reasoning,
        tool_calls=calls,
        finish_reason=finish_reason(response.get("stopReason"), _FINISH_REASONS),
        usage=_usage(response.get("usage")),
    )


# -- stream: ConverseStream events -> OpenAI chunks ------------------------------------------------


class ConverseStreamTranslator(StreamTranslator):
    """ConverseStream events, one at a time, as OpenAI ``chat.completion.chunk`` objects.

    ``usage`` holds the OpenAI usage once the ``metadata`` event has arrived (for the log), whether
    or not the caller asked for the usage chunk.
    """

    def feed(self, event_type: str, payload: JsonObj) -> list[JsonObj]:
        """The chunks one event produces (often none)."""
        if event_type == "messageStart":
            return [self._chunk({"role": "assistant", "content": ""})]
        if event_type == "contentBlockStart":
            start = payload.get("start")
            use = start.get("toolUse") if isinstance(start, dict) else None
            if not isinstance(use, dict):
                return []
            block_index = int(payload.get("contentBlockIndex") or 0)
            return [self._tool_call_start(block_index, use.get("toolUseId"), use.get("name"))]
        if event_type == "contentBlockDelta":
            return self._delta(payload)
        if event_type == "messageStop":
            self.finish_reason = finish_reason(payload.get("stopReason"), _FINISH_REASONS)
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
            return [self._arguments_chunk(index, use["input"])]
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str) and reasoning["text"]:
            return [self._chunk({"reasoning_content": reasoning["text"]})]
        # Signatures, redacted reasoning and citations have no OpenAI chunk field.
        return []

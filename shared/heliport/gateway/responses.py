"""OpenAI Responses API <-> OpenAI Chat Completions, for ``/v1/responses`` routed to a chat-only provider.

Anthropic, Bedrock, Groq and the rest are reached through chat adapters, so a Responses request is
first rewritten as a chat request (:func:`responses_to_chat`), and the chat answer is rewritten as a
Response object (:func:`chat_to_response`) or, when streaming, as Responses stream events
(:class:`ResponsesStreamTranslator`). The clients that must keep working are the OpenAI Agents SDK
(which resends the whole history as items every turn and needs ``response.completed`` to carry the
turn's output) and the Codex CLI (which streams, sends ``namespace`` tools and hosted tools, and reads
``function_call`` items back with ``name`` and ``namespace`` as separate fields).

What cannot cross over, and what happens instead:

* heliport keeps no response state for other providers, so ``previous_response_id``, ``conversation``,
  ``prompt`` (stored prompt templates), ``item_reference`` items and ``background: true`` are a 400 that
  names the field, rather than an answer built on a silently missing context;
* hosted tools (``web_search``, ``file_search``, ...) run inside OpenAI: they are dropped and listed by
  :func:`dropped_tools` so the handler can record them;
* reasoning items cannot be replayed to another provider (encrypted, or another vendor's thought) and
  are dropped from the history; the provider's own reasoning comes back as a reasoning summary;
* ``namespace`` tools become flat chat functions named ``<namespace><name>`` (``mcp__demo__`` +
  ``lookup`` is ``mcp__demo__lookup``, the name Codex itself gives MCP tools) or ``<namespace>__<name>``,
  and calls are mapped back by exact lookup in the request's tools, never by splitting names;
* ``custom`` (free-form) tools become functions taking one string argument ``input``.

The non-streaming answer is built by feeding the completion through the stream translator as one
chunk, so both paths produce the same output items by construction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import msgspec

from heliport.errors import InvalidBodyError
from heliport.gateway.chat import JsonObj

__all__ = ["ResponsesStreamTranslator", "chat_to_response", "dropped_tools", "responses_to_chat", "sse"]

_encode = msgspec.json.encode

_MESSAGE_ROLES = frozenset({"user", "system", "developer", "assistant"})
#: Items that record what an OpenAI-hosted tool or OpenAI's own reasoning did in an earlier turn: only
#: OpenAI can replay them, and the turn's visible result is already in the surrounding messages.
_UNREPLAYABLE_ITEMS = frozenset(
    {
        "reasoning",
        "web_search_call",
        "file_search_call",
        "code_interpreter_call",
        "image_generation_call",
        "mcp_list_tools",
        "tool_search_call",
        "tool_search_output",
    }
)
#: Request fields that address state kept by OpenAI; another provider would answer without it.
_STATEFUL_FIELDS = ("previous_response_id", "conversation", "prompt")
_IMAGE_DETAILS = frozenset({"auto", "low", "high"})
#: ``ResponseError.code`` is a closed set; provider error kinds outside it are reported as server errors.
_ERROR_CODES = frozenset(
    {
        "server_error",
        "rate_limit_exceeded",
        "invalid_prompt",
        "vector_store_timeout",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "image_content_policy_violation",
        "invalid_image_mode",
        "image_file_too_large",
        "unsupported_image_media_type",
        "empty_image_file",
        "failed_to_download_image",
        "image_file_not_found",
    }
)


# --- tools ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ToolName:
    """What a flat chat function name stands for in the Responses request."""

    name: str
    namespace: str | None
    custom: bool


def _object(value: Any) -> JsonObj:
    """``value`` when it is a JSON object, else an empty one: the readers below tolerate missing parts."""
    return value if isinstance(value, dict) else {}


def _flat_name(namespace: str | None, name: str) -> str:
    if not namespace:
        return name
    # Codex names namespaces like ``mcp__server__``: the separator is already there.
    return namespace + name if namespace.endswith("_") else f"{namespace}__{name}"


def _is_function_container(tool: JsonObj) -> bool:
    inner = tool.get("tools")
    return (
        isinstance(inner, list)
        and bool(inner)
        and all(isinstance(t, dict) and t.get("type") in ("function", "custom") for t in inner)
    )


def _leaf_tools(tools: Any) -> list[tuple[str, JsonObj, str | None]]:
    """``(json path, tool, namespace)`` for every function/custom tool, namespaces flattened."""
    leaves: list[tuple[str, JsonObj, str | None]] = []
    if not isinstance(tools, list):
        return leaves
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            continue
        if tool.get("type") in ("function", "custom"):
            leaves.append((f"tools[{i}]", tool, None))
        elif tool.get("type") == "namespace" and _is_function_container(tool):
            namespace = tool.get("name")
            for j, inner in enumerate(tool["tools"]):
                leaves.append((f"tools[{i}].tools[{j}]", inner, namespace if isinstance(namespace, str) else None))
    return leaves


def _tool_names(request: JsonObj) -> dict[str, _ToolName]:
    names: dict[str, _ToolName] = {}
    for _, tool, namespace in _leaf_tools(request.get("tools")):
        name = tool.get("name")
        if isinstance(name, str):
            names[_flat_name(namespace, name)] = _ToolName(name, namespace, tool.get("type") == "custom")
    return names


def _kept_tools(request: JsonObj) -> list[JsonObj]:
    """The request's tools the model could actually call (echoed on the Response)."""
    tools = request.get("tools")
    if not isinstance(tools, list):
        return []
    return [
        t
        for t in tools
        if isinstance(t, dict)
        and (t.get("type") in ("function", "custom") or (t.get("type") == "namespace" and _is_function_container(t)))
    ]


def dropped_tools(request: JsonObj) -> list[str]:
    """The hosted tool types :func:`responses_to_chat` dropped, each once, in request order."""
    dropped: list[str] = []
    tools = request.get("tools")
    for tool in tools if isinstance(tools, list) else []:
        if not isinstance(tool, dict) or tool.get("type") in ("function", "custom"):
            continue
        if tool.get("type") == "namespace" and _is_function_container(tool):
            continue
        kind = str(tool.get("type"))
        if kind not in dropped:
            dropped.append(kind)
    return dropped


def _chat_tool(path: str, tool: JsonObj, namespace: str | None) -> JsonObj:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidBodyError("A function tool needs a name", param=f"{path}.name")
    description = tool.get("description")
    function: JsonObj = {"name": _flat_name(namespace, name)}
    if tool["type"] == "custom":
        detail = "The complete input for this tool, as plain text."
        fmt = tool.get("format")
        if isinstance(fmt, dict) and fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
            # The grammar is how a free-form tool says what its input looks like; a chat model
            # only sees it if it is part of the schema.
            detail += f" It must match this {fmt.get('syntax', '')} grammar:\n{fmt['definition']}"
        if isinstance(description, str):
            function["description"] = description
        function["parameters"] = {
            "type": "object",
            "properties": {"input": {"type": "string", "description": detail}},
            "required": ["input"],
            "additionalProperties": False,
        }
        return {"type": "function", "function": function}
    if description is not None:
        if not isinstance(description, str):
            raise InvalidBodyError("A tool description must be a string", param=f"{path}.description")
        function["description"] = description
    parameters = tool.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise InvalidBodyError("Tool parameters must be a JSON Schema object", param=f"{path}.parameters")
        function["parameters"] = parameters
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _chat_tools(request: JsonObj) -> list[JsonObj]:
    tools = request.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidBodyError("tools must be an array", param="tools")
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise InvalidBodyError("Each tool must be an object with a type", param=f"tools[{i}]")
    return [_chat_tool(path, tool, namespace) for path, tool, namespace in _leaf_tools(tools)]


def _tool_choice(choice: Any) -> Any:
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind in ("function", "custom"):
            if not isinstance(choice.get("name"), str) or not choice["name"]:
                raise InvalidBodyError("tool_choice needs the name of the tool to call", param="tool_choice.name")
            namespace = choice.get("namespace")
            name = _flat_name(namespace if isinstance(namespace, str) else None, choice["name"])
            return {"type": "function", "function": {"name": name}}
        if kind == "allowed_tools" and choice.get("mode") in ("auto", "required"):
            # Chat providers other than OpenAI have no allow-list; every tool stays callable.
            return choice["mode"]
        if isinstance(kind, str):
            raise InvalidBodyError(
                f"tool_choice {kind!r} names a tool that runs only on OpenAI; this model cannot be forced to use it",
                param="tool_choice",
            )
    raise InvalidBodyError("tool_choice must be auto, none, required or a function", param="tool_choice")


# --- input items ------------------------------------------------------------------------------------


def _text_of(part: JsonObj, path: str) -> str:
    text = part.get("text")
    if not isinstance(text, str):
        raise InvalidBodyError("A text content part needs a text string", param=f"{path}.text")
    return text


def _user_part(part: JsonObj, path: str) -> JsonObj:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": _text_of(part, path)}
    if kind == "input_image":
        if part.get("file_id") is not None:
            raise InvalidBodyError(
                "Images by OpenAI file id cannot be sent to this provider; send image_url (a URL or data URL)",
                param=f"{path}.file_id",
            )
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise InvalidBodyError("input_image needs an image_url", param=f"{path}.image_url")
        image: JsonObj = {"url": url}
        if part.get("detail") in _IMAGE_DETAILS:
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        for ref in ("file_id", "file_url"):
            if part.get(ref) is not None:
                raise InvalidBodyError(
                    f"Files by {ref} cannot be sent to this provider; send file_data", param=f"{path}.{ref}"
                )
        data = part.get("file_data")
        if not isinstance(data, str) or not data:
            raise InvalidBodyError("input_file needs file_data", param=f"{path}.file_data")
        file: JsonObj = {"file_data": data}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise InvalidBodyError(f"Unsupported content part type {kind!r}", param=f"{path}.type")


def _message(item: JsonObj, path: str) -> JsonObj:
    role = item.get("role")
    if role not in _MESSAGE_ROLES:
        raise InvalidBodyError("role must be user, system, developer or assistant", param=f"{path}.role")
    # ``developer`` is OpenAI's newer name for ``system``; every chat provider understands ``system``.
    chat_role = "system" if role == "developer" else role
    content = item.get("content")
    if isinstance(content, str):
        return {"role": chat_role, "content": content}
    if not isinstance(content, list):
        raise InvalidBodyError("content must be a string or an array of parts", param=f"{path}.content")
    parts: list[JsonObj] = []
    for j, part in enumerate(content):
        part_path = f"{path}.content[{j}]"
        if not isinstance(part, dict):
            raise InvalidBodyError("A content part must be an object", param=part_path)
        if role == "assistant":
            kind = part.get("type")
            if kind == "refusal" and isinstance(part.get("refusal"), str):
                parts.append({"type": "text", "text": part["refusal"]})
            elif kind in ("output_text", "input_text", "text"):
                parts.append({"type": "text", "text": _text_of(part, part_path)})
            else:
                raise InvalidBodyError(f"Unsupported assistant content part {kind!r}", param=f"{part_path}.type")
        elif role == "user":
            parts.append(_user_part(part, part_path))
        else:
            if part.get("type") not in ("input_text", "output_text", "text"):
                raise InvalidBodyError(f"A {role} message takes text parts only", param=f"{part_path}.type")
            parts.append({"type": "text", "text": _text_of(part, part_path)})
    if role == "user" and not (len(parts) == 1 and parts[0]["type"] == "text"):
        return {"role": "user", "content": parts}
    # System and assistant content as one string: the form every chat provider accepts.
    return {"role": chat_role, "content": ("" if role == "assistant" else "\n").join(p["text"] for p in parts)}


def _tool_output(output: Any, path: str) -> str:
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        # Tool messages are text-only on most chat providers: images and files in an output are left out.
        return "\n".join(
            p["text"] for p in output if isinstance(p, dict) and p.get("type") in ("input_text", "output_text", "text")
        )
    raise InvalidBodyError("output must be a string or an array of content parts", param=f"{path}.output")


def _required_str(item: JsonObj, key: str, path: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or (key != "arguments" and not value):
        raise InvalidBodyError(f"{item.get('type')} needs a {key} string", param=f"{path}.{key}")
    return value


def _add_tool_call(messages: list[JsonObj], call: JsonObj) -> None:
    # One assistant turn is one chat message: calls join the assistant message right before them
    # (its text, or the calls already grouped), which providers that require alternating roles need.
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _input_messages(items: list[Any]) -> list[JsonObj]:
    messages: list[JsonObj] = []
    for i, item in enumerate(items):
        path = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidBodyError("Each input item must be an object", param=path)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, path))
        elif kind in ("function_call", "custom_tool_call"):
            name = _required_str(item, "name", path)
            namespace = item.get("namespace")
            if kind == "function_call":
                arguments = _required_str(item, "arguments", path)
            else:
                arguments = json.dumps({"input": _required_str(item, "input", path)}, ensure_ascii=False)
            call_id = _required_str(item, "call_id", path)
            flat = _flat_name(namespace if isinstance(namespace, str) else None, name)
            function = {"name": flat, "arguments": arguments}
            _add_tool_call(messages, {"id": call_id, "type": "function", "function": function})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            call_id = _required_str(item, "call_id", path)
            messages.append(
                {"role": "tool", "tool_call_id": call_id, "content": _tool_output(item.get("output"), path)}
            )
        elif kind == "item_reference":
            raise InvalidBodyError(
                "item_reference points at an item stored by OpenAI; heliport keeps no items for other providers. "
                "Send the item itself",
                param=path,
            )
        elif kind in _UNREPLAYABLE_ITEMS:
            continue
        else:
            raise InvalidBodyError(
                f"Input items of type {kind!r} cannot be sent to this provider", param=f"{path}.type"
            )
    return messages


# --- request ----------------------------------------------------------------------------------------


def _response_format(text: Any) -> JsonObj | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        raise InvalidBodyError("text must be an object", param="text")
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise InvalidBodyError("text.format must be an object", param="text.format")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        if not isinstance(fmt.get("name"), str) or not fmt["name"]:
            raise InvalidBodyError("text.format.name is required for json_schema", param="text.format.name")
        if not isinstance(fmt.get("schema"), dict):
            raise InvalidBodyError("text.format.schema must be a JSON Schema object", param="text.format.schema")
        schema: JsonObj = {"name": fmt["name"], "schema": fmt["schema"]}
        for key in ("description", "strict"):
            if fmt.get(key) is not None:
                schema[key] = fmt[key]
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidBodyError(f"Unsupported text.format type {kind!r}", param="text.format.type")


def responses_to_chat(request: JsonObj) -> JsonObj:
    """A Responses request as the equivalent chat request (raises :class:`InvalidBodyError`, naming the field)."""
    for name in _STATEFUL_FIELDS:
        if request.get(name) is not None:
            raise InvalidBodyError(
                f"{name} refers to state stored by OpenAI; heliport keeps none for other providers. "
                "Send the full conversation in input instead",
                param=name,
            )
    if request.get("background") is True:
        raise InvalidBodyError("background responses run only on OpenAI", param="background")

    messages: list[JsonObj] = []
    instructions = request.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidBodyError("instructions must be a string", param="instructions")
        messages.append({"role": "system", "content": instructions})
    raw_input = request.get("input")
    if isinstance(raw_input, str):
        messages.append({"role": "user", "content": raw_input})
    elif isinstance(raw_input, list):
        messages.extend(_input_messages(raw_input))
    else:
        raise InvalidBodyError("input is required: a string or an array of items", param="input")

    chat: JsonObj = {"model": request.get("model"), "messages": messages}
    tools = _chat_tools(request)
    if tools:
        # tool_choice and parallel_tool_calls without tools are a 400 on most providers, and when every
        # tool was hosted (dropped) there is nothing left for them to apply to.
        chat["tools"] = tools
        choice = _tool_choice(request.get("tool_choice"))
        if choice is not None:
            chat["tool_choice"] = choice
        if isinstance(request.get("parallel_tool_calls"), bool):
            chat["parallel_tool_calls"] = request["parallel_tool_calls"]
    for key in ("temperature", "top_p"):
        if request.get(key) is not None:
            chat[key] = request[key]
    if request.get("max_output_tokens") is not None:
        chat["max_tokens"] = request["max_output_tokens"]
    reasoning = request.get("reasoning")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        chat["reasoning_effort"] = reasoning["effort"]
    response_format = _response_format(request.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    user = request.get("safety_identifier") or request.get("user")
    if isinstance(user, str) and user:
        chat["user"] = user
    # Prompt caching and Helicone's gateway features travel as in chat: prompt_cache_key becomes
    # Anthropic's cache key (metadata.user_id) and is dropped for hosts that reject it; context_editing
    # and image_generation are checked and rendered (or refused) by each provider's translation.
    for key in ("prompt_cache_key", "context_editing", "image_generation"):
        if request.get(key) is not None:
            chat[key] = request[key]
    if request.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


# --- response ---------------------------------------------------------------------------------------


def _usage(usage: Any) -> JsonObj | None:
    if not isinstance(usage, dict):
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    prompt_details = usage.get("prompt_tokens_details")
    prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
    completion_details = usage.get("completion_tokens_details")
    completion_details = completion_details if isinstance(completion_details, dict) else {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": int(prompt_details.get("cached_tokens") or 0),
            "cache_write_tokens": int(prompt_details.get("cache_write_tokens") or 0),
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)},
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
    }


def _response_object(
    request: JsonObj,
    *,
    response_id: str,
    created_at: int,
    status: str,
    output: list[JsonObj],
    usage: JsonObj | None,
    incomplete_details: JsonObj | None = None,
    error: JsonObj | None = None,
) -> JsonObj:
    """A Response with the request's settings echoed the way OpenAI echoes them (defaults included)."""
    reasoning = request.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, dict) else {}
    text = request.get("text")
    metadata = request.get("metadata")
    parallel = request.get("parallel_tool_calls")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete_details,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "model": request.get("model"),
        "output": output,
        "parallel_tool_calls": parallel if isinstance(parallel, bool) else True,
        "previous_response_id": None,
        "prompt_cache_key": request.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": request.get("safety_identifier"),
        "service_tier": None,
        # Nothing is stored: a later previous_response_id naming this response would be refused.
        "store": False,
        "temperature": request.get("temperature") if request.get("temperature") is not None else 1.0,
        "text": text if isinstance(text, dict) else {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice") if request.get("tool_choice") is not None else "auto",
        "tools": _kept_tools(request),
        "top_logprobs": request.get("top_logprobs"),
        "top_p": request.get("top_p") if request.get("top_p") is not None else 1.0,
        "truncation": request.get("truncation") if request.get("truncation") is not None else "disabled",
        "usage": usage,
        "user": request.get("user"),
        "metadata": metadata if isinstance(metadata, dict) else {},
    }


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _reasoning_delta(delta: JsonObj) -> str:
    # DeepSeek (and heliport's own adapters) say reasoning_content; OpenRouter and Groq say reasoning.
    for key in ("reasoning_content", "reasoning"):
        value = delta.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def chat_to_response(completion: JsonObj, *, request: JsonObj, response_id: str, created_at: int) -> JsonObj:
    """A ``chat.completion`` as the Response object ``/v1/responses`` would have returned."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = _object(choice.get("message"))
    delta: JsonObj = {}
    reasoning = _reasoning_delta(message)
    if reasoning:
        delta["reasoning_content"] = reasoning
    text = _message_text(message.get("content"))
    if text:
        delta["content"] = text
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        delta["refusal"] = message["refusal"]
    if isinstance(message.get("images"), list) and message["images"]:
        delta["images"] = message["images"]
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        delta["tool_calls"] = [{**call, "index": i} for i, call in enumerate(calls) if isinstance(call, dict)]
    chunk: JsonObj = {"choices": [{"index": 0, "delta": delta, "finish_reason": choice.get("finish_reason")}]}
    if completion.get("usage") is not None:
        chunk["usage"] = completion["usage"]
    translator = ResponsesStreamTranslator(request=request, response_id=response_id, created_at=created_at)
    translator.feed(chunk)
    response: JsonObj = translator.finish()[-1][1]["response"]  # the last event, response.completed, carries it
    return response


# --- streaming --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    """One output item while the stream builds it."""

    kind: str  # reasoning | message | function_call | custom_tool_call
    index: int
    item_id: str
    status: str = "in_progress"
    #: reasoning text, or a call's argument fragments
    chunks: list[str] = field(default_factory=list)
    #: a message's content parts: (output_text | refusal | output_image, fragments; an image's one URL)
    parts: list[tuple[str, list[str]]] = field(default_factory=list)
    part_open: bool = False
    call_id: str = ""
    name: str = ""
    namespace: str | None = None

    def custom_input(self) -> str:
        raw = "".join(self.chunks)
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the decoder goes
            return raw
        given = parsed.get("input") if isinstance(parsed, dict) else None
        return given if isinstance(given, str) else raw

    def snapshot(self) -> JsonObj:
        if self.kind == "reasoning":
            text = "".join(self.chunks)
            return {"id": self.item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}
        if self.kind == "message":
            return {
                "id": self.item_id,
                "type": "message",
                "status": self.status,
                "role": "assistant",
                "content": [_part(kind, "".join(chunks)) for kind, chunks in self.parts],
            }
        item: JsonObj = {"id": self.item_id, "type": self.kind, "status": self.status}
        if self.kind == "function_call":
            item["arguments"] = "".join(self.chunks)
        else:
            item["input"] = self.custom_input()
        item["call_id"] = self.call_id
        item["name"] = self.name
        if self.namespace is not None:
            item["namespace"] = self.namespace
        return item


def _part(kind: str, text: str) -> JsonObj:
    if kind == "refusal":
        return {"type": "refusal", "refusal": text}
    if kind == "output_image":
        # Helicone's image-generation doc: a generated picture is an output_image part holding its (data:) URL.
        return {"type": "output_image", "image_url": text}
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _outcome(finish_reason: Any) -> tuple[str, JsonObj | None]:
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _error_code(code: str) -> str:
    if code in _ERROR_CODES:
        return code
    return "rate_limit_exceeded" if "rate_limit" in code else "server_error"


class ResponsesStreamTranslator:
    """``chat.completion.chunk`` objects in, Responses stream events out, in the order OpenAI sends them.

    Items are emitted one after another as the real API does: a new kind of content (reasoning, text,
    another tool call) closes the open item first. Argument fragments for a call that was already
    closed (a provider interleaving calls) still reach the final ``response.completed`` output.
    """

    def __init__(self, *, request: JsonObj, response_id: str, created_at: int) -> None:
        self._request = request
        self._response_id = response_id
        self._created_at = created_at
        self._suffix = response_id.removeprefix("resp_")
        self._names = _tool_names(request)
        self._sequence = 0
        self._items: list[_Item] = []
        self._open: _Item | None = None
        self._calls: dict[int, _Item] = {}
        self._usage: JsonObj | None = None
        self._finish_reason: Any = None
        self._started = False
        self._ended = False
        self._events: list[tuple[str, JsonObj]] = []

    def _emit(self, kind: str, **fields: Any) -> None:
        self._events.append((kind, {"type": kind, "sequence_number": self._sequence, **fields}))
        self._sequence += 1

    def _drain(self) -> list[tuple[str, JsonObj]]:
        events, self._events = self._events, []
        return events

    def _response(self, status: str, **extra: Any) -> JsonObj:
        output = [item.snapshot() for item in self._items] if status != "in_progress" else []
        usage = _usage(self._usage) if status != "in_progress" else None
        return _response_object(
            self._request,
            response_id=self._response_id,
            created_at=self._created_at,
            status=status,
            output=output,
            usage=usage,
            **extra,
        )

    def _begin(self) -> None:
        if not self._started:
            self._started = True
            self._emit("response.created", response=self._response("in_progress"))
            self._emit("response.in_progress", response=self._response("in_progress"))

    def start(self) -> list[tuple[str, JsonObj]]:
        """``response.created`` and ``response.in_progress``."""
        self._begin()
        return self._drain()

    def _new_item(self, kind: str, prefix: str) -> _Item:
        self._close_open("completed")
        item = _Item(kind, len(self._items), f"{prefix}_{self._suffix}_{len(self._items)}")
        self._items.append(item)
        self._open = item
        return item

    def _close_open(self, status: str) -> None:
        item, self._open = self._open, None
        if item is None:
            return
        where = {"item_id": item.item_id, "output_index": item.index}
        if item.kind == "reasoning":
            text = "".join(item.chunks)
            self._emit("response.reasoning_summary_text.done", **where, summary_index=0, text=text)
            part = {"type": "summary_text", "text": text}
            self._emit("response.reasoning_summary_part.done", **where, summary_index=0, part=part)
        elif item.kind == "message":
            self._close_part(item)
        elif item.kind == "function_call":
            self._emit("response.function_call_arguments.done", **where, arguments="".join(item.chunks))
        else:
            text = item.custom_input()
            if text:
                self._emit("response.custom_tool_call_input.delta", **where, delta=text)
            self._emit("response.custom_tool_call_input.done", **where, input=text)
        item.status = status
        self._emit("response.output_item.done", output_index=item.index, item=item.snapshot())

    def _close_part(self, item: _Item) -> None:
        if not item.part_open:
            return
        item.part_open = False
        kind, chunks = item.parts[-1]
        text = "".join(chunks)
        where = {"item_id": item.item_id, "output_index": item.index, "content_index": len(item.parts) - 1}
        if kind == "refusal":
            self._emit("response.refusal.done", **where, refusal=text)
        else:
            self._emit("response.output_text.done", **where, text=text, logprobs=[])
        self._emit("response.content_part.done", **where, part=_part(kind, text))

    def _reasoning(self, text: str) -> None:
        item = self._open
        if item is None or item.kind != "reasoning":
            item = self._new_item("reasoning", "rs")
            where = {"item_id": item.item_id, "output_index": item.index}
            added = {"id": item.item_id, "type": "reasoning", "summary": []}
            self._emit("response.output_item.added", output_index=item.index, item=added)
            part = {"type": "summary_text", "text": ""}
            self._emit("response.reasoning_summary_part.added", **where, summary_index=0, part=part)
        item.chunks.append(text)
        where = {"item_id": item.item_id, "output_index": item.index}
        self._emit("response.reasoning_summary_text.delta", **where, summary_index=0, delta=text)

    def _text(self, kind: str, text: str) -> None:
        item = self._open
        if item is None or item.kind != "message":
            item = self._new_item("message", "msg")
            added = {"id": item.item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
            self._emit("response.output_item.added", output_index=item.index, item=added)
        if not item.part_open or item.parts[-1][0] != kind:
            self._close_part(item)
            item.parts.append((kind, []))
            item.part_open = True
            where = {"item_id": item.item_id, "output_index": item.index, "content_index": len(item.parts) - 1}
            self._emit("response.content_part.added", **where, part=_part(kind, ""))
        item.parts[-1][1].append(text)
        where = {"item_id": item.item_id, "output_index": item.index, "content_index": len(item.parts) - 1}
        if kind == "refusal":
            self._emit("response.refusal.delta", **where, delta=text)
        else:
            self._emit("response.output_text.delta", **where, delta=text, logprobs=[])

    def _image(self, url: str) -> None:
        """A generated picture: one whole content part (added empty, then done with its URL), never deltas."""
        item = self._open
        if item is None or item.kind != "message":
            item = self._new_item("message", "msg")
            added = {"id": item.item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
            self._emit("response.output_item.added", output_index=item.index, item=added)
        self._close_part(item)
        item.parts.append(("output_image", [url]))
        where = {"item_id": item.item_id, "output_index": item.index, "content_index": len(item.parts) - 1}
        self._emit("response.content_part.added", **where, part=_part("output_image", ""))
        self._emit("response.content_part.done", **where, part=_part("output_image", url))

    def _tool_call(self, position: int, call: JsonObj) -> None:
        given = call.get("index")
        index = given if isinstance(given, int) else position
        function = _object(call.get("function"))
        item = self._calls.get(index)
        if item is None:
            name = function.get("name")
            flat = name if isinstance(name, str) else ""
            known = self._names.get(flat)
            custom = known is not None and known.custom
            item = self._new_item("custom_tool_call" if custom else "function_call", "ctc" if custom else "fc")
            item.call_id = call["id"] if isinstance(call.get("id"), str) and call["id"] else f"call_{item.item_id}"
            item.name = known.name if known is not None else flat
            item.namespace = known.namespace if known is not None else None
            self._calls[index] = item
            added = item.snapshot()
            self._emit("response.output_item.added", output_index=item.index, item=added)
        elif not item.name and isinstance(function.get("name"), str):
            # A provider that names the call after its first fragment: the final item still gets the name.
            known = self._names.get(function["name"])
            item.name = known.name if known is not None else function["name"]
            item.namespace = known.namespace if known is not None else None
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.chunks.append(arguments)
            if item is self._open and item.kind == "function_call":
                where = {"item_id": item.item_id, "output_index": item.index}
                self._emit("response.function_call_arguments.delta", **where, delta=arguments)

    def feed(self, chunk: JsonObj) -> list[tuple[str, JsonObj]]:
        """The events one ``chat.completion.chunk`` makes (a usage-only chunk makes none)."""
        self._begin()
        if self._ended:
            return self._drain()
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else []:
            # n > 1 has no Responses equivalent; the first choice is the answer.
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = _object(choice.get("delta"))
            reasoning = _reasoning_delta(delta)
            if reasoning:
                self._reasoning(reasoning)
            content = _message_text(delta.get("content"))
            if content:
                self._text("output_text", content)
            if isinstance(delta.get("refusal"), str) and delta["refusal"]:
                self._text("refusal", delta["refusal"])
            images = delta.get("images")
            for image in images if isinstance(images, list) else []:
                url = _object(_object(image).get("image_url")).get("url")
                if isinstance(url, str) and url:
                    self._image(url)
            calls = delta.get("tool_calls")
            for position, call in enumerate(calls if isinstance(calls, list) else []):
                if isinstance(call, dict):
                    self._tool_call(position, call)
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return self._drain()

    def finish(self) -> list[tuple[str, JsonObj]]:
        """Close what is open, then ``response.completed`` (or ``response.incomplete``) with all output."""
        self._begin()
        if self._ended:
            return self._drain()
        self._ended = True
        status, details = _outcome(self._finish_reason)
        self._close_open(status)
        self._emit(f"response.{status}", response=self._response(status, incomplete_details=details))
        return self._drain()

    def fail(self, message: str, code: str) -> list[tuple[str, JsonObj]]:
        """``response.failed``: the provider's stream broke after the HTTP 200 was sent."""
        self._begin()
        if self._ended:
            return self._drain()
        self._ended = True
        if self._open is not None:
            self._open.status = "incomplete"
            self._open = None
        error = {"code": _error_code(code), "message": message}
        self._emit("response.failed", response=self._response("failed", error=error))
        return self._drain()


def sse(event: str, data: JsonObj) -> bytes:
    """One Responses stream event on the wire: ``event: <name>`` and ``data: <json>``."""
    return b"event: " + event.encode() + b"\ndata: " + _encode(data) + b"\n\n"

"""Prompt assembly: a saved prompt version plus a request's ``inputs`` -> the body the provider gets.

Pure functions, no I/O: :mod:`heliport.steps.prompts` reads the versions (the one the request names
and any partials it references) and hands them here. The rules (Helicone's "Prompt Assembly"):

1. The version: ``environment`` wins over ``version_id``; with neither, production (the caller of
   :func:`read_call` resolves it; this module only reads the fields).
2. Partials ``{{hcp:<prompt_id>:<index>[:<environment>]}}`` in the saved messages are replaced by
   the text of that message of the referenced prompt's version (production unless the tag names an
   environment). One level: a partial's own partials are not expanded (a cycle could not loop, and a
   request costs a bounded number of reads).
3. Variables ``{{hc:<name>:<type>}}`` are substituted from ``inputs``, in the saved messages (as
   text) and in every other saved field (tools, ``response_format``, ...), where a string that is
   one whole tag becomes the input's typed value (an array for ``enum``, a number, a boolean) and a
   tag inside a larger string is text. Keys are substituted too; a key that is one whole tag takes
   the input as the key (it must be a string). ``number`` and ``boolean`` inputs are validated
   (numbers or numeric strings; booleans or ``"true"``/``"false"``/``"yes"``/``"no"``, any case);
   ``string`` and any other type name take any value. A tag with no input is a 400 naming
   ``inputs.<name>``.
4. The saved parameters are defaults the request's own override; the request's ``messages`` are
   appended after the saved ones. ``stream`` and ``stream_options`` are the caller's alone: a saved
   ``stream: true`` would hand a non-streaming SDK call an event stream.
5. ``prompt_id``, ``environment``, ``version_id`` and ``inputs`` never reach the provider.

Only the saved prompt is a template: the caller's own messages and parameters go on as sent, so a
user's text that happens to contain ``{{hc:...}}`` is neither rewritten nor refused.

``/v1/responses`` gets the same compilation, rendered in the Responses shape
(:func:`assemble_responses`): the saved chat messages become input items before the request's
``input``, and the saved chat parameters their Responses names (``max_tokens`` ->
``max_output_tokens``, ``response_format`` -> ``text.format``, function tools flattened).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from heliport.errors import InvalidBodyError, RequestError

__all__ = [
    "PROMPT_FIELDS",
    "PartialRef",
    "PromptCall",
    "UnknownPromptError",
    "assemble_chat",
    "assemble_responses",
    "partial_refs",
    "partial_text",
    "read_call",
    "referenced_versions",
    "strip_prompt_fields",
]

JsonObj = dict[str, Any]

#: The request fields that select and fill a prompt; never sent to a provider.
PROMPT_FIELDS = ("prompt_id", "environment", "version_id", "inputs")

#: ``{{hc:name:type}}``, with the blanks Helicone's editor tolerates around each part.
_VARIABLE = re.compile(r"\{\{\s*hc\s*:\s*([A-Za-z_-][A-Za-z0-9_-]*)\s*:\s*([A-Za-z_-][A-Za-z0-9_-]*)\s*\}\}")
#: ``{{hcp:prompt_id:index[:environment]}}``. Helicone's ids are 6 alphanumerics; any id-like word is
#: accepted here, so the lookup (not the pattern) decides whether it exists.
_PARTIAL = re.compile(
    r"\{\{\s*hcp\s*:\s*([A-Za-z0-9_-]{1,64})\s*:\s*(\d{1,6})\s*(?::\s*([A-Za-z0-9_-][A-Za-z0-9_.-]*))?\s*\}\}"
)
#: A number as text: JSON's grammar with an optional leading sign and surrounding blanks (not
#: Python's ``float()``, which also takes ``nan``, ``inf`` and ``1_000``).
_NUMBER = re.compile(r"\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*")
_INTEGER = re.compile(r"\s*[-+]?\d+\s*")
_TRUE, _FALSE = frozenset({"true", "yes"}), frozenset({"false", "no"})
#: Saved fields a compiled request never inherits: how the answer travels is the caller's choice.
_CALLER_ONLY = frozenset({"stream", "stream_options", *PROMPT_FIELDS})


class UnknownPromptError(RequestError):
    """The prompt, version or environment a request (or a partial) names does not exist here."""

    status = 404
    code = "prompt_not_found"


# -- the request's prompt fields ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PromptCall:
    """What a request asks of the prompt store, and the values it fills the template with."""

    prompt_id: str
    environment: str | None
    version_id: str | None
    inputs: JsonObj


def read_call(body: Mapping[str, Any]) -> PromptCall | None:
    """The prompt a request body names, validated (400s name the field); None when ``prompt_id`` is
    absent or null (the body then only loses the prompt fields, :func:`strip_prompt_fields`)."""
    prompt_id = body.get("prompt_id")
    if prompt_id is None:
        return None
    if not isinstance(prompt_id, str) or not prompt_id.strip():
        raise InvalidBodyError("prompt_id must be a non-empty string: the id of a saved prompt", param="prompt_id")
    environment = _optional_name(body, "environment")
    version_id = _optional_name(body, "version_id")
    inputs = body.get("inputs")
    if inputs is None:
        inputs = {}
    elif not isinstance(inputs, dict):
        raise InvalidBodyError("inputs must be an object of variable name -> value", param="inputs")
    return PromptCall(prompt_id.strip(), environment, version_id, inputs)


def _optional_name(body: Mapping[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidBodyError(f"{field} must be a non-empty string", param=field)
    return value.strip()


def strip_prompt_fields(body: Mapping[str, Any]) -> JsonObj:
    """``body`` without the prompt fields (a request whose ``prompt_id`` is null)."""
    return {k: v for k, v in body.items() if k not in PROMPT_FIELDS}


# -- partials ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartialRef:
    """One ``{{hcp:...}}`` tag: a message of another prompt's version in an environment."""

    prompt_id: str
    index: int
    environment: str


def partial_refs(saved: Mapping[str, Any], default_environment: str) -> list[PartialRef]:
    """The distinct partials the saved messages reference, in order of appearance."""
    found: dict[PartialRef, None] = {}
    for text in _message_texts(saved.get("messages")):
        if "hcp" not in text:  # the cheap test first: most messages have no partial
            continue
        for match in _PARTIAL.finditer(text):
            prompt_id, index, environment = match.groups()
            found[PartialRef(prompt_id, int(index), environment or default_environment)] = None
    return list(found)


def _message_texts(messages: Any) -> list[str]:
    """Every text of a message list: string contents and the ``text`` of content parts."""
    texts: list[str] = []
    if not isinstance(messages, list):
        return texts
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return texts


def partial_text(messages: Any, ref: PartialRef) -> str:
    """The text of message ``ref.index`` of a referenced version's messages (a 404 when there is none).

    A content of parts gives its text parts, joined: a partial is spliced into text.
    """
    if (
        not isinstance(messages, list)
        or not 0 <= ref.index < len(messages)
        or not isinstance(messages[ref.index], dict)
    ):
        raise UnknownPromptError(
            f"Prompt partial {{{{hcp:{ref.prompt_id}:{ref.index}:{ref.environment}}}}} refers to message "
            f"{ref.index}, which the {ref.environment!r} version of prompt {ref.prompt_id!r} does not have",
            param="prompt_id",
        )
    content = messages[ref.index].get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _resolve_partials(text: str, partials: Mapping[PartialRef, str], default_environment: str) -> str:
    if "hcp" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        # Partials are read from message contents only (partial_refs); a tag elsewhere in a message (a
        # tool call's arguments, an image URL) was never resolved, and stays as the prompt wrote it.
        prompt_id, index, environment = match.groups()
        return partials.get(PartialRef(prompt_id, int(index), environment or default_environment), match.group(0))

    return _PARTIAL.sub(replace, text)


# -- variables ---------------------------------------------------------------------------------------


def _value(inputs: Mapping[str, Any], name: str, kind: str) -> Any:
    """The input for one tag, validated against the tag's type: a 400 naming ``inputs.<name>``."""
    value = inputs.get(name)
    if value is None:
        raise InvalidBodyError(f"The prompt needs input {name!r} ({kind}): send it in inputs", param=f"inputs.{name}")
    if kind == "number" and _as_number(value) is None:
        raise InvalidBodyError(
            f"Input {name!r} must be a number (or a string holding one), not {_shown(value)}", param=f"inputs.{name}"
        )
    if kind == "boolean" and _as_boolean(value) is None:
        raise InvalidBodyError(
            f'Input {name!r} must be a boolean: true, false, "true", "false", "yes" or "no", not {_shown(value)}',
            param=f"inputs.{name}",
        )
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _as_number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        if _INTEGER.fullmatch(value):
            return int(value)
        number = float(value)
        return number if math.isfinite(number) else None
    return None


def _as_boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    return None


def _typed(value: Any, kind: str) -> Any:
    """The value a whole-tag string becomes: numbers and booleans converted, anything else as sent."""
    if kind == "number":
        return _as_number(value)
    if kind == "boolean":
        return _as_boolean(value)
    return value


def _text(value: Any) -> str:
    """An input spliced into text: strings as they are, anything else as its JSON."""
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def _substitute_text(text: str, inputs: Mapping[str, Any]) -> str:
    if "hc" not in text:
        return text
    return _VARIABLE.sub(lambda m: _text(_value(inputs, m.group(1), m.group(2))), text)


def _substitute_json(node: Any, inputs: Mapping[str, Any]) -> Any:
    """Variables in a JSON value: a string that is one whole tag becomes the typed input, tags
    inside strings become text, in keys and values alike."""
    if isinstance(node, str):
        if "hc" not in node:
            return node
        whole = _VARIABLE.fullmatch(node)
        if whole is not None:
            name, kind = whole.groups()
            return _typed(_value(inputs, name, kind), kind)
        return _substitute_text(node, inputs)
    if isinstance(node, list):
        return [_substitute_json(item, inputs) for item in node]
    if isinstance(node, dict):
        out: JsonObj = {}
        for key, value in node.items():
            out[_substitute_key(key, inputs)] = _substitute_json(value, inputs)
        return out
    return node


def _substitute_key(key: str, inputs: Mapping[str, Any]) -> str:
    if "hc" not in key:
        return key
    whole = _VARIABLE.fullmatch(key)
    if whole is None:
        return _substitute_text(key, inputs)
    name, kind = whole.groups()
    value = _value(inputs, name, kind)
    if not isinstance(value, str):
        raise InvalidBodyError(
            f"Input {name!r} names a key in the prompt's schema, so it must be a string, not {_shown(value)}",
            param=f"inputs.{name}",
        )
    return value


def _compile_messages(
    messages: Any, inputs: Mapping[str, Any], partials: Mapping[PartialRef, str], default_environment: str
) -> list[Any]:
    """The saved messages: partials first, then variables, in every string of each message but its
    role (contents, text parts, tool-call arguments, image URLs)."""
    if messages is None:
        return []
    if not isinstance(messages, list):
        raise InvalidBodyError("The saved prompt's messages are not a list", param="prompt_id")

    def text(value: str) -> str:
        return _substitute_text(_resolve_partials(value, partials, default_environment), inputs)

    return [_walk_strings(message, text) for message in messages]


def _walk_strings(node: Any, change: Callable[[str], str]) -> Any:
    if isinstance(node, str):
        return change(node)
    if isinstance(node, list):
        return [_walk_strings(item, change) for item in node]
    if isinstance(node, dict):
        return {k: (v if k == "role" else _walk_strings(v, change)) for k, v in node.items()}
    return node


def _compiled_saved(
    saved: Mapping[str, Any], inputs: Mapping[str, Any], partials: Mapping[PartialRef, str], default_environment: str
) -> tuple[list[Any], JsonObj]:
    """The saved version compiled: its messages, and its other parameters (minus the caller's own)."""
    try:
        messages = _compile_messages(saved.get("messages"), inputs, partials, default_environment)
        params = {
            _substitute_key(k, inputs): _substitute_json(v, inputs)
            for k, v in saved.items()
            if k != "messages" and k not in _CALLER_ONLY
        }
    except RecursionError:  # a saved body nested past the interpreter's limit: the store should refuse it
        raise InvalidBodyError("The saved prompt nests too deep to compile", param="prompt_id") from None
    return messages, params


def _request_messages(request: Mapping[str, Any], field: str) -> list[Any]:
    value = request.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidBodyError(f"{field} must be an array of messages", param=field)
    return value


def assemble_chat(
    saved: Mapping[str, Any],
    request: Mapping[str, Any],
    inputs: Mapping[str, Any],
    partials: Mapping[PartialRef, str],
    *,
    default_environment: str,
) -> JsonObj:
    """The chat completion request the provider gets: the saved version compiled, overridden by the
    request's parameters, the request's messages appended.

    ``partials`` holds the text of every :func:`partial_refs` of ``saved``; ``default_environment`` is
    the environment a partial without one reads (production).
    """
    messages, params = _compiled_saved(saved, inputs, partials, default_environment)
    extra = _request_messages(request, "messages")
    body = params | {k: v for k, v in request.items() if k not in PROMPT_FIELDS and k != "messages"}
    body["messages"] = messages + extra
    return body


# -- the Responses shape -----------------------------------------------------------------------------

#: Chat parameters that keep their name in the Responses API.
_SAME_NAME = ("model", "temperature", "top_p", "parallel_tool_calls", "metadata", "store", "user", "service_tier")
#: Content-part types of chat -> of Responses, for messages from the caller's side of a conversation.
_INPUT_PART = {"text": "input_text", "image_url": "input_image", "file": "input_file", "input_audio": "input_audio"}


def assemble_responses(
    saved: Mapping[str, Any],
    request: Mapping[str, Any],
    inputs: Mapping[str, Any],
    partials: Mapping[PartialRef, str],
    *,
    default_environment: str,
) -> JsonObj:
    """The Responses request the provider (or the gateway's Responses -> chat translation) gets: the
    saved chat version compiled and rendered as Responses fields, overridden by the request's own,
    its messages as input items before the request's ``input``. Saved chat parameters with no
    Responses counterpart (``stop``, ``n``, ``seed``, penalties, ``logprobs``) are left out."""
    messages, params = _compiled_saved(saved, inputs, partials, default_environment)
    body: JsonObj = {k: params[k] for k in _SAME_NAME if k in params}
    tokens = params.get("max_completion_tokens", params.get("max_tokens"))
    if tokens is not None:
        body["max_output_tokens"] = tokens
    if isinstance(params.get("reasoning_effort"), str):
        body["reasoning"] = {"effort": params["reasoning_effort"]}
    text_format = _text_format(params.get("response_format"))
    if text_format is not None:
        body["text"] = {"format": text_format}
    if isinstance(params.get("tools"), list):
        body["tools"] = [_response_tool(tool) for tool in params["tools"]]
    if "tool_choice" in params:
        body["tool_choice"] = _response_tool_choice(params["tool_choice"])
    items = [_input_item(message, index) for index, message in enumerate(messages)]
    body |= {k: v for k, v in request.items() if k not in PROMPT_FIELDS and k != "input"}
    raw_input = request.get("input")
    if isinstance(raw_input, str):
        items.append({"role": "user", "content": raw_input})
    elif isinstance(raw_input, list):
        items.extend(raw_input)
    elif raw_input is not None:
        raise InvalidBodyError("input must be a string or an array of items", param="input")
    body["input"] = items
    return body


def _input_item(message: Any, index: int) -> JsonObj:
    """A saved chat message as a Responses input message (text and images; not tool traffic)."""
    where = f"message {index} of the saved prompt"
    if not isinstance(message, dict) or message.get("role") not in ("system", "developer", "user", "assistant"):
        raise InvalidBodyError(f"{where} has no role /v1/responses can take", param="prompt_id")
    if message.get("tool_calls") or message.get("function_call"):
        raise InvalidBodyError(f"{where} holds tool calls, which /v1/responses cannot replay", param="prompt_id")
    role, content = message["role"], message.get("content")
    if content is None or isinstance(content, str):
        return {"role": role, "content": content or ""}
    if not isinstance(content, list):
        raise InvalidBodyError(f"{where} has a content that is neither text nor parts", param="prompt_id")
    if role == "assistant":  # the model's side: text only, as output text
        text = "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        return {"role": role, "content": text}
    return {"role": role, "content": [_input_part(part, where) for part in content]}


def _input_part(part: Any, where: str) -> JsonObj:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return {"type": "input_text", "text": part.get("text", "")}
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
        out: JsonObj = {"type": "input_image", "image_url": url}
        if isinstance(image, dict) and isinstance(image.get("detail"), str):
            out["detail"] = image["detail"]
        return out
    raise InvalidBodyError(f"{where} has a {kind!r} part, which /v1/responses cannot take here", param="prompt_id")


def _text_format(response_format: Any) -> JsonObj | None:
    if not isinstance(response_format, dict):
        return None
    kind = response_format.get("type")
    if kind == "json_schema" and isinstance(response_format.get("json_schema"), dict):
        return {"type": "json_schema", **response_format["json_schema"]}
    if kind in ("json_object", "text"):
        return {"type": kind}
    return None


def _response_tool(tool: Any) -> Any:
    """A chat function tool flattened (``{type, name, description, parameters, strict}``)."""
    if isinstance(tool, dict) and tool.get("type") == "function" and isinstance(tool.get("function"), dict):
        return {"type": "function", **tool["function"]}
    return tool


def _response_tool_choice(choice: Any) -> Any:
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "function", "name": choice["function"].get("name")}
    return choice


def referenced_versions(refs: Sequence[PartialRef]) -> list[tuple[str, str]]:
    """The distinct (prompt id, environment) versions ``refs`` need: one read each."""
    return list(dict.fromkeys((ref.prompt_id, ref.environment) for ref in refs))

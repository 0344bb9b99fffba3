"""An OpenAI chat request as the translators read it: validated once, into neutral parts.

The Anthropic (:mod:`.anthropic`) and Bedrock (:mod:`.bedrock`) translators take the same OpenAI body
apart: messages and their content parts, tool calls whose ``arguments`` are JSON strings, tools,
``tool_choice``, stop sequences, sampling numbers, the token limit. This module does that reading
once. Every 400 about the OpenAI body itself is raised here, naming the field
(``messages[1].tool_calls[0].function.arguments``), and what a :class:`ChatRequest` gives out is
plain typed parts that each translator only renders into its own wire format. What a provider
cannot *take* (an image link Converse will not fetch, a document type Anthropic does not read,
``n`` > 1) stays a 400 of that provider's translator, which names the field from the part's ``param``.

How the reading goes, for both providers alike:

* ``system`` and ``developer`` messages are hoisted, in order, one entry per message.
* Both providers want alternating, non-empty turns: a ``tool`` message becomes a tool-result part of
  a user turn, consecutive messages of one role are merged into one turn, and empty messages (and
  empty text parts) are dropped, since they carry nothing to the model.
* A message-level ``cache_control`` marks where a cached prefix ends, so it moves onto that
  message's last part; part-level ones stay on their parts. (Only Anthropic renders them.)
* Each field is read when a translator first asks for it, then kept: the translators use some
  fields only in some cases (Bedrock ignores ``tool_choice`` when no tools are sent, Anthropic
  ignores ``reasoning_effort`` beside its own ``thinking``) and read them in their own order, and a
  malformed request should keep the 400 it had before they shared this reader.

The two translators had also grown apart in a few details of these 400s; a :class:`Dialect` keeps
each one's answers exactly as they were.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Final, Literal, NamedTuple, TypeAlias, TypeVar

import msgspec

from heliport.errors import InvalidBodyError
from heliport.gateway.chat import JsonObj

__all__ = [
    "ANTHROPIC",
    "BEDROCK",
    "THINKING_BUDGETS",
    "ChatRequest",
    "DataUrl",
    "Dialect",
    "Effort",
    "FilePart",
    "ImagePart",
    "NamedTool",
    "Part",
    "TextPart",
    "Tool",
    "ToolCallPart",
    "ToolChoice",
    "ToolResultPart",
    "Turn",
    "data_url",
    "safe_tool_id",
]

_decode = msgspec.json.decode

Effort: TypeAlias = Literal["minimal", "low", "medium", "high"]

#: Claude's thinking budget per OpenAI effort; both translators reach Claude (Anthropic's own API and
#: Bedrock's Claude models). 1024 is Anthropic's floor; "high" stays well under the 32k beyond which
#: Anthropic notes larger budgets rarely pay off.
THINKING_BUDGETS: Final[dict[Effort, int]] = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}

_DATA_URL = re.compile(r"data:([\w.+-]+/[\w.+-]+)(?:;[^,;]*)*;base64,(.*)", re.DOTALL)
_ID_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_CONTENT_SHAPE = "content must be a string or an array of content parts."


# -- the neutral parts -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextPart:
    """Text the caller wrote; never empty (empty text carries nothing and is dropped when read)."""

    text: str
    cache_control: object = None


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An ``image_url`` part. Which kinds of URL a provider takes (https, data:, s3://) is its translator's call."""

    url: str
    #: Where the URL stands in the request (``messages[0].content[1].image_url.url``), for the translator's 400s.
    param: str
    cache_control: object = None


@dataclass(frozen=True, slots=True)
class FilePart:
    """A ``file`` part sent inline; ``file_data`` should be a data: URL, whose type the translator checks."""

    file_data: str
    #: The caller's ``filename`` when it is a string (possibly empty), else None.
    filename: str | None
    #: The part's 0-based position in its message's content (Bedrock names an unnamed document by it).
    index: int
    #: Where ``file_data`` stands in the request (``messages[0].content[0].file.file_data``), for the translator's 400s.
    param: str
    cache_control: object = None


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    """A function call from an assistant message, its ``arguments`` decoded to the object they encode."""

    #: The id as the caller sent it; ids minted by other providers may need :func:`safe_tool_id`.
    call_id: str
    name: str
    arguments: JsonObj
    cache_control: object = None


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    """A ``tool`` message: what the call ``call_id`` returned."""

    call_id: str
    #: A string as the caller sent it (possibly empty), or the non-empty text parts of an array.
    content: str | list[TextPart]
    cache_control: object = None


Part: TypeAlias = TextPart | ImagePart | FilePart | ToolCallPart | ToolResultPart
_PartT = TypeVar("_PartT", bound=Part)


@dataclass(frozen=True, slots=True)
class Turn:
    """Consecutive user (and tool) or assistant messages, merged; never empty."""

    role: Literal["user", "assistant"]
    parts: list[Part]


@dataclass(frozen=True, slots=True)
class Tool:
    """A function tool the model may call."""

    name: str
    #: None when the caller gave none (or an empty one).
    description: str | None
    #: The JSON schema of the arguments; an empty object schema when the caller gave none.
    parameters: JsonObj
    cache_control: object = None


@dataclass(frozen=True, slots=True)
class NamedTool:
    """A ``tool_choice`` that names the one function the model must call."""

    name: str


#: ``tool_choice`` as read: one of OpenAI's three words, or the function to call.
ToolChoice: TypeAlias = Literal["auto", "none", "required"] | NamedTool


class DataUrl(NamedTuple):
    """A base64 ``data:`` URL taken apart."""

    #: As the caller wrote it (compare it lowercased; error messages quote it as written).
    media_type: str
    #: The base64 text, not checked or decoded.
    data: str


@dataclass(frozen=True, slots=True)
class Dialect:
    """What a translator's 400s say differently: the provider they name, and details the two translators
    had grown apart on before they shared this reader, kept so that no request gets a different answer."""

    #: The provider named in 400s ("Unsupported message role 'function' for Bedrock ...").
    provider: str
    #: The 400 for a tool that is not a function tool.
    non_function_tool: str
    #: Whether a refused part of text-only content (system, developer and tool messages, assistant
    #: content) is named down to its ``type`` (``messages[0].content[1].type``) or as the part.
    part_param_names_type: bool
    #: Whether a tool call is checked to be an object of type ``function`` before its function is read.
    checks_tool_call_type: bool

    def part_param(self, part_path: str) -> str:
        return f"{part_path}.type" if self.part_param_names_type else part_path


#: The two translators' dialects side by side, so the differences are seen (and can be aligned) in one place.
ANTHROPIC: Final = Dialect(
    provider="Anthropic",
    non_function_tool="Anthropic supports only function tools here.",
    part_param_names_type=True,
    checks_tool_call_type=True,
)
BEDROCK: Final = Dialect(
    provider="Bedrock",
    non_function_tool="Bedrock supports only function tools.",
    part_param_names_type=False,
    checks_tool_call_type=False,
)


class ChatRequest:
    """An OpenAI chat request, read field by field into neutral parts, each on first use and then kept.

    Reading on first use lets each translator read, and refuse, fields in its own order and only in
    the cases it uses them: Bedrock ignores ``tool_choice`` when no tools are sent, Anthropic ignores
    ``reasoning_effort`` beside its own ``thinking``. So a malformed request keeps the 400 it had
    before the translators shared this reader. Every property raises :class:`InvalidBodyError`
    naming the field when that field is malformed; the request itself is never modified.
    """

    def __init__(self, chat: JsonObj, dialect: Dialect) -> None:
        self._chat = chat
        self._dialect = dialect

    @cached_property
    def _conversation(self) -> _Conversation:
        return _messages(self._chat.get("messages"), self._dialect)

    @property
    def system(self) -> list[list[TextPart]]:
        """The text parts of each ``system`` and ``developer`` message that has any text, in order."""
        return self._conversation.system

    @property
    def turns(self) -> list[Turn]:
        """The other messages as alternating, non-empty turns (none when there are only system messages)."""
        return self._conversation.turns

    @property
    def tool_loop_pending(self) -> bool:
        """Whether the conversation ends in tool results answering an assistant's tool calls.

        The tool loop is then mid-way, and Claude wants its earlier signed thinking back, which OpenAI
        messages cannot carry.
        """
        return self._conversation.tool_loop_pending

    @property
    def tool_names(self) -> list[str]:
        """The function names the history's tool calls use, in order (repeats included)."""
        return [part.name for turn in self.turns for part in turn.parts if isinstance(part, ToolCallPart)]

    @property
    def has_tool_history(self) -> bool:
        """Whether any tool call or tool result occurs in the conversation."""
        return any(isinstance(part, ToolCallPart | ToolResultPart) for turn in self.turns for part in turn.parts)

    @cached_property
    def tools(self) -> list[Tool]:
        return _tools(self._chat.get("tools"), self._dialect)

    @cached_property
    def tool_choice(self) -> ToolChoice | None:
        """``tool_choice``; None when not given."""
        return _tool_choice(self._chat.get("tool_choice"))

    @cached_property
    def _max_tokens(self) -> tuple[str, int | None]:
        return _max_tokens(self._chat)

    @property
    def max_tokens(self) -> int | None:
        """``max_completion_tokens``, else ``max_tokens``; None when neither was given."""
        return self._max_tokens[1]

    @property
    def max_tokens_field(self) -> str:
        """The field :attr:`max_tokens` came from (``max_completion_tokens`` when none did), for 400s about it."""
        return self._max_tokens[0]

    @cached_property
    def temperature(self) -> float | None:
        return _number(self._chat, "temperature")

    @cached_property
    def top_p(self) -> float | None:
        return _number(self._chat, "top_p")

    @cached_property
    def stop(self) -> list[str]:
        """The non-empty stop sequences."""
        return _stop(self._chat.get("stop"))

    @property
    def stream(self) -> bool:
        return self._chat.get("stream") is True

    @cached_property
    def reasoning_effort(self) -> Effort | None:
        """``reasoning_effort``; None when not given or ``"none"``."""
        return _effort(self._chat.get("reasoning_effort"))


def data_url(url: str) -> DataUrl | None:
    """``url`` taken apart when it is a base64 ``data:`` URL (parameters such as ``charset`` skipped), else None."""
    match = _DATA_URL.fullmatch(url)
    return DataUrl(match.group(1), match.group(2)) if match else None


def safe_tool_id(call_id: str) -> str:
    """``call_id`` reduced to ``[a-zA-Z0-9_-]``, the alphabet Anthropic and Converse take, the same way on a
    call and on its result, so ids minted by other providers still pair up."""
    return _ID_UNSAFE.sub("_", call_id)


# -- reading ------------------------------------------------------------------------------------------


class _Conversation(NamedTuple):
    system: list[list[TextPart]]
    turns: list[Turn]
    tool_loop_pending: bool


def _messages(raw: object, dialect: Dialect) -> _Conversation:
    if not isinstance(raw, list) or not raw:
        raise InvalidBodyError("messages must be a non-empty array.", param="messages")
    system: list[list[TextPart]] = []
    turns: list[Turn] = []
    tool_loop_pending = False
    for i, message in enumerate(raw):
        path = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidBodyError("Each message must be an object.", param=path)
        role = message.get("role")
        content = message.get("content")
        parts: list[Part]
        turn_role: Literal["user", "assistant"]
        if role in ("system", "developer"):
            text = _with_cache_control(_text_parts(content, f"{path}.content", dialect), message.get("cache_control"))
            if text:
                system.append(text)
            tool_loop_pending = False
            continue
        if role == "user":
            parts = _user_parts(content, f"{path}.content", message.get("cache_control"), dialect)
            turn_role = "user"
        elif role == "assistant":
            parts = _assistant_parts(message, path, dialect)
            turn_role = "assistant"
        elif role == "tool":
            parts = [_tool_result(message, path, dialect)]
            turn_role = "user"
        else:
            raise InvalidBodyError(
                f"Unsupported message role {role!r} for {dialect.provider} "
                "(use system, developer, user, assistant or tool).",
                param=f"{path}.role",
            )
        if role != "tool":
            # Tool results answer the calls before them; any other message decides whether a loop is open.
            tool_loop_pending = role == "assistant" and bool(message.get("tool_calls"))
        if not parts:
            continue
        if turns and turns[-1].role == turn_role:
            turns[-1].parts.extend(parts)
        else:
            turns.append(Turn(turn_role, parts))
    return _Conversation(system, turns, tool_loop_pending)


def _with_cache_control(parts: list[_PartT], cache_control: object) -> list[_PartT]:
    # A message-level cache_control marks the end of that message, i.e. its last part.
    if cache_control is not None and parts:
        parts[-1] = replace(parts[-1], cache_control=cache_control)
    return parts


def _text_parts(content: object, path: str, dialect: Dialect) -> list[TextPart]:
    """Content that may hold only text (system, developer and tool messages): a string or text parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [TextPart(content)] if content else []
    if not isinstance(content, list):
        raise InvalidBodyError(_CONTENT_SHAPE, param=path)
    parts: list[TextPart] = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise InvalidBodyError("Only text parts are supported here.", param=dialect.part_param(f"{path}[{j}]"))
        if part["text"]:
            parts.append(TextPart(part["text"], part.get("cache_control")))
    return parts


def _user_parts(content: object, path: str, cache_control: object, dialect: Dialect) -> list[Part]:
    if content is None:
        return []
    parts: list[Part] = []
    if isinstance(content, str):
        if content:
            parts.append(TextPart(content))
        return _with_cache_control(parts, cache_control)
    if not isinstance(content, list):
        raise InvalidBodyError(_CONTENT_SHAPE, param=path)
    for j, part in enumerate(content):
        part_path = f"{path}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            if part["text"]:
                parts.append(TextPart(part["text"], part.get("cache_control")))
        elif kind == "image_url":
            parts.append(_image(part, f"{part_path}.image_url"))
        elif kind == "file":
            parts.append(_file(part, j, f"{part_path}.file", dialect))
        else:
            raise InvalidBodyError(
                f"Unsupported content part type {kind!r} for {dialect.provider} "
                "(text, image_url and file are supported).",
                param=f"{part_path}.type",
            )
    return _with_cache_control(parts, cache_control)


def _image(part: JsonObj, path: str) -> ImagePart:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidBodyError("image_url.url is required.", param=f"{path}.url")
    return ImagePart(url, f"{path}.url", part.get("cache_control"))


def _file(part: JsonObj, index: int, path: str, dialect: Dialect) -> FilePart:
    file = part.get("file")
    if not isinstance(file, dict):
        raise InvalidBodyError("file must be an object.", param=path)
    file_data = file.get("file_data")
    if not isinstance(file_data, str):
        raise InvalidBodyError(
            f"{dialect.provider} needs the document inline as file_data (a base64 data: URL); "
            "file_id is not supported.",
            param=f"{path}.file_data",
        )
    filename = file.get("filename")
    return FilePart(
        file_data,
        filename if isinstance(filename, str) else None,
        index,
        f"{path}.file_data",
        part.get("cache_control"),
    )


def _assistant_parts(message: JsonObj, path: str, dialect: Dialect) -> list[Part]:
    parts: list[Part] = []
    content = message.get("content")
    if isinstance(content, str):
        if content:
            parts.append(TextPart(content))
    elif isinstance(content, list):
        for j, part in enumerate(content):
            kind = part.get("type") if isinstance(part, dict) else None
            text = part.get(kind) if kind in ("text", "refusal") else None
            if not isinstance(text, str):
                raise InvalidBodyError(
                    "Assistant content parts must be text or refusal.",
                    param=dialect.part_param(f"{path}.content[{j}]"),
                )
            if text:
                parts.append(TextPart(text, part.get("cache_control")))
    elif content is not None:
        raise InvalidBodyError(_CONTENT_SHAPE, param=f"{path}.content")
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise InvalidBodyError("tool_calls must be an array.", param=f"{path}.tool_calls")
        parts.extend(_tool_call(call, f"{path}.tool_calls[{j}]", dialect) for j, call in enumerate(calls))
    return _with_cache_control(parts, message.get("cache_control"))


def _tool_call(call: object, path: str, dialect: Dialect) -> ToolCallPart:
    if dialect.checks_tool_call_type:
        if not isinstance(call, dict):
            raise InvalidBodyError("A tool call must be an object.", param=path)
        if call.get("type", "function") != "function":
            raise InvalidBodyError("Only function tool calls are supported.", param=f"{path}.type")
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(call, dict) or not isinstance(function, dict):
        raise InvalidBodyError("A tool call needs a function object.", param=f"{path}.function")
    call_id, name = call.get("id"), function.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidBodyError("A tool call needs an id.", param=f"{path}.id")
    if not isinstance(name, str) or not name:
        raise InvalidBodyError("A tool call needs a function name.", param=f"{path}.function.name")
    return ToolCallPart(call_id, name, _arguments(function.get("arguments"), f"{path}.function.arguments"))


def _arguments(raw: object, path: str) -> JsonObj:
    """A tool call's ``arguments``, a JSON string encoding an object ("" or absent: no arguments)."""
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


def _tool_result(message: JsonObj, path: str, dialect: Dialect) -> ToolResultPart:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidBodyError("A tool message needs its tool_call_id.", param=f"{path}.tool_call_id")
    content = message.get("content")
    text = content if isinstance(content, str) else _text_parts(content, f"{path}.content", dialect)
    return ToolResultPart(call_id, text, message.get("cache_control"))


def _tools(raw: object, dialect: Dialect) -> list[Tool]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidBodyError("tools must be an array.", param="tools")
    tools: list[Tool] = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise InvalidBodyError(dialect.non_function_tool, param=f"tools[{i}].type")
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
        description = function.get("description")
        tools.append(
            Tool(
                name,
                description if isinstance(description, str) and description else None,
                parameters,
                tool.get("cache_control"),
            )
        )
    return tools


def _max_tokens(chat: JsonObj) -> tuple[str, int | None]:
    for field in ("max_completion_tokens", "max_tokens"):
        value = chat.get(field)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidBodyError(f"{field} must be a positive integer.", param=field)
        return field, value
    return "max_completion_tokens", None


def _number(chat: JsonObj, field: str) -> float | None:
    """A finite number parameter (temperature, top_p) as a float, for providers that need one."""
    value = chat.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidBodyError(f"{field} must be a number.", param=field)
    try:
        number = float(value)
    except OverflowError:  # an integer literal beyond any float (10e400 written out)
        number = math.inf
    if not math.isfinite(number):
        raise InvalidBodyError(f"{field} must be a finite number.", param=field)
    return number


def _stop(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item for item in value if item]
    raise InvalidBodyError("stop must be a string or a list of strings.", param="stop")


def _tool_choice(choice: object) -> ToolChoice | None:
    if choice is None:
        return None
    if choice == "auto" or choice == "none" or choice == "required":
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        function = choice.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidBodyError("tool_choice.function.name is required.", param="tool_choice.function.name")
        return NamedTool(name)
    raise InvalidBodyError(
        'tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}.',
        param="tool_choice",
    )


def _effort(effort: object) -> Effort | None:
    if effort is None or effort == "none":
        return None
    for known in THINKING_BUDGETS:
        if effort == known:
            return known
    raise InvalidBodyError(
        "reasoning_effort must be one of none, minimal, low, medium, high.", param="reasoning_effort"
    )

"""Fixture loading and precompiled reply templates.

Fixtures are checked-in provider payloads (JSON bodies, JSONL stream events).
At startup every payload is encoded once into bytes with "slots" cut out for
the few values that must change per request (ids, timestamps, the echoed
model, the tool name and arguments), so serving a request only joins bytes.
That keeps the mock cheap enough for load benchmarks.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"

_SLOT_RE = re.compile(rb'"\\u0000slot:([a-z0-9_]+)\\u0000"')
_TIME_KEYS = frozenset({"created", "created_at", "completed_at"})
_ENCODER = msgspec.json.Encoder()

JsonObj = dict[str, Any]


def slot(name: str) -> str:
    """Marker string that becomes a substitution point once the payload is encoded."""
    return f"\x00slot:{name}\x00"


def encode(value: Any) -> bytes:
    """Compact JSON, the way the real providers put it on the wire."""
    return _ENCODER.encode(value)


@dataclass(frozen=True, slots=True)
class Template:
    """Encoded bytes with named holes; ``len(segments) == len(slots) + 1``."""

    segments: tuple[bytes, ...]
    slots: tuple[str, ...]

    def render(self, values: Mapping[str, bytes]) -> bytes:
        """Fill every slot with already-encoded JSON bytes."""
        if not self.slots:
            return self.segments[0]
        parts = [self.segments[0]]
        for name, segment in zip(self.slots, self.segments[1:], strict=True):
            parts.append(values[name])
            parts.append(segment)
        return b"".join(parts)


def _mark(node: Any, string_slots: Mapping[str, str]) -> Any:
    """Swap per-request values for slot markers: known strings by value, timestamps by key."""
    if isinstance(node, dict):
        out: JsonObj = {}
        for key, value in node.items():
            if key in _TIME_KEYS and isinstance(value, int) and not isinstance(value, bool):
                out[key] = slot("created")
            else:
                out[key] = _mark(value, string_slots)
        return out
    if isinstance(node, list):
        return [_mark(item, string_slots) for item in node]
    if isinstance(node, str) and node in string_slots and not node.startswith("\x00slot:"):
        return slot(string_slots[node])
    return node


def compile_template(
    payload: Any, string_slots: Mapping[str, str], *, prefix: bytes = b"", suffix: bytes = b""
) -> Template:
    """Encode ``payload`` once and split it at the slot markers."""
    raw = prefix + encode(_mark(payload, string_slots)) + suffix
    parts = _SLOT_RE.split(raw)
    return Template(
        segments=tuple(parts[0::2]),
        slots=tuple(part.decode("ascii") for part in parts[1::2]),
    )


def sse_data(payload: Any, string_slots: Mapping[str, str]) -> Template:
    """OpenAI Chat style event: ``data: {json}`` only."""
    return compile_template(payload, string_slots, prefix=b"data: ", suffix=b"\n\n")


def sse_named(payload: JsonObj, string_slots: Mapping[str, str]) -> Template:
    """Responses / Anthropic style event: ``event: <type>`` then ``data: {json}``."""
    prefix = b"event: " + str(payload["type"]).encode() + b"\ndata: "
    return compile_template(payload, string_slots, prefix=prefix, suffix=b"\n\n")


def load_json(relative: str) -> JsonObj:
    """Read one whole-response fixture."""
    result: JsonObj = json.loads((FIXTURES_DIR / relative).read_text(encoding="utf-8"))
    return result


def load_jsonl(relative: str) -> list[JsonObj]:
    """Read one stream fixture: one event payload per non-empty line."""
    text = (FIXTURES_DIR / relative).read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- per-request values ---------------------------------------------------------


def fresh_id(prefix: str, nbytes: int = 12) -> str:
    """Random id with a provider-looking prefix, so every reply is distinguishable."""
    return prefix + os.urandom(nbytes).hex()


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """The tool the mock decided to call and the arguments it invents for it."""

    name: str
    arguments: JsonObj


DEFAULT_ARGUMENTS: JsonObj = {"city": "Paris"}


def _placeholder(name: str, schema: Any) -> Any:
    """A value that satisfies the simple schemas tests declare."""
    if not isinstance(schema, dict):
        return "Paris" if name == "city" else "example"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return "Paris" if name == "city" else "example"


def arguments_for_schema(schema: Any) -> JsonObj:
    """Small argument object for a tool's JSON schema.

    Required properties are all filled so SDK-side validation passes; without
    any, the fixture's ``{"city": "Paris"}`` is used unless the schema's
    properties make that key obviously wrong.
    """
    if not isinstance(schema, dict):
        return dict(DEFAULT_ARGUMENTS)
    properties = schema.get("properties")
    props: dict[str, Any] = properties if isinstance(properties, dict) else {}
    required = schema.get("required")
    if isinstance(required, list) and required:
        return {str(name): _placeholder(str(name), props.get(name)) for name in required}
    if props and "city" not in props:
        return {}
    return dict(DEFAULT_ARGUMENTS)


def split_evenly(text: str, pieces: int) -> list[str]:
    """Cut ``text`` into ``pieces`` consecutive fragments (some may be empty)."""
    if pieces <= 1:
        return [text]
    size = len(text)
    return [text[size * i // pieces : size * (i + 1) // pieces] for i in range(pieces)]


# -- replies ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """A precompiled reply (a JSON body or a list of stream events) and how to fill it."""

    body: Template | None
    events: tuple[Template, ...]
    default_model: str
    id_prefixes: Mapping[str, str]
    fixture_arguments: str = ""
    fixture_fragments: tuple[str, ...] = ()

    def values(self, model: str | None, tool: ToolChoice | None) -> dict[str, bytes]:
        """Encoded values for every slot this reply can contain."""
        values: dict[str, bytes] = {
            "model": encode(model or self.default_model),
            "created": str(int(time.time())).encode(),
        }
        for name, prefix in self.id_prefixes.items():
            values[name] = encode(fresh_id(prefix))
        if tool is not None:
            arguments = encode(tool.arguments).decode()
            if arguments == self.fixture_arguments:
                fragments = list(self.fixture_fragments)
            else:
                fragments = split_evenly(arguments, len(self.fixture_fragments))
            values["tool_name"] = encode(tool.name)
            values["args"] = encode(arguments)
            values["args_obj"] = arguments.encode()
            for index, fragment in enumerate(fragments):
                values[f"frag_{index}"] = encode(fragment)
        return values

    def render_body(self, values: Mapping[str, bytes]) -> bytes:
        """The whole JSON body."""
        assert self.body is not None
        return self.body.render(values)

    def render_events(self, values: Mapping[str, bytes]) -> list[bytes]:
        """Every stream event, already framed as SSE."""
        return [event.render(values) for event in self.events]


def _fragments(events: Iterable[JsonObj], locate: Callable[[JsonObj], tuple[JsonObj, str] | None]) -> tuple[str, ...]:
    """Replace streamed tool-argument fragments (found by ``locate``) with positional slots."""
    found: list[str] = []
    for event in events:
        spot = locate(event)
        if spot is None:
            continue
        container, key = spot
        value = container[key]
        if isinstance(value, str) and value:
            container[key] = slot(f"frag_{len(found)}")
            found.append(value)
    return tuple(found)


def _chat_fragment(event: JsonObj) -> tuple[JsonObj, str] | None:
    for choice in event.get("choices") or []:
        for call in (choice.get("delta") or {}).get("tool_calls") or []:
            function = call.get("function") or {}
            if "arguments" in function:
                return function, "arguments"
    return None


def _responses_fragment(event: JsonObj) -> tuple[JsonObj, str] | None:
    if event.get("type") == "response.function_call_arguments.delta":
        return event, "delta"
    return None


def _anthropic_fragment(event: JsonObj) -> tuple[JsonObj, str] | None:
    delta = event.get("delta")
    if event.get("type") != "content_block_delta" or not isinstance(delta, dict):
        return None
    return (delta, "partial_json") if delta.get("type") == "input_json_delta" else None


def _chat_slots(payload: JsonObj, *, include_args: bool = True) -> dict[str, str]:
    slots = {payload["id"]: "id", payload["model"]: "model"}
    for choice in payload.get("choices") or []:
        holder = choice.get("message") or choice.get("delta") or {}
        for call in holder.get("tool_calls") or []:
            if call.get("id"):
                slots[call["id"]] = "call_id"
            function = call.get("function") or {}
            if function.get("name"):
                slots[function["name"]] = "tool_name"
            if include_args and function.get("arguments"):
                slots[function["arguments"]] = "args"
    return slots


def _responses_item_slots(item: JsonObj, slots: dict[str, str]) -> None:
    slots[item["id"]] = "item_id"
    if item.get("type") == "function_call":
        slots[item["call_id"]] = "call_id"
        slots[item["name"]] = "tool_name"
        if item.get("arguments"):
            slots[item["arguments"]] = "args"


def _responses_slots(response: JsonObj) -> dict[str, str]:
    slots = {response["id"]: "id", response["model"]: "model"}
    for item in response.get("output") or []:
        _responses_item_slots(item, slots)
    return slots


def _anthropic_slots(message: JsonObj) -> dict[str, str]:
    slots = {message["id"]: "id", message["model"]: "model"}
    for block in message.get("content") or []:
        if block.get("type") == "tool_use":
            slots[block["id"]] = "tool_id"
            slots[block["name"]] = "tool_name"
            block["input"] = slot("args_obj")
    return slots


def _fixture_arguments(fragments: tuple[str, ...]) -> str:
    """The fixture's own arguments, normalised to the compact form ``values`` compares with."""
    joined = "".join(fragments)
    return encode(json.loads(joined)).decode() if joined else ""


@dataclass(frozen=True, slots=True)
class Fixtures:
    """Every reply the mock can give, compiled once at app startup."""

    chat: Reply
    chat_tool: Reply
    chat_stream: Reply
    chat_stream_no_usage: Reply
    chat_stream_tool: Reply
    chat_stream_tool_no_usage: Reply
    responses: Reply
    responses_tool: Reply
    responses_stream: Reply
    responses_stream_tool: Reply
    messages: Reply
    messages_tool: Reply
    messages_stream: Reply
    messages_stream_tool: Reply


_CHAT_IDS = {"id": "chatcmpl-", "call_id": "call_"}
_ANTHROPIC_IDS = {"id": "msg_01", "tool_id": "toolu_01"}


def _chat_json(relative: str) -> Reply:
    payload = load_json(relative)
    slots = _chat_slots(payload)
    arguments = next((k for k, v in slots.items() if v == "args"), "")
    return Reply(
        body=compile_template(payload, slots),
        events=(),
        default_model=payload["model"],
        id_prefixes=_CHAT_IDS,
        fixture_arguments=_fixture_arguments((arguments,)) if arguments else "",
        fixture_fragments=(arguments,) if arguments else (),
    )


def _chat_streams(relative: str) -> tuple[Reply, Reply]:
    """Two variants: with the final usage chunk (``include_usage``) and without any usage key."""
    events = load_jsonl(relative)
    fragments = _fragments(events, _chat_fragment)
    slots: dict[str, str] = {}
    for event in events:
        slots.update(_chat_slots(event, include_args=False))
    done = Template(segments=(b"data: [DONE]\n\n",), slots=())
    with_usage = (*(sse_data(event, slots) for event in events), done)
    stripped = []
    for event in events:
        if not event.get("choices") and event.get("usage"):
            continue
        event = copy.deepcopy(event)
        event.pop("usage", None)
        stripped.append(sse_data(event, slots))
    without_usage = (*stripped, done)
    common = {
        "body": None,
        "default_model": events[0]["model"],
        "id_prefixes": _CHAT_IDS,
        "fixture_arguments": _fixture_arguments(fragments),
        "fixture_fragments": fragments,
    }
    return Reply(events=with_usage, **common), Reply(events=without_usage, **common)


def _responses_ids(response: JsonObj) -> dict[str, str]:
    ids = {"id": "resp_"}
    for item in response.get("output") or []:
        ids["item_id"] = "fc_" if item.get("type") == "function_call" else "msg_"
        if item.get("type") == "function_call":
            ids["call_id"] = "call_"
    return ids


def _responses_json(relative: str) -> Reply:
    payload = load_json(relative)
    slots = _responses_slots(payload)
    arguments = next((k for k, v in slots.items() if v == "args"), "")
    return Reply(
        body=compile_template(payload, slots),
        events=(),
        default_model=payload["model"],
        id_prefixes=_responses_ids(payload),
        fixture_arguments=_fixture_arguments((arguments,)) if arguments else "",
        fixture_fragments=(arguments,) if arguments else (),
    )


def _responses_stream(relative: str) -> Reply:
    events = load_jsonl(relative)
    fragments = _fragments(events, _responses_fragment)
    final = next(e["response"] for e in events if e["type"] == "response.completed")
    slots = _responses_slots(final)
    return Reply(
        body=None,
        events=tuple(sse_named(event, slots) for event in events),
        default_model=final["model"],
        id_prefixes=_responses_ids(final),
        fixture_arguments=_fixture_arguments(fragments),
        fixture_fragments=fragments,
    )


def _messages_json(relative: str) -> Reply:
    payload = load_json(relative)
    original = copy.deepcopy(payload)
    slots = _anthropic_slots(payload)
    tool_input = next((b["input"] for b in original["content"] if b.get("type") == "tool_use"), None)
    arguments = encode(tool_input).decode() if tool_input is not None else ""
    return Reply(
        body=compile_template(payload, slots),
        events=(),
        default_model=payload["model"],
        id_prefixes=_ANTHROPIC_IDS,
        fixture_arguments=arguments,
        fixture_fragments=(arguments,) if arguments else (),
    )


def _messages_stream(relative: str) -> Reply:
    events = load_jsonl(relative)
    fragments = _fragments(events, _anthropic_fragment)
    start = events[0]["message"]
    slots = _anthropic_slots(start)
    for event in events:
        block = event.get("content_block")
        if isinstance(block, dict) and block.get("type") == "tool_use":
            slots[block["id"]] = "tool_id"
            slots[block["name"]] = "tool_name"
    return Reply(
        body=None,
        events=tuple(sse_named(event, slots) for event in events),
        default_model=start["model"],
        id_prefixes=_ANTHROPIC_IDS,
        fixture_arguments=_fixture_arguments(fragments),
        fixture_fragments=fragments,
    )


def load_fixtures() -> Fixtures:
    """Read and compile every fixture (done once per app)."""
    chat_stream, chat_stream_no_usage = _chat_streams("openai/chat_stream.jsonl")
    chat_stream_tool, chat_stream_tool_no_usage = _chat_streams("openai/chat_stream_tool_call.jsonl")
    return Fixtures(
        chat=_chat_json("openai/chat_completion.json"),
        chat_tool=_chat_json("openai/chat_completion_tool_call.json"),
        chat_stream=chat_stream,
        chat_stream_no_usage=chat_stream_no_usage,
        chat_stream_tool=chat_stream_tool,
        chat_stream_tool_no_usage=chat_stream_tool_no_usage,
        responses=_responses_json("openai/responses.json"),
        responses_tool=_responses_json("openai/responses_function_call.json"),
        responses_stream=_responses_stream("openai/responses_stream.jsonl"),
        responses_stream_tool=_responses_stream("openai/responses_stream_function_call.jsonl"),
        messages=_messages_json("anthropic/message.json"),
        messages_tool=_messages_json("anthropic/message_tool_use.json"),
        messages_stream=_messages_stream("anthropic/message_stream.jsonl"),
        messages_stream_tool=_messages_stream("anthropic/message_stream_tool_use.jsonl"),
    )
